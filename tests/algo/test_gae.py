"""GAE: worked examples with the arithmetic written out, edge cases, and a slow reference."""

import pytest
import torch

from quadlit.algo.gae import compute_gae


def _columns(*cols):
    """Stack per-env lists into a (T, N) float64 tensor."""
    return torch.tensor(cols, dtype=torch.float64).T.contiguous()


def test_worked_example_continue_terminate_truncate():
    # gamma = 0.5, lam = 0.5, so gamma * lam = 0.25. Three envs, three steps.
    reward = _columns([1, 2, 3], [1, 2, 3], [1, 2, 3])
    value = _columns([1, 1, 1], [2, 4, 1], [2, 4, 1])
    last_value = torch.tensor([2.0, 2.0, 2.0], dtype=torch.float64)
    terminated = _columns([0, 0, 0], [0, 1, 0], [0, 0, 0])
    truncated = _columns([0, 0, 0], [0, 0, 0], [1, 0, 0])
    # Garbage wherever not truncated: it must be ignored.
    truncation_value = _columns([100, 100, 100], [100, 100, 100], [6, 100, 100])

    adv, ret = compute_gae(
        reward, value, terminated, truncated, truncation_value, last_value, gamma=0.5, lam=0.5
    )

    # env 0 continues: d2 = 3 + .5*2 - 1 = 3, d1 = 2 + .5*1 - 1 = 1.5, d0 = 1 + .5*1 - 1 = .5
    #   A2 = 3, A1 = 1.5 + .25*3 = 2.25, A0 = .5 + .25*2.25 = 1.0625
    # env 1 terminates at t=1: d2 = 3 + .5*2 - 1 = 3, d1 = 2 + 0 - 4 = -2 (no bootstrap),
    #   d0 = 1 + .5*4 - 2 = 1;  A2 = 3, A1 = -2 (no carry from t=2), A0 = 1 + .25*(-2) = .5
    # env 2 truncated at t=0 with V(final obs) = 6: d0 = 1 + .5*6 - 2 = 2 (no carry from t=1),
    #   d1 = 2 + .5*1 - 4 = -1.5, d2 = 3 + .5*2 - 1 = 3;  A2 = 3, A1 = -1.5 + .25*3 = -.75, A0 = 2
    expected = _columns([1.0625, 2.25, 3.0], [0.5, -2.0, 3.0], [2.0, -0.75, 3.0])
    torch.testing.assert_close(adv, expected)
    torch.testing.assert_close(ret, expected + value)


def test_gamma_one_lambda_one_gives_monte_carlo_returns():
    # gamma = lam = 1: returns are undiscounted reward sums up to the episode end, plus the
    # bootstrap value only where the rollout (not the episode) ends. Values cancel out.
    reward = _columns([1, 2, 3], [1, 2, 3])
    value = _columns([5, -3, 7], [5, -3, 7])
    terminated = _columns([0, 0, 0], [0, 1, 0])
    truncated = torch.zeros_like(reward)
    last_value = torch.tensor([10.0, 10.0], dtype=torch.float64)
    _, ret = compute_gae(reward, value, terminated, truncated, torch.zeros_like(reward), last_value, 1.0, 1.0)
    # env 0: [1+2+3+10, 2+3+10, 3+10]; env 1 ends after t=1: [1+2, 2, 3+10]
    torch.testing.assert_close(ret, _columns([16, 15, 13], [3, 2, 13]))


def test_lambda_zero_gives_one_step_td():
    reward = _columns([1, 2], [1, 2])
    value = _columns([1, 3], [1, 3])
    terminated = _columns([0, 0], [0, 0])
    truncated = _columns([0, 0], [1, 0])
    truncation_value = _columns([0, 0], [8, 0])
    last_value = torch.tensor([4.0, 4.0], dtype=torch.float64)
    adv, _ = compute_gae(
        reward, value, terminated, truncated, truncation_value, last_value, gamma=0.5, lam=0.0
    )
    # env 0: [1 + .5*3 - 1, 2 + .5*4 - 3] = [1.5, 1]; env 1 truncated at 0: [1 + .5*8 - 1, 1] = [4, 1]
    torch.testing.assert_close(adv, _columns([1.5, 1.0], [4.0, 1.0]))


def test_terminated_wins_over_truncated():
    reward = _columns([1.0])
    value = _columns([0.0])
    ones = _columns([1.0])
    last_value = torch.tensor([9.0], dtype=torch.float64)
    adv, _ = compute_gae(reward, value, ones, ones, _columns([50.0]), last_value)
    torch.testing.assert_close(adv, _columns([1.0]))


def _reference_gae(reward, value, terminated, truncated, truncation_value, last_value, gamma, lam):
    steps, envs = len(reward), len(reward[0])
    adv = [[0.0] * envs for _ in range(steps)]
    for n in range(envs):
        following = 0.0
        for t in reversed(range(steps)):
            if terminated[t][n]:
                next_value, carry = 0.0, 0.0
            elif truncated[t][n]:
                next_value, carry = truncation_value[t][n], 0.0
            else:
                next_value = last_value[n] if t == steps - 1 else value[t + 1][n]
                carry = 1.0
            delta = reward[t][n] + gamma * next_value - value[t][n]
            following = delta + gamma * lam * carry * following
            adv[t][n] = following
    return torch.tensor(adv, dtype=torch.float64)


@pytest.mark.parametrize("gamma,lam", [(0.99, 0.95), (1.0, 1.0), (0.9, 0.0), (0.5, 1.0)])
def test_matches_slow_reference(gamma, lam):
    gen = torch.Generator().manual_seed(3)
    steps, envs = 17, 6
    reward = torch.randn(steps, envs, generator=gen, dtype=torch.float64)
    value = torch.randn(steps, envs, generator=gen, dtype=torch.float64)
    terminated = torch.rand(steps, envs, generator=gen) < 0.1
    truncated = torch.rand(steps, envs, generator=gen) < 0.1
    truncation_value = torch.randn(steps, envs, generator=gen, dtype=torch.float64)
    last_value = torch.randn(envs, generator=gen, dtype=torch.float64)
    adv, ret = compute_gae(reward, value, terminated, truncated, truncation_value, last_value, gamma, lam)
    expected = _reference_gae(
        reward.tolist(), value.tolist(), terminated.tolist(), truncated.tolist(),
        truncation_value.tolist(), last_value.tolist(), gamma, lam,
    )
    torch.testing.assert_close(adv, expected)
    torch.testing.assert_close(ret, expected + value)


def test_float_flags_and_no_grad():
    value = torch.zeros(2, 1, requires_grad=True)
    adv, ret = compute_gae(torch.ones(2, 1), value, torch.zeros(2, 1), torch.zeros(2, 1),
                           torch.zeros(2, 1), torch.zeros(1), gamma=0.5, lam=1.0)
    assert not adv.requires_grad and not ret.requires_grad
    torch.testing.assert_close(adv, torch.tensor([[1.5], [1.0]]))


@pytest.mark.parametrize("gamma,lam", [(0.0, 0.95), (1.01, 0.95), (0.99, -0.1), (0.99, 1.5)])
def test_rejects_bad_hyperparameters(gamma, lam):
    z = torch.zeros(2, 1)
    with pytest.raises(ValueError):
        compute_gae(z, z, z, z, z, torch.zeros(1), gamma=gamma, lam=lam)


def test_rejects_mismatched_shapes():
    z = torch.zeros(2, 3)
    with pytest.raises(ValueError):
        compute_gae(z, torch.zeros(2, 2), z, z, z, torch.zeros(3))
    with pytest.raises(ValueError):
        compute_gae(z, z, z, z, z, torch.zeros(2))
