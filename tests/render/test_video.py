"""EvalVideo inside a real (tiny) fit: GIFs in the run directory and in TensorBoard, or one
warning and an unharmed run when there is no display."""

import logging

import lightning as L
import pytest
from lightning.pytorch.loggers import TensorBoardLogger
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from quadlit.render.display import clear_display_cache
from quadlit.tasks.reach import ReachParams
from quadlit.training.data import RolloutDataModule
from quadlit.training.module import QuadlitModule
from quadlit.training.video import VIDEO_TAG, EvalVideo
from tests.render.helpers import needs_display


def _fit(tmp_path, callback, epochs=2):
    dm = RolloutDataModule(task="reach", reach=ReachParams(max_steps=40), num_envs=4, rollout_steps=4,
                           iterations_per_epoch=1, physics_threads=1, eval_episodes=1)
    model = QuadlitModule(obs_dim=dm.obs_dim, action_dim=dm.action_dim, lstm_hidden=8, wm_batch_size=16,
                          num_minibatches=1, ppo_epochs=1)
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=TensorBoardLogger(tmp_path),
                        callbacks=[callback], limit_val_batches=0, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=1)
    trainer.fit(model, datamodule=dm)
    dm.close()
    return trainer


@pytest.mark.render
@needs_display
def test_eval_video_lands_in_run_dir_and_tensorboard(tmp_path):
    clear_display_cache()
    video = EvalVideo(every_n_epochs=2, max_steps=12, fps=25, width=64, height=48)
    trainer = _fit(tmp_path, video, epochs=4)
    run_dir = trainer.log_dir
    gifs = sorted(p.name for p in (tmp_path / "lightning_logs").rglob("*.gif"))
    assert gifs == ["eval_epoch0.gif", "eval_epoch2.gif"]
    with Image.open(video.last_path) as gif:
        assert gif.size == (64, 48) and gif.n_frames == 13  # reset state + 12 steps (reach: 20 Hz)
        assert str(video.last_path).startswith(run_dir)

    events = EventAccumulator(run_dir, size_guidance={"images": 0})
    events.Reload()
    assert VIDEO_TAG in events.Tags()["images"]
    images = events.Images(VIDEO_TAG)
    assert len(images) == 2
    assert images[-1].encoded_image_string == video.last_path.read_bytes()
    assert images[-1].encoded_image_string[:6] == b"GIF89a"
    assert (images[-1].width, images[-1].height) == (64, 48)


def test_eval_video_without_display_warns_once_and_training_continues(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("DISPLAY", raising=False)
    clear_display_cache()
    video = EvalVideo(every_n_epochs=1, max_steps=5)
    with caplog.at_level(logging.WARNING, logger="quadlit.training.video"):
        trainer = _fit(tmp_path, video, epochs=3)
    warnings = [r for r in caplog.records if r.name == "quadlit.training.video"]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "videos are off" in message and "DISPLAY" in message and "\n" not in message
    assert trainer.current_epoch == 3 and trainer.global_step > 0
    assert not list(tmp_path.rglob("*.gif"))


def test_eval_video_rejects_bad_settings():
    with pytest.raises(ValueError, match="every_n_epochs"):
        EvalVideo(every_n_epochs=0)
