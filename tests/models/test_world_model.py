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
