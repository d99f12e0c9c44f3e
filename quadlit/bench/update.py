"""Update speed: what one PPO minibatch step, one world-model step and one acting step cost.

    quadlit bench update [--config configs/balance.yaml] [--repeats 20] [--compile]

Builds the config's policy, critic and world model (random weights: the cost does not depend
on them) and times, on synthetic data of the shapes the config trains on (rollout_steps x the
minibatch's environments, episode starts at 0.3 % of steps as in a balance rollout):

- ``act``: one control step of the policy for all environments (collection calls it once per
  step), float32 (collection never runs under autocast);
- ``ppo step``: the policy's sequence evaluation, the critic, backward and the Adam step of one
  minibatch, in float32 and under bf16 autocast (and, with ``--compile``, with the policy's
  forward compiled by ``torch.compile``; its compile time is reported apart);
- ``world model step``: one gradient step on ``wm_batch_size`` transitions, float32 and bf16.

The machine should be otherwise idle; torch uses its default thread count.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time

import torch
import yaml

from quadlit.bench import require_config


def _timed(fn, repeats: int) -> float:
    """Milliseconds per call of ``fn``, after two warm-up calls."""
    fn()
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return 1e3 * (time.perf_counter() - start) / repeats


def _build(config: str):
    """The module and its sizes from a fit config (task sizes from the config's data section)."""
    from quadlit.tasks import task_params_from_dict, task_spec
    from quadlit.training.module import QuadlitModule

    with open(config) as f:
        cfg = yaml.safe_load(f) or {}
    data, model = cfg.get("data") or {}, dict(cfg.get("model") or {})
    task = data.get("task", "balance")
    spec = task_spec(task, task_params_from_dict(task, data.get(task) or {}))
    privileged = spec.privileged_dim if model.get("critic") == "privileged" else 0
    module = QuadlitModule(obs_dim=spec.obs_dim, action_dim=spec.action_dim, privileged_dim=privileged, **model)
    envs = data.get("max_envs", 256) if data.get("num_envs", "auto") == "auto" else data["num_envs"]
    return module, int(envs), int(data.get("rollout_steps", 32)), spec


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="quadlit bench update", description=__doc__.split("\n")[0])
    p.add_argument("--config", default="configs/balance.yaml", help="the fit config whose networks are timed")
    p.add_argument("--repeats", type=int, default=20, help="timed calls per measurement")
    p.add_argument("--compile", action="store_true", help="also time the policy compiled by torch.compile")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    require_config(args.config, "bench update")
    torch.set_flush_denormal(True)
    torch.manual_seed(0)
    module, envs, steps, spec = _build(args.config)
    hp = module.hparams
    batch = max(1, envs // hp.num_minibatches)
    policy, critic = module.policy, module.critic
    obs = torch.randn(steps, batch, spec.obs_dim)
    raw = torch.randn(steps, batch, spec.action_dim)
    starts = (torch.rand(steps, batch) < 0.003).float()
    state = policy.initial_state(batch)
    critic_in = torch.randn(steps, batch, critic.in_dim) if critic is not None else None
    returns = torch.randn(steps, batch)
    optimizer = torch.optim.Adam(module._ppo_parameters(), lr=1e-4)

    def ppo_step(autocast, evaluate=policy.evaluate):
        def step():
            with autocast():
                log_prob, _, value = evaluate(obs, raw, state, starts)
                if critic is not None:
                    value = critic(critic_in)
                loss = -log_prob.mean() + 0.5 * (value.float() - returns).square().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return step

    bf16 = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731
    print(f"bench update: {args.config}, {envs} envs x {steps} steps, minibatch {batch} envs "
          f"({batch * steps} samples), {torch.get_num_threads()} torch threads")
    act_obs, act_state, act_start = torch.randn(envs, spec.obs_dim), policy.initial_state(envs), torch.zeros(envs)
    with torch.no_grad():
        act_ms = _timed(lambda: policy.act(act_obs, act_state, act_start), 10 * args.repeats)
    print(f"  {'act (all envs, one control step), float32':48s} {act_ms:8.2f} ms")
    fp32_ms = _timed(ppo_step(contextlib.nullcontext), args.repeats)
    bf16_ms = _timed(ppo_step(bf16), args.repeats)
    print(f"  {'ppo step, float32':48s} {fp32_ms:8.2f} ms")
    print(f"  {'ppo step, bf16 autocast':48s} {bf16_ms:8.2f} ms   ({fp32_ms / bf16_ms:.2f}x)")
    if args.compile:
        compiled = torch.compile(policy)
        evaluate = lambda o, u, s, e: type(policy).evaluate(compiled, o, u, s, e)  # noqa: E731
        start = time.perf_counter()
        ppo_step(contextlib.nullcontext, evaluate)()
        compile_s = time.perf_counter() - start
        comp_ms = _timed(ppo_step(contextlib.nullcontext, evaluate), args.repeats)
        print(f"  {'ppo step, torch.compile, float32':48s} {comp_ms:8.2f} ms   ({fp32_ms / comp_ms:.2f}x; "
              f"compiling took {compile_s:.1f} s)")
    if hp.wm_updates > 0:
        wm = module.world_model
        wm_opt = torch.optim.Adam(wm.parameters(), lr=1e-4)
        n = hp.wm_batch_size
        o, a, r = torch.randn(n, spec.obs_dim), torch.rand(n, spec.action_dim) * 2 - 1, torch.randn(n)
        done = torch.zeros(n)

        def wm_step(autocast):
            def step():
                with autocast():
                    loss = wm.losses(o, a, r, o, done)["total"]
                wm_opt.zero_grad(set_to_none=True)
                loss.backward()
                wm_opt.step()
            return step

        wm32 = _timed(wm_step(contextlib.nullcontext), args.repeats)
        wm16 = _timed(wm_step(bf16), args.repeats)
        print(f"  {f'world model step ({n} transitions), float32':48s} {wm32:8.2f} ms")
        print(f"  {f'world model step ({n} transitions), bf16 autocast':48s} {wm16:8.2f} ms")
    per_iteration = hp.ppo_epochs * hp.num_minibatches
    print(f"  one iteration's PPO update: {per_iteration} steps = {per_iteration * fp32_ms / 1e3:.3f} s float32, "
          f"{per_iteration * bf16_ms / 1e3:.3f} s bf16")
    return 0


if __name__ == "__main__":
    sys.exit(main())
