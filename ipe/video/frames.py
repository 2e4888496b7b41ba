"""Videos of stimuli for video models: flat colours, a fixed camera, MP4 rollouts.

Every stimulus is drawn with

* a **fixed camera**: a square window in world coordinates framing the
  initial scene (:meth:`Camera.for_stimulus`), the same for every frame and
  every sample of that stimulus;
* a **plain white background**, static shapes in one grey;
* **one flat, distinct colour per dynamic body** (:func:`video_palette`), no
  outlines, anti-aliased by supersampling.

:func:`render_videos` writes, per stimulus, a first-frame PNG, a
conditioning clip (the first ``cond_frames`` frames), the MP4 rollout of the
no-noise simulation and, on request, of ``samples`` noisy simulations, and
one ``colours.json`` sidecar for the folder that maps each colour to its body
id and records the camera (see :func:`write_colours`). File names carry the
stimulus id::

    DIR/colours.json                     colours, cameras, fps, size
    DIR/manifest.csv                     one row per file written
    DIR/first/<id>.png                   the first frame
    DIR/cond/<id>.mp4                    the first cond_frames frames
    DIR/gt/<id>.mp4                      the no-noise rollout
    DIR/samples/<id>__s<k>.mp4           noisy rollout k (σ, φ, μ)

Bodies taken out by a ``remove`` intervention vanish from the frame at the
step the intervention happens. A body the simulation culls
(``simulation.remove_below``) keeps falling straight down in the picture
from where it was culled, so it leaves the frame as it would have.
"""

from __future__ import annotations

import colorsys
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from ..fileio import atomic_path, atomic_write, optional_import, write_csv, write_json
from ..montecarlo import run_sample
from ..noise import NoiseParams
from ..scene import Ball, StaticSegment, Stimulus, world_vertices
from ..scenefile import as_stimulus_set
from ..validation import NONNEG_NUMBER, POSITIVE_INT, check

BACKGROUND = "#ffffff"
STATIC_COLOUR = "#808080"
SUPERSAMPLE = 4
COLOURS_FORMAT = "ipe-video-colours"
COLOURS_VERSION = 1


def _hex(rgb) -> str:
    return "#" + "".join(f"{int(round(c)):02x}" for c in rgb)


def hex_to_rgb(colour: str) -> tuple[int, int, int]:
    """``"#rrggbb"`` → ``(r, g, b)`` in 0…255."""
    c = colour.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def video_palette(n: int) -> list[str]:
    """``n`` flat, distinct body colours (at most 36), none close to white or grey.

    Twelve hues at full saturation and value, then the same hues darker,
    then at half saturation; hues are ordered so that neighbouring indices
    differ strongly.
    """
    hues = [0, 120, 240, 60, 180, 300, 30, 150, 270, 90, 210, 330]
    levels = [(1.0, 1.0), (1.0, 0.55), (0.55, 0.8)]
    out = []
    for s, v in levels:
        for h in hues:
            out.append(_hex(255 * np.array(colorsys.hsv_to_rgb(h / 360.0, s, v))))
    if n > len(out):
        raise InputError(f"a video can give at most {len(out)} bodies distinct colours; this scene has {n}")
    return out[:n]


def body_colours(stim: Stimulus) -> dict[str, str]:
    """Colour of every dynamic body of ``stim`` in its videos, keyed by body id (scene order)."""
    bodies = stim.scene.bodies
    return dict(zip((b.id for b in bodies), video_palette(len(bodies))))


@dataclass(frozen=True)
class Camera:
    """A fixed orthographic camera: world window ``[x0, x1] × [y0, y1]`` seen as ``width × height`` pixels.

    Pixel ``(col, row)`` has its centre at ``col + 0.5, row + 0.5``; rows
    grow downwards, world y upwards.
    """

    x0: float
    x1: float
    y0: float
    y1: float
    width: int
    height: int

    @classmethod
    def for_stimulus(cls, stim: Stimulus, size: int, pad: float = 0.15) -> "Camera":
        """A square window framing ``stim``'s initial dynamic bodies and the line y = 0, with margins."""
        from ..render import scene_bounds  # ipe.render loads matplotlib: only when a camera is framed

        x0, x1, y0, y1 = scene_bounds(stim.scene, pad=pad)
        return cls(float(x0), float(x1), float(y0), float(y1), int(size), int(size))

    @property
    def metres_per_pixel(self) -> float:
        return (self.x1 - self.x0) / self.width

    def to_pixels(self, xy: np.ndarray) -> np.ndarray:
        """World ``(..., 2)`` → continuous pixel coordinates ``(..., 2)`` (col, row)."""
        xy = np.asarray(xy, dtype=float)
        col = (xy[..., 0] - self.x0) / (self.x1 - self.x0) * self.width
        row = (self.y1 - xy[..., 1]) / (self.y1 - self.y0) * self.height
        return np.stack([col, row], axis=-1)

    def to_world(self, colrow: np.ndarray) -> np.ndarray:
        """Continuous pixel coordinates ``(..., 2)`` → world ``(..., 2)``."""
        cr = np.asarray(colrow, dtype=float)
        x = self.x0 + cr[..., 0] / self.width * (self.x1 - self.x0)
        y = self.y1 - cr[..., 1] / self.height * (self.y1 - self.y0)
        return np.stack([x, y], axis=-1)

    def to_dict(self) -> dict:
        return {"x0": self.x0, "x1": self.x1, "y0": self.y0, "y1": self.y1, "width": self.width,
                "height": self.height}

    @classmethod
    def from_dict(cls, d: dict) -> "Camera":
        return cls(float(d["x0"]), float(d["x1"]), float(d["y0"]), float(d["y1"]), int(d["width"]),
                   int(d["height"]))

    def resized(self, width: int, height: int) -> "Camera":
        """The same world window seen at another resolution."""
        return Camera(self.x0, self.x1, self.y0, self.y1, int(width), int(height))


# --------------------------------------------------------------------------- drawing


def _body_outline(b, x: float, y: float, a: float):
    if isinstance(b, Ball):
        return ("circle", (x, y), b.radius)
    from dataclasses import replace

    return ("poly", world_vertices(replace(b, position=(x, y), angle=a)))


def draw_frame(stim: Stimulus, states: np.ndarray, visible: np.ndarray, camera: Camera,
               colours: dict[str, str] | None = None, supersample: int | None = None,
               background: str = BACKGROUND, static_colour: str = STATIC_COLOUR) -> np.ndarray:
    """One ``(H, W, 3)`` uint8 frame: statics grey, bodies in flat colours, white background.

    ``states`` is ``(n_bodies, 3)`` x, y, angle; ``visible`` marks the bodies
    to draw (``background`` and ``static_colour`` can be changed, as the
    degradation harness :mod:`ipe.video.degrade` does). Drawn at ``supersample`` times the size and box-filtered down
    (anti-aliasing); by default 4×, or more for small frames (at least 512
    pixels across before filtering), so edges move in steps of at most a
    quarter pixel and a few mm.
    """
    from PIL import Image, ImageDraw

    colours = colours or body_colours(stim)
    ss = max(1, int(supersample)) if supersample else max(SUPERSAMPLE, math.ceil(512 / max(camera.width, 1)))
    big = camera.resized(camera.width * ss, camera.height * ss)
    img = Image.new("RGB", (big.width, big.height), hex_to_rgb(background))
    draw = ImageDraw.Draw(img)
    grey = hex_to_rgb(static_colour)

    def px(points):
        return [tuple(p) for p in big.to_pixels(np.asarray(points, dtype=float)).tolist()]

    for s in stim.scene.statics:
        if isinstance(s, StaticSegment):
            w = max(1, int(round(2 * s.radius / big.metres_per_pixel)))
            draw.line(px([s.a, s.b]), fill=grey, width=w)
        else:
            draw.polygon(px(world_vertices(s)), fill=grey)
    for i, b in enumerate(stim.scene.bodies):
        if not visible[i]:
            continue
        x, y, a = states[i]
        fill = hex_to_rgb(colours[b.id])
        shape = _body_outline(b, x, y, a)
        if shape[0] == "circle":
            (cx, cy), = px([shape[1]])
            r = shape[2] / big.metres_per_pixel
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
        else:
            draw.polygon(px(shape[1]), fill=fill)
    if ss > 1:
        img = img.resize((camera.width, camera.height), Image.BOX)
    return np.asarray(img, dtype=np.uint8)


# --------------------------------------------------------------------------- trajectories


def frame_times(stim: Stimulus, fps: float) -> np.ndarray:
    """Times (s) of the frames of a video of ``stim``: 0, 1/fps, … up to the horizon."""
    horizon = stim.scene.simulation.horizon
    n = int(math.floor(horizon * fps + 1e-9)) + 1
    return np.arange(n) / float(fps)


def steps_per_frame(stim: Stimulus, fps: float) -> int:
    """Physics steps between two frames; ``fps`` must divide the physics rate."""
    dt = stim.scene.simulation.dt
    k = 1.0 / (fps * dt) if fps > 0 else math.inf
    if fps <= 0 or not math.isfinite(k) or k < 1 - 1e-9 or abs(k - round(k)) > 1e-6:
        rate = 1.0 / dt
        raise InputError(f"--fps {fps:g}: must divide the physics rate of stimulus {stim.id!r} "
                         f"({rate:g} steps/s), e.g. {rate / 8:g}, {rate / 4:g} or {rate / 2:g}")
    return int(round(k))


def video_trajectory(stim: Stimulus, fps: float, sigma: float = 0.0, phi: float = 0.0, mu: float = 0.0,
                     seed: int = 0, sample: int = 0, early_stop: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Body poses at every frame of one rollout: ``(states (F, n, 3), visible (F, n))``.

    With all noise at 0 this is the no-noise simulation (the rollout behind
    :func:`ipe.baselines.no_noise_predictions`); otherwise sample ``sample``
    of :func:`ipe.montecarlo.run_sample` with the same seeding as
    ``ipe predict``. A rollout that stopped early because the scene came to
    rest is continued with its final, resting state (``early_stop=False``:
    every frame is simulated).
    """

    k = steps_per_frame(stim, fps)
    times = frame_times(stim, fps)
    params = NoiseParams(sigma=sigma, phi=phi, mu=mu)
    _, res = run_sample(stim, params, seed, sample, [], early_stop=early_stop, record_every=k)
    traj, ttimes = res.trajectory, res.times
    dt = stim.scene.simulation.dt
    steps = np.round(ttimes / dt).astype(np.int64)
    n = len(stim.scene.bodies)
    states = np.empty((len(times), n, 3))
    visible = np.ones((len(times), n), dtype=bool)
    removed_at = {}
    for iv in stim.interventions:
        if iv.type == "remove":
            step = int(math.ceil(iv.time / dt - 1e-9))
            for bid in iv.bodies:
                removed_at[bid] = min(step, removed_at.get(bid, step))
    ids = [b.id for b in stim.scene.bodies]
    for f, t in enumerate(times):
        step = int(round(t / dt))
        j = int(np.searchsorted(steps, step, side="right")) - 1
        states[f] = traj[max(j, 0)]
        for bid, rs in removed_at.items():
            if step >= rs:
                visible[f, ids.index(bid)] = False
    # Culled bodies (remove_below) keep falling straight down in the picture.
    if res.culled is not None and res.culled.any():
        g = abs(stim.scene.gravity[1]) or 9.81
        for i in np.nonzero(res.culled)[0]:
            y = states[:, i, 1]
            moving = np.nonzero(np.abs(np.diff(y)) > 0)[0]
            t_last = int(moving[-1]) + 1 if len(moving) else 0
            vy0 = (y[t_last] - y[t_last - 1]) * fps if t_last >= 1 else 0.0
            tt = times[t_last:] - times[t_last]
            states[t_last:, i, 1] = y[t_last] + vy0 * tt - 0.5 * g * tt ** 2
    return states, visible


def render_frames(stim: Stimulus, states: np.ndarray, visible: np.ndarray, camera: Camera,
                  colours: dict[str, str] | None = None) -> np.ndarray:
    """All frames of a trajectory: ``(F, H, W, 3)`` uint8."""
    colours = colours or body_colours(stim)
    return np.stack([draw_frame(stim, states[f], visible[f], camera, colours) for f in range(len(states))])


# --------------------------------------------------------------------------- files


def write_mp4(path: str | Path, frames: np.ndarray, fps: float, lossless: bool = True,
              pixel_format: str = "yuv444p", quality: int = 8) -> Path:
    """Write ``(F, H, W, 3)`` uint8 frames as an H.264 MP4, atomically.

    By default the video is lossless (``-qp 0``) with full-resolution colour
    (``yuv444p``): flat colours compress to a few kB anyway, and a model or a
    readout sees exactly the rendered frames. ``lossless=False`` uses
    imageio's ``quality`` (0–10) instead; ``pixel_format="yuv420p"`` halves
    the colour resolution, as most web players require. Frame sizes must be
    even; nothing is resized.
    """
    import imageio.v2 as iio

    path = Path(path)
    optional_import("imageio_ffmpeg", f"{path}: writing MP4 video")
    frames = np.asarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise InputError(f"{path}: expected frames of shape (F, H, W, 3), got {frames.shape}")
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise InputError(f"{path}: MP4 frames need an even width and height, got {frames.shape[2]}×{frames.shape[1]}")
    opts = dict(quality=None, output_params=["-qp", "0"]) if lossless else dict(quality=quality)
    with atomic_path(path, suffix=".mp4") as tmp:  # ffmpeg needs a file name with the right extension
        writer = iio.get_writer(str(tmp), format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                pixelformat=pixel_format, macro_block_size=1, ffmpeg_log_level="error", **opts)
        try:
            for fr in frames:
                writer.append_data(fr)
        finally:
            writer.close()
    return path


def write_png(path: str | Path, frame: np.ndarray) -> Path:
    """Write one uint8 RGB frame as a PNG, atomically."""
    from PIL import Image

    img = Image.fromarray(np.asarray(frame, dtype=np.uint8), "RGB")
    return atomic_write(path, lambda fh: img.save(fh, format="PNG"), mode="wb")


def colours_entry(stim: Stimulus, camera: Camera, n_frames: int) -> dict:
    """The ``colours.json`` entry of one stimulus: camera, colour → body id, frame count."""
    cols = body_colours(stim)
    return {"camera": camera.to_dict(), "colours": {c: bid for bid, c in cols.items()}, "n_frames": int(n_frames)}


def write_colours(path: str | Path, entries: dict[str, dict], fps: float, size: int, cond_frames: int) -> Path:
    """Write the ``colours.json`` sidecar.

    Format: ``{"format": "ipe-video-colours", "version": 1, "fps", "size",
    "cond_frames", "background", "static_colour", "stimuli": {id: {"camera":
    {x0, x1, y0, y1, width, height}, "colours": {"#rrggbb": body_id},
    "n_frames"}}}``. The camera maps world metres to pixels (see
    :class:`Camera`), which is what lets a readout turn pixels back into the
    simulator's units.
    """
    data = {"format": COLOURS_FORMAT, "version": COLOURS_VERSION, "fps": float(fps), "size": int(size),
            "cond_frames": int(cond_frames), "background": BACKGROUND, "static_colour": STATIC_COLOUR,
            "stimuli": entries}
    return write_json(path, data)


def render_videos(stimuli, out_dir: str | Path, size: int = 256, fps: float = 30.0, samples: int = 0,
                  sigma: float = 0.0, phi: float = 0.0, mu: float = 0.0, seed: int = 0, cond_frames: int = 4,
                  ground_truth: bool = True, progress: bool | None = None, early_stop: bool = True) -> pd.DataFrame:
    """Write the video renders of every stimulus (layout in the module docstring).

    Returns the manifest (also written to ``DIR/manifest.csv``): ``file,
    stimulus_id, kind, sample, n_frames, fps, size`` with ``kind`` one of
    ``first``, ``cond``, ``gt``, ``sample``. ``early_stop=False`` simulates
    every rollout to its horizon instead of holding a scene at rest.
    """
    stimuli = as_stimulus_set(stimuli)
    if size < 16 or size % 2:
        raise InputError(f"--size {size}: videos need an even size of at least 16 pixels")
    check("--cond-frames", cond_frames, POSITIVE_INT)
    for name, v in (("sigma", sigma), ("phi", phi), ("mu", mu)):
        check(f"--{name}", v, NONNEG_NUMBER)
    for s in stimuli:
        steps_per_frame(s, fps)
        body_colours(s)
    optional_import("imageio_ffmpeg", "writing MP4 video")  # before the first file is written
    out = Path(out_dir)
    rows = []
    entries = {}
    for s in _tqdm(list(stimuli), progress, "rendering videos"):
        cam = Camera.for_stimulus(s, size)
        cols = body_colours(s)
        states, visible = video_trajectory(s, fps, seed=seed, early_stop=early_stop)
        frames = render_frames(s, states, visible, cam, cols)
        entries[s.id] = colours_entry(s, cam, len(frames))
        k = min(cond_frames, len(frames))
        p = write_png(out / "first" / f"{s.id}.png", frames[0])
        rows.append((str(p.relative_to(out)), s.id, "first", -1, 1))
        p = write_mp4(out / "cond" / f"{s.id}.mp4", frames[:k], fps)
        rows.append((str(p.relative_to(out)), s.id, "cond", -1, k))
        if ground_truth:
            p = write_mp4(out / "gt" / f"{s.id}.mp4", frames, fps)
            rows.append((str(p.relative_to(out)), s.id, "gt", 0, len(frames)))
        for j in range(samples):
            st, vis = video_trajectory(s, fps, sigma=sigma, phi=phi, mu=mu, seed=seed, sample=j, early_stop=early_stop)
            fr = render_frames(s, st, vis, cam, cols)
            p = write_mp4(out / "samples" / f"{s.id}__s{j:03d}.mp4", fr, fps)
            rows.append((str(p.relative_to(out)), s.id, "sample", j, len(fr)))
    write_colours(out / "colours.json", entries, fps, size, cond_frames)
    manifest = pd.DataFrame(rows, columns=["file", "stimulus_id", "kind", "sample", "n_frames"])
    manifest["fps"] = float(fps)
    manifest["size"] = int(size)
    write_csv(out / "manifest.csv", manifest)
    return manifest


def _tqdm(items: Sequence, progress: bool | None, desc: str):
    import sys

    from tqdm.auto import tqdm

    disable = (not sys.stderr.isatty()) if progress is None else not progress
    if os.environ.get("IPE_NO_PROGRESS"):
        disable = True
    return tqdm(items, desc=desc, disable=disable, leave=False)
