"""WorldModel's options: the contact slots as a classifier, and changes in observation space
(``obs_residual``); with both off the model is the one of every earlier measurement."""

import math

import pytest
import torch
import torch.nn.functional as F

from quadlit.models.world_model import Sequences, WorldModel, history_inputs

OBS, ACT = 6, 2


def _sequences(model, batch=8, horizon=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    obs = torch.randn(batch, OBS, generator=gen)
    return Sequences(inputs=obs, obs=obs, action=torch.rand(batch, horizon, ACT, generator=gen) * 2 - 1,
                     reward=torch.randn(batch, horizon, generator=gen),
                     target=torch.randn(batch, horizon, OBS, generator=gen),
                     done=(torch.rand(batch, horizon, generator=gen) < 0.2).float(),
                     valid=torch.rand(batch, horizon, generator=gen) < 0.8)


def test_options_off_are_bitwise_the_old_model():
    # the old formulas, written out from the model's own layers
    torch.manual_seed(0)
    model = WorldModel(OBS, ACT, latent_dim=16, hidden=32)
    torch.manual_seed(0)
    explicit = WorldModel(OBS, ACT, latent_dim=16, hidden=32, contact_slots=(), obs_residual=False)
    assert set(model.state_dict()) == set(explicit.state_dict())
    assert not any(name.startswith("contact") for name in model.state_dict())
    for a, b in zip(model.state_dict().values(), explicit.state_dict().values()):
        assert torch.equal(a, b)
    batch = _sequences(model)
    z = model.encoder(batch.inputs)
    reconstruction = F.mse_loss(model.decoder(z), batch.obs)
    squared = []
    for k in range(3):
        z = z + model.dynamics(torch.cat([z, batch.action[:, k]], -1))
        squared.append((model.decoder(z) - batch.target[:, k]).square().mean(-1))
    valid = batch.valid.float()
    dynamics = (torch.stack(squared, 1) * valid).sum() / valid.sum()
    terms = model.sequence_losses(batch)
    assert torch.equal(terms["reconstruction"], reconstruction) and torch.equal(terms["dynamics"], dynamics)
    one = model.losses(batch.obs, batch.action[:, 0], batch.reward[:, 0], batch.target[:, 0], batch.done[:, 0])
    z1 = model.encoder(batch.obs) + model.dynamics(torch.cat([model.encoder(batch.obs), batch.action[:, 0]], -1))
    assert torch.equal(one["dynamics"], F.mse_loss(model.decoder(z1), batch.target[:, 0]))
    assert torch.equal(model.predict(batch.obs, batch.action[:, 0])[0], model.decoder(z1))


def test_contact_loss_worked_example():
    model = WorldModel(2, 1, latent_dim=4, hidden=8, contact_slots=(1,))
    model.set_contact_levels(torch.tensor([-1.0]), torch.tensor([1.0]))  # midpoint 0
    raw = torch.tensor([[0.5, 0.0], [0.5, 2.0]])  # slot 1 holds logits
    target = torch.tensor([[1.5, 1.0], [0.5, -1.0]])  # contact, then no contact
    errors = model._slot_errors(raw, target)
    # row 0: (0.5 - 1.5)^2 = 1 and BCE(logit 0, 1) = log 2; row 1: 0 and BCE(logit 2, 0) = log(1 + e^2)
    torch.testing.assert_close(errors, torch.tensor([(1 + math.log(2)) / 2, math.log(1 + math.exp(2)) / 2]))
    # decoded: the probability mapped onto [-1, 1], or the nearer level
    torch.testing.assert_close(model._contact_values(raw), torch.tensor([[0.5, 0.0], [0.5, 2 * torch.sigmoid(torch.tensor(2.0)).item() - 1]]))
    model.contact_output = "threshold"
    assert torch.equal(model._contact_values(raw), torch.tensor([[0.5, -1.0], [0.5, 1.0]]))


def test_contact_classifier_learns_a_contact_the_state_decides():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    obs = torch.randn(256, OBS, generator=gen)
    action = torch.rand(256, ACT, generator=gen) * 2 - 1
    next_obs = 0.9 * obs
    next_obs[:, 5] = torch.where(obs[:, 0] + action[:, 0] > 0, 2.0, -0.5)  # the contact's two levels
    model = WorldModel(OBS, ACT, latent_dim=16, hidden=32, contact_slots=(5,))
    model.set_contact_levels(torch.tensor([-0.5]), torch.tensor([2.0]))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    args = (obs, action, torch.zeros(256), next_obs, torch.zeros(256))
    for _ in range(300):
        optimizer.zero_grad()
        model.losses(*args)["total"].backward()
        optimizer.step()
    model.contact_output = "threshold"
    predicted = model.predict(obs, action)[0][:, 5]
    assert set(predicted.unique().tolist()) <= {-0.5, 2.0}
    assert (predicted == next_obs[:, 5]).float().mean() > 0.95


def test_residual_prediction_is_obs_plus_the_decoded_change():
    torch.manual_seed(0)
    model = WorldModel(OBS, ACT, latent_dim=16, hidden=32, obs_residual=True)
    obs, action = torch.randn(5, OBS), torch.rand(5, ACT) * 2 - 1
    # untrained, the change is zero: the first prediction is copy-last, exactly
    assert torch.equal(model.predict(obs, action)[0], obs)
    torch.nn.init.normal_(model.decoder[-1].weight)
    state = model.encode(obs)
    assert state.shape == (5, OBS + 16) and torch.equal(state[:, :OBS], obs)
    z = model.encoder(obs)
    z_next = z + model.dynamics(torch.cat([z, action], -1))
    delta = model.decoder(z_next)
    assert delta.abs().min() > 0
    next_state = model.step_latent(state, action)[0]
    torch.testing.assert_close(model.decode(next_state), obs + delta)
    torch.testing.assert_close(model.decode(model.step_latent(next_state, action)[0]),
                               obs + delta + model.decoder(z_next + model.dynamics(torch.cat([z_next, action], -1))))


def test_residual_with_contacts_classifies_the_contact_slots_from_the_latent():
    torch.manual_seed(0)
    model = WorldModel(OBS, ACT, latent_dim=16, hidden=32, obs_residual=True, contact_slots=(4, 5))
    model.set_contact_levels(torch.tensor([-1.0, -2.0]), torch.tensor([1.0, 0.5]))
    torch.nn.init.normal_(model.decoder[-1].weight)
    obs, action = torch.randn(5, OBS), torch.rand(5, ACT) * 2 - 1
    z = model.encoder(obs)
    out = model.decoder(z + model.dynamics(torch.cat([z, action], -1)))
    predicted = model.predict(obs, action)[0]
    torch.testing.assert_close(predicted[:, :4], obs[:, :4] + out[:, :4])
    p = torch.sigmoid(out[:, 4:])
    torch.testing.assert_close(predicted[:, 4:], torch.tensor([-1.0, -2.0]) + p * torch.tensor([2.0, 2.5]))
    # a sequence's reconstruction is exact on the carried slots: only the contact logits are judged
    batch = _sequences(model, horizon=2)
    recon = model.sequence_losses(batch)["reconstruction"]
    label = (batch.obs[:, 4:] > torch.tensor([0.0, -0.75])).float()  # above the midpoints of the levels
    bce = F.binary_cross_entropy_with_logits(model.decoder(model.encoder(batch.obs))[:, 4:], label, reduction="none")
    torch.testing.assert_close(recon, bce.sum(-1).mean() / OBS)


def test_residual_with_memory_carries_the_latest_observation():
    model = WorldModel(OBS, ACT, latent_dim=16, hidden=32, history=3, obs_residual=True)
    obs, action = torch.randn(4, 2, OBS), torch.randn(4, 2, ACT)
    inputs = history_inputs(obs, action, torch.zeros(4, 2), 3)
    assert torch.equal(model.encode(inputs)[..., :OBS], obs)


def test_the_options_train():
    for options in ({"contact_slots": (5,)}, {"obs_residual": True}, {"obs_residual": True, "contact_slots": (4, 5)}):
        torch.manual_seed(0)
        model = WorldModel(OBS, ACT, latent_dim=16, hidden=32, **options)
        batch = _sequences(model)
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
        before = model.sequence_losses(batch)["total"].item()
        for _ in range(60):
            optimizer.zero_grad()
            model.sequence_losses(batch)["total"].backward()
            optimizer.step()
        assert model.sequence_losses(batch)["total"].item() < 0.7 * before, options


@pytest.mark.parametrize("options,needle", [
    ({"contact_slots": (6,)}, "contact_slots"),
    ({"contact_slots": (-1,)}, "contact_slots"),
    ({"contact_slots": (2, 2)}, "contact_slots"),
    ({"contact_slots": (1.0,)}, "contact_slots"),
    ({"contact_output": "soft"}, "contact_output"),
    ({"obs_residual": "yes"}, "obs_residual"),
])
def test_bad_options_are_refused(options, needle):
    with pytest.raises(ValueError, match=needle):
        WorldModel(OBS, ACT, **options)


def test_bad_contact_levels_are_refused():
    with pytest.raises(ValueError, match="no contact_slots"):
        WorldModel(OBS, ACT).set_contact_levels(torch.zeros(1), torch.ones(1))
    model = WorldModel(OBS, ACT, contact_slots=(4, 5))
    with pytest.raises(ValueError, match="shape"):
        model.set_contact_levels(torch.zeros(1), torch.ones(1))
    with pytest.raises(ValueError, match="low < high"):
        model.set_contact_levels(torch.ones(2), torch.zeros(2))
    with pytest.raises(ValueError, match="contact_output"):
        model.contact_output = "hard"
    assert {"contact_low", "contact_high"} <= set(model.state_dict())
