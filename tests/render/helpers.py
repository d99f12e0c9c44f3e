"""Shared bits of the rendering tests: the display marker, colour matching, a fixed policy."""

import os

import numpy as np
import pytest
import torch

if os.environ.get("CI") and not os.environ.get("DISPLAY"):
    # CI must run the rendering tests (.ci/run installs Xvfb and `make test` uses it): never skip there
    raise RuntimeError("CI run without an X display: the rendering tests must run under xvfb-run")

needs_display = pytest.mark.skipif(not os.environ.get("DISPLAY"),
                                   reason="needs an X display: run under xvfb-run -a")


def colour_match(image: np.ndarray, colour, min_cosine: float = 0.997) -> np.ndarray:
    """Boolean mask (H, W): pixels whose RGB direction is ``colour``'s (shading scales all
    channels alike, so a lit or shadowed face of that colour still matches)."""
    c = np.asarray(colour[:3], np.float64)
    px = image.astype(np.float64)
    cos = (px @ c) / (np.linalg.norm(px, axis=-1) * np.linalg.norm(c) + 1e-9)
    return (cos >= min_cosine) & (px.sum(-1) > 60)


def matches_near(image: np.ndarray, pixel, colour, radius: int = 2) -> bool:
    """Some pixel within ``radius`` of (column, row) ``pixel`` has ``colour``."""
    col, row = int(round(pixel[0])), int(round(pixel[1]))
    h, w = image.shape[:2]
    window = image[max(0, row - radius):min(h, row + radius + 1), max(0, col - radius):min(w, col + radius + 1)]
    return bool(colour_match(window, colour).any())


class ConstantPolicy(torch.nn.Module):
    """The policy API of ``EntityBelief`` with a fixed action; counts its calls."""

    def __init__(self, action):
        super().__init__()
        self.action = torch.as_tensor(action, dtype=torch.float32)
        self.calls = 0

    def initial_state(self, batch, device=None):
        z = torch.zeros(batch, 4, device=device)
        return z, z.clone()

    def act(self, obs, state, episode_start, deterministic=False, generator=None):
        self.calls += 1
        b = obs.shape[0]
        action = self.action.to(obs.device).expand(b, -1).clone()
        zeros = torch.zeros(b, device=obs.device)
        return action, action.clone(), zeros, zeros, state
