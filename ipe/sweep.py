"""Parameter sweeps: a grid of noise parameters, and how well each point matches people.

Battaglia, Hamrick & Tenenbaum (2013) simulated every tower at every point of
an 11 σ × 16 φ grid and asked, point by point, how closely the model's
judgments tracked people's. This module holds the three pieces of that
study; the simulation itself is :func:`ipe.simulate`, which takes the grid as
its list of parameter points (and runs it serially, on a process pool or on a
Dask cluster, with the same bytes out)::

    import ipe
    from ipe.sweep import grid, score_sweep, plot_sweep

    points = grid(sigma="0:0.5:11", phi="0:0.3:16")            # 176 NoiseParams
    summary = ipe.summarize(ipe.simulate(stimuli, points, n_samples=48, seed=0))
    scores = score_sweep(summary, stimuli, responses)          # one row per point: r, RMSE, best
    plot_sweep(scores, "sweep.png")                             # σ × φ heat map of r

The command line does the same in one step: ``ipe sweep STIMULI --grid
sigma=0:0.5:11 --grid phi=0:0.3:16 --humans responses.csv --out sweep.csv``.

Grid values are written ``V1,V2,...`` or ``START:STOP:N`` (``N`` evenly spaced
values, both ends included, like :func:`numpy.linspace`). Values are rounded
to 12 significant digits, so ``0:0.3:16`` and ``0,0.02,...,0.3`` typed out
name the same points, the same rollout seeds and the same cache entries.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import InputError
from .noise import NoiseParams

GRID_SPEC = "V1,V2,... or START:STOP:N (N evenly spaced values, both ends included)"
SCORE_COLUMNS = ["n_stimuli", "model_mean", "human_mean", "r", "rmse", "rank", "best"]

__all__ = ["GRID_SPEC", "SCORE_COLUMNS", "parse_values", "grid", "varying_parameters", "score_sweep",
           "plot_sweep"]


def _number(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{where}: values must be numbers, got {text.strip()!r} (expected {GRID_SPEC})") from None


def parse_values(spec: Any, name: str = "value") -> list[float]:
    """The values of one grid axis from ``spec``: ``"0:0.5:11"``, ``"0,0.1,0.3"``, a number or a sequence.

    Values must be finite, ≥ 0 and distinct; they come back in the order
    given, rounded to 12 significant digits. Raises a one-line
    :class:`~ipe.errors.InputError` naming ``name`` otherwise.
    """
    where = f"{name}={spec!r}" if isinstance(spec, str) else name
    if isinstance(spec, bool):
        raise InputError(f"{where}: expected numbers, got {spec!r}")
    if isinstance(spec, (int, float, np.integer, np.floating)):
        raw = [float(spec)]
    elif isinstance(spec, str):
        text = spec.strip()
        if not text:
            raise InputError(f"{name}: no values (expected {GRID_SPEC})")
        if ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise InputError(f"{where}: expected START:STOP:N, e.g. 0:0.5:11")
            start, stop = _number(parts[0], where), _number(parts[1], where)
            try:
                n = int(parts[2])
            except ValueError:
                raise InputError(f"{where}: N must be a whole number, got {parts[2].strip()!r}") from None
            if n < 1:
                raise InputError(f"{where}: N must be at least 1, got {n}")
            if not (math.isfinite(start) and math.isfinite(stop)):
                raise InputError(f"{where}: START and STOP must be finite numbers")
            if stop < start:
                raise InputError(f"{where}: STOP ({stop:g}) is below START ({start:g})")
            if n == 1 and stop != start:
                raise InputError(f"{where}: one value cannot span {start:g} to {stop:g}; give N ≥ 2 or START = STOP")
            raw = list(np.linspace(start, stop, n))
        else:
            raw = [_number(p, where) for p in text.split(",")]
    else:
        try:
            raw = [float(v) for v in spec]
        except (TypeError, ValueError):
            raise InputError(f"{name}: expected numbers or {GRID_SPEC}, got {spec!r}") from None
        if not raw:
            raise InputError(f"{name}: no values")
    values = []
    for v in raw:
        if not math.isfinite(v):
            raise InputError(f"{where}: values must be finite numbers, got {v}")
        if v < 0:
            raise InputError(f"{where}: noise parameters must be >= 0, got {v:g}")
        v = float(f"{v:.12g}") + 0.0  # + 0.0 turns -0.0 into 0.0
        if v in values:
            raise InputError(f"{where}: the value {v:g} is given twice")
        values.append(v)
    return values


def grid(specs: Mapping[str, Any] | None = None, **more: Any) -> list[NoiseParams]:
    """Every combination of the given parameter values, as a list of :class:`~ipe.noise.NoiseParams`.

    ``grid(sigma="0:0.5:11", phi="0:0.3:16")`` is BHT's 176 points. Keys are
    :class:`~ipe.noise.NoiseParams` fields; each value is anything
    :func:`parse_values` reads (a single number fixes that parameter). The
    first parameter varies slowest. Unnamed parameters keep their defaults.
    """
    axes: dict[str, Any] = dict(specs or {})
    for k, v in more.items():
        if k in axes:
            raise InputError(f"grid: {k} is given twice")
        axes[k] = v
    if not axes:
        raise InputError("grid: no parameters (give at least one, e.g. sigma=0:0.5:11)")
    names = NoiseParams.names()
    unknown = [k for k in axes if k not in names]
    if unknown:
        raise InputError(f"grid: unknown noise parameter {unknown[0]!r} (known: {', '.join(names)})")
    values = {k: parse_values(v, k) for k, v in axes.items()}
    return [NoiseParams(**dict(zip(values, combo))) for combo in itertools.product(*values.values())]


def varying_parameters(table: pd.DataFrame) -> list[str]:
    """The noise-parameter columns of ``table`` that take more than one value, in :class:`NoiseParams` order."""
    return [c for c in NoiseParams.names() if c in table.columns and table[c].nunique(dropna=False) > 1]


def _param_columns(table: pd.DataFrame, what: str) -> list[str]:
    cols = [c for c in NoiseParams.names() if c in table.columns]
    if not cols:
        raise InputError(f"{what}: no noise-parameter columns ({', '.join(NoiseParams.names()[:3])}, …); "
                         "expected the table of `ipe sweep` or ipe.summarize")
    return cols


def score_sweep(summary: pd.DataFrame, stimuli, responses: pd.DataFrame | None = None, scale=None
                ) -> pd.DataFrame:
    """One row per parameter point: the model's mean judgment and, given people's responses, r and RMSE.

    ``summary`` is :func:`ipe.summarize` of a sweep (one row per point ×
    stimulus × query). For each point every stimulus's judgment on its own
    query is mapped to [0, 1] as :func:`ipe.report.normalise_judgment` does
    (counts on the response scale, as people's answers are);
    ``model_mean`` is their mean over stimuli. With
    ``responses`` (a validated response table, :func:`ipe.humans.validate_responses`)
    on ``scale`` (default: from the stimuli's query), each point also gets
    ``r`` (Pearson, per-stimulus model judgment against the human mean, both
    on [0, 1]), ``rmse``, ``rank`` (1 = highest r) and ``best`` (the point of
    highest r; the first such point on a tie). Columns: the noise-parameter
    columns, then :data:`SCORE_COLUMNS` (the human ones only with responses).
    """
    from .metrics import pearson, rmse
    from .report import judgment_column, normalise_judgment
    from .scenefile import as_stimulus_set

    if not isinstance(summary, pd.DataFrame) or summary.empty:
        raise InputError("score_sweep: the sweep table is empty")
    missing = [c for c in ("stimulus_id", "mean") if c not in summary.columns]
    if missing:
        raise InputError(f"score_sweep: the sweep table lacks column(s) {', '.join(missing)}")
    params = _param_columns(summary, "score_sweep")
    stimuli = as_stimulus_set(stimuli)
    by_id = {s.id: s for s in stimuli}
    ids = [s.id for s in stimuli]
    human01 = None
    if scale is None:
        scale = _default_scale(stimuli, needed=responses is not None)
    if responses is not None:
        ids, human01 = _human_means(responses, ids, scale)
    subset = [by_id[i] for i in ids]
    rows = []
    for key, g in summary.groupby(params, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        col = judgment_column(g, stimuli, "sweep").reindex(ids)
        v01 = np.array([normalise_judgment(col[s.id], s, scale) for s in subset], dtype=float)
        ok = np.isfinite(v01)
        row: dict[str, Any] = dict(zip(params, (float(k) for k in key)))
        row["n_stimuli"] = int(ok.sum())
        row["model_mean"] = float(v01[ok].mean()) if ok.any() else math.nan
        if human01 is not None:
            both = ok & np.isfinite(human01)
            row["human_mean"] = float(human01[both].mean()) if both.any() else math.nan
            row["r"] = pearson(v01, human01)
            row["rmse"] = rmse(v01, human01)
        rows.append(row)
    out = pd.DataFrame(rows)
    if human01 is not None:
        _rank_by_r(out)
    cols = params + [c for c in SCORE_COLUMNS if c in out.columns]
    return out[cols]


def _default_scale(stimuli, needed: bool):
    """The response scale of the stimuli's query; ``None`` when there is none and no responses need one."""
    from .humans import scale_for_stimuli

    try:
        return scale_for_stimuli(stimuli)
    except InputError:
        if needed:  # people's answers cannot be put on [0, 1] without a scale
            raise
        return None  # no responses: values of queries without a default scale are mapped as they are


def _human_means(responses: pd.DataFrame, ids: list[str], scale) -> tuple[list[str], np.ndarray]:
    """The stimuli people answered (in ``ids`` order) and their mean responses on [0, 1]."""
    from .humans import aggregate
    from .metrics import normalise_responses

    resp = responses.assign(stimulus_id=responses["stimulus_id"].astype(str))
    resp = resp[resp["stimulus_id"].isin(set(ids))]
    if resp.empty:
        raise InputError("score_sweep: no responses to any of the sweep's stimuli")
    ids = [i for i in ids if i in set(resp["stimulus_id"])]
    means = aggregate(resp).set_index("stimulus_id")["mean"].reindex(ids)
    return ids, normalise_responses(means.to_numpy(), scale)


def _rank_by_r(out: pd.DataFrame) -> None:
    """Add ``rank`` (1 = highest r, NaN last, ties in row order) and ``best`` to a score table."""
    r = out["r"].to_numpy(dtype=float)
    order = np.argsort(np.where(np.isfinite(r), -r, np.inf), kind="stable")
    rank = np.empty(len(r), dtype=np.int64)
    rank[order] = np.arange(1, len(r) + 1)
    out["rank"] = rank
    out["best"] = False
    if np.isfinite(r).any():
        out.loc[int(order[0]), "best"] = True


_LABELS = {"sigma": "σ (perceptual)", "phi": "φ (force)", "mu": "μ (mass)", "angle_sigma": "angle σ (rad)",
           "friction": "friction", "removal_impulse": "removal impulse", "push_duration": "push duration (s)"}
_SYMBOLS = {"sigma": "σ", "phi": "φ", "mu": "μ"}
_VALUE_LABELS = {"r": "r with human means", "rmse": "RMSE against human means (0–1)",
                 "model_mean": "mean model judgment (0–1)"}


def plot_sweep(scores: pd.DataFrame, path: str | Path, value: str | None = None, title: str | None = None
               ) -> Path:
    """Draw ``value`` over the sweep: a heat map for two varying parameters, a line for one.

    ``scores`` is :func:`score_sweep`'s table; ``value`` defaults to ``r`` when
    it is there, else ``model_mean``. The best point (``best``) is ringed.
    Sweeps that vary three or more parameters are refused: plot a slice. The
    figure is written atomically; its format follows the suffix of ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .render import save_figure

    value, vary = _plot_axes(scores, value)
    label = _VALUE_LABELS.get(value, value)
    best = scores[scores["best"].astype(bool)] if "best" in scores.columns else scores.iloc[0:0]
    if len(vary) == 1:
        fig, ax = _line_plot(plt, scores, vary[0], value, label, best)
    else:
        fig, ax = _heat_map(plt, scores, vary, value, label, best)
    if title is None and len(best):
        row = best.iloc[0]
        title = "best: " + ", ".join(f"{_SYMBOLS.get(p, p)} = {row[p]:g}" for p in vary) + f"  ({value} = {row[value]:.3f})"
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    try:
        return save_figure(fig, Path(path), dpi=120)
    finally:
        plt.close(fig)


def _plot_axes(scores: pd.DataFrame, value: str | None) -> tuple[str, list[str]]:
    """``(value column, varying parameters)`` of a score table, or a one-line error why it cannot be drawn."""
    if not isinstance(scores, pd.DataFrame) or scores.empty:
        raise InputError("plot_sweep: the score table is empty")
    value = value or ("r" if "r" in scores.columns else "model_mean")
    if value not in scores.columns:
        raise InputError(f"plot_sweep: no column {value!r} (have {', '.join(map(str, scores.columns))})")
    _param_columns(scores, "plot_sweep")
    vary = varying_parameters(scores)
    if not vary:
        raise InputError("plot_sweep: no parameter varies in this sweep; nothing to plot")
    if len(vary) > 2:
        raise InputError(f"plot_sweep: the sweep varies {len(vary)} parameters ({', '.join(vary)}); "
                         "a figure shows one or two: plot a slice")
    if scores.duplicated(subset=vary).any():
        raise InputError(f"plot_sweep: several rows share one value of ({', '.join(vary)})")
    return value, vary


def _line_plot(plt, scores: pd.DataFrame, p: str, value: str, label: str, best: pd.DataFrame):
    """``value`` over one varying parameter ``p``, the best point ringed."""
    s = scores.sort_values(p)
    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    ax.plot(s[p], s[value], marker="o", ms=4, lw=1.2, color="C0")
    for _, row in best.iterrows():
        ax.plot([row[p]], [row[value]], marker="o", ms=11, mfc="none", mec="C3", mew=1.6)
    ax.set_xlabel(_LABELS.get(p, p))
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    return fig, ax


def _heat_map(plt, scores: pd.DataFrame, vary: list[str], value: str, label: str, best: pd.DataFrame):
    """``value`` over two varying parameters (the first on the vertical axis), the best cell framed."""
    py, px = vary
    ys = np.sort(scores[py].unique())
    xs = np.sort(scores[px].unique())
    z = np.full((len(ys), len(xs)), np.nan)
    yi = {v: i for i, v in enumerate(ys)}
    xi = {v: i for i, v in enumerate(xs)}
    for a, b, v in zip(scores[py], scores[px], scores[value]):
        z[yi[a], xi[b]] = v
    fig, ax = plt.subplots(figsize=(1.2 + 0.42 * len(xs) + 1.4, 1.2 + 0.36 * len(ys)))
    im = ax.imshow(z, origin="lower", aspect="auto", cmap="viridis", interpolation="nearest")
    cb = fig.colorbar(im, ax=ax)
    cb.set_label(label, fontsize=8)
    if z.size <= 400:
        finite = z[np.isfinite(z)]
        mid = (finite.min() + finite.max()) / 2 if finite.size else 0.5
        for i in range(len(ys)):
            for j in range(len(xs)):
                if np.isfinite(z[i, j]):
                    ax.text(j, i, f"{z[i, j]:.2f}", ha="center", va="center", fontsize=5.5,
                            color="black" if z[i, j] > mid else "white")
    for _, row in best.iterrows():
        ax.add_patch(plt.Rectangle((xi[row[px]] - 0.5, yi[row[py]] - 0.5), 1, 1, fill=False, ec="C3", lw=2))
    step_x = max(1, len(xs) // 12)
    step_y = max(1, len(ys) // 12)
    ax.set_xticks(range(0, len(xs), step_x), [f"{v:g}" for v in xs[::step_x]], fontsize=7)
    ax.set_yticks(range(0, len(ys), step_y), [f"{v:g}" for v in ys[::step_y]], fontsize=7)
    ax.set_xlabel(_LABELS.get(px, px))
    ax.set_ylabel(_LABELS.get(py, py))
    return fig, ax
