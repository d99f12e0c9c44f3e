"""WorldModel: loss terms, shapes, and that it learns a tiny fixed dataset."""

import pytest
import torch

from quadlit.models.world_model import WorldModel

OBS, ACT = 6, 2


def _dataset(batch=64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    obs = torch.randn(batch, OBS, generator=gen)
    action = torch.rand(batch, ACT, generator=gen) * 2 - 1
    next_obs = 0.9 * obs + 0.1 * torch.cat([action, action, action], dim=-1)
    reward = -obs.square().sum(-1) * 0.1
    done = (obs[:, 0] > 1.0).float()
    return obs, action, reward, next_obs, done


def test_loss_terms_are_named_finite_scalars():
    torch.manual_seed(0)
    model = WorldModel(OBS, ACT, latent_dim=16, hidden=32)
    terms = model.losses(*_dataset())
    assert set(terms) == {"reconstruction", "dynamics", "reward", "done", "total"}
    for value in terms.values():
        assert value.shape == () and torch.isfinite(value)
    total = sum(terms[name] for name in WorldModel.LOSS_TERMS)
    torch.testing.assert_close(terms["total"], total)


def test_prediction_shapes():
    model = WorldModel(OBS, ACT, latent_dim=16, hidden=32)
    obs, action, *_ = _dataset(batch=5)
    next_obs, reward, done_prob = model.predict(obs, action)
    assert next_obs.shape == (5, OBS) and reward.shape == (5,) and done_prob.shape == (5,)
    assert ((done_prob > 0) & (done_prob < 1)).all()
    latent = model.encode(obs)
    next_latent, reward, done_logit = model.step_latent(latent, action)
    assert latent.shape == next_latent.shape == (5, 16)
    assert model.decode(latent).shape == (5, OBS)


def test_losses_decrease_on_a_fixed_dataset():
    torch.manual_seed(0)
    model = WorldModel(OBS, ACT, latent_dim=16, hidden=32)
    data = _dataset()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    with torch.no_grad():
        before = {k: v.item() for k, v in model.losses(*data).items()}
    for _ in range(60):
        optimizer.zero_grad()
        model.losses(*data)["total"].backward()
        optimizer.step()
    with torch.no_grad():
        after = {k: v.item() for k, v in model.losses(*data).items()}
    assert after["total"] < 0.5 * before["total"]
    for name in WorldModel.LOSS_TERMS:
        assert after[name] < before[name], name


def test_rejects_mismatched_shapes():
    model = WorldModel(OBS, ACT)
    obs, action, reward, next_obs, done = _dataset(batch=4)
    with pytest.raises(ValueError):
        model.losses(obs, action, reward.unsqueeze(-1), next_obs, done)


def test_bf16_autocast_losses_on_cpu():
    model = WorldModel(OBS, ACT, latent_dim=16, hidden=32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        terms = model.losses(*_dataset())
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in terms.values())
    terms["total"].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


# ------------------------------------------------------------------ memory and multi-step training
from quadlit.models.world_model import Sequences, history_inputs, sample_sequences  # noqa: E402


def _slow_history(obs, action, start, h):
    """history_inputs, one row at a time."""
    T, N, _ = obs.shape
    out = torch.zeros(T, N, h * obs.shape[-1] + (h - 1) * action.shape[-1])
    for n in range(N):
        first = 0
        for t in range(T):
            if t == 0 or start[t, n]:
                first = t
            past_obs = [obs[max(t - lag, first), n] for lag in range(h - 1, -1, -1)]
            past_act = [action[t - lag, n] if t - lag >= first else torch.zeros(action.shape[-1])
                        for lag in range(h - 1, 0, -1)]
            out[t, n] = torch.cat(past_obs + past_act)
    return out


@pytest.mark.parametrize("h", [1, 2, 4])
def test_history_inputs_match_a_step_by_step_reference(h):
    gen = torch.Generator().manual_seed(1)
    T, N = 12, 3
    obs = torch.randn(T, N, OBS, generator=gen)
    action = torch.randn(T, N, ACT, generator=gen)
    start = torch.zeros(T, N, dtype=torch.bool)
    start[5, 0] = start[6, 1] = start[7, 1] = True  # two starts in a row: a one-step episode
    got = history_inputs(obs, action, start, h)
    assert got.shape == (T, N, h * OBS + (h - 1) * ACT)
    torch.testing.assert_close(got, _slow_history(obs, action, start, h), rtol=0, atol=0)
    # the newest observation is the current one; the row of an episode's first step knows nothing older
    torch.testing.assert_close(got[..., (h - 1) * OBS:h * OBS], obs, rtol=0, atol=0)
    if h > 1:
        assert got[5, 0, h * OBS:].abs().sum() == 0
        torch.testing.assert_close(got[5, 0, :OBS], obs[5, 0], rtol=0, atol=0)


def test_sample_sequences_gather_the_right_steps_and_mark_ends():
    T, N, H = 10, 2, 4
    t_index = torch.arange(T, dtype=torch.float32).view(T, 1, 1)
    env_index = torch.arange(N, dtype=torch.float32).view(1, N, 1)
    obs = (100 * env_index + t_index).expand(T, N, OBS).clone()
    next_obs = obs + 0.5
    action = (100 * env_index + t_index).expand(T, N, ACT).clone()
    reward = obs[..., 0].clone()
    terminated = torch.zeros(T, N)
    terminated[4, 1] = 1.0
    ended = terminated.clone()
    ended[7, 0] = 1.0  # a time-out
    start = torch.zeros(T, N)
    start[5, 1] = start[8, 0] = 1.0
    batch = sample_sequences(obs, next_obs, action, reward, terminated, ended, start, horizon=H, history=2,
                             count=400, generator=torch.Generator().manual_seed(0))
    assert batch.inputs.shape == (400, 2 * OBS + ACT) and batch.target.shape == (400, H, OBS)
    t0 = batch.obs[:, 0] % 100
    env = (batch.obs[:, 0] // 100).long()
    assert t0.min() >= 1 and t0.max() <= T - 1  # history 2: step 0's past is not in the rollout
    assert len({(int(a), int(b)) for a, b in zip(t0, env)}) > 10
    for i in range(400):
        s, n = int(t0[i]), int(env[i])
        for k in range(H):
            t = s + k
            expect_valid = t < T and not any(ended[u, n] for u in range(s, t))
            assert bool(batch.valid[i, k]) == expect_valid, (s, n, k)
            if expect_valid:
                assert batch.action[i, k, 0] == 100 * n + t and batch.target[i, k, 0] == 100 * n + t + 0.5
                assert batch.reward[i, k] == 100 * n + t and batch.done[i, k] == terminated[t, n]


class _Scalar(WorldModel):
    """A world model whose parts are fixed by hand: z = x, x' = x + a (with the action) or x' = x."""

    def __init__(self, use_action: bool) -> None:
        super().__init__(1, 1, latent_dim=1, hidden=2)
        self.use_action = use_action

    def encode(self, inputs):
        return inputs

    def decode(self, latent):
        return latent

    def step_latent(self, latent, action):
        nxt = 0.5 * latent + (action if self.use_action else 0.0)
        zero = torch.zeros(latent.shape[:-1])
        return nxt, zero, zero


def _worked(valid):
    x0 = torch.zeros(1, 1)
    action = torch.ones(1, 3, 1)
    target = torch.tensor([[[1.0], [1.5], [1.75]]])  # x' = 0.5 x + a from 0 with a = 1
    return Sequences(inputs=x0, obs=x0, action=action, reward=torch.zeros(1, 3), target=target,
                     done=torch.zeros(1, 3), valid=torch.tensor([valid]))


def test_sequence_loss_worked_example():
    # the exact model has no error at any step
    exact = _Scalar(use_action=True).sequence_losses(_worked([True, True, True]))
    assert exact["dynamics"] == 0 and exact["reconstruction"] == 0
    # a model that ignores the action predicts 0 at every step: squared errors 1, 2.25, 3.0625
    blind = _Scalar(use_action=False)
    torch.testing.assert_close(blind.sequence_losses(_worked([True, True, True]))["dynamics"],
                               torch.tensor((1 + 2.25 + 3.0625) / 3))
    terms = blind.sequence_losses(_worked([True, True, False]))  # the last step lies after an episode's end
    torch.testing.assert_close(terms["dynamics"], torch.tensor((1 + 2.25) / 2))
    torch.testing.assert_close(terms["dynamics_h1"], torch.tensor(1.0))
    # reward 0 predicted for reward 0; done logit 0 against "not done": log 2 per step
    torch.testing.assert_close(terms["reward"], torch.tensor(0.0))
    torch.testing.assert_close(terms["done"], torch.log(torch.tensor(2.0)))


def test_one_step_sequence_loss_is_the_one_step_loss():
    torch.manual_seed(0)
    model = WorldModel(OBS, ACT, latent_dim=16, hidden=32)
    obs, action, reward, next_obs, done = _dataset()
    batch = Sequences(inputs=obs, obs=obs, action=action[:, None], reward=reward[:, None],
                      target=next_obs[:, None], done=done[:, None], valid=torch.ones(len(obs), 1, dtype=torch.bool))
    seq, one = model.sequence_losses(batch), model.losses(obs, action, reward, next_obs, done)
    for name in WorldModel.LOSS_TERMS + ("total",):
        torch.testing.assert_close(seq[name], one[name])


def test_a_model_with_memory_refuses_the_one_step_loss_and_sizes_its_encoder():
    model = WorldModel(OBS, ACT, latent_dim=16, hidden=32, history=3)
    assert model.encoder[0].in_features == 3 * OBS + 2 * ACT
    with pytest.raises(ValueError, match="sequence_losses"):
        model.losses(*_dataset(batch=4))
    with pytest.raises(ValueError, match="inputs"):
        model.sequence_losses(Sequences(inputs=torch.zeros(2, OBS), obs=torch.zeros(2, OBS),
                                        action=torch.zeros(2, 1, ACT), reward=torch.zeros(2, 1),
                                        target=torch.zeros(2, 1, OBS), done=torch.zeros(2, 1),
                                        valid=torch.ones(2, 1, dtype=torch.bool)))
