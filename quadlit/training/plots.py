"""Plots of evaluation results (matplotlib, headless)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def robustness_figure(curves: dict[str, tuple[list[float], list[float]]], title: str = "push robustness"):
    """Survival rate against push magnitude, one line per policy.

    Args:
        curves: label -> (push magnitudes m/s, survival rates in [0, 1]).
    """
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    for label, (mags, surv) in curves.items():
        ax.plot(mags, [100 * s for s in surv], marker="o", label=label)
    ax.set_xlabel("push magnitude (m/s)")
    ax.set_ylabel("survival of 20 s episodes (%)")
    ax.set_ylim(-5, 105)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


def horizon_error_figure(horizons, errors: dict[str, list[float]], push_errors: dict[str, list[float]] | None = None,
                         title: str = "world model: open-loop prediction error"):
    """Prediction error against horizon, one line per predictor: solid over windows without a
    push, dashed in the same colour over windows with one.

    Args:
        horizons: control steps ahead, (H,).
        errors: predictor label -> error at each horizon (in standard deviations; nan: no window).
        push_errors: the same over windows with a push (None: not known).
    """
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    for label, values in errors.items():
        line, = ax.plot(horizons, values, marker="o", label=label)
        if push_errors is not None and label in push_errors:
            ax.plot(horizons, push_errors[label], marker="x", ls="--", color=line.get_color(),
                    label=f"{label}, with a push")
    ax.set_xlabel("horizon (control steps)")
    ax.set_ylabel("RMS error (slot std)")
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(list(horizons), [str(k) for k in horizons])
    ax.grid(alpha=0.3)
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def learning_curve_figure(rows: list[dict[str, float]], target: float = 0.95):
    """Survival and return against training wall-clock and env-steps.

    Args:
        rows: one dict per evaluation with "seconds", "env_steps", "survival", "return".
    """
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), dpi=100)
    secs = [r["seconds"] for r in rows]
    steps = [r["env_steps"] / 1e6 for r in rows]
    for ax, x, label in ((axes[0], secs, "training wall-clock (s)"), (axes[1], steps, "env-steps (M)")):
        ax.plot(x, [100 * r["survival"] for r in rows], marker="o", color="tab:blue", label="survival")
        ax.axhline(100 * target, color="tab:blue", ls=":", lw=1)
        ax.set_xlabel(label)
        ax.set_ylabel("survival (%)", color="tab:blue")
        ax.set_ylim(-5, 105)
        twin = ax.twinx()
        twin.plot(x, [r["return"] for r in rows], marker=".", color="tab:orange", label="return")
        twin.set_ylabel("mean return", color="tab:orange")
        ax.grid(alpha=0.3)
    fig.suptitle("balance: learning curve (deterministic evaluation, default push)")
    fig.tight_layout()
    return fig


def multi_learning_curve_figure(groups: dict[str, list[dict]], mags=(1.0, 2.0, 2.5), target: float = 0.95):
    """Survival against training wall-clock at each push magnitude of ``mags`` (one panel each),
    one line per run, one colour per group (e.g. quadlit and Stable-Baselines3, several seeds each).

    Args:
        groups: label -> runs, each a dict with "evaluations": [{"seconds", "curve": {m/s: survival}}].
    """
    fig, axes = plt.subplots(1, len(mags), figsize=(4 * len(mags), 3.3), dpi=100, sharey=True)
    axes = [axes] if len(mags) == 1 else list(axes)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, mag in zip(axes, mags):
        for g, (label, runs) in enumerate(groups.items()):
            for k, run in enumerate(runs):
                rows = [r for r in run["evaluations"] if mag in r["curve"]]
                ax.plot([r["seconds"] for r in rows], [100 * r["curve"][mag] for r in rows], marker=".",
                        color=colours[g % len(colours)], alpha=0.8, lw=1.2, label=label if k == 0 else None)
        ax.axhline(100 * target, color="grey", ls=":", lw=1)
        ax.set_title(f"push {mag:g} m/s")
        ax.set_xlabel("training wall-clock (s)")
        ax.set_ylim(-5, 105)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("survival of 20 s episodes (%)")
    axes[0].legend(loc="best", fontsize=8)
    fig.suptitle("balance: push robustness while learning (2 CPU cores, deterministic evaluation)")
    fig.tight_layout()
    return fig
