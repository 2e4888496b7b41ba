"""Where things go: recorded paths of noisy rollouts, trajectory fans, landing distributions, fall directions.

The chain of calls::

    paths, landings = record_paths(stimuli, NoiseParams(launch_position=0.2, collision_angle=0.1),
                                   n_samples=50, seed=0)
    landing_summary(landings)                       # per stimulus: mean, sd, noise-free landing, quantiles
    plot_trajectories(stimuli, paths, landings, "fans/")   # one PNG per stimulus

:func:`record_paths` runs, for every stimulus, the noise-free rollout and
``n_samples`` noisy ones (the very rollouts :func:`ipe.simulate` runs with
the same ``seed``: same seeds, same values) and keeps each rollout's path,
downsampled to one pose every ``every`` physics steps (by default one per
frame, ``simulation.substeps``), plus the landing value.

Tables (tidy):

*paths* — ``stimulus_id, sample, noise_free, frame, t, body, x, y, angle``;
``sample`` is −1 for the noise-free rollout.

*landings* — ``stimulus_id, sample, noise_free, query, value, landed``: the value
of the landing query (by default the stimulus's own query if it is
``landing_x``, otherwise ``landing_x`` of the first ball on the ``ground``
static) in each rollout; a ball that never lands answers its x at the end of
the rollout (:func:`ipe.queries.landing`), and ``landed`` says whether it
landed.

Fall direction (towers): :func:`fall_directions` asks the ``fall_angle``
query and summarises it per stimulus with circular statistics
(:func:`ipe.queries.circular_summary`).
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .errors import InputError
from .montecarlo import run_sample, simulate
from .noise import NoiseParams
from .queries import check_query, circular_summary, evaluate, parse_query
from .scene import Ball, Query, Stimulus, StaticSegment, world_vertices
from .scenefile import as_stimulus_set
from .validation import NONNEG_INT, POSITIVE_INT, SEED, Optional, validate_params

PATH_COLUMNS = ["stimulus_id", "sample", "noise_free", "frame", "t", "body", "x", "y", "angle"]
LANDING_COLUMNS = ["stimulus_id", "sample", "noise_free", "query", "value", "landed"]
LANDING_QUERIES = ("landing_x", "time_to_land")


def landing_query(stim: Stimulus, query: str | Query | None = None) -> Query:
    """The landing query asked of ``stim``: ``query`` if given, else its own if it is a landing query,
    else ``landing_x`` of its first ball on the static ``ground``.

    Raises :class:`InputError` (one line) when none can be made.
    """
    if query is not None:
        q = parse_query(query)
        if q.name not in LANDING_QUERIES:
            raise InputError(f"query {q.key!r} is not a landing query; expected one of "
                             f"{', '.join(sorted(LANDING_QUERIES))}")
    elif stim.query.name in LANDING_QUERIES:
        q = stim.query
    else:
        balls = [b.id for b in stim.scene.bodies if isinstance(b, Ball)]
        if not balls:
            raise InputError(f"stimulus {stim.id!r}: no landing query and no ball; give --query "
                             "landing_x:body=ID,target=STATIC")
        q = Query("landing_x", {"body": balls[0], "target": "ground"})
    try:
        check_query(q, stim.scene)
    except InputError as exc:
        raise exc.prefixed(f"stimulus {stim.id!r}: query {q.key!r}") from None
    return q


def _bar(total: int, progress: bool | None, desc: str):
    from tqdm.auto import tqdm

    disable = (not sys.stderr.isatty()) if progress is None else (not progress)
    if os.environ.get("IPE_NO_PROGRESS"):
        disable = True
    return tqdm(total=total, unit="rollout", desc=desc, disable=disable, leave=False, dynamic_ncols=True)


@validate_params(n_samples=NONNEG_INT, seed=SEED, every=Optional(POSITIVE_INT))
def record_paths(stimuli, params: NoiseParams = NoiseParams(), n_samples: int = 50, seed: int = 0,
                 every: int | None = None, query: str | Query | None = None, bodies: Sequence[str] | None = None,
                 progress: bool | None = None, early_stop: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run and record the noise-free and ``n_samples`` noisy rollouts of each stimulus.

    ``every``: keep one pose every this many physics steps (default: one
    per frame). ``bodies``: record only these body ids (default: all).
    ``early_stop=False`` records every rollout to its horizon (with it, a
    path ends once the scene is at rest; paths are drawn past the landing,
    so the landing stop is not used here).
    Returns the *paths* and *landings* tables described in the module
    docstring.
    """
    stimuli = as_stimulus_set(stimuli)
    queries = [landing_query(s, query) for s in stimuli]
    paths: list[pd.DataFrame] = []
    land: dict[str, list] = {c: [] for c in LANDING_COLUMNS}
    bar = _bar(len(stimuli) * (n_samples + 1), progress, "recording")
    try:
        for stim, q in zip(stimuli, queries):
            step = int(every or stim.scene.simulation.substeps)
            keep = list(range(len(stim.scene.bodies)))
            if bodies is not None:
                unknown = [b for b in bodies if b not in stim.scene.body_ids]
                if unknown:
                    raise InputError(f"stimulus {stim.id!r}: unknown body {unknown[0]!r}")
                keep = [stim.scene.body_ids.index(b) for b in bodies]
            for sample in range(-1, n_samples):
                p = NoiseParams() if sample < 0 else params
                vals, res = run_sample(stim, p, seed, max(sample, 0), [q], record_every=step,
                                       early_stop=bool(early_stop))
                landed = math.isfinite(evaluate(Query("time_to_land", dict(q.params)), res, stim))
                traj = res.trajectory[:, keep, :]
                nf, nb = traj.shape[0], traj.shape[1]
                paths.append(pd.DataFrame({
                    "stimulus_id": stim.id, "sample": sample, "noise_free": sample < 0,
                    "frame": np.repeat(np.arange(nf), nb), "t": np.repeat(res.times, nb),
                    "body": np.tile([stim.scene.body_ids[k] for k in keep], nf),
                    "x": traj[:, :, 0].ravel(), "y": traj[:, :, 1].ravel(), "angle": traj[:, :, 2].ravel()}))
                land["stimulus_id"].append(stim.id)
                land["sample"].append(sample)
                land["noise_free"].append(sample < 0)
                land["query"].append(q.key)
                land["value"].append(float(vals[0]))
                land["landed"].append(landed)
                bar.update(1)
    finally:
        bar.close()
    path_table = pd.concat(paths, ignore_index=True)[PATH_COLUMNS] if paths else pd.DataFrame(columns=PATH_COLUMNS)
    return path_table, pd.DataFrame(land, columns=LANDING_COLUMNS)


def landing_density(values, grid, bandwidth: float | None = None) -> np.ndarray:
    """A Gaussian kernel density of ``values`` (NaNs dropped) on ``grid``.

    ``bandwidth`` defaults to Silverman's robust rule
    (0.9 · min(sd, IQR/1.34) · n^(−1/5)), which does not smear the two modes
    of a ball that goes either way round an obstacle; with fewer than two
    distinct values a narrow bump of 1 % of the grid's span is used. NaN
    rollouts (no landing) are left out; the density integrates to 1.
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    grid = np.asarray(grid, dtype=float)
    if not len(v):
        return np.zeros_like(grid)
    if bandwidth is None:
        sd = float(np.std(v, ddof=1)) if len(v) > 1 else 0.0
        iqr = float(np.subtract(*np.percentile(v, [75, 25])))
        spread = min(sd, iqr / 1.34) if iqr > 0 else sd
        bandwidth = 0.9 * spread * len(v) ** (-0.2) if spread > 0 else 0.01 * float(np.ptp(grid) or 1.0)
    z = (grid[:, None] - v[None, :]) / bandwidth
    return np.exp(-0.5 * z**2).sum(axis=1) / (len(v) * bandwidth * math.sqrt(2 * math.pi))


def landing_summary(landings: pd.DataFrame) -> pd.DataFrame:
    """Per stimulus and query: ``n``, ``n_landed``, ``mean``, ``sd``, ``q05``, ``q50``, ``q95`` of the noisy
    rollouts and ``no_noise`` (the noise-free value). ``n_landed`` counts the rollouts whose ball reached
    its target (the ``landed`` column; tables without it: the finite values); the statistics cover every
    finite value, landed or not (a ball that never lands answers where it ended)."""
    missing = [c for c in LANDING_COLUMNS if c not in landings.columns and c != "landed"]
    if missing:
        raise InputError(f"landings table lacks column(s) {', '.join(missing)}")
    rows = []
    for (sid, q), g in landings.groupby(["stimulus_id", "query"], sort=False):
        noisy = g.loc[~g["noise_free"].astype(bool), "value"].to_numpy(float)
        ok = noisy[np.isfinite(noisy)]
        nf = g.loc[g["noise_free"].astype(bool), "value"]
        n_landed = (int(g.loc[~g["noise_free"].astype(bool), "landed"].astype(bool).sum()) if "landed" in g
                    else len(ok))
        row = {"stimulus_id": sid, "query": q, "n": len(noisy), "n_landed": n_landed,
               "no_noise": float(nf.iloc[0]) if len(nf) else math.nan,
               "mean": float(ok.mean()) if len(ok) else math.nan,
               "sd": float(ok.std(ddof=1)) if len(ok) > 1 else math.nan}
        for p in (5, 50, 95):
            row[f"q{p:02d}"] = float(np.percentile(ok, p)) if len(ok) else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def fall_directions(stimuli, params: NoiseParams, n_samples: int = 100, seed: int = 0, workers: int = 1,
                    progress: bool | None = None, **query_params) -> pd.DataFrame:
    """The distribution of fall direction per stimulus, with circular statistics.

    Asks ``fall_angle`` (``query_params``: ``threshold``, ``bodies``,
    ``label``) in ``n_samples`` rollouts and returns one row per stimulus
    with :func:`ipe.queries.circular_summary`'s columns plus ``p_fall`` (the
    fraction of rollouts in which something fell).
    """
    q = Query("fall_angle", dict(query_params))
    check_query(q)
    table = simulate(stimuli, params, n_samples=n_samples, seed=seed, queries=[q], workers=workers,
                     progress=progress)
    rows = []
    for sid, g in table.groupby("stimulus_id", sort=False):
        v = g["value"].to_numpy(float)
        row = {"stimulus_id": sid, **circular_summary(v), "p_fall": float(np.mean(np.isfinite(v)))}
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- figures


def _scene_extent(stim: Stimulus, paths: pd.DataFrame | None = None, pad: float = 0.04):
    xs, ys = [], []
    for s in stim.scene.statics:
        if isinstance(s, StaticSegment):
            xs += [s.a[0], s.b[0]]
            ys += [s.a[1], s.b[1]]
        else:
            pts = world_vertices(s)
            xs += [p[0] for p in pts]
            ys += [p[1] for p in pts]
    for b in stim.scene.bodies:
        r = b.radius if isinstance(b, Ball) else max(b.width, b.height) / 2
        xs += [b.position[0] - r, b.position[0] + r]
        ys += [b.position[1] - r, b.position[1] + r]
    if paths is not None and len(paths):
        xs += [float(paths["x"].min()), float(paths["x"].max())]
        ys += [float(paths["y"].min()), float(paths["y"].max())]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    span = max(x1 - x0, y1 - y0)
    return x0 - pad * span, x1 + pad * span, y0 - pad * span, y1 + pad * span


def plot_fan(ax, stim: Stimulus, paths: pd.DataFrame, body: str | None = None, max_paths: int | None = None,
             color: str = "#1f77b4") -> None:
    """A trajectory fan: every noisy path of ``body`` thin and translucent, the noise-free path on top.

    ``paths`` is a *paths* table (it may hold other stimuli too).
    """
    from .render import draw_scene

    p = paths[paths["stimulus_id"] == stim.id]
    if body is None:
        balls = [b.id for b in stim.scene.bodies if isinstance(b, Ball)]
        body = balls[0] if balls else stim.scene.body_ids[0]
    p = p[p["body"] == body]
    if p.empty:
        raise InputError(f"stimulus {stim.id!r}: no recorded path of body {body!r}")
    draw_scene(ax, stim.scene, bounds=_scene_extent(stim, p), alpha=0.35)
    noisy = [g for s, g in p[~p["noise_free"].astype(bool)].groupby("sample", sort=True)]
    if max_paths is not None:
        noisy = noisy[:max_paths]
    alpha = max(0.08, min(0.5, 8.0 / max(len(noisy), 1)))
    for g in noisy:
        ax.plot(g["x"].to_numpy(), g["y"].to_numpy(), color=color, linewidth=0.8, alpha=alpha)
    free = p[p["noise_free"].astype(bool)]
    if len(free):
        ax.plot(free["x"].to_numpy(), free["y"].to_numpy(), color="#111111", linewidth=2.2,
                label="no noise", zorder=5)
        ax.plot(free["x"].to_numpy(), free["y"].to_numpy(), color="#ffd400", linewidth=0.9, zorder=6)


def plot_landings(ax, stim: Stimulus, landings: pd.DataFrame, bins: int = 30, xlim=None,
                  color: str = "#1f77b4") -> None:
    """Histogram and kernel density of the noisy landing values of ``stim``; the noise-free value as a line."""
    g = landings[landings["stimulus_id"] == stim.id]
    noisy = g.loc[~g["noise_free"].astype(bool), "value"].to_numpy(float)
    ok = noisy[np.isfinite(noisy)]
    lo, hi = xlim if xlim is not None else ((ok.min(), ok.max()) if len(ok) else (0.0, 1.0))
    if len(ok):
        ax.hist(ok, bins=bins, range=(lo, hi), density=True, color=color, alpha=0.35, edgecolor="none")
        grid = np.linspace(lo, hi, 400)
        ax.plot(grid, landing_density(ok, grid), color=color, linewidth=1.5, label="noisy IPE")
    nf = g.loc[g["noise_free"].astype(bool), "value"]
    if len(nf) and math.isfinite(float(nf.iloc[0])):
        ax.axvline(float(nf.iloc[0]), color="#111111", linewidth=1.5, label="no noise")
    ax.set_xlim(lo, hi)
    ax.set_yticks([])
    q = str(g["query"].iloc[0]) if len(g) else "landing"
    n_landed = int(g.loc[~g["noise_free"].astype(bool), "landed"].astype(bool).sum()) if "landed" in g else len(ok)
    ax.set_xlabel(f"{q}  ({n_landed} of {len(noisy)} landed)", fontsize=8)
    ax.tick_params(labelsize=7)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)


def trajectory_figure(stim: Stimulus, paths: pd.DataFrame, landings: pd.DataFrame | None = None,
                      body: str | None = None, size: float = 5.0):
    """A figure for one stimulus: the fan on top and, with ``landings``, the landing density below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if landings is None:
        fig, ax = plt.subplots(figsize=(size, size))
        plot_fan(ax, stim, paths, body=body)
        ax.set_title(stim.id, fontsize=9)
        return fig
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(size, size * 1.3), gridspec_kw={"height_ratios": [4, 1]})
    plot_fan(ax, stim, paths, body=body)
    ax.set_title(stim.id, fontsize=9)
    x0, x1 = ax.get_xlim()
    q = landings.loc[landings["stimulus_id"] == stim.id, "query"]
    if len(q) and str(q.iloc[0]).startswith("landing_x"):
        plot_landings(bx, stim, landings, xlim=(x0, x1))
    else:
        plot_landings(bx, stim, landings)
    fig.tight_layout()
    return fig


def plot_trajectories(stimuli, paths: pd.DataFrame, landings: pd.DataFrame | None, out_dir: str | Path,
                      body: str | None = None, progress: bool | None = None) -> list[Path]:
    """Write ``<out_dir>/<stimulus id>.png`` (fan + landing density) for every stimulus in ``paths``."""
    import matplotlib.pyplot as plt

    from .render import save_figure

    stimuli = as_stimulus_set(stimuli)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    done = set(paths["stimulus_id"])
    written = []
    for stim in stimuli:
        if stim.id not in done:
            continue
        fig = trajectory_figure(stim, paths, landings, body=body)
        try:
            written.append(save_figure(fig, out / f"{stim.id}.png", dpi=100))
        finally:
            plt.close(fig)
    return written


__all__ = ["LANDING_COLUMNS", "PATH_COLUMNS", "fall_directions", "landing_density", "landing_query",
           "landing_summary", "plot_fan", "plot_landings", "plot_trajectories", "record_paths",
           "trajectory_figure"]
