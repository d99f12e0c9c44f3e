"""EntityBelief and its graph-attention layer."""

import pytest
import torch

from quadlit.models.distributions import squashed_log_prob
from quadlit.models.entity_belief import EntityBelief, GraphAttention

OBS, ACT, HID = 7, 3, 16


def _model(**kwargs):
    torch.manual_seed(0)
    return EntityBelief(OBS, ACT, lstm_hidden=HID, **kwargs)


def _random_state(batch, gen):
    return torch.randn(batch, HID, generator=gen), torch.randn(batch, HID, generator=gen)


def test_single_node_fast_path_equals_general_path():
    torch.manual_seed(1)
    layer = GraphAttention(in_dim=64, heads=4, head_dim=32)
    x = torch.randn(5, 6, 1, 64)
    fast = layer(x)
    assert fast.shape == (5, 6, 1, 128)
    torch.testing.assert_close(fast, layer.forward_general(x), atol=1e-6, rtol=0)
    torch.testing.assert_close(layer.forward_single_node(x), layer.forward_general(x), atol=1e-6, rtol=0)


def test_single_node_model_builds_no_unused_attention_parameters():
    # Every parameter must get a gradient (DDP's default); the fast path uses no attention vectors.
    model = _model()
    assert model.graph.att_src is None and model.graph.att_dst is None
    with pytest.raises(ValueError):
        model.graph(torch.randn(2, 3, 64))
    log_prob, entropy, value = model.evaluate(
        torch.randn(2, 3, OBS), torch.randn(2, 3, ACT), model.initial_state(3), torch.zeros(2, 3)
    )
    (log_prob.sum() + entropy.sum() + value.sum()).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_general_path_is_permutation_equivariant_and_pooled_invariant():
    torch.manual_seed(2)
    layer = GraphAttention(in_dim=8, heads=4, head_dim=32)
    x = torch.randn(3, 5, 8)
    perm = torch.tensor([3, 0, 4, 1, 2])
    out = layer(x)
    out_perm = layer(x[:, perm])
    torch.testing.assert_close(out_perm, out[:, perm], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(out_perm.mean(dim=-2), out.mean(dim=-2), atol=1e-6, rtol=1e-6)
    # ...and the nodes really interact: changing one node changes another's output.
    changed = x.clone()
    changed[:, 4] += 1.0
    assert not torch.allclose(layer(changed)[:, 0], out[:, 0])


def test_output_shapes():
    model = _model()
    steps, batch = 5, 4
    state = model.initial_state(batch)
    assert state[0].shape == state[1].shape == (batch, HID)
    assert not state[0].any()
    obs = torch.randn(steps, batch, OBS)
    starts = torch.zeros(steps, batch, dtype=torch.bool)
    mean, value, (h, c) = model(obs, state, starts)
    assert mean.shape == (steps, batch, ACT)
    assert value.shape == (steps, batch)
    assert h.shape == c.shape == (batch, HID)
    action, raw_u, log_prob, value1, new_state = model.act(obs[0], state, starts[0])
    assert action.shape == raw_u.shape == (batch, ACT)
    assert log_prob.shape == value1.shape == (batch,)
    assert new_state[0].shape == (batch, HID)
    log_prob, entropy, value = model.evaluate(obs, torch.randn(steps, batch, ACT), state, starts)
    assert log_prob.shape == entropy.shape == value.shape == (steps, batch)
    assert model.log_std.shape == (ACT,)
    torch.testing.assert_close(model.log_std.detach(), torch.full((ACT,), -0.5))


def test_reset_at_step_k_equals_a_fresh_start_at_k():
    model = _model()
    gen = torch.Generator().manual_seed(3)
    steps, batch, k, env = 7, 3, 4, 1
    obs = torch.randn(steps, batch, OBS, generator=gen)
    state = _random_state(batch, gen)
    starts = torch.zeros(steps, batch)
    starts[k, env] = 1.0
    with torch.no_grad():
        mean, value, _ = model(obs, state, starts)
        fresh_mean, fresh_value, _ = model(obs[k:, [env]], model.initial_state(1), torch.zeros(steps - k, 1))
        no_reset_mean, no_reset_value, _ = model(obs, state, torch.zeros(steps, batch))
    torch.testing.assert_close(mean[k:, env], fresh_mean[:, 0], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(value[k:, env], fresh_value[:, 0], atol=1e-6, rtol=1e-5)
    # Before k and in the other environments nothing changes; without the reset env 1 differs.
    torch.testing.assert_close(mean[:k], no_reset_mean[:k])
    torch.testing.assert_close(mean[:, [0, 2]], no_reset_mean[:, [0, 2]])
    assert not torch.allclose(value[k:, env], no_reset_value[k:, env], atol=1e-4)


def test_reset_at_step_zero_discards_the_given_state():
    model = _model()
    gen = torch.Generator().manual_seed(4)
    obs = torch.randn(3, 2, OBS, generator=gen)
    with torch.no_grad():
        starts = torch.tensor([[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
        reset, _, _ = model(obs, _random_state(2, gen), starts)
        fresh, _, _ = model(obs, model.initial_state(2), torch.zeros(3, 2))
    torch.testing.assert_close(reset, fresh)


def test_sequence_forward_equals_step_by_step_act():
    model = _model()
    gen = torch.Generator().manual_seed(5)
    steps, batch = 9, 4
    obs = torch.randn(steps, batch, OBS, generator=gen)
    starts = torch.rand(steps, batch, generator=gen) < 0.25
    state = _random_state(batch, gen)
    with torch.no_grad():
        mean, value, final_state = model(obs, state, starts)
        step_state = state
        for t in range(steps):
            _, raw_u, _, step_value, step_state = model.act(obs[t], step_state, starts[t], deterministic=True)
            torch.testing.assert_close(raw_u, mean[t], atol=1e-6, rtol=1e-5)
            torch.testing.assert_close(step_value, value[t], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(step_state[0], final_state[0], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(step_state[1], final_state[1], atol=1e-6, rtol=1e-5)


def test_act_and_evaluate_agree():
    model = _model()
    gen = torch.Generator().manual_seed(6)
    obs = torch.randn(4, OBS, generator=gen)
    state = _random_state(4, gen)
    starts = torch.tensor([0.0, 1.0, 0.0, 0.0])
    with torch.no_grad():
        action, raw_u, log_prob, value, _ = model.act(obs, state, starts, generator=gen)
        torch.testing.assert_close(action, torch.tanh(raw_u))
        new_log_prob, entropy, new_value = model.evaluate(obs[None], raw_u[None], state, starts[None])
        torch.testing.assert_close(new_log_prob[0], log_prob)
        torch.testing.assert_close(new_value[0], value)
        # deterministic: the action is tanh(mean), scored at u = mean
        det_action, det_u, det_log_prob, _, _ = model.act(obs, state, starts, deterministic=True)
        mean, _, _ = model(obs[None], state, starts[None])
        torch.testing.assert_close(det_u, mean[0])
        torch.testing.assert_close(det_action, torch.tanh(mean[0]))
        torch.testing.assert_close(det_log_prob, squashed_log_prob(mean[0], mean[0], model.log_std))


def test_multi_node_equal_and_given_slices():
    equal = EntityBelief(9, ACT, lstm_hidden=HID, num_nodes=3)
    assert equal.node_index.shape == (3, 3)
    given = EntityBelief(9, ACT, lstm_hidden=HID, num_nodes=2, node_slices=[[0, 1, 2], [3, 4, 8, 7, 5]])
    assert given.node_index.tolist() == [[0, 1, 2, 9, 9], [3, 4, 8, 7, 5]]  # 9 = zero padding
    for model in (equal, given):
        obs = torch.randn(3, 2, 9)
        starts = torch.zeros(3, 2)
        log_prob, entropy, value = model.evaluate(obs, torch.randn(3, 2, ACT), model.initial_state(2), starts)
        assert log_prob.shape == value.shape == (3, 2)
        (log_prob.sum() + value.sum()).backward()
        assert model.encoder[0].weight.grad.abs().sum() > 0
        assert model.graph.att_src.grad.abs().sum() > 0


def test_multi_node_reads_only_its_slices():
    model = EntityBelief(9, ACT, lstm_hidden=HID, num_nodes=2, node_slices=[[0, 1], [2, 3]])
    obs = torch.randn(2, 1, 9)
    changed = obs.clone()
    changed[..., 4:] += 5.0  # indices no node reads
    with torch.no_grad():
        torch.testing.assert_close(model.embed(obs), model.embed(changed))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_nodes": 3},  # 7 does not split into 3
        {"num_nodes": 2, "node_slices": [[0, 1]]},
        {"num_nodes": 2, "node_slices": [[0, 1], [7]]},
        {"num_nodes": 2, "node_slices": [[0, 1], []]},
        {"lstm_hidden": 0},
    ],
)
def test_rejects_bad_configuration(kwargs):
    with pytest.raises(ValueError):
        EntityBelief(OBS, ACT, **kwargs)


def test_bf16_autocast_forward_backward_on_cpu():
    model = _model()
    gen = torch.Generator().manual_seed(8)
    steps, batch = 4, 3
    obs = torch.randn(steps, batch, OBS, generator=gen)
    starts = torch.zeros(steps, batch)
    starts[2, 1] = 1
    raw_u = torch.randn(steps, batch, ACT, generator=gen)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        log_prob, entropy, value = model.evaluate(obs, raw_u, model.initial_state(batch), starts)
        _, _, act_log_prob, _, new_state = model.act(obs[0], model.initial_state(batch), starts[0])
        loss = -(log_prob.mean() + 0.01 * entropy.mean()) + value.square().mean()
    assert log_prob.dtype == entropy.dtype == act_log_prob.dtype == torch.float32
    assert value.dtype == torch.float32
    assert new_state[0].dtype == new_state[1].dtype == torch.float32
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.log_std.grad.abs().sum() > 0


@pytest.mark.parametrize("path", ["_run_lstm_packed", "_run_lstm_chunked", "_run_lstm"])
def test_lstm_paths_match_a_step_by_step_reference_with_random_resets(path, monkeypatch):
    """Both exact LSTM paths (segments packed as batch columns, or cut at reset steps) equal
    stepping nn.LSTM one step at a time and zeroing the state at every episode start, for
    outputs and for the final state."""
    torch.manual_seed(3)
    model = EntityBelief(obs_dim=5, action_dim=2, lstm_hidden=8).double()
    T, B = 12, 6
    obs = torch.randn(T, B, 5, dtype=torch.float64)
    starts = (torch.rand(T, B) < 0.25).float()
    starts[:, 0] = 0.0  # one column without resets
    starts[0, 1] = 1.0  # one column that resets at t = 0
    starts[T - 1, 2] = 1.0  # one column whose last segment is a single step
    h0 = torch.randn(B, 8, dtype=torch.float64)
    c0 = torch.randn(B, 8, dtype=torch.float64)
    if path != "_run_lstm":  # force one path
        chosen = getattr(model, path)
        monkeypatch.setattr(model, "_run_lstm", lambda x, st, es, need=True: chosen(x, st, es.bool(), need))

    mean, value, (h, c) = model(obs, (h0, c0), starts)

    ref_means, ref_values = [], []
    hh, cc = h0.clone(), c0.clone()
    for t in range(T):
        keep = (1 - starts[t]).double().unsqueeze(-1)
        hh, cc = hh * keep, cc * keep
        x = model.embed(obs[t : t + 1])
        out, (h1, c1) = model.lstm(x, (hh.unsqueeze(0), cc.unsqueeze(0)))
        hh, cc = h1[0], c1[0]
        ref_means.append(model.policy_head(out[0]))
        ref_values.append(model.value_head(out[0]).squeeze(-1))
    assert torch.allclose(mean, torch.stack(ref_means), atol=1e-12)
    assert torch.allclose(value, torch.stack(ref_values), atol=1e-12)
    assert torch.allclose(h, hh, atol=1e-12) and torch.allclose(c, cc, atol=1e-12)
    # the same without the final state
    mean2, _, none = model(obs, (h0, c0), starts, need_state=False)
    assert none is None and torch.allclose(mean2, mean, atol=1e-12)


def test_mlp_policy_and_separate_critic_follow_the_policy_api():
    """MlpPolicy: the log-probability of an action at collection equals its re-evaluation; without
    a value head the values are zeros. SeparateCritic: observation + privileged input, normalised."""
    from quadlit.models.policy import MlpPolicy
    from quadlit.training.critic import SeparateCritic

    torch.manual_seed(0)
    policy = MlpPolicy(5, 3, hidden=[16, 8], init_log_std=0.0, value_head=False)
    T, B = 4, 6
    obs = torch.randn(T, B, 5)
    state = policy.initial_state(B)
    starts = torch.zeros(T, B)
    raws, logps = [], []
    for t in range(T):
        action, raw, logp, value, state = policy.act(obs[t], state, starts[t])
        assert action.shape == (B, 3) and bool((action.abs() < 1).all()) and bool((value == 0).all())
        raws.append(raw)
        logps.append(logp)
    logp2, entropy, value = policy.evaluate(obs, torch.stack(raws), policy.initial_state(B), starts)
    assert torch.allclose(logp2, torch.stack(logps), atol=1e-5) and value.shape == (T, B)
    critic = SeparateCritic(5, privileged_dim=2, hidden=[16])
    priv = torch.randn(T, B, 2)
    raw_in = critic.raw_inputs(obs, priv)
    assert raw_in.shape == (T, B, 7) and torch.equal(raw_in[..., 5:], priv)
    critic.norm.update(raw_in)
    assert critic(critic.inputs(obs, priv)).shape == (T, B)
    assert critic.inputs(obs, priv).mean().abs() < 1e-5  # normalised by the statistics of these inputs
    with pytest.raises(ValueError, match="privileged"):
        critic.raw_inputs(obs, None)
