"""How far ahead the world model predicts: open-loop error against horizon, beside two baselines.

From a real observation the world model is rolled out open loop along the actions that were
actually taken (encode the first observation once, ``step_latent`` once per action, decode at
each horizon) and its prediction is compared with the real observation k control steps later.
Two baselines are rolled out on exactly the same windows:

- copy-last: nothing changes; the prediction at every horizon is the starting observation;
- linear: obs_{t+1} = W [obs_t; a_t; 1], W fitted by least squares on the transitions of the
  fitting environments (never on those it is judged on; without the steps in which an episode
  ended or a push landed), rolled out open loop the same way.

Units: the error of each observation slot is divided by that slot's standard deviation over the
judged observations (every recorded step of the judged environments, floored at ``min_std``), so
1.0 means "as far off as the slot's own spread", whatever its physical unit. A reported error is
the root mean square of these scaled errors over windows and slots (every slot, or one
observation group's).

Windows: a window of horizon k starts at step s and covers the actions of steps s .. s+k-1. It is
counted only where no episode ended in those steps (a window never crosses a reset), and it is a
push window where a push landed in any of them (the push is not in the observation, so no
predictor can foresee it); push windows are reported apart from the others.

Shapes: T = recorded steps, N = environments, O = obs_dim, A = action_dim, L = a predictor's state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, Sequence

import torch

from quadlit.models.world_model import history_inputs

#: Control steps ahead at which the error is reported.
HORIZONS = (1, 5, 10, 25)
#: The predictors, in the order of every report: the world model and its two baselines.
PREDICTORS = ("world_model", "copy_last", "linear")
#: How tables and plots name them.
LABELS = {"world_model": "world model", "copy_last": "copy last", "linear": "linear"}


class OpenLoopModel(Protocol):
    """What an open-loop rollout needs (``quadlit.models.world_model.WorldModel`` has it)."""

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        """Shape: (..., O) -> (..., L)."""

    def step_latent(self, latent: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Shape: (..., L), (..., A) -> (next latent (..., L), anything else ...)."""

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Shape: (..., L) -> (..., O)."""


class CopyLast:
    """The baseline "nothing changes": every prediction is the starting observation."""

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        return obs

    def step_latent(self, latent: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor]:
        return (latent,)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        return latent


class LinearModel(CopyLast):
    """The baseline obs_{t+1} = [obs_t, a_t, 1] @ weight.

    Args:
        weight: shape (O + A + 1, O).
    """

    def __init__(self, weight: torch.Tensor) -> None:
        self.weight = weight

    @classmethod
    def fit(cls, obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor) -> "LinearModel":
        """Least squares (minimum norm where the data leave W undetermined, e.g. a constant slot),
        in float64 on the CPU. Shapes: obs (B, O), action (B, A), next_obs (B, O)."""
        inputs = _with_bias(obs.double().cpu(), action.double().cpu())
        weight = torch.linalg.lstsq(inputs, next_obs.double().cpu(), driver="gelsd").solution
        return cls(weight)

    def step_latent(self, latent: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor]:
        return (_with_bias(latent, action.to(latent.dtype)) @ self.weight.to(latent),)


def _with_bias(obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """[obs, action, 1] along the last axis."""
    return torch.cat([obs, action, torch.ones_like(obs[..., :1])], dim=-1)


@dataclass(frozen=True)
class HorizonErrors:
    """RMS open-loop errors of one set of windows, in standard deviations of each slot.

    Attributes:
        horizons: control steps ahead, (H,).
        windows: windows counted at each horizon, (H,).
        overall: predictor name (``PREDICTORS``) -> error over every slot at each horizon, (H,);
            nan where no window was counted.
        by_group: predictor name -> observation group -> error over the group's slots, (H,).
    """

    horizons: tuple[int, ...]
    windows: tuple[int, ...]
    overall: dict[str, tuple[float, ...]]
    by_group: dict[str, dict[str, tuple[float, ...]]]

    def curves(self) -> dict[str, tuple[float, ...]]:
        """Label (``LABELS``) -> error at each horizon, every slot: what a plot draws."""
        return {LABELS[name]: self.overall[name] for name in PREDICTORS}


@dataclass(frozen=True)
class OpenLoopReport:
    """The result of ``open_loop_errors``.

    Attributes:
        without_push: windows in which no push landed (all windows when pushes are not known).
        with_push: windows in which a push landed; None when pushes are not known.
        scale: what each slot's error was divided by, (O,).
        fit_envs: environments the linear baseline was fitted on (0 .. fit_envs-1).
        judged_envs: environments every predictor was judged on (the rest).
    """

    without_push: HorizonErrors
    with_push: HorizonErrors | None
    scale: torch.Tensor
    fit_envs: int
    judged_envs: int


def open_loop_errors(
    world_model: OpenLoopModel,
    obs: torch.Tensor,
    action: torch.Tensor,
    done: torch.Tensor,
    pushed: torch.Tensor | None = None,
    groups: Sequence[tuple[str, int]] = (),
    horizons: Sequence[int] = HORIZONS,
    fit_envs: int | None = None,
    min_std: float = 0.01,
) -> OpenLoopReport:
    """Open-loop prediction error of ``world_model``, copy-last and a fitted linear model.

    Environments 0 .. fit_envs-1 fit the linear model; every predictor is judged on the others,
    on the same windows. See the module docstring for the units and which windows count.

    Args:
        world_model: rolled out on the device and dtype of ``obs`` (the baselines in float64 on the CPU).
        obs: the observations as the world model sees them (normalised), (T+1, N, O): obs[t] is
            the one before step t's action, obs[t+1] the one after (the next episode's first where
            an episode ended in step t).
        action: the actions taken, (T, N, A).
        done: (T, N) bool: an episode ended in step t.
        pushed: (T, N) bool: a push landed in step t; None: not known (no push windows).
        groups: the observation layout, ((name, length), ...) summing to O (``EnvSpec.obs_segments``);
            empty: no per-group errors.
        horizons: control steps ahead, each in 1 .. T.
        fit_envs: environments that fit the linear model (None: half of them, rounded down).
        min_std: floor of a slot's standard deviation (a slot that barely varies, e.g. a foot
            that never leaves the ground, would otherwise turn a tiny error into a huge one).

    Returns:
        an ``OpenLoopReport``.
    """
    _, num_envs = _check_inputs(obs, action, done, pushed, groups, horizons)
    fit_envs = num_envs // 2 if fit_envs is None else fit_envs
    if not 1 <= fit_envs < num_envs:
        raise ValueError(f"fit_envs must leave at least one environment on each side: 1 <= fit_envs < {num_envs}, "
                         f"got {fit_envs}")
    if not min_std > 0:
        raise ValueError(f"min_std must be > 0, got {min_std}")
    horizons = tuple(int(k) for k in horizons)
    obs64, action64, done = obs.double().cpu(), action.double().cpu(), done.cpu()

    fit = slice(0, fit_envs)
    ok = ~done[:, fit] if pushed is None else ~done[:, fit] & ~pushed.cpu()[:, fit]
    ok = ok.reshape(-1)
    linear = LinearModel.fit(obs64[:-1, fit].reshape(-1, obs.shape[-1])[ok],
                             action64[:, fit].reshape(-1, action.shape[-1])[ok],
                             obs64[1:, fit].reshape(-1, obs.shape[-1])[ok])

    judged = slice(fit_envs, num_envs)
    target = obs64[:, judged]
    scale = target.std(dim=(0, 1), unbiased=False).clamp_min(min_std)
    ends = _windows_with(done[:, judged], horizons)
    if pushed is None:
        calm, stormy = {k: ~ends[k] for k in horizons}, None
    else:
        pushes = _windows_with(pushed.cpu()[:, judged], horizons)
        calm = {k: ~ends[k] & ~pushes[k] for k in horizons}
        stormy = {k: ~ends[k] & pushes[k] for k in horizons}

    squared: dict[str, dict[int, torch.Tensor]] = {}
    for name, model, inputs, actions in (
            ("world_model", world_model, obs[:, judged], action[:, judged].to(obs)),
            ("copy_last", CopyLast(), target, action64[:, judged]),
            ("linear", linear, target, action64[:, judged])):
        with torch.no_grad():
            predictions = open_loop(model, inputs, actions, horizons, done[:, judged])
        squared[name] = {k: ((p.double().cpu() - target[k:]) / scale).square() for k, p in predictions.items()}

    slices = _group_slices(groups)
    return OpenLoopReport(
        without_push=_summarize(squared, calm, horizons, slices),
        with_push=None if stormy is None else _summarize(squared, stormy, horizons, slices),
        scale=scale, fit_envs=fit_envs, judged_envs=num_envs - fit_envs)


def open_loop(model: OpenLoopModel, obs: torch.Tensor, action: torch.Tensor,
              horizons: Sequence[int], done: torch.Tensor | None = None) -> dict[int, torch.Tensor]:
    """Predict obs[s+k] from obs[s] along action[s], ..., action[s+k-1], for every start s.

    A model with a ``history`` h > 1 (``WorldModel``) encodes each start from the last h real
    observations and the actions between them, within the start's episode (``done`` says where
    episodes ended; the first recorded step starts one).

    Shapes: obs (T+1, N, O) (only obs[:T] is read), action (T, N, A), done (T, N) bool or None
    (no episode ended) -> {k: (T-k+1, N, O) for k in horizons}: row s is the prediction of obs[s+k].
    """
    steps = action.shape[0]
    history = getattr(model, "history", 1)
    inputs = obs[:steps]
    if history > 1:
        ended = torch.zeros(action.shape[:2], dtype=torch.bool) if done is None else done.cpu()
        starts = torch.cat([torch.ones_like(ended[:1]), ended[:-1]]).to(obs.device)
        inputs = history_inputs(inputs, action, starts, history)
    latent = model.encode(inputs)
    predictions = {}
    for k in range(1, max(horizons) + 1):
        latent = model.step_latent(latent[: steps - k + 1], action[k - 1:])[0]
        if k in horizons:
            predictions[k] = model.decode(latent)
    return predictions


def _windows_with(event: torch.Tensor, horizons: Sequence[int]) -> dict[int, torch.Tensor]:
    """Which windows hold an event. Shape: event (T, N) bool -> {k: (T-k+1, N) bool}: row s is
    True where event[s .. s+k-1] holds one."""
    counts = torch.cat([event.new_zeros((1,) + event.shape[1:], dtype=torch.int64),
                        event.long().cumsum(0)]).cpu()
    return {k: counts[k:] > counts[:-k] for k in horizons}


def _group_slices(groups: Sequence[tuple[str, int]]) -> dict[str, slice]:
    slices, start = {}, 0
    for name, length in groups:
        slices[name] = slice(start, start + length)
        start += length
    return slices


def _summarize(squared: dict[str, dict[int, torch.Tensor]], windows: dict[int, torch.Tensor],
               horizons: tuple[int, ...], slices: dict[str, slice]) -> HorizonErrors:
    """RMS over ``windows`` of each predictor's squared scaled errors ({k: (T-k+1, N, O)})."""
    counts = tuple(int(windows[k].sum()) for k in horizons)

    def rms(name: str, part: slice) -> tuple[float, ...]:
        return tuple(float(squared[name][k][windows[k]][:, part].mean().sqrt()) if n else math.nan
                     for k, n in zip(horizons, counts))

    return HorizonErrors(
        horizons=horizons, windows=counts,
        overall={name: rms(name, slice(None)) for name in squared},
        by_group={name: {group: rms(name, part) for group, part in slices.items()} for name in squared})


def _check_inputs(obs, action, done, pushed, groups, horizons) -> tuple[int, int]:
    """(T, N) of valid inputs; a one-line ValueError otherwise."""
    if obs.dim() != 3 or action.dim() != 3:
        raise ValueError(f"obs must be (T+1, N, O) and action (T, N, A), got {tuple(obs.shape)} and "
                         f"{tuple(action.shape)}")
    steps, num_envs = action.shape[:2]
    if tuple(obs.shape[:2]) != (steps + 1, num_envs):
        raise ValueError(f"obs must have shape ({steps + 1}, {num_envs}, O) for actions of shape "
                         f"{tuple(action.shape)}, got {tuple(obs.shape)}")
    for name, flags in (("done", done), ("pushed", pushed)):
        if flags is not None and (tuple(flags.shape) != (steps, num_envs) or flags.dtype != torch.bool):
            raise ValueError(f"{name} must be a bool tensor of shape ({steps}, {num_envs}), got "
                             f"{flags.dtype} {tuple(flags.shape)}")
    if not horizons or any(int(k) != k or not 1 <= k <= steps for k in horizons):
        raise ValueError(f"horizons must be integers in 1..{steps} (the recorded steps), got {tuple(horizons)}")
    if groups and sum(length for _, length in groups) != obs.shape[-1]:
        raise ValueError(f"groups cover {sum(length for _, length in groups)} slots, the observation has "
                         f"{obs.shape[-1]}")
    return steps, num_envs


def flat_metrics(report: OpenLoopReport) -> dict[str, float]:
    """The report as loggable scalars (the caller puts its prefix in front, e.g. "eval_"):

    - ``world_model/{error,copy,linear}_h{k}``: windows without a push; ``world_model/windows_h{k}``;
    - ``world_model_push/...``: the same over windows with a push (when pushes are known);
    - ``world_model_groups/error_h{k}_{group}``: the world model's error per observation group
      (windows without a push).
    """
    short = {"world_model": "error", "copy_last": "copy", "linear": "linear"}
    metrics: dict[str, float] = {}
    for group, errors in (("world_model", report.without_push), ("world_model_push", report.with_push)):
        if errors is None:
            continue
        for i, k in enumerate(errors.horizons):
            metrics[f"{group}/windows_h{k}"] = float(errors.windows[i])
            for name in PREDICTORS:
                metrics[f"{group}/{short[name]}_h{k}"] = errors.overall[name][i]
    for part, values in report.without_push.by_group["world_model"].items():
        for k, value in zip(report.without_push.horizons, values):
            metrics[f"world_model_groups/error_h{k}_{part}"] = value
    return metrics


def format_table(report: OpenLoopReport) -> str:
    """The report as a few lines of text: error against horizon for each predictor, windows without
    and with a push, then each observation group for the windows without one."""
    horizons = report.without_push.horizons
    width = max([20] + [len(g) + 16 for g in report.without_push.by_group["world_model"]])

    def row(label: str, values: Sequence[float], fmt: str = "{:>7.3f}") -> str:
        cells = "".join("      -" if isinstance(v, float) and math.isnan(v) else fmt.format(v) for v in values)
        return f"  {label:<{width}}{cells}"

    lines = [row("horizon (steps)", horizons, "{:>7d}")]
    for title, errors in (("without a push", report.without_push), ("with a push", report.with_push)):
        if errors is None:
            continue
        lines.append(f"  {title}:")
        lines += [row(f"  {LABELS[name]}", errors.overall[name]) for name in PREDICTORS]
        lines.append(row("  windows", errors.windows, "{:>7d}"))
    by_group = report.without_push.by_group
    if by_group["world_model"]:
        lines.append("  by observation group, without a push:")
        for part in by_group["world_model"]:
            lines += [row(f"  {part}: {LABELS[name]}", by_group[name][part]) for name in PREDICTORS]
    return "\n".join(lines)
