"""Can this process open a raylib window? Checked once per $DISPLAY value, in a subprocess.

raylib needs an X display even to render off screen (it draws into a hidden window's GL
context). When a window cannot be opened raylib leaves its GL state invalid, and later calls
crash the process, so the probe runs in a child process and only its exit status is used.
"""

from __future__ import annotations

import os
import subprocess
import sys

_PROBE = (
    "import sys, pyray as rl\n"
    "rl.set_trace_log_level(rl.LOG_WARNING)\n"
    "rl.set_config_flags(rl.FLAG_WINDOW_HIDDEN)\n"
    "rl.init_window(16, 16, 'quadlit display probe')\n"
    "ok = rl.is_window_ready()\n"
    "if ok:\n"
    "    rl.close_window()\n"
    "sys.exit(0 if ok else 3)\n"
)
_PROBE_TIMEOUT_S = 60.0
_cache: dict[str, tuple[bool, str]] = {}


def display_available() -> tuple[bool, str]:
    """``(True, "")`` when raylib can open a (hidden) window here, else ``(False, reason)``.

    The answer is cached per value of $DISPLAY; ``clear_display_cache`` forgets it.
    """
    display = os.environ.get("DISPLAY", "")
    if not display:
        return False, "no X display ($DISPLAY is not set); run under xvfb-run for headless rendering"
    if display not in _cache:
        _cache[display] = _probe(display)
    return _cache[display]


def clear_display_cache() -> None:
    _cache.clear()


def _probe(display: str) -> tuple[bool, str]:
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                              timeout=_PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return False, f"raylib did not open a window on DISPLAY={display} within {_PROBE_TIMEOUT_S:.0f} s"
    if proc.returncode == 0:
        return True, ""
    lines = [ln.strip() for ln in (proc.stdout + "\n" + proc.stderr).splitlines() if ln.strip()]
    glfw = [ln for ln in lines if "GLFW" in ln or "Error" in ln]
    detail = (glfw or lines or [f"exit status {proc.returncode}"])[0]
    return False, f"raylib could not open a window on DISPLAY={display} ({detail})"
