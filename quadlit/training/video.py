"""EvalVideo: every N epochs, render one evaluation episode and log it as an animated GIF.

The GIF is saved under ``<log_dir>/videos/`` and written to TensorBoard as an image summary
(TensorBoard's image dashboard plays animated GIFs), so no video encoder (moviepy, ffmpeg) is
needed. Rendering needs an X display (Xvfb on a server); without one the callback says why
in one warning and training carries on without videos.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.trainer.states import TrainerFn

from quadlit.render.display import display_available
from quadlit.render.frames import frame_function
from quadlit.render.record import encode_gif, record_episode

log = logging.getLogger(__name__)

VIDEO_TAG = "eval/video"


def gif_summary(tag: str, gif: bytes, height: int, width: int) -> Any:
    """A TensorBoard ``Summary`` holding one GIF-encoded image."""
    from tensorboard.compat.proto.summary_pb2 import Summary

    image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=gif)
    return Summary(value=[Summary.Value(tag=tag, image=image)])


class EvalVideo(L.Callback):
    """Render an evaluation episode of environment 0 every ``every_n_epochs`` training epochs.

    The episode runs on its own one-environment task (seeded with the data module's
    ``eval_seed``) with the deterministic policy, on global rank zero only. ``quadlit validate``
    records one video as well.

    Args:
        every_n_epochs: record after the first training epoch (the policy before it has learned
            much, and every one-time cost of rendering is paid early) and every N epochs after it.
        max_steps: most control steps of the recorded episode.
        fps: frame rate of the GIF; steps are skipped so the video plays near real time.
        width: image width in pixels.
        height: image height in pixels.
    """

    def __init__(self, every_n_epochs: int = 10, max_steps: int = 300, fps: int = 12, width: int = 320,
                 height: int = 240) -> None:
        for name, value in (("every_n_epochs", every_n_epochs), ("max_steps", max_steps), ("fps", fps)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"EvalVideo.{name} must be an integer >= 1, got {value!r}")
        if width < 16 or height < 16:
            raise ValueError(f"EvalVideo width and height must be >= 16, got {width} x {height}")
        self.every_n_epochs = every_n_epochs
        self.max_steps = max_steps
        self.fps = fps
        self.width = width
        self.height = height
        self._task = None
        self._disabled_reason: str | None = None
        self.last_path: Path | None = None

    # ---- hooks -------------------------------------------------------------------------
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        if epoch % self.every_n_epochs == 0:
            self.record(trainer, pl_module, f"eval_epoch{epoch}")

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.VALIDATING and not trainer.sanity_checking:
            self.record(trainer, pl_module, f"validate_step{trainer.global_step}")

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._task is not None:
            self._task.close()
            self._task = None

    # ---- work --------------------------------------------------------------------------
    def record(self, trainer: L.Trainer, pl_module: L.LightningModule, name: str) -> Path | None:
        """Record, save and log one episode; returns the GIF's path (None when video is off)."""
        if not trainer.is_global_zero or self._disabled_reason is not None:
            return None
        ok, reason = display_available()
        if not ok:
            return self._disable(reason)
        dm = trainer.datamodule
        if self._task is None:
            from quadlit.tasks import make_task

            self._task = make_task(dm.task_name, 1, dm.task_params, dm.eval_seed)
        frame_fn = frame_function(self._task)
        if frame_fn is None:
            return self._disable(f"task {dm.task_name!r} has no renderer")
        every = max(1, round(1.0 / (self.fps * self._task.spec.control_dt)))
        try:
            frames = record_episode(pl_module.deployed_policy, pl_module.deployed_norm, self._task, dm.eval_seed, pl_module.device,
                                    frame_fn, self.max_steps, deterministic=True, every=every,
                                    width=self.width, height=self.height)
            gif = encode_gif(frames, self.fps)
        except Exception as exc:  # a broken display must not end a training run
            return self._disable(f"rendering failed: {type(exc).__name__}: {exc}")
        # the logger's own directory: Trainer.log_dir is a collective under DDP, and only rank 0 is here
        log_dir = getattr(trainer.logger, "log_dir", None) if trainer.logger is not None else None
        path = Path(log_dir or trainer.default_root_dir) / "videos" / f"{name}.gif"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gif)
        self.last_path = path
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                writer = logger.experiment
                writer._get_file_writer().add_summary(gif_summary(VIDEO_TAG, gif, self.height, self.width),
                                                      trainer.global_step)
                writer.flush()
        return path

    def _disable(self, reason: str) -> None:
        self._disabled_reason = reason
        log.warning("EvalVideo: evaluation videos are off: %s", reason)
        return None
