"""quadlit play: the session logic without a window, and windowed runs under Xvfb."""

from pathlib import Path

import numpy as np
import pytest
import torch

from quadlit.envs.base import EnvSpec, StepResult
from quadlit.errors import ConfigError
from quadlit.models.entity_belief import EntityBelief
from quadlit.play import (
    KEY_BINDINGS, PUSH_SIZE_STEP, RAYLIB_KEYS, PlaySession, RandomPolicy, ZeroPolicy, main,
)  # fmt: skip
from quadlit.tasks import make_task, task_params_from_dict
from tests.render.helpers import ConstantPolicy, needs_display

REPO = Path(__file__).resolve().parents[1]


class CountingTask:
    """A one-environment task whose observation is its step count; times out after
    ``max_steps`` and records every push."""

    def __init__(self, max_steps: int = 5, with_push: bool = True) -> None:
        self.spec = EnvSpec(name="fake", obs_dim=3, action_dim=2, reward_terms=("r",), max_episode_steps=max_steps,
                            control_dt=0.1)
        self.num_envs = 1
        self.count = 0
        self.actions: list[np.ndarray] = []
        self.pushes: list[tuple[np.ndarray, np.ndarray]] = []
        self.resets = 0
        if with_push:
            self.push = lambda idx, dv: self.pushes.append((np.array(idx), np.array(dv)))

    def _obs(self) -> np.ndarray:
        return np.full((1, 3), self.count, dtype=np.float32)

    def reset(self, seed=None) -> np.ndarray:
        self.resets += 1
        self.count = 0
        return self._obs()

    def step(self, actions: np.ndarray) -> StepResult:
        self.actions.append(actions.copy())
        self.count += 1
        truncated = np.array([self.count >= self.spec.max_episode_steps])
        final = self._obs()
        if truncated[0]:
            self.count = 0
        return StepResult(obs=self._obs(), reward=np.ones(1, np.float32), terminated=np.zeros(1, bool),
                          truncated=truncated, final_obs=final, reward_terms=np.ones((1, 1), np.float32))

    def close(self) -> None:
        pass


class RecordingPolicy(ConstantPolicy):
    """ConstantPolicy that also records the episode_start flags and observations it saw."""

    def __init__(self, action):
        super().__init__(action)
        self.starts: list[float] = []
        self.seen: list[float] = []

    def act(self, obs, state, episode_start, deterministic=False, generator=None):
        self.starts.append(float(episode_start[0]))
        self.seen.append(float(obs[0, 0]))
        return super().act(obs, state, episode_start, deterministic, generator)


def _session(**kw) -> tuple[PlaySession, CountingTask, RecordingPolicy]:
    task = CountingTask(**kw)
    policy = RecordingPolicy([0.25, -0.5])
    return PlaySession(task, policy, frame_fn=lambda t, i: None), task, policy


# ---- session logic, no window -------------------------------------------------------------
def test_running_session_steps_at_the_control_rate_and_pause_stops_it():
    session, task, _ = _session(max_steps=100)
    assert session.advance(0.35) == 3  # control_dt = 0.1 s; 0.05 s carried over
    assert session.advance(0.05) == 1
    assert session.step_count == 4 and len(task.actions) == 4
    assert session.handle_keys({"space"}) == ["pause"] and session.paused
    assert session.advance(1.0) == 0
    assert session.step_count == 4 and len(task.actions) == 4
    session.handle_keys({"space"})
    assert not session.paused and session.advance(0.1) == 1
    assert session.advance(10.0) == 4  # falling behind real time slows down instead of jumping


def test_single_step_advances_exactly_one_step_only_while_paused():
    session, task, _ = _session(max_steps=100)
    assert session.handle_keys({"n"}) == []  # running: N does nothing
    session.handle_keys({"space"})
    assert session.handle_keys({"n"}) == ["step"]
    assert session.step_count == 1 and len(task.actions) == 1
    np.testing.assert_allclose(task.actions[0], [[0.25, -0.5]])
    assert session.handle_keys({"period"}) == ["step"]
    assert session.step_count == 2 and session.total_steps == 2


def test_reset_returns_to_step_zero_with_fresh_lstm_state():
    session, task, policy = _session(max_steps=100)
    for _ in range(3):
        session.step()
    assert session.step_count == 3 and session.episode_return == 3.0
    assert session.handle_keys({"backspace"}) == ["reset"]
    assert session.step_count == 0 and session.episode_return == 0.0 and session.episode == 2
    assert task.resets == 2 and task.count == 0
    session.step()
    assert policy.starts == [1.0, 0.0, 0.0, 1.0]  # the LSTM state is cleared at both starts


def test_episode_end_restarts_counters_and_reports_the_finished_episode():
    session, _, policy = _session(max_steps=3)
    for _ in range(4):
        session.step()
    assert session.last_episode == {"return": 3.0, "length": 3, "end": "time-out"}
    assert session.step_count == 1 and session.episode == 2
    assert policy.starts == [1.0, 0.0, 0.0, 1.0]
    assert policy.seen == [0.0, 1.0, 2.0, 0.0]  # the next episode's first observation
    assert "time-out" in session.hud()["last episode"]


def test_push_keys_choose_direction_and_size_and_call_the_task_hook():
    session, task, _ = _session()
    assert session.can_push
    assert session.handle_keys({"l", "plus"}) == ["push_right", "push_bigger"]
    session.handle_keys({"plus"})
    size = 1.0 + 2 * PUSH_SIZE_STEP
    assert session.push_size == size and session.push_direction == "right"
    assert session.hud()["next push"] == f"{size:.2f} m/s right"
    assert session.handle_keys({"p"}) == ["push"]
    session.handle_keys({"i", "minus", "p"})  # direction and size apply before the push
    (idx0, dv0), (idx1, dv1) = task.pushes
    np.testing.assert_array_equal(idx0, [0])
    np.testing.assert_allclose(dv0, [[0.0, -size, 0.0]])  # right = -y at heading 0
    np.testing.assert_allclose(dv1, [[size - PUSH_SIZE_STEP, 0.0, 0.0]])
    for _ in range(40):
        session.handle_keys({"minus"})
    assert session.push_size == 0.25  # clamped


def test_push_follows_the_robot_heading():
    from quadlit.render import standing_quadruped
    import dataclasses

    yaw = np.pi / 2  # robot faces +y
    frame = dataclasses.replace(standing_quadruped(), trunk_quat=(np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)))
    task = CountingTask()
    session = PlaySession(task, ZeroPolicy(2), frame_fn=lambda t, i: frame)
    session.handle_keys({"up", "p"})
    np.testing.assert_allclose(task.pushes[0][1], [[0.0, 1.0, 0.0]], atol=1e-9)
    np.testing.assert_allclose(session.frame().push, [0.0, 1.0, 0.0], atol=1e-9)  # the kick is drawn


def test_task_without_push_hook_says_so():
    session, task, _ = _session(with_push=False)
    assert not session.can_push
    assert session.push() is None and session.handle_keys({"p"}) == []
    assert session.hud()["push"] == "n/a for this task"
    assert "push keys" not in session.hud()


def test_deterministic_toggle_and_seeded_stochastic_actions():
    torch.manual_seed(0)
    policy = EntityBelief(7, 3, encoder_dim=8, gat_heads=1, gat_head_dim=8, lstm_hidden=8, init_log_std=0.0)

    def first_action(deterministic: bool) -> np.ndarray:
        task = make_task("reach", 1, task_params_from_dict("reach", {}), seed=3)
        session = PlaySession(task, policy, seed=7, deterministic=True)
        if not deterministic:
            assert session.handle_keys({"d"}) == ["deterministic"]
        assert session.deterministic == deterministic
        session.step()
        task.close()
        return session.last_action

    mean, sample, again = first_action(True), first_action(False), first_action(False)
    assert np.abs(mean - sample).max() > 1e-3
    np.testing.assert_array_equal(sample, again)  # seeded
    np.testing.assert_array_equal(first_action(True), mean)


def test_zero_and_random_policies():
    task = CountingTask(max_steps=100)
    session = PlaySession(task, RandomPolicy(2), seed=1, frame_fn=lambda t, i: None)
    for _ in range(20):
        session.step()
    a = np.concatenate(task.actions)
    assert a.min() >= -1 and a.max() <= 1 and a.std() > 0.3
    assert "D det/stoch" not in session.hud()["keys"] and session.hud()["policy"] == "random actions"
    task = CountingTask()
    PlaySession(task, ZeroPolicy(2), frame_fn=lambda t, i: None).step()
    np.testing.assert_array_equal(task.actions[0], np.zeros((1, 2)))


def test_key_maps():
    import pyray as rl

    for attr, name in RAYLIB_KEYS.items():
        assert isinstance(getattr(rl, attr), int), attr
        assert name in KEY_BINDINGS, name
    assert set(KEY_BINDINGS) == set(RAYLIB_KEYS.values())
    # the renderer's keys (camera follow/reset, quit) stay free
    assert not {"f", "r", "q", "escape"} & set(KEY_BINDINGS)
    expected = {"space": "pause", "n": "step", "backspace": "reset", "d": "deterministic", "p": "push",
                "up": "push_forward", "i": "push_forward", "down": "push_back", "k": "push_back",
                "left": "push_left", "j": "push_left", "right": "push_right", "l": "push_right",
                "plus": "push_bigger", "minus": "push_smaller"}
    for key, action in expected.items():
        assert KEY_BINDINGS[key] == action
    session, _, _ = _session()
    assert session.handle_keys({"q", "f", "x"}) == []


# ---- command line -----------------------------------------------------------------------
@pytest.mark.parametrize("argv,needle", [
    (["--task", "swim"], "--task"),
    (["--policy", "smart"], "--policy"),
    (["--width", "4"], "--width"),
    (["--max-frames", "0"], "--max-frames"),
    (["--ckpt_path", "/nonexistent/x.ckpt"], "ckpt_path"),
    (["--no-such-flag"], "no-such-flag"),
    (["--ghost"], "--ghost"),
])
def test_bad_input_is_one_line(capsys, argv, needle):
    from quadlit.cli import main as cli_main

    assert cli_main(["play", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err and "Traceback" not in err, err


def test_without_display_one_line_exit_2(monkeypatch, capsys):
    from quadlit.cli import main as cli_main
    from quadlit.render.display import clear_display_cache

    monkeypatch.delenv("DISPLAY", raising=False)
    clear_display_cache()
    assert cli_main(["play", "--task", "reach", "--max-frames", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "display" in err.lower(), err


# ---- windowed, under Xvfb ---------------------------------------------------------------
def _assert_picture(path: Path, size: tuple[int, int]) -> None:
    from PIL import Image

    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape == (size[1], size[0], 3)
    assert image.std() > 10 and len(np.unique(image.reshape(-1, 3), axis=0)) > 50


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    from quadlit.cli import main as cli_main

    root = tmp_path_factory.mktemp("play_fit")
    args = ["fit", "--config", str(REPO / "configs/reach.yaml"),
            "--data.num_envs", "4", "--data.rollout_steps", "8", "--data.iterations_per_epoch", "1",
            "--data.eval_episodes", "2", "--data.reach.max_steps", "20", "--data.physics_threads", "1",
            "--model.lstm_hidden", "8", "--model.wm_batch_size", "16", "--model.num_minibatches", "2",
            "--trainer.max_epochs", "1", "--trainer.check_val_every_n_epoch", "1", "--trainer.callbacks", "[]",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
            "--trainer.default_root_dir", str(root)]  # fmt: skip
    assert cli_main(args) == 0
    (last,) = root.rglob("last.ckpt")
    return last


def test_session_from_checkpoint_plays_its_task(tiny_checkpoint):
    from quadlit.play import _parser, build_session

    session = build_session(_parser().parse_args(["--ckpt_path", str(tiny_checkpoint), "--seed", "2"]))
    assert session.task.spec.name == "reach" and session.task.spec.max_episode_steps == 20
    for _ in range(25):
        session.step()
    assert session.last_episode is not None and session.last_episode["length"] == 20
    assert session.hud()["policy"] == "checkpoint last.ckpt (deterministic)"
    with pytest.raises(ConfigError, match="--policy"):
        build_session(_parser().parse_args(["--ckpt_path", str(tiny_checkpoint), "--policy", "zero"]))
    with pytest.raises(ConfigError, match="--ghost needs a balance checkpoint"):  # reach: nothing to draw it with
        build_session(_parser().parse_args(["--ckpt_path", str(tiny_checkpoint), "--ghost"]))


@pytest.mark.render
@needs_display
def test_window_random_reach_writes_screenshot(tmp_path):
    path = tmp_path / "play.png"
    assert main(["--task", "reach", "--policy", "random", "--max-frames", "30", "--screenshot", str(path),
                 "--width", "320", "--height", "240"]) == 0
    _assert_picture(path, (320, 240))


@pytest.mark.render
@needs_display
def test_window_from_checkpoint_writes_screenshot(tiny_checkpoint, tmp_path):
    path = tmp_path / "shots" / "ckpt.png"
    assert main(["--ckpt_path", str(tiny_checkpoint), "--max-frames", "10", "--screenshot", str(path),
                 "--width", "320", "--height", "240"]) == 0
    _assert_picture(path, (320, 240))
