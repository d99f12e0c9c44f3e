"""``quadlit export``: write a trained policy as a self-contained ONNX model plus a JSON sidecar.

    quadlit export --ckpt_path lightning_logs/version_0/checkpoints/last.ckpt --format onnx [--out policy.onnx]

The ONNX model is one control step of the deterministic policy, observation normalisation
included, with the LSTM state passed in and out explicitly (B = batch, any size):

    inputs:  obs (B, O) float32, h (B, H), c (B, H), episode_start (B,) float32
             (1 where this step starts a new episode: the state of that row is zeroed first)
    outputs: action (B, A) = tanh(mean) in (-1, 1), value (B,), h_out (B, H), c_out (B, H)

Start with h = c = 0 and feed h_out/c_out back as the next step's h/c. The sidecar (same stem,
``.json``) describes the observation layout, the actions, the control rate, the sizes, the
task parameters and the quadlit version (``sidecar_metadata``).
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import inspect
import json
import logging
import math
import re
import warnings
from dataclasses import asdict, is_dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch
from torch import nn

from quadlit.errors import ConfigError
from quadlit.outputs import atomic_write, check_output_file

FORMATS = ("onnx",)
INPUT_NAMES = ("obs", "h", "c", "episode_start")
OUTPUT_NAMES = ("action", "value", "h_out", "c_out")
SIDECAR_FORMAT = "quadlit-policy"
SIDECAR_VERSION = 1


class ExportablePolicy(nn.Module):
    """One deterministic control step of an ``EntityBelief`` with its observation normaliser
    folded in, written with no data-dependent control flow so it exports as a static graph.

    It computes what ``policy.act(obs_norm(obs), (h, c), episode_start, deterministic=True)``
    computes for the action, value and new state.

    Args:
        policy: the trained ``EntityBelief`` (copied, float32, CPU).
        obs_norm: its ``RunningNorm`` (the statistics are frozen into constants).
    """

    def __init__(self, policy: nn.Module, obs_norm: nn.Module) -> None:
        super().__init__()
        self.policy = copy.deepcopy(policy).float().cpu().eval()
        self.normalize = bool(obs_norm.enabled and float(obs_norm.count) > 0)
        self.clip = float(obs_norm.clip)
        # RunningNorm's arithmetic: float64 statistics, cast to float32 before use.
        self.register_buffer("obs_mean", obs_norm.mean.detach().cpu().to(torch.float32).clone())
        self.register_buffer("obs_std", (obs_norm.var.detach().cpu() + obs_norm.eps).sqrt().to(torch.float32))

    @property
    def has_value(self) -> bool:
        """Whether the policy has a value head of its own (a run with a separate, privileged
        critic has none: that critic reads what only the simulator knows, so it is not exported)."""
        return self.policy.value_head is not None

    def output_names(self) -> tuple[str, ...]:
        return OUTPUT_NAMES if self.has_value else tuple(n for n in OUTPUT_NAMES if n != "value")

    def forward(
        self, obs: torch.Tensor, h: torch.Tensor, c: torch.Tensor, episode_start: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """Shapes: obs (B, O), h and c (B, H), episode_start (B,) ->
        action (B, A), value (B,) (only when ``has_value``), h_out (B, H), c_out (B, H)."""
        x = obs.float()
        if self.normalize:
            x = ((x - self.obs_mean) / self.obs_std).clamp(-self.clip, self.clip)
        keep = (1.0 - episode_start.float()).unsqueeze(-1)  # CleanRL convention: zero at episode starts
        state = ((h * keep).unsqueeze(0), (c * keep).unsqueeze(0))  # (1, B, H) as nn.LSTM wants
        core, (h_out, c_out) = self.policy.lstm(self.policy.embed(x).unsqueeze(0), state)
        core = core.squeeze(0)
        action = torch.tanh(self.policy.policy_head(core))
        if not self.has_value:
            return action, h_out.squeeze(0), c_out.squeeze(0)
        value = self.policy.value_head(core).squeeze(-1)
        return action, value, h_out.squeeze(0), c_out.squeeze(0)


def quadlit_version() -> str:
    try:
        return version("quadlit")
    except PackageNotFoundError:
        return "unknown"


def _paragraphs(doc: str | None) -> list[str]:
    text = inspect.cleandoc(doc or "")
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]


def _bullet(doc: str | None, heading: str) -> str | None:
    """The text of the first "* Heading..." / "- Heading..." bullet of a docstring, joined into one line."""
    text = inspect.cleandoc(doc or "")
    match = re.search(rf"^[*-] +({heading}\b.*?)(?=^[*-] |^\S|\Z)", text, flags=re.M | re.S)
    return " ".join(match.group(1).split()) if match else None


def _task_docs(task: Any) -> list[str]:
    """Docstrings that describe a task: its class's module, then the class."""
    module = inspect.getmodule(type(task))
    return [d for d in (getattr(module, "__doc__", None), type(task).__doc__) if d]


def _describe(docs: list[str], heading: str) -> str | None:
    return next((b for b in (_bullet(d, heading) for d in docs) if b), None)


def observation_layout(spec: Any, docs: list[str]) -> dict[str, Any]:
    """The observation's slots as named segments, from the task's spec when it names them.

    A spec may declare ``obs_segments`` (``((name, dim), ...)``) or ``obs_names`` (one name
    per slot); without either the whole vector is one unnamed segment, described by the task's
    docstring.
    """
    segments_decl = getattr(spec, "obs_segments", None)
    names = getattr(spec, "obs_names", None)
    segments: list[dict[str, Any]] = []
    if segments_decl:
        start = 0
        for name, dim in segments_decl:
            segments.append({"name": str(name), "start": start, "dim": int(dim)})
            start += int(dim)
    elif names:
        segments = [{"name": str(name), "start": i, "dim": 1} for i, name in enumerate(names)]
    named = bool(segments) and sum(s["dim"] for s in segments) == spec.obs_dim
    if not named:
        segments = [{"name": "observation", "start": 0, "dim": int(spec.obs_dim)}]
    summary = _describe(docs, "Observation") or next(iter(_paragraphs(docs[0]) if docs else []), None)
    layout: dict[str, Any] = {"dim": int(spec.obs_dim), "named": named, "segments": segments, "description": summary}
    if not named:
        layout["note"] = ("the task's EnvSpec names no observation slots (obs_segments or obs_names); "
                          "the description is the task's docstring")
    return layout


def _params_dict(params: Any) -> dict[str, Any]:
    if is_dataclass(params):
        return asdict(params)
    return dict(vars(params))


def sidecar_metadata(run: Any, onnx_name: str) -> dict[str, Any]:
    """What the JSON sidecar of an exported policy says (see the module docstring)."""
    from quadlit.envs.pool import ShardPool
    from quadlit.tasks import make_task, task_extras, task_spec

    spec = task_spec(run.task_name, run.task_params)
    pool = ShardPool(1)
    try:
        task = make_task(run.task_name, 1, run.task_params, seed=0, pool=pool)
        docs = _task_docs(task)
        control_law = task.control_law() if hasattr(task, "control_law") else None
        task.close()
    finally:
        pool.close()
    policy, norm = run.module.deployed_policy, run.module.deployed_norm
    hidden = int(policy.lstm_hidden)
    normalized = bool(norm.enabled and float(norm.count) > 0)
    outputs = {
        "action": {"shape": ["batch", int(spec.action_dim)], "dtype": "float32",
                   "meaning": "deterministic action tanh(mean), in (-1, 1)"},
        "value": {"shape": ["batch"], "dtype": "float32", "meaning": "state-value estimate"},
        "h_out": {"shape": ["batch", hidden], "dtype": "float32", "meaning": "next step's h"},
        "c_out": {"shape": ["batch", hidden], "dtype": "float32", "meaning": "next step's c"},
    }
    if policy.value_head is None:  # the run's critic is a separate (privileged) network: not part of the policy
        del outputs["value"]
    return {
        "format": SIDECAR_FORMAT,
        "format_version": SIDECAR_VERSION,
        "quadlit_version": quadlit_version(),
        "model_file": onnx_name,
        "checkpoint": str(run.path),
        "task": run.task_name,
        "task_summary": next(iter(_paragraphs(docs[0]) if docs else []), None),
        "task_params": _params_dict(run.task_params),
        "obs_dim": int(spec.obs_dim),
        "action_dim": int(spec.action_dim),
        "lstm_hidden": hidden,
        "control_dt": float(spec.control_dt),
        "control_rate_hz": 1.0 / float(spec.control_dt),
        "max_episode_steps": int(spec.max_episode_steps),
        "inputs": {
            "obs": {"shape": ["batch", int(spec.obs_dim)], "dtype": "float32",
                    "meaning": "raw observation from the task (normalised inside the model)"},
            "h": {"shape": ["batch", hidden], "dtype": "float32", "meaning": "LSTM hidden state; zeros at start"},
            "c": {"shape": ["batch", hidden], "dtype": "float32", "meaning": "LSTM cell state; zeros at start"},
            "episode_start": {"shape": ["batch"], "dtype": "float32",
                              "meaning": "1 where this step is the first of an episode (zeroes h and c of that row)"},
        },
        "outputs": outputs,
        "observation": {
            **observation_layout(spec, docs),
            "normalization": {
                "included_in_model": normalized,
                "formula": "clip((obs - mean) / std, -clip, clip)" if normalized else "identity",
                "clip": float(norm.clip),
                "mean": [float(v) for v in norm.mean.tolist()],
                "std": [math.sqrt(float(v) + norm.eps) for v in norm.var.tolist()],
            },
        },
        "action": {
            "dim": int(spec.action_dim),
            "low": -1.0,
            "high": 1.0,
            "names": list(getattr(spec, "action_names", None) or []) or None,
            "deterministic": "tanh(mean) of the policy's squashed Gaussian",
            "scaling": "the task maps each component from [-1, 1] to its physical command using task_params",
            "meaning": _describe(docs, "Action"),
        },
        "control_law": control_law,
        # what the task needs besides its parameters (an imported robot's record): sim2sim --onnx
        # runs the policy from the two files alone
        "task_extras": task_extras(run.task_name, run.task_params),
        "reward_terms": list(spec.reward_terms),
        "episode_metrics": list(spec.episode_metrics),
    }


def export_onnx(run: Any, out: str | Path) -> tuple[Path, Path]:
    """Write ``run``'s policy to ``out`` (ONNX) and its sidecar next to it (same stem, .json).

    Args:
        run: a ``LoadedRun`` (``quadlit.training.checkpoint.load_run``).
        out: the ONNX file to write (parent folders are created). It and its sidecar may not
            be the checkpoint or an existing file that an earlier export did not write
            (``check_export_paths``); both are written atomically.

    Returns: the ONNX path and the sidecar path.
    """
    missing = [name for name in ("onnx", "onnxscript") if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"--format onnx needs {' and '.join(missing)}: pip install 'quadlit[export]'")
    out, sidecar = check_export_paths(out, run.path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out: cannot create folder {out.parent} ({exc.strerror})") from exc

    meta = json.dumps(sidecar_metadata(run, out.name), indent=2) + "\n"
    model = ExportablePolicy(run.module.deployed_policy, run.module.deployed_norm).eval()
    batch, obs_dim, hidden = 2, int(model.policy.obs_dim), int(model.policy.lstm_hidden)
    example = (torch.zeros(batch, obs_dim), torch.zeros(batch, hidden), torch.zeros(batch, hidden), torch.zeros(batch))
    dim = torch.export.Dim("batch")
    onnx_logger = logging.getLogger("torch.onnx")
    level = onnx_logger.level
    onnx_logger.setLevel(logging.ERROR)  # "torchvision is not installed" and similar notices
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model, example, input_names=list(INPUT_NAMES), output_names=list(model.output_names()),
                dynamic_shapes={name: {0: dim} for name in INPUT_NAMES}, dynamo=True, verbose=False,
            )
            with atomic_write(out) as tmp:
                program.save(str(tmp), external_data=False)
    except OSError as exc:
        raise ConfigError(f"--out: cannot write {out} ({exc.strerror or exc})") from exc
    finally:
        onnx_logger.setLevel(level)
    with atomic_write(sidecar) as tmp:
        tmp.write_text(meta)
    return out, sidecar


def _is_sidecar(path: Path, model_file: str | None = None) -> bool:
    """Whether ``path`` is a sidecar ``export`` wrote (of ONNX file ``model_file``, if given)."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return (isinstance(meta, dict) and meta.get("format") == SIDECAR_FORMAT
            and (model_file is None or meta.get("model_file") == model_file))


def check_export_paths(out: str | Path, ckpt_path: str | Path) -> tuple[Path, Path]:
    """The ONNX file and its sidecar for ``--out``, checked before anything is written: neither
    may be the checkpoint, or an existing file that ``export`` did not write (a checkpoint, a
    config, notes); the files of an earlier export of the same name may be replaced."""
    out = Path(out)
    if out.suffix == ".json":
        raise ConfigError(f"--out: {out} would be overwritten by its own JSON sidecar; use a .onnx name")
    sidecar = out.with_suffix(".json")
    check_output_file(out, "--out", inputs=[ckpt_path], rewritable=lambda p: _is_sidecar(sidecar, p.name))
    check_output_file(sidecar, "--out (its JSON sidecar)", inputs=[ckpt_path], rewritable=_is_sidecar)
    return out, sidecar


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line via the CLI's ConfigError handling
        raise ConfigError(f"{self.prog}: {message}")


def main(argv: list[str] | None = None) -> int:
    """``quadlit export --ckpt_path PATH [--format onnx] [--out FILE]``."""
    parser = _Parser(prog="quadlit export", description="Write a trained policy as ONNX plus a JSON sidecar.")
    parser.add_argument("--ckpt_path", required=True, help="checkpoint of a quadlit run (e.g. .../last.ckpt)")
    parser.add_argument("--format", default="onnx", help="output format: onnx (the only one so far)")
    parser.add_argument("--out", default=None, help="output file (default: the checkpoint's path with .onnx)")
    args = parser.parse_args(argv)
    if args.format not in FORMATS:
        raise ConfigError(f"--format: unknown format {args.format!r} (supported: {', '.join(FORMATS)})")

    from quadlit.training.checkpoint import load_run

    run = load_run(args.ckpt_path)
    out = Path(args.out) if args.out else Path(args.ckpt_path).with_suffix(".onnx")
    onnx_path, sidecar = export_onnx(run, out)
    print(f"wrote {onnx_path} and {sidecar}")
    return 0
