"""Queries: pure functions of one rollout that answer the question a stimulus asks.

Every query takes the :class:`~ipe.world.RolloutResult` and the
:class:`~ipe.scene.Stimulus` (for sizes and names) and returns one float in
the query's own units. Averaged over noisy rollouts it is the model's
expected answer.

=============== ============================================================ ==========
name            value of one rollout                                           unit
=============== ============================================================ ==========
``fall``        fraction of bodies whose centre dropped by more than          fraction
                ``threshold`` (default 0.025 × the scene's block scale, the
                median long side, as in Battaglia et al. 2013)
``count_fallen`` number of such bodies                                        bodies
``direction``   mean signed horizontal displacement of the fallen bodies      m
                (0 when none fell); > 0 means to the right
``falls_left``  1 if the fallen bodies moved left on average, 0 if right,     P(left)
                NaN when nothing fell (the mean is P(left | fall))
``distance``    mean distance the bodies' centres travelled                    m
``off_table``   number of bodies whose centre ended below the top of the      bodies
                static ``support`` or beyond its left/right edges (or, with
                ``level``, whose centre ended below that height)
``body_falls``  1 if the named ``body`` fell (or, with ``level``, ended       P(fall)
                below that height), else 0
=============== ============================================================ ==========

Common parameters: ``bodies`` (a list of body ids to count; default all
that were not removed), ``label`` (count only bodies with this label),
``threshold`` (m, for the drop-based queries).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .errors import InputError
from .scene import Query, Scene, Stimulus, top_surface, x_extent

FALL_FRACTION = 0.025
"""Default fall threshold as a fraction of the scene's block scale (BHT 2013)."""


@dataclass(frozen=True)
class QuerySpec:
    name: str
    fn: Callable[..., float]
    params: tuple[str, ...]
    required: tuple[str, ...]
    unit: str
    doc: str


QUERIES: dict[str, QuerySpec] = {}


def _register(name: str, params: tuple[str, ...], unit: str, required: tuple[str, ...] = ()):
    def deco(fn):
        QUERIES[name] = QuerySpec(name, fn, params, required, unit, (fn.__doc__ or "").strip().splitlines()[0])
        return fn

    return deco


def fall_threshold(scene: Scene, threshold: float | None = None) -> float:
    """The drop (m) beyond which a body counts as fallen."""
    return FALL_FRACTION * scene.block_scale if threshold is None else float(threshold)


def _selected(r, stim: Stimulus, bodies=None, label=None) -> np.ndarray:
    mask = ~r.removed
    if bodies is not None:
        wanted = {bodies} if isinstance(bodies, str) else set(bodies)
        mask &= np.array([bid in wanted for bid in r.body_ids])
    if label is not None:
        mask &= np.array([b.label == label for b in stim.scene.bodies])
    return mask


def fallen_mask(r, stim: Stimulus, threshold=None, bodies=None, label=None) -> np.ndarray:
    """Boolean array: which bodies fell (dropped more than the threshold)."""
    thr = fall_threshold(stim.scene, threshold)
    drop = r.initial[:, 1] - r.final[:, 1]
    return (drop > thr) & _selected(r, stim, bodies, label)


@_register("fall", ("threshold", "bodies", "label"), "fraction")
def q_fall(r, stim, threshold=None, bodies=None, label=None) -> float:
    """Fraction of bodies that fell."""
    sel = _selected(r, stim, bodies, label)
    n = int(sel.sum())
    if n == 0:
        return math.nan
    return float(fallen_mask(r, stim, threshold, bodies, label).sum()) / n


@_register("count_fallen", ("threshold", "bodies", "label"), "bodies")
def q_count_fallen(r, stim, threshold=None, bodies=None, label=None) -> float:
    """Number of bodies that fell."""
    return float(fallen_mask(r, stim, threshold, bodies, label).sum())


@_register("direction", ("threshold", "bodies", "label"), "m")
def q_direction(r, stim, threshold=None, bodies=None, label=None) -> float:
    """Mean signed horizontal displacement of the fallen bodies (0 if none fell)."""
    m = fallen_mask(r, stim, threshold, bodies, label)
    if not m.any():
        return 0.0
    return float(np.mean(r.final[m, 0] - r.initial[m, 0]))


@_register("falls_left", ("threshold", "bodies", "label"), "P(left)")
def q_falls_left(r, stim, threshold=None, bodies=None, label=None) -> float:
    """1 if the fallen bodies moved left on average, 0 if right, NaN if none fell."""
    m = fallen_mask(r, stim, threshold, bodies, label)
    if not m.any():
        return math.nan
    dx = float(np.mean(r.final[m, 0] - r.initial[m, 0]))
    return 1.0 if dx < 0 else 0.0


@_register("distance", ("bodies", "label"), "m")
def q_distance(r, stim, bodies=None, label=None) -> float:
    """Mean distance the selected bodies' centres travelled."""
    sel = _selected(r, stim, bodies, label)
    if not sel.any():
        return math.nan
    d = np.hypot(r.final[sel, 0] - r.initial[sel, 0], r.final[sel, 1] - r.initial[sel, 1])
    return float(np.mean(d))


def off_support_mask(r, stim: Stimulus, support: str | None = None, bodies=None, label=None,
                     level: float | None = None) -> np.ndarray:
    """Boolean array: which bodies ended off the named static support (or below ``level``)."""
    fx, fy = r.final[:, 0], r.final[:, 1]
    if level is not None:
        off = fy < float(level)
    else:
        s = stim.scene.static(support)
        top = top_surface(s)
        x0, x1 = x_extent(s)
        off = (fy < top) | (fx < x0) | (fx > x1)
    return off & _selected(r, stim, bodies, label)


@_register("off_table", ("support", "level", "bodies", "label"), "bodies")
def q_off_table(r, stim, support=None, level=None, bodies=None, label=None) -> float:
    """Number of bodies whose centre left the named support (or ended below ``level``)."""
    return float(off_support_mask(r, stim, support, bodies, label, level).sum())


@_register("body_falls", ("body", "threshold", "level"), "P(fall)", required=("body",))
def q_body_falls(r, stim, body, threshold=None, level=None) -> float:
    """1 if the named body fell (dropped more than the threshold, or ended below ``level``), else 0."""
    idx = r.body_ids.index(body)
    if r.removed[idx]:
        return math.nan
    if level is not None:
        return 1.0 if r.final[idx, 1] < float(level) else 0.0
    thr = fall_threshold(stim.scene, threshold)
    return 1.0 if (r.initial[idx, 1] - r.final[idx, 1]) > thr else 0.0


def check_query(q: Query, scene: Scene | None = None) -> None:
    """Raise :class:`InputError` if ``q`` names an unknown query or bad parameters."""
    spec = QUERIES.get(q.name)
    if spec is None:
        raise InputError(f"unknown query {q.name!r}; known: {', '.join(sorted(QUERIES))}")
    for k in q.params:
        if k not in spec.params:
            allowed = ", ".join(spec.params) or "none"
            raise InputError(f"query {q.name!r} has no parameter {k!r} (parameters: {allowed})")
    for k in spec.required:
        if k not in q.params:
            raise InputError(f"query {q.name!r} needs parameter {k!r}")
    p = q.params
    if "threshold" in p and p["threshold"] is not None:
        v = p["threshold"]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise InputError(f"threshold must be a positive number, got {v!r}")
    if "level" in p and p["level"] is not None:
        v = p["level"]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise InputError(f"level must be a finite number (m), got {v!r}")
    if q.name == "off_table" and p.get("support") is None and p.get("level") is None:
        raise InputError("query 'off_table' needs parameter 'support' or 'level'")
    for key in ("body", "support", "label"):
        if key in p and not isinstance(p[key], str):
            raise InputError(f"{key} must be a string, got {p[key]!r}")
    if "bodies" in p and p["bodies"] is not None:
        v = p["bodies"]
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise InputError("bodies must be a list of body ids")
    if scene is None:
        return
    ids = set(scene.body_ids)
    if "body" in p and p["body"] not in ids:
        raise InputError(f"unknown body {p['body']!r}")
    if p.get("bodies") is not None:
        for b in [p["bodies"]] if isinstance(p["bodies"], str) else p["bodies"]:
            if b not in ids:
                raise InputError(f"unknown body {b!r}")
    if "support" in p and p["support"] not in {s.id for s in scene.statics}:
        raise InputError(f"unknown static support {p['support']!r}")


def parse_query(text: str | Query | dict[str, Any]) -> Query:
    """Make a :class:`Query` from ``"name"``, ``"name:key=value,key=value"`` or a dict."""
    if isinstance(text, Query):
        q = text
    elif isinstance(text, dict):
        d = dict(text)
        if "name" not in d:
            raise InputError("a query needs a 'name'")
        q = Query(d.pop("name"), d)
    else:
        name, _, rest = str(text).partition(":")
        params: dict[str, Any] = {}
        for item in filter(None, rest.split(",")):
            key, eq, val = item.partition("=")
            if not eq:
                raise InputError(f"query parameter {item!r} must look like key=value")
            try:
                params[key.strip()] = float(val) if key.strip() == "threshold" else val.strip()
            except ValueError:
                raise InputError(f"query parameter {key!r} must be a number, got {val!r}") from None
            if key.strip() == "bodies":
                params["bodies"] = [b for b in val.split("+") if b]
        q = Query(name.strip(), params)
    check_query(q)
    return q


def evaluate(q: Query, rollout, stim: Stimulus) -> float:
    """The value of query ``q`` on one rollout of ``stim``."""
    spec = QUERIES[q.name]
    return spec.fn(rollout, stim, **dict(q.params))
