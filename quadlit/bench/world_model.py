"""World-model designs side by side, on one run's data: open-loop error against horizon.

    quadlit bench world-model --ckpt_path lightning_logs/version_0/checkpoints/last.ckpt \
        [--variants 1x1 8x1 8x4] [--steps 600] [--rollouts 24] [--out results.json]

A variant ``HxK`` is a world model trained with H-step open-loop unrolls (``model.wm_horizon``)
and an encoder that sees the last K observations (``model.wm_history``); ``HxK+c`` predicts the
contact slots (the observation group ``--contact-group``) with a classifier, ``HxK+r`` the change
of the observation in observation space, ``HxK+rc`` both (``WorldModel``'s options). A ``+c``
model is judged twice, its contacts as probabilities and thresholded (row ``... threshold``). Every variant is trained
from the same initial weights' seed, for the same number of gradient steps, on the same data:
``--rollouts`` rollouts collected with the checkpoint's trained policy sampling its actions, on
the task it trained on (``--envs`` environments, ``--rollout-steps`` steps each, as in training).
Each step draws ``--batch`` predicted transitions (``--batch // H`` stretches of H steps) from one
of those rollouts, in the run's normalised observation units, with the checkpoint's world-model
learning rate and latent size.

Every variant is then judged as ``validate`` judges the run's own world model
(``quadlit.training.world_model_eval``): ``--eval-envs`` environments of the plain evaluation,
250 control steps from a reset with seed ``--eval-seed``, windows without a push, errors in
standard deviations of each slot, beside copy-last and a linear least-squares model fitted on half
of those environments. The checkpoint's own world model is judged too (row "run").

Prints one table and, with ``--out``, writes the numbers as JSON. The figures are for one data
set and one seed: they compare designs, they do not measure a training run.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass

import torch

from quadlit.errors import ConfigError
from quadlit.outputs import check_output_file, json_result, write_text


@dataclass(frozen=True)
class Variant:
    """One design: ``HxK`` with optional options after a "+": ``c`` (the contact slots as a
    classifier, ``WorldModel(contact_slots=...)``) and ``r`` (changes in observation space,
    ``obs_residual``), e.g. ``8x1+rc``."""

    name: str
    horizon: int
    history: int
    contacts: bool = False
    residual: bool = False


def _variant(text: str) -> Variant:
    match = re.fullmatch(r"(\d+)x(\d+)(?:\+([a-z]+))?", text)
    flags = (match[3] or "") if match else ""
    if (not match or int(match[1]) < 1 or int(match[2]) < 1 or set(flags) - set("cr")
            or len(set(flags)) != len(flags) or (match[3] is not None and not flags)):
        raise argparse.ArgumentTypeError(f"a variant is HORIZONxHISTORY with both >= 1, optionally followed by +c "
                                         f"(contact classifier) and/or +r (changes in observation space), e.g. 8x4 "
                                         f"or 8x1+rc, got {text!r}")
    return Variant(text, int(match[1]), int(match[2]), contacts="c" in flags, residual="r" in flags)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="quadlit bench world-model", description=__doc__.split("\n")[0])
    p.add_argument("--ckpt_path", required=True, help="a checkpoint of a fit: its policy collects the data")
    p.add_argument("--variants", nargs="+", type=_variant, default=[_variant(v) for v in ("1x1", "8x1", "8x4")],
                   help="HORIZONxHISTORY[+c][+r] of each world model trained (default: 1x1 8x1 8x4)")
    p.add_argument("--contact-group", default="foot_contact",
                   help="the observation group of 0/1 slots a +c variant classifies (default foot_contact)")
    p.add_argument("--steps", type=int, default=600, help="gradient steps per variant (default 600)")
    p.add_argument("--batch", type=int, default=4096, help="predicted transitions per step (default 4096)")
    p.add_argument("--rollouts", type=int, default=24, help="rollouts of training data (default 24)")
    p.add_argument("--envs", type=int, default=256, help="environments of the training data (default 256)")
    p.add_argument("--rollout-steps", type=int, default=32, help="control steps per rollout (default 32)")
    p.add_argument("--eval-envs", type=int, default=64, help="environments judged (default 64; half fit the linear model)")
    p.add_argument("--eval-seed", type=int, default=12345, help="reset seed of the judged steps (default 12345)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data, the weights and the batches (default 0)")
    p.add_argument("--out", help="write the results as JSON to this file")
    return p


def _collect(run, args) -> list:
    from quadlit.tasks import make_task
    from quadlit.training.rollout import RolloutCollector

    module = run.module
    task = make_task(run.task_name, args.envs, run.task_params, args.seed)
    collector = RolloutCollector(task, args.rollout_steps)
    collector.reset(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    rollouts = []
    for i in range(args.rollouts):
        r = collector.collect(module.policy, module.obs_norm, torch.device("cpu"), generator)
        ended = torch.clamp(r.terminated + r.truncated, max=1.0)
        rollouts.append((module.obs_norm(r.obs), module.obs_norm(r.next_obs), r.action, r.reward, r.terminated,
                         ended, r.episode_start))
        print(f"\r  collecting: rollout {i + 1}/{args.rollouts}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return rollouts


def _contact_slots(spec, group: str) -> tuple[int, ...]:
    start = 0
    for name, length in spec.obs_segments:
        if name == group:
            return tuple(range(start, start + length))
        start += length
    raise ConfigError(f"quadlit bench world-model: a +c variant needs the observation group --contact-group "
                      f"{group!r}, which this task has not (it has {[name for name, _ in spec.obs_segments]})")


def _train(spec, hp: dict, variant: Variant, rollouts: list, args, obs_norm):
    from quadlit.models.world_model import WorldModel, sample_sequences

    horizon, history = variant.horizon, variant.history
    torch.manual_seed(args.seed)
    options = {}
    if variant.contacts:
        options["contact_slots"] = _contact_slots(spec, args.contact_group)
    if variant.residual:
        options["obs_residual"] = True
    model = WorldModel(spec.obs_dim, spec.action_dim, latent_dim=hp.get("wm_latent_dim", 128), history=history,
                       **options)
    if variant.contacts:  # the normalised values of "no contact" (0) and "contact" (1)
        slots = list(model.contact_slots)
        levels = obs_norm(torch.stack([torch.zeros(spec.obs_dim), torch.ones(spec.obs_dim)]))[:, slots]
        model.set_contact_levels(levels[0], levels[1])
    opt = torch.optim.Adam(model.parameters(), lr=hp.get("wm_lr", 1e-3))
    gen = torch.Generator().manual_seed(args.seed + 1)
    count = max(1, args.batch // horizon)
    start, last = time.perf_counter(), {}
    for step in range(args.steps):
        i = int(torch.randint(len(rollouts), (1,), generator=gen))
        batch = sample_sequences(*rollouts[i], horizon=horizon, history=history, count=count, generator=gen)
        losses = model.sequence_losses(batch)
        opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), hp.get("max_grad_norm", 1.0))
        opt.step()
        last = {k: float(v.detach()) for k, v in losses.items()}
        if (step + 1) % 50 == 0 or step + 1 == args.steps:
            print(f"\r  {variant.name}: step {step + 1}/{args.steps}, loss {last['total']:.4f}",
                  end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return model.eval(), (time.perf_counter() - start) / args.steps, last


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    for name in ("steps", "batch", "rollouts", "envs", "rollout_steps", "eval_envs"):
        if getattr(args, name) < 1:
            raise ConfigError(f"quadlit bench world-model: --{name.replace('_', '-')} must be >= 1")
    if args.eval_envs < 2:
        raise ConfigError("quadlit bench world-model: --eval-envs must be >= 2 (half fit the linear model)")
    if args.out:
        check_output_file(args.out, "quadlit bench world-model: --out", inputs=[args.ckpt_path],
                          rewritable=json_result("ckpt_path", "horizons", "variants"))
    from quadlit.tasks import evaluations, make_task, task_spec
    from quadlit.training.checkpoint import load_run
    from quadlit.training.rollout import record_steps
    from quadlit.training.world_model_eval import HORIZONS, open_loop_errors

    run = load_run(args.ckpt_path)
    spec = task_spec(run.task_name, run.task_params)
    hp = dict(run.module.hparams)
    for variant in args.variants:
        if variant.history > args.rollout_steps:
            raise ConfigError(f"quadlit bench world-model: history {variant.history} needs --rollout-steps >= "
                              f"{variant.history}")
        if variant.contacts:
            _contact_slots(spec, args.contact_group)
    torch.manual_seed(args.seed)
    with torch.no_grad():
        rollouts = _collect(run, args)
        params = next(ev.params for ev in evaluations(run.task_name, run.task_params, 1) if ev.name == "")
        steps = record_steps(run.module.policy, run.module.obs_norm, make_task(run.task_name, args.eval_envs, params,
                             args.eval_seed), args.eval_seed, 250, torch.device("cpu"))
    judged_obs = run.module.obs_norm(steps.obs)

    def judge(model):
        return open_loop_errors(model, judged_obs, steps.action, steps.done, steps.pushed,
                                groups=spec.obs_segments).without_push

    results = {"ckpt_path": str(args.ckpt_path), "horizons": list(HORIZONS), "steps": args.steps,
               "transitions": args.rollouts * args.envs * args.rollout_steps, "variants": {}}
    base = judge(run.module.world_model)
    results["copy_last"], results["linear"] = list(base.overall["copy_last"]), list(base.overall["linear"])
    results["groups"] = {name: {g: list(v) for g, v in base.by_group[name].items()} for name in ("copy_last", "linear")}
    results["variants"]["run"] = {"error": list(base.overall["world_model"]), "seconds_per_step": None,
                                  "groups_h1": {g: v[0] for g, v in base.by_group["world_model"].items()},
                                  "groups": {g: list(v) for g, v in base.by_group["world_model"].items()}}
    for variant in args.variants:
        model, seconds, last = _train(spec, hp, variant, rollouts, args, run.module.obs_norm)
        outputs = ("probability", "threshold") if variant.contacts else (None,)
        for output in outputs:
            if output is not None:
                model.contact_output = output
            errors = judge(model)
            name = variant.name + (" threshold" if output == "threshold" else "")
            results["variants"][name] = {
                "error": list(errors.overall["world_model"]), "seconds_per_step": seconds, "final_losses": last,
                "groups_h1": {g: v[0] for g, v in errors.by_group["world_model"].items()},
                "groups_h10": {g: v[HORIZONS.index(10)] for g, v in errors.by_group["world_model"].items()},
                "groups": {g: list(v) for g, v in errors.by_group["world_model"].items()}}

    cells = "".join(f"{'h' + str(k):>8}" for k in HORIZONS)
    print(f"\nopen-loop error (windows without a push; std of each slot), {results['transitions']} training "
          f"transitions, {args.steps} steps of {args.batch}:")
    print(f"  {'predictor':<30}{cells}   s/step")
    for name, row in results["variants"].items():
        label = "the run's world model" if name == "run" else f"world model {name}"
        sec = "" if row["seconds_per_step"] is None else f"   {row['seconds_per_step']:.3f}"
        print(f"  {label:<30}" + "".join(f"{v:>8.3f}" for v in row["error"]) + sec)
    for name in ("copy_last", "linear"):
        print(f"  {name.replace('_', '-'):<30}" + "".join(f"{v:>8.3f}" for v in results[name]))
    rows = [(name, row["groups"]) for name, row in results["variants"].items()]
    rows += [(name.replace("_", "-"), results["groups"][name]) for name in ("copy_last", "linear")]
    for group in results["groups"]["copy_last"]:
        print(f"  {group}:")
        for label, groups in rows:
            print(f"    {label:<26}" + "".join(f"{v:>8.3f}" for v in groups[group]))
    if args.out:
        write_text(args.out, json.dumps(results, indent=1))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
