"""Degrade renders the way a video generator might, to test the readout against what generators do.

:func:`degraded_video` renders the no-noise rollout of a stimulus and
changes it by one named condition (:data:`CONDITIONS`):

``clean``        the render itself;
``noise``        Gaussian pixel noise, σ 25 (of 255) per channel;
``lighting``     a left-to-right brightness gradient (0.85 → 1.1), gamma 1.15 and ±4 % flicker over time;
``black_bg``     a black background;
``reframe``      padded to 16:9 (the square picture centred, as `ipe video prompts` pads it);
``hue``          every hue turned by 15°;
``half_speed``   the motion at half speed, the whole horizon: twice as many frames (slow motion);
``half_speed_cut`` the motion at half speed cut to the render's length: as many frames, showing the
                 first half of the horizon only (where blocks still move at its end, the readout cannot
                 know where they land and must flag the video, not guess);
``own_colours``  the bodies in the scene's own colours instead of the video palette;
``one_colour``   every body in one colour;
``pan``          the camera pans 1 % of the frame per frame at most (x), 0.5 % (y), and turns back (period 2 s);
``zoom``         the camera zooms by up to 1 % per frame, in and out (period 2 s);
``pan_zoom``     both;
``drift``        the camera drifts 1 % of the frame per frame the whole time, in one direction:
                 most towers leave the picture; the readout must flag what it cannot see.

Every condition is seeded (noise, flicker phase) from ``seed`` and the
stimulus id, so a harness run is reproducible. With ``encode=True`` the
frames also go through a lossy H.264 MP4 (yuv420p, imageio quality 6) and
back, as a generator's output would.

The truth is the no-noise simulation's own rollout (the same one the frames
show), returned with the frames so that the harness compares like with like.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..scene import Stimulus
from ..seeding import stream_rng
from .frames import Camera, body_colours, draw_frame, video_trajectory, write_mp4
from .readout import read_video

CONDITIONS = ("clean", "noise", "lighting", "black_bg", "reframe", "hue", "half_speed", "half_speed_cut", "own_colours",
              "one_colour", "pan", "zoom", "pan_zoom", "drift")
ONE_COLOUR = "#c8402a"


@dataclass
class DegradedVideo:
    """Frames of one degraded video, the camera of its first frame as `colours.json` records it, and the truth."""

    frames: np.ndarray
    camera: Camera
    colours: dict[str, str]
    states: np.ndarray
    visible: np.ndarray
    fps: float
    condition: str


def _rng(seed: int, stim_id: str, condition: str) -> np.random.Generator:
    return stream_rng(seed, "ipe.degrade:" + stim_id, condition)


def _camera_at(base: Camera, dx: float, dy: float, zoom: float) -> Camera:
    """``base`` shifted by (dx, dy) frame widths/heights and zoomed by ``zoom`` (> 1: closer) about its centre."""
    w = (base.x1 - base.x0) / zoom
    h = (base.y1 - base.y0) / zoom
    cx = (base.x0 + base.x1) / 2 + dx * (base.x1 - base.x0)
    cy = (base.y0 + base.y1) / 2 + dy * (base.y1 - base.y0)
    return Camera(cx - w / 2, cx + w / 2, cy - h / 2, cy + h / 2, base.width, base.height)


def camera_path(condition: str, n_frames: int, period: int = 60) -> np.ndarray:
    """``(F, 3)`` per-frame camera motion ``dx, dy, zoom`` of a camera condition (identity for the others).

    Sinusoids whose steepest step is 1 % of the frame per frame (0.5 % for
    the vertical pan), starting at the rendered framing, so that frame 0 is
    the stimulus's own first frame.
    """
    f = np.arange(n_frames, dtype=float)
    a = 0.01 * period / (2 * math.pi)
    s = np.sin(2 * math.pi * f / period)
    out = np.zeros((n_frames, 3))
    out[:, 2] = 1.0
    if condition in ("pan", "pan_zoom"):
        out[:, 0] = a * s
        out[:, 1] = 0.5 * a * np.sin(2 * math.pi * f / (period * 1.5))
    if condition in ("zoom", "pan_zoom"):
        out[:, 2] = np.exp(a * s)
    if condition == "drift":
        out[:, 0] = -0.01 * f
    return out


def _hue_shift(frames: np.ndarray, degrees: float) -> np.ndarray:
    from matplotlib.colors import hsv_to_rgb, rgb_to_hsv

    hsv = rgb_to_hsv(frames.astype(np.float32) / 255.0)
    hsv[..., 0] = (hsv[..., 0] + degrees / 360.0) % 1.0
    return np.clip(np.round(hsv_to_rgb(hsv) * 255.0), 0, 255).astype(np.uint8)


def _encode(frames: np.ndarray, fps: float) -> np.ndarray:
    import os
    import tempfile


    fd, name = tempfile.mkstemp(suffix=".mp4")
    os.close(fd)
    try:
        write_mp4(name, frames, fps, lossless=False, pixel_format="yuv420p", quality=6)
        return read_video(name)
    finally:
        os.unlink(name)


def degraded_video(stim: Stimulus, condition: str, size: int = 128, fps: float = 30.0, seed: int = 0,
                   encode: bool = False) -> DegradedVideo:
    """The no-noise rollout of ``stim`` rendered at ``size`` px and degraded by ``condition`` (see the module)."""
    if condition not in CONDITIONS:
        raise InputError(f"unknown degradation {condition!r}; expected one of {', '.join(CONDITIONS)}")
    base = Camera.for_stimulus(stim, size)
    colours = body_colours(stim)
    states, visible = video_trajectory(stim, fps)
    shown_states, shown_visible = states, visible
    if condition in ("half_speed", "half_speed_cut"):
        s2, v2 = video_trajectory(stim, 2 * fps)
        keep = len(states) if condition == "half_speed_cut" else len(s2)
        shown_states, shown_visible = s2[:keep], v2[:keep]
    draw_colours = dict(colours)
    if condition == "own_colours":
        draw_colours = {b.id: (b.color or colours[b.id]) for b in stim.scene.bodies}
    elif condition == "one_colour":
        draw_colours = {b.id: ONE_COLOUR for b in stim.scene.bodies}
    background = "#000000" if condition == "black_bg" else "#ffffff"
    path = camera_path(condition, len(shown_states))
    frames = np.stack([draw_frame(stim, shown_states[f], shown_visible[f], _camera_at(base, *path[f]), draw_colours,
                                  background=background) for f in range(len(shown_states))])
    rng = _rng(seed, stim.id, condition)
    if condition == "noise":
        frames = np.clip(frames + rng.normal(0, 25, frames.shape), 0, 255).astype(np.uint8)
    elif condition == "lighting":
        H, W = frames.shape[1:3]
        gain = 0.85 + 0.25 * np.linspace(0, 1, W)[None, None, :, None]
        flicker = 1 + 0.04 * np.sin(np.arange(len(frames)) / 3.0 + rng.uniform(0, 6.28))[:, None, None, None]
        x = (frames / 255.0) ** 1.15 * gain * flicker
        frames = np.clip(np.round(x * 255), 0, 255).astype(np.uint8)
    elif condition == "hue":
        frames = _hue_shift(frames, 15.0)
    elif condition == "reframe":
        F, H, W = frames.shape[:3]
        W2 = int(round(H * 16 / 9 / 2)) * 2
        pad = np.full((F, H, W2, 3), 255, dtype=np.uint8)
        left = (W2 - W) // 2
        pad[:, :, left:left + W] = frames
        frames = pad
    if encode:
        frames = _encode(frames, fps)
    return DegradedVideo(frames, base, colours, states, visible, fps, condition)
