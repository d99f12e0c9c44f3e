"""The raylib renderer: draws ``QuadrupedFrame``s and ``ReachFrame``s off screen or in a window.

Off screen (``offscreen=True``) the scene is drawn into a RenderTexture of a hidden window and
read back as an RGB array, so it works on any X display, Xvfb included. In a window it draws
to the screen and the mouse drives the camera:

    left drag: orbit     wheel: zoom     right/middle drag: pan (leaves follow mode)
    F: toggle follow     R: reset the view

raylib allows one window per process, so only one ``Renderer`` may be open at a time; it can
be opened and closed any number of times.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Mapping

import numpy as np

from quadlit.render.camera import QUADRUPED_PRESET, UP, OrbitCamera, reach_preset
from quadlit.render.display import display_available
from quadlit.render.frames import Frame, QuadrupedFrame, ReachFrame
from quadlit.render.geometry import quat_to_matrix
from quadlit.render.meshes import TriangleSoup

# Colours (R, G, B[, A]).
SKY = (206, 216, 229)
GROUND = (232, 230, 222)
GRID = (188, 186, 178)
GRID_AXIS = (150, 148, 140)
TRUNK = (232, 118, 36)
LINK = (64, 70, 82)
JOINT = (120, 128, 142)
FOOT_CONTACT = (46, 170, 80)
FOOT_AIR = (214, 48, 48)
PUSH = (190, 40, 190)
PATH = (40, 90, 200)
SHADOW = (0, 0, 0, 60)
CREATURE = (38, 104, 214)
GOAL = (236, 184, 24)
WALL = (214, 208, 194)
WALL_EDGE = (120, 114, 100)
HUD_TEXT = (24, 28, 36)
HUD_PANEL = (255, 255, 255, 170)
GHOST_ALPHA = 90  # the ghost (a predicted pose) is drawn in the robot's colours at this opacity

PUSH_METRES_PER_MPS = 0.12  # drawn arrow length per m/s of push

# Opening a window can fail transiently even where the display probe succeeded (seen under
# Xvfb: GLFW "failed to detect any supported platform" when a window is reopened). raylib then
# stops before creating any GL state, so the attempt can be repeated; these are the waits (s)
# before each further attempt.
OPEN_RETRY_WAITS_S = (0.25, 1.0, 2.0)

_open_renderer: "Renderer | None" = None


class RenderUnavailable(RuntimeError):
    """raylib cannot open a window here (no display); the message says why."""


class Renderer:
    """Draws frames with raylib.

    Args:
        width, height: image (or window) size in pixels.
        offscreen: render into a texture of a hidden window and return RGB arrays; else draw
            to a visible window driven by the mouse.
        title: window title.
        supersample: off screen, draw at this multiple of the size and average down
            (anti-aliasing); 1 disables.
        trail_length: how many recent subject positions the path shows.
        target_fps: window mode: cap the frame rate (None: no cap).
    """

    def __init__(self, width: int = 640, height: int = 480, offscreen: bool = True, title: str = "quadlit",
                 supersample: int = 2, trail_length: int = 150, target_fps: int | None = None) -> None:
        if width < 16 or height < 16:
            raise ValueError(f"renderer size must be at least 16 x 16, got {width} x {height}")
        if supersample < 1:
            raise ValueError(f"supersample must be >= 1, got {supersample}")
        self.width, self.height = int(width), int(height)
        self.offscreen = bool(offscreen)
        self.title = title
        self.supersample = int(supersample) if offscreen else 1
        self.target_fps = target_fps
        self.camera: OrbitCamera | None = None
        self._camera_kind: tuple | None = None
        self._trail: deque[np.ndarray] = deque(maxlen=max(2, int(trail_length)))
        self._target = None  # RenderTexture when off screen
        self._is_open = False

    # ---- lifetime ----------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._is_open

    def open(self) -> "Renderer":
        """Open the (hidden) window. Raises ``RenderUnavailable`` without a usable display."""
        global _open_renderer
        if self._is_open:
            return self
        if _open_renderer is not None:
            raise RuntimeError("another Renderer is open; raylib allows one window per process, close it first")
        ok, reason = display_available()
        if not ok:
            raise RenderUnavailable(reason)
        import pyray as rl

        rl.set_trace_log_level(rl.LOG_WARNING)
        flags = rl.FLAG_WINDOW_HIDDEN if self.offscreen else rl.FLAG_MSAA_4X_HINT | rl.FLAG_VSYNC_HINT
        for wait in (0.0, *OPEN_RETRY_WAITS_S):
            time.sleep(wait)
            rl.set_config_flags(flags)
            rl.init_window(self.width, self.height, self.title)
            if rl.is_window_ready():
                break
        else:  # nothing else may touch raylib now
            raise RenderUnavailable(f"raylib could not open a window (DISPLAY={_display()}, "
                                    f"{1 + len(OPEN_RETRY_WAITS_S)} attempts)")
        if self.offscreen:
            s = self.supersample
            self._target = rl.load_render_texture(self.width * s, self.height * s)
        elif self.target_fps:
            rl.set_target_fps(int(self.target_fps))
        rl.set_exit_key(rl.KEY_NULL)
        self._is_open = True
        _open_renderer = self
        return self

    def close(self) -> None:
        global _open_renderer
        if not self._is_open:
            return
        import pyray as rl

        if self._target is not None:
            rl.unload_render_texture(self._target)
            self._target = None
        rl.close_window()
        self._is_open = False
        _open_renderer = None

    def __enter__(self) -> "Renderer":
        return self.open()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def should_close(self) -> bool:
        """Window mode: the user closed the window (or pressed Escape / Q)."""
        if not self._is_open or self.offscreen:
            return False
        import pyray as rl

        return bool(rl.window_should_close() or rl.is_key_pressed(rl.KEY_ESCAPE) or rl.is_key_pressed(rl.KEY_Q))

    # ---- state -------------------------------------------------------------------------
    def clear_trail(self) -> None:
        """Forget the path (call at the start of an episode)."""
        self._trail.clear()

    def reset_camera(self) -> None:
        """Back to the default view for the next frame's kind of scene."""
        self.camera = None
        self._camera_kind = None

    def _camera_for(self, frame: Frame) -> OrbitCamera:
        kind = ("reach", frame.box_half_extent) if isinstance(frame, ReachFrame) else ("quadruped",)
        if self.camera is None or kind != self._camera_kind:
            preset = reach_preset(frame.box_half_extent) if isinstance(frame, ReachFrame) else QUADRUPED_PRESET
            self.camera = OrbitCamera(preset, follow=True)
            self._camera_kind = kind
        self.camera.update_subject(frame.subject)
        return self.camera

    # ---- drawing -----------------------------------------------------------------------
    def render(self, frame: Frame, hud: Mapping[str, Any] | None = None) -> np.ndarray | None:
        """Draw one frame; returns the RGB image (H, W, 3) uint8 off screen, None in a window.

        Args:
            frame: what to draw.
            hud: lines of the heads-up display, ``label -> value`` (floats get 2 decimals).
        """
        if not self._is_open:
            self.open()
        import pyray as rl

        if not self.offscreen:
            self._handle_input(rl)
        camera = self._camera_for(frame)
        self._trail.append(np.array(frame.subject if isinstance(frame, ReachFrame) else frame.trunk_pos))
        s = self.supersample
        w, h = self.width * s, self.height * s
        if self.offscreen:
            rl.begin_texture_mode(self._target)
        else:
            rl.begin_drawing()
            w, h = rl.get_screen_width(), rl.get_screen_height()
        rl.clear_background(rl.Color(*SKY, 255))
        rl.begin_mode_3d(_raylib_camera(rl, camera))
        soup = TriangleSoup()
        if isinstance(frame, QuadrupedFrame):
            _quadruped_scene(soup, frame, camera, list(self._trail))
        elif isinstance(frame, ReachFrame):
            _reach_scene(soup, frame, camera, list(self._trail))
        else:
            raise TypeError(f"cannot draw a {type(frame).__name__}")
        from raylib import rl as C

        C.rlDisableBackfaceCulling()  # the soup's triangles are two-sided
        soup.draw()
        C.rlDrawRenderBatchActive()  # rlgl batches: draw now, while culling is still off
        C.rlEnableBackfaceCulling()
        rl.end_mode_3d()
        _draw_hud(rl, _hud_lines(frame, hud, camera if not self.offscreen else None), scale=s)
        if not self.offscreen:
            rl.end_drawing()
            return None
        rl.end_texture_mode()
        return self._read_target(rl)

    def _read_target(self, rl: Any) -> np.ndarray:
        image = rl.load_image_from_texture(self._target.texture)
        try:
            n = image.width * image.height * 4
            rgba = np.frombuffer(rl.ffi.buffer(image.data, n), dtype=np.uint8).reshape(image.height, image.width, 4)
            rgb = rgba[::-1, :, :3]  # GL textures start at the bottom row; images start at the top
            s = self.supersample
            if s == 1:
                return rgb.copy()
            total = np.zeros((self.height, self.width, 3), dtype=np.uint16)
            for dy in range(s):
                for dx in range(s):
                    total += rgb[dy::s, dx::s]
            return ((total + (s * s) // 2) // (s * s)).astype(np.uint8)
        finally:
            rl.unload_image(image)

    def _handle_input(self, rl: Any) -> None:
        cam = self.camera
        if cam is None:
            return
        delta = rl.get_mouse_delta()
        if rl.is_mouse_button_down(rl.MOUSE_BUTTON_LEFT):
            cam.orbit(-0.3 * delta.x, 0.3 * delta.y)
        if rl.is_mouse_button_down(rl.MOUSE_BUTTON_RIGHT) or rl.is_mouse_button_down(rl.MOUSE_BUTTON_MIDDLE):
            cam.pan(delta.x, delta.y, rl.get_screen_height())
        wheel = rl.get_mouse_wheel_move()
        if wheel:
            cam.zoom(wheel)
        if rl.is_key_pressed(rl.KEY_F):
            cam.follow = not cam.follow
        if rl.is_key_pressed(rl.KEY_R):
            cam.reset()


def _display() -> str:
    import os

    return os.environ.get("DISPLAY", "")


def _raylib_camera(rl: Any, camera: OrbitCamera) -> Any:
    pos, target = camera.position, camera.target
    return rl.Camera3D(rl.Vector3(*pos), rl.Vector3(*target), rl.Vector3(*UP), camera.fovy, rl.CAMERA_PERSPECTIVE)


def _view_dir(camera: OrbitCamera) -> np.ndarray:
    d = camera.target - camera.position
    return d / np.linalg.norm(d)


def _path(soup: TriangleSoup, trail: list[np.ndarray], camera: OrbitCamera, width: float) -> None:
    if len(trail) < 2:
        return
    points = np.array(trail)
    alpha = np.linspace(40, 220, len(points) - 1)
    colors = np.column_stack([np.tile(PATH, (len(alpha), 1)), alpha]).astype(np.uint8)
    soup.ribbon(points, width, _view_dir(camera), colors)


def _quadruped_scene(soup: TriangleSoup, f: QuadrupedFrame, camera: OrbitCamera, trail: list[np.ndarray]) -> None:
    center = f.trunk_pos[:2]
    lo, hi = center - 3.0, center + 3.0
    soup.quad([(lo[0], lo[1], 0.0), (hi[0], lo[1], 0.0), (hi[0], hi[1], 0.0), (lo[0], hi[1], 0.0)], GROUND)
    soup.ground_lines(lo, hi, 0.25, 0.006, 0.0008, GRID)
    soup.ground_lines(lo, hi, 1.0, 0.012, 0.0012, GRID_AXIS)
    shadow_r = float(np.linalg.norm(f.trunk_half_extents[:2])) * 1.1
    soup.disc(np.array([*center, 0.0016]), shadow_r, SHADOW)
    _path(soup, trail, camera, 0.012)

    _robot(soup, f, 255)
    if f.push is not None and np.linalg.norm(f.push) > 1e-6:
        direction = f.push / np.linalg.norm(f.push)
        length = PUSH_METRES_PER_MPS * float(np.linalg.norm(f.push))
        standoff = float(np.linalg.norm(f.trunk_half_extents)) + 0.02
        tip = f.trunk_pos - direction * standoff
        soup.arrow(tip - direction * length, tip, 0.012, PUSH)
    if f.ghost is not None:  # translucent, so drawn last: blended over whatever lies behind it
        _robot(soup, f.ghost, GHOST_ALPHA)


def _robot(soup: TriangleSoup, f: QuadrupedFrame, alpha: int) -> None:
    """The trunk and legs of ``f``, at opacity ``alpha`` (0-255)."""
    def tint(color: tuple[int, ...]) -> tuple[int, ...]:
        return (*color[:3], alpha)

    rotation = quat_to_matrix(f.trunk_quat)
    soup.box(f.trunk_pos + rotation @ f.trunk_box_center, rotation, f.trunk_half_extents, tint(TRUNK))
    link_r = 0.45 * f.foot_radius + 0.008
    for leg in range(4):
        hip, thigh, knee, foot = f.leg_points[leg]
        soup.cylinder(hip, thigh, 1.3 * link_r, tint(LINK))
        soup.cylinder(thigh, knee, 1.15 * link_r, tint(LINK))
        soup.cylinder(knee, foot, link_r, tint(LINK))
        for joint in (hip, thigh, knee):
            soup.sphere(joint, 1.35 * link_r, tint(JOINT))
        soup.sphere(foot, f.foot_radius, tint(FOOT_CONTACT if f.foot_contact[leg] else FOOT_AIR))


def _reach_scene(soup: TriangleSoup, f: ReachFrame, camera: OrbitCamera, trail: list[np.ndarray]) -> None:
    h, g, top = f.box_half_extent, f.ground_level, f.ground_level + f.box_height
    margin = 0.25 * h
    lo, hi = np.array([-h - margin, -h - margin]), np.array([h + margin, h + margin])
    soup.quad([(lo[0], lo[1], g), (hi[0], lo[1], g), (hi[0], hi[1], g), (lo[0], hi[1], g)], GROUND)
    soup.ground_lines(np.array([-h, -h]), np.array([h, h]), 1.0, 0.03 * max(1.0, h / 10), g + 0.004, GRID)

    # Walls the camera looks at from inside (the far ones) are drawn solid, the near ones as edges.
    cam = camera.position
    for axis in (0, 1):
        for sign in (-1.0, 1.0):
            inward_side = cam[axis] * sign < h  # camera is inside the half-space of this wall
            other = 1 - axis
            corners = []
            for t, z in ((-h, g), (h, g), (h, top), (-h, top)):
                c = [0.0, 0.0, z]
                c[axis], c[other] = sign * h, t
                corners.append(c)
            corners = np.array(corners)
            if inward_side:
                soup.quad(corners, WALL)
            edge_colors = np.tile((*WALL_EDGE, 255), (4, 1))
            soup.ribbon(np.vstack([corners, corners[:1]]), 0.05 * max(1.0, h / 10), _view_dir(camera), edge_colors)

    creature, goal = f.creature_pos, f.goal_pos
    soup.disc(np.array([creature[0], creature[1], g + 0.01]), f.creature_radius * 1.1, SHADOW)
    soup.disc(np.array([goal[0], goal[1], g + 0.012]), f.goal_radius, (*GOAL, 255), segments=40,
              inner=0.85 * f.goal_radius)
    if goal[2] > g + 1e-3:
        soup.cylinder(np.array([goal[0], goal[1], g]), goal, 0.03, GOAL, sides=6)
    _path(soup, [p + np.array([0.0, 0.0, 0.02]) for p in trail], camera, 0.08)
    soup.sphere(goal, 0.3, GOAL)
    center = creature + np.array([0.0, 0.0, f.creature_radius])
    soup.sphere(center, f.creature_radius, CREATURE)


def _hud_lines(frame: Frame, hud: Mapping[str, Any] | None, camera: OrbitCamera | None) -> list[str]:
    lines = []
    for key, value in (hud or {}).items():
        if isinstance(value, float):
            value = f"{value:.2f}"
        lines.append(f"{key}: {value}")
    if isinstance(frame, QuadrupedFrame):
        push = 0.0 if frame.push is None else float(np.linalg.norm(frame.push))
        lines.append(f"push: {push:.2f} m/s" if push > 0 else "push: -")
    elif isinstance(frame, ReachFrame):
        lines.append(f"stamina: {100 * frame.stamina_fraction:.0f}%")
    if camera is not None:
        lines.append(f"camera: {'follow' if camera.follow else 'free'} (F follow, R reset)")
    return lines


def _draw_hud(rl: Any, lines: list[str], scale: int) -> None:
    if not lines:
        return
    size, pad = 16 * scale, 6 * scale
    width = max(rl.measure_text(line, size) for line in lines) + 2 * pad
    height = len(lines) * (size + 2 * scale) + 2 * pad
    rl.draw_rectangle(4 * scale, 4 * scale, width, height, rl.Color(*HUD_PANEL))
    for k, line in enumerate(lines):
        rl.draw_text(line, 4 * scale + pad, 4 * scale + pad + k * (size + 2 * scale), size, rl.Color(*HUD_TEXT, 255))
