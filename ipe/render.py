"""Pictures of scenes: one PNG per stimulus, with a stable colour per body.

Colours come from each body's ``color`` when it has one, otherwise from a
fixed palette by the body's position in the scene, so the same body always
gets the same colour. Static shapes are grey. Rendering uses matplotlib's
non-interactive Agg backend and writes files atomically.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Circle, Polygon  # noqa: E402

from .fileio import atomic_write  # noqa: E402
from .progress import progress_bar  # noqa: E402
from .scene import Ball, Block, Scene, StaticSegment, Stimulus, world_vertices  # noqa: E402
from .scenefile import as_stimulus_set  # noqa: E402

STATIC_COLOR = "#7f7f7f"
PALETTE = [
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45",
    "#469990", "#9a6324", "#800000", "#808000", "#000075", "#ffe119", "#aaffc3", "#dcbeff",
]


def body_colors(scene: Scene) -> dict[str, str]:
    """The colour of every dynamic body, keyed by id."""
    return {b.id: (b.color or PALETTE[i % len(PALETTE)]) for i, b in enumerate(scene.bodies)}


def tight_bounds(scene: Scene, states=None) -> tuple[float, float, float, float]:
    """Smallest x0, x1, y0, y1 holding every dynamic body (and y = 0)."""
    xs, ys = [], []
    for i, b in enumerate(scene.bodies):
        x, y, a = (b.position[0], b.position[1], b.angle) if states is None else states[i]
        if isinstance(b, Block):
            pts = world_vertices(replace(b, position=(x, y), angle=a))
            xs += [p[0] for p in pts]
            ys += [p[1] for p in pts]
        else:
            xs += [x - b.radius, x + b.radius]
            ys += [y - b.radius, y + b.radius]
    ys.append(0.0)
    return min(xs), max(xs), min(ys), max(ys)


def scene_bounds(scene: Scene, states=None, pad: float = 0.15) -> tuple[float, float, float, float]:
    """A square x0, x1, y0, y1 framing the dynamic bodies (and the top of the ground)."""
    bx0, bx1, by0, by1 = tight_bounds(scene, states)
    xs, ys = [bx0, bx1], [by0, by1]
    w = max(xs) - min(xs)
    h = max(ys) - min(ys)
    size = max(w, h) * (1 + 2 * pad)
    cx = (max(xs) + min(xs)) / 2
    x0, x1 = cx - size / 2, cx + size / 2
    y0 = min(ys) - pad * size * 0.5
    return x0, x1, y0, y0 + size


def draw_scene(ax, scene: Scene, states=None, bounds=None, title: str | None = None, alpha: float = 1.0,
               edge: bool = True) -> None:
    """Draw ``scene`` on a matplotlib axis; ``states`` ((n, 3) x, y, angle) overrides body poses."""
    colors = body_colors(scene)
    for s in scene.statics:
        if isinstance(s, StaticSegment):
            ax.plot([s.a[0], s.b[0]], [s.a[1], s.b[1]], color=s.color or STATIC_COLOR,
                    linewidth=max(1.0, 2 * s.radius * 100), solid_capstyle="round")
        else:
            ax.add_patch(Polygon(world_vertices(s), closed=True, facecolor=s.color or STATIC_COLOR,
                                 edgecolor="none"))
    for i, b in enumerate(scene.bodies):
        x, y, a = (b.position[0], b.position[1], b.angle) if states is None else states[i]
        kw = dict(facecolor=colors[b.id], edgecolor="#222222" if edge else "none", linewidth=0.6, alpha=alpha)
        if isinstance(b, Ball):
            ax.add_patch(Circle((x, y), b.radius, **kw))
            ax.plot([x, x + b.radius * math.cos(a)], [y, y + b.radius * math.sin(a)], color="#222222",
                    linewidth=0.6, alpha=alpha)
        else:
            moved = replace(b, position=(x, y), angle=a)
            ax.add_patch(Polygon(world_vertices(moved), closed=True, **kw))
    x0, x1, y0, y1 = bounds or scene_bounds(scene, states)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for sp in ax.spines.values():
        sp.set_visible(False)
    if title:
        ax.set_title(title, fontsize=9)


def save_figure(fig, path: str | Path, dpi: int = 100) -> Path:
    """Save a matplotlib figure atomically (PNG unless the suffix says otherwise)."""
    path = Path(path)
    fmt = path.suffix.lstrip(".") or "png"
    atomic_write(path, lambda fh: fig.savefig(fh, format=fmt, dpi=dpi), mode="wb")
    return path


def render_stimulus(stim: Stimulus, path: str | Path, size: int = 400, title: bool = False) -> Path:
    """Write one PNG of ``stim``'s initial scene, ``size`` × ``size`` pixels."""
    dpi = 100
    fig = plt.figure(figsize=(size / dpi, size / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    fig.patch.set_facecolor("white")
    draw_scene(ax, stim.scene, title=stim.id if title else None)
    try:
        return save_figure(fig, path, dpi=dpi)
    finally:
        plt.close(fig)


def render_stimuli(stimuli, out_dir: str | Path, size: int = 400, progress: bool | None = None) -> list[Path]:
    """Write ``<out_dir>/<stimulus id>.png`` for every stimulus (progress as in :mod:`ipe.progress`)."""
    stimuli = as_stimulus_set(stimuli)
    out = Path(out_dir)
    paths = []
    with progress_bar(len(stimuli), progress, desc="rendering", unit="stimulus") as bar:
        for s in stimuli:
            paths.append(render_stimulus(s, out / f"{s.id}.png", size=size))
            bar.update(1)
    return paths


def thumbnails(ax_list: Sequence, stimuli: Sequence[Stimulus], pad: float = 0.05) -> None:
    """Draw each stimulus on its own axis, all at one scale so sizes compare."""
    tight = [tight_bounds(s.scene) for s in stimuli]
    width = max(b[1] - b[0] for b in tight) * (1 + 2 * pad)
    height = max(b[3] - b[2] for b in tight) * (1 + 2 * pad)
    for ax, s, b in zip(ax_list, stimuli, tight):
        cx = (b[0] + b[1]) / 2
        y0 = b[2] - pad * height
        draw_scene(ax, s.scene, bounds=(cx - width / 2, cx + width / 2, y0, y0 + height))
