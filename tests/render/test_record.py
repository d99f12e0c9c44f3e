"""Recording episodes and encoding GIFs."""

import io

import numpy as np
import pytest
from PIL import Image

from quadlit.render import encode_gif, frames_to_gif, reach_frames, record_episode
from quadlit.tasks.reach import ReachParams, ReachTask
from quadlit.training.normalizer import RunningNorm
from tests.render.helpers import ConstantPolicy, needs_display


def test_gif_round_trip_keeps_frames_size_and_timing(tmp_path):
    frames = [np.full((24, 32, 3), v, dtype=np.uint8) for v in (0, 120, 250)]
    frames[1][5:10, 5:10] = (255, 0, 0)
    path = frames_to_gif(frames, tmp_path / "sub" / "a.gif", fps=25)
    assert path.read_bytes() == encode_gif(frames, fps=25)
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.size == (32, 24) and gif.n_frames == 3
        assert gif.info["duration"] == 40 and gif.info["loop"] == 0
        gif.seek(1)
        assert gif.convert("RGB").getpixel((7, 7)) == (255, 0, 0)
    with pytest.raises(ValueError):
        encode_gif([], fps=25)


def test_reach_frame_reads_the_task_state():
    task = ReachTask(2, ReachParams(box_half_extent=6.0, box_height=3.0), seed=3)
    frame = reach_frames(task, 1)
    creature = task.creature(1)
    np.testing.assert_array_equal(frame.creature_pos, creature.position)
    np.testing.assert_array_equal(frame.goal_pos, creature.goal)
    assert (frame.box_half_extent, frame.box_height, frame.stamina_fraction) == (6.0, 3.0, 1.0)
    task.close()


@pytest.mark.render
@needs_display
def test_record_episode_stops_at_the_end_of_env_0s_episode():
    task = ReachTask(3, ReachParams(max_steps=6), seed=0)
    policy = ConstantPolicy([1.0, 0.0, 0.0])
    frames = record_episode(policy, RunningNorm(7), task, seed=1, device="cpu", frame_fn=reach_frames,
                            max_steps=50, width=96, height=72)
    # the reset state plus steps 1..5; step 6 ends the episode and its auto-reset is not drawn
    assert len(frames) == 6 and policy.calls == 6
    assert all(f.shape == (72, 96, 3) and f.dtype == np.uint8 for f in frames)
    assert not np.array_equal(frames[0], frames[-1])
    task.close()


@pytest.mark.render
@needs_display
def test_record_episode_draws_every_kth_step_up_to_max_steps():
    task = ReachTask(1, ReachParams(max_steps=1000), seed=0)
    frames = record_episode(ConstantPolicy([0.0, 1.0, 0.0]), RunningNorm(7), task, seed=2, device="cpu",
                            frame_fn=reach_frames, max_steps=9, every=4, width=64, height=48)
    assert len(frames) == 1 + 2  # steps 0, 4, 8
    gif = Image.open(io.BytesIO(encode_gif(frames, fps=10)))
    assert gif.n_frames == 3
    task.close()
