"""Reading what a run saved: the task it trained on and its trained policy, from a checkpoint."""

from __future__ import annotations

import hashlib
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from quadlit.errors import ConfigError
from quadlit.tasks import TASK_NAMES, restore_task_extras, task_params_from_dict


@dataclass
class LoadedRun:
    """A trained policy and the task it was trained on.

    Attributes:
        task_name: the task ("reach", ...).
        task_params: the task's parameter record, as trained.
        module: the QuadlitModule (policy, world model, observation normaliser), in eval mode.
        path: the checkpoint file.
    """

    task_name: str
    task_params: Any
    module: Any
    path: Path


#: Key of the digest of a checkpoint's contents, stored in the checkpoint by AtomicCheckpointIO.
DIGEST_KEY = "quadlit_digest"


def state_digest(tree: Any) -> str:
    """A digest of a checkpoint's contents: every tensor's dtype, shape and bytes and every plain
    value, walked in a fixed order (dict keys sorted, lists and tuples alike, since a checkpoint
    gives tuples back as lists). Equal for the state that was saved and the state loaded back."""
    h = hashlib.blake2b(digest_size=32)

    def feed(x: Any) -> None:
        if isinstance(x, torch.Tensor):
            t = x.detach().cpu().contiguous()
            h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(x, dict):
            h.update(b"{")
            for k in sorted(x, key=repr):
                if k != DIGEST_KEY:
                    h.update(repr(k).encode())
                    feed(x[k])
            h.update(b"}")
        elif isinstance(x, (list, tuple)):
            h.update(b"[")
            for v in x:
                feed(v)
            h.update(b"]")
        else:
            h.update(f"{type(x).__name__}:{x!r}".encode())

    feed(tree)
    return "blake2b:" + h.hexdigest()


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint file's contents (CPU), with a one-line ConfigError for a missing,
    truncated or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--ckpt_path: no checkpoint file at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle of unknown classes, not a torch file...
        raise ConfigError(f"--ckpt_path: {path} is not a readable quadlit checkpoint "
                          f"({type(exc).__name__}: {(str(exc).strip().splitlines() or ['empty file'])[0][:120]})") from exc
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "RolloutDataModule" not in ckpt:
        raise ConfigError(f"--ckpt_path: {path} is not a quadlit training checkpoint")
    saved = ckpt.get(DIGEST_KEY)  # absent in checkpoints written before digests were stored
    if saved is not None and state_digest(ckpt) != saved:
        raise ConfigError(f"--ckpt_path: {path} was changed or damaged after it was saved (its contents do not "
                          f"match the digest stored in it); use another checkpoint")
    return ckpt


def load_run(path: str | Path, device: str | torch.device = "cpu") -> LoadedRun:
    """The policy and task saved in checkpoint ``path``."""
    from quadlit.training.module import QuadlitModule

    ckpt = read_checkpoint(path)
    dm_state = ckpt["RolloutDataModule"]
    name = dm_state.get("task_name")
    if name not in TASK_NAMES:
        raise ConfigError(f"--ckpt_path: {path} was trained on unknown task {name!r}")
    params = task_params_from_dict(name, dm_state.get("task_params", {}))
    restore_task_extras(name, params, dm_state.get("task_extras"))  # e.g. the imported robot: its file may be gone
    hparams = {k: v for k, v in ckpt.get("hyper_parameters", {}).items() if not k.startswith("_")}
    module = QuadlitModule(**hparams)
    module.load_state_dict(ckpt["state_dict"])
    module.to(device).eval()
    return LoadedRun(task_name=name, task_params=params, module=module, path=Path(path))


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoint writes that a kill cannot corrupt, with a digest of their contents.

    The checkpoint is serialised in memory, written to a temporary file in the target's own
    directory, flushed to disk (fsync), and renamed over the target with ``os.replace``, which
    is atomic on POSIX and Windows. A process killed at any moment leaves either the previous
    file or the new one, never a truncated one. (Lightning's default goes through an fsspec
    transaction whose temporary file lives in the system temp directory; when that is another
    file system, the final move is a copy and a kill during it truncates the checkpoint.)

    The checkpoint also stores ``state_digest`` of its contents under ``DIGEST_KEY``;
    ``read_checkpoint`` refuses a file whose contents no longer match it.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO does not take storage_options")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        torch.save({**checkpoint, DIGEST_KEY: state_digest(checkpoint)}, buffer)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            with open(tmp, "wb") as f:
                f.write(buffer.getbuffer())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _saved_step(path: Path) -> int:
    """The global step a checkpoint file was saved at (-1 when it cannot be read)."""
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("global_step", -1))
    except Exception:  # noqa: BLE001  (an unreadable file is simply not the newest)
        return -1


def newest_last_checkpoint(checkpoints: Path) -> Path | None:
    """The newest ``last*.ckpt`` in a run's checkpoint directory: Lightning writes ``last-v1.ckpt``,
    ``last-v2.ckpt``... beside a ``last.ckpt`` it did not write itself (a run that was moved or
    copied before it was resumed), so ``last.ckpt`` alone may be stale. Newest = the highest saved
    step, then the latest modification."""
    found = [p for p in checkpoints.glob("last*.ckpt") if re.fullmatch(r"last(-v\d+)?\.ckpt", p.name) and p.is_file()]
    if not found:
        return None
    return max(found, key=lambda p: (_saved_step(p), p.stat().st_mtime_ns, p.name))


def find_last_checkpoint(root: str | Path, name: str = "lightning_logs") -> tuple[Path, int] | None:
    """The newest ``last*.ckpt`` (see ``newest_last_checkpoint``) of the newest run under
    ``root/name/version_*`` that has one, with that run's version number; None when no run has
    saved one."""
    runs = []
    for d in (Path(root) / name).glob("version_*"):
        m = re.fullmatch(r"version_(\d+)", d.name)
        if m and (d / "checkpoints").is_dir():
            runs.append((int(m.group(1)), d / "checkpoints"))
    for version, checkpoints in sorted(runs, reverse=True):
        path = newest_last_checkpoint(checkpoints)
        if path is not None:
            return path, version
    return None


class RunCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint, continuing the files of a run directory that was moved or copied.

    Lightning forgets its saved file names when the checkpoint directory changed since they were
    written; it then treats the run's own ``last.ckpt`` as a stranger's and writes ``last-v1.ckpt``
    beside it, so every later ``--ckpt_path last`` would start again from the stale file. When the
    saved files are present under the new directory, their names are carried over instead.
    """

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved_dir = state_dict.get("dirpath")
        if self.dirpath and saved_dir and os.path.abspath(saved_dir) != os.path.abspath(self.dirpath):
            def here(path: str | None) -> str | None:
                return os.path.join(self.dirpath, os.path.basename(path)) if path else path

            anchor = state_dict.get("last_model_path") or state_dict.get("best_model_path")
            if not anchor or os.path.isfile(here(anchor)):  # this run's own files (if any), moved here
                state_dict = {
                    **state_dict,
                    "dirpath": self.dirpath,
                    "best_model_path": here(state_dict.get("best_model_path")),
                    "kth_best_model_path": here(state_dict.get("kth_best_model_path")),
                    "last_model_path": here(state_dict.get("last_model_path")),
                    "best_k_models": {here(k): v for k, v in (state_dict.get("best_k_models") or {}).items()},
                }
        super().load_state_dict(state_dict)
