"""Environment-wise minibatches: every transition exactly once per epoch, sequences in order."""

import pytest
import torch

from quadlit.algo.sampler import env_minibatches


@pytest.mark.parametrize("num_envs,num_minibatches", [(8, 4), (10, 3), (5, 5), (7, 1)])
def test_every_transition_once_per_epoch_in_order(num_envs, num_minibatches):
    steps = 6
    # Each entry identifies its step and env: 1000 * env + step.
    buffer = 1000 * torch.arange(num_envs).unsqueeze(0) + torch.arange(steps).unsqueeze(1)  # (T, N)
    gen = torch.Generator().manual_seed(0)
    for _epoch in range(3):
        groups = env_minibatches(num_envs, num_minibatches, gen)
        assert len(groups) == num_minibatches
        sizes = [len(g) for g in groups]
        assert max(sizes) - min(sizes) <= 1
        seen = []
        for env_idx in groups:
            assert env_idx.dtype == torch.long
            batch = buffer[:, env_idx]  # (T, n)
            for column, env in zip(batch.T.tolist(), env_idx.tolist()):
                assert column == [1000 * env + t for t in range(steps)]  # whole, in order
            seen.extend(batch.flatten().tolist())
        assert sorted(seen) == sorted(buffer.flatten().tolist())


def test_permutation_changes_between_epochs_and_is_reproducible():
    gen = torch.Generator().manual_seed(1)
    first = torch.cat(env_minibatches(64, 4, gen))
    second = torch.cat(env_minibatches(64, 4, gen))
    assert not torch.equal(first, second)
    replay = torch.cat(env_minibatches(64, 4, torch.Generator().manual_seed(1)))
    assert torch.equal(first, replay)


@pytest.mark.parametrize("num_envs,num_minibatches", [(4, 0), (4, 5), (0, 1)])
def test_rejects_bad_sizes(num_envs, num_minibatches):
    with pytest.raises(ValueError):
        env_minibatches(num_envs, num_minibatches)
