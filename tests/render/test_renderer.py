"""The raylib renderer: known scenes land where the camera projects them, off screen."""

import os

import numpy as np
import pytest

from quadlit.render import (
    OrbitCamera,
    QuadrupedFrame,
    ReachFrame,
    Renderer,
    display_available,
    standing_quadruped,
)
from quadlit.render import renderer as R
from quadlit.render.camera import QUADRUPED_PRESET
from quadlit.render.display import clear_display_cache
from quadlit.render.geometry import quat_to_matrix
from tests.render.helpers import colour_match, matches_near, needs_display

W, H = 320, 240


# ---- pure geometry (no display) --------------------------------------------------------
def test_quaternion_matrix_rotates_x_to_y_for_a_quarter_turn_about_z():
    q = np.array([np.cos(np.pi / 4), 0.0, 0.0, np.sin(np.pi / 4)])
    m = quat_to_matrix(q)
    np.testing.assert_allclose(m @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(m @ m.T, np.eye(3), atol=1e-12)


def test_projection_puts_the_target_at_the_centre_and_up_at_the_top():
    cam = OrbitCamera(QUADRUPED_PRESET)
    cam.update_subject(np.array([1.0, 2.0, 0.3]))
    centre = cam.project(cam.target, W, H)
    np.testing.assert_allclose(centre, [W / 2, H / 2], atol=1e-9)
    above = cam.project(cam.target + [0.0, 0.0, 0.1], W, H)
    assert above[1] < H / 2  # higher in the world is higher in the image (smaller row)
    # a point on the camera's right at the target's depth: offset = d * tan(fovy / 2) * aspect
    right = cam.basis()[0]
    half_width = cam.distance * np.tan(np.radians(cam.fovy) / 2) * W / H
    np.testing.assert_allclose(cam.project(cam.target + right * half_width, W, H), [W, H / 2], atol=1e-9)


def test_frames_validate_their_shapes():
    with pytest.raises(ValueError, match="leg_points"):
        QuadrupedFrame(trunk_pos=(0, 0, 0.3), trunk_quat=(1, 0, 0, 0), trunk_half_extents=(0.1, 0.05, 0.05),
                       leg_points=np.zeros((4, 3, 3)), foot_contact=(1, 1, 1, 1))
    with pytest.raises(ValueError, match="unit quaternion"):
        QuadrupedFrame(trunk_pos=(0, 0, 0.3), trunk_quat=(2, 0, 0, 0), trunk_half_extents=(0.1, 0.05, 0.05),
                       leg_points=np.zeros((4, 4, 3)), foot_contact=(1, 1, 1, 1))


def test_display_unavailable_without_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    clear_display_cache()
    ok, reason = display_available()
    assert not ok and "DISPLAY" in reason
    with pytest.raises(R.RenderUnavailable, match="DISPLAY"):
        Renderer(W, H).open()
    assert R._open_renderer is None


def test_display_probe_reports_a_display_that_cannot_be_opened(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":4321")  # no X server there
    clear_display_cache()
    ok, reason = display_available()
    clear_display_cache()
    assert not ok and ":4321" in reason


# ---- rendering (needs an X display; Xvfb is fine) ---------------------------------------
@pytest.mark.render
@needs_display
def test_reach_scene_draws_creature_and_goal_where_they_project():
    frame = ReachFrame(creature_pos=(3.0, -2.0, 0.0), goal_pos=(-4.0, 5.0, 1.0), box_half_extent=10.0,
                       box_height=4.0, stamina_fraction=0.7)
    with Renderer(W, H) as renderer:
        image = renderer.render(frame, {"step": 3})
        camera = renderer.camera
    assert image.shape == (H, W, 3) and image.dtype == np.uint8
    assert image.std() > 10 and len(np.unique(image.reshape(-1, 3), axis=0)) > 50  # not blank
    creature_centre = frame.creature_pos + [0.0, 0.0, frame.creature_radius]
    assert matches_near(image, camera.project(creature_centre, W, H), R.CREATURE)
    goal_px = camera.project(frame.goal_pos, W, H)
    assert matches_near(image, goal_px, R.GOAL)
    # a read-back that forgot to flip the texture's rows would not show the goal there
    assert goal_px[1] < H / 2 - 20
    assert not matches_near(image[::-1], goal_px, R.GOAL)


@pytest.mark.render
@needs_display
def test_quadruped_trunk_and_feet_land_where_they_project():
    frame = standing_quadruped(height=0.3)
    frame = QuadrupedFrame(**{**frame.__dict__, "foot_contact": (True, False, True, False)})
    with Renderer(W, H) as renderer:
        image = renderer.render(frame, {"step": 0, "return": 0.0})
        camera = renderer.camera
    assert image.std() > 10
    trunk_px = camera.project(frame.trunk_pos, W, H)
    assert matches_near(image, trunk_px, R.TRUNK)
    # robot-coloured pixels are confined around the trunk's projection
    rows, cols = np.nonzero(colour_match(image, R.TRUNK))
    assert rows.size > 200
    assert abs(np.median(rows) - trunk_px[1]) < 20 and abs(np.median(cols) - trunk_px[0]) < 20
    for leg in range(4):
        foot = frame.leg_points[leg, 3]
        foot_px = camera.project(foot, W, H)
        assert foot_px[1] > trunk_px[1] + 30  # feet below the trunk in the image
        colour = R.FOOT_CONTACT if frame.foot_contact[leg] else R.FOOT_AIR
        assert matches_near(image, foot_px, colour, radius=3), f"leg {leg} at {foot_px}"


@pytest.mark.render
@needs_display
def test_projection_matches_raylib_and_push_arrow_appears():
    import pyray as rl

    pushed = standing_quadruped(height=0.3, push=(0.0, 2.0, 0.0))
    with Renderer(W, H) as renderer:
        plain = renderer.render(standing_quadruped(height=0.3))
        image = renderer.render(pushed)
        cam = renderer.camera
        rl_cam = R._raylib_camera(rl, cam)
        for point in ([0.0, 0.0, 0.3], [0.183, 0.132, 0.02], [-0.5, 0.4, 0.0]):
            theirs = rl.get_world_to_screen_ex(rl.Vector3(*point), rl_cam, W, H)
            np.testing.assert_allclose(cam.project(np.array(point), W, H), [theirs.x, theirs.y], atol=0.5)
    assert colour_match(plain, R.PUSH).sum() == 0
    assert colour_match(image, R.PUSH).sum() > 30


@pytest.mark.render
@needs_display
def test_one_window_at_a_time_and_reopening_works():
    first = Renderer(W, H).open()
    try:
        with pytest.raises(RuntimeError, match="one window"):
            Renderer(W, H).open()
        a = first.render(standing_quadruped())
    finally:
        first.close()
    with Renderer(W, H) as again:
        b = again.render(standing_quadruped())
    np.testing.assert_array_equal(a, b)
    assert os.environ.get("DISPLAY")


@pytest.mark.render
@needs_display
def test_a_window_that_fails_to_open_is_retried(monkeypatch):
    """The first attempt sees an unreachable display (as a transient Xvfb failure would); the
    renderer waits and tries again, and the image is the same as from a first-time open."""
    import pyray

    with Renderer(W, H) as plain:
        expected = plain.render(standing_quadruped())
    real_init, display, calls = pyray.init_window, os.environ["DISPLAY"], []

    def flaky_init(*args):
        calls.append(os.environ["DISPLAY"])
        if len(calls) == 1:
            os.environ["DISPLAY"] = ":7777"  # no server there: GLFW cannot start
            try:
                return real_init(*args)
            finally:
                os.environ["DISPLAY"] = display
        return real_init(*args)

    monkeypatch.setattr(pyray, "init_window", flaky_init)
    monkeypatch.setattr(R, "OPEN_RETRY_WAITS_S", (0.0, 0.0))
    with Renderer(W, H) as retried:
        image = retried.render(standing_quadruped())
    assert calls == [display, display]
    np.testing.assert_array_equal(image, expected)


@pytest.mark.render
@needs_display
def test_a_window_that_never_opens_raises_after_every_attempt(monkeypatch):
    import pyray

    real_init, display, calls = pyray.init_window, os.environ["DISPLAY"], []

    def failing_init(*args):
        calls.append(1)
        os.environ["DISPLAY"] = ":7777"
        try:
            return real_init(*args)
        finally:
            os.environ["DISPLAY"] = display

    monkeypatch.setattr(pyray, "init_window", failing_init)
    monkeypatch.setattr(R, "OPEN_RETRY_WAITS_S", (0.0, 0.0))
    with pytest.raises(R.RenderUnavailable, match="3 attempts"):
        Renderer(W, H).open()
    assert len(calls) == 3
    monkeypatch.undo()
    with Renderer(W, H) as after:  # raylib is still usable afterwards
        assert after.render(standing_quadruped()).shape == (H, W, 3)


@pytest.mark.render
@needs_display
def test_window_mode_draws_to_the_screen_and_keeps_its_camera():
    with Renderer(W, H, offscreen=False) as window:
        for _ in range(3):
            assert window.render(standing_quadruped(), {"step": 1}) is None
        assert not window.should_close()
        window.camera.orbit(30.0, 10.0)
        yaw = window.camera.yaw
        window.render(standing_quadruped())
        assert window.camera.yaw == yaw and window.camera.follow


@pytest.mark.render
@needs_display
def test_a_ghost_is_drawn_translucent_where_its_pose_projects():
    robot = standing_quadruped(height=0.3)
    aside = standing_quadruped(height=0.3)
    shift = np.array([0.0, 0.45, 0.0])
    aside = QuadrupedFrame(**{**aside.__dict__, "trunk_pos": aside.trunk_pos + shift,
                              "leg_points": aside.leg_points + shift})
    with Renderer(W, H) as renderer:
        plain = renderer.render(robot)
        renderer.clear_trail()
        with_ghost = renderer.render(QuadrupedFrame(**{**robot.__dict__, "ghost": aside}))
        camera = renderer.camera
    x, y = np.rint(camera.project(aside.trunk_pos, W, H)).astype(int)
    behind, ghost = plain[y, x].astype(float), with_ghost[y, x].astype(float)
    trunk = np.array(R.TRUNK, dtype=float)
    # the ghost's trunk tints what lies behind it towards the trunk colour, without covering it
    assert np.abs(ghost - behind).max() > 15
    assert np.linalg.norm(ghost - trunk) < np.linalg.norm(behind - trunk)
    assert not colour_match(with_ghost[y - 1:y + 2, x - 1:x + 2], R.TRUNK).any()
    # the robot itself is drawn as before
    rx, ry = np.rint(camera.project(robot.trunk_pos, W, H)).astype(int)
    np.testing.assert_array_equal(with_ghost[ry, rx], plain[ry, rx])
    with pytest.raises(ValueError, match="ghost"):
        QuadrupedFrame(**{**robot.__dict__, "ghost": "not a frame"})
