"""Queries: pure functions of one rollout that answer the question a stimulus asks.

Every query takes the :class:`~ipe.rollout.RolloutResult` and the
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
``landing_x``   x of ``body``'s centre when it first touches static            m
                ``target`` (or first crosses height ``level``, downwards);
                if it never does, its x at the end of the rollout (the
                horizon, or the rest it came to: see :func:`landing`)
``time_to_land`` time (s) of that first touch or crossing; NaN if never       s
``first_contact`` 1 if the first shape ``body`` touches (among ``among``,     P(first)
                or among all shapes) is ``target``, 0 if another, NaN if
                it touches none
``fall_angle``  direction of the mean displacement of the fallen bodies,      rad
                ``atan2(dy, dx)`` in (−π, π] (0 = right, −π/2 = straight
                down); NaN when none fell. Average it with
                :func:`circular_summary`, not an arithmetic mean.
=============== ============================================================ ==========

The landing queries (``landing_x``, ``time_to_land``, ``first_contact``)
need a *tracked* rollout (:attr:`ipe.rollout.Schedule.track`: every step's pose
and the first contacts); :func:`ipe.montecarlo.run_sample` turns tracking on
when one of its queries needs it (:func:`needs_tracking`). Their answers are
final once the target has been touched (or the level crossed; for
``first_contact`` once the body touches anything among ``among``):
:func:`stop_condition` turns that into the test
:attr:`ipe.rollout.Schedule.stop_when` that ends such a rollout there.

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
from .validation import POSITIVE_NUMBER, Number, Optional, Rule, Text, check

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


TRACKED_QUERIES = frozenset({"landing_x", "time_to_land", "first_contact"})
"""Queries that read :class:`ipe.rollout.RolloutEvents` and so need a tracked rollout."""


def needs_tracking(queries) -> bool:
    """True when any of ``queries`` reads the step-by-step events of a rollout."""
    return any(q.name in TRACKED_QUERIES for q in queries)


def _events(r, name: str):
    ev = getattr(r, "events", None)
    if ev is None:
        raise InputError(f"query {name!r} needs a tracked rollout (Schedule.track=True); "
                         "ipe.montecarlo.run_sample tracks when asked this query")
    return ev


def landing(r, body: str, target: str | None = None, level: float | None = None) -> tuple[float, float]:
    """``(x, t)`` of ``body`` when it first touches static/body ``target`` or first crosses ``level`` downwards.

    With ``target``, x is the body's centre in the physics step in which the
    contact began. With ``level``, the crossing is interpolated linearly
    between the two physics steps around it.

    If it never happens within the rollout, ``x`` is the body's x at the
    end of the rollout and ``t`` is NaN: the position at the horizon, as the
    published Plinko engine answers, never NaN. A rollout that stopped early
    ended because the scene was at rest (no body moving, see
    :mod:`ipe.world`), so its end position is the one the horizon would give
    (to within the rest tolerance).
    """
    ev = _events(r, "landing_x")
    idx = r.body_ids.index(body)
    if target is not None:
        hit = ev.contacts.get((body, target))
        if hit is None:
            return float(r.final[idx, 0]), math.nan
        step, x, _ = hit
        return x, step * ev.dt
    lv = float(level)
    ys = ev.path[:, idx, 1]
    below = np.nonzero(ys < lv)[0]
    if not len(below):
        return float(r.final[idx, 0]), math.nan
    k = int(below[0])
    if k == 0:
        return float(ev.path[0, idx, 0]), 0.0
    y0, y1 = ys[k - 1], ys[k]
    f = (y0 - lv) / (y0 - y1) if y0 != y1 else 1.0
    x0, x1 = ev.path[k - 1, idx, 0], ev.path[k, idx, 0]
    return float(x0 + f * (x1 - x0)), float((k - 1 + f) * ev.dt)


@dataclass(frozen=True)
class HeightTest:
    """When the height-based answers of a rollout (``fall``, ``count_fallen``, ``body_falls``) are final.

    Each of these answers reads only whether some bodies' centres *end*
    below a height: ``initial y − final y > threshold`` (the drop test of
    :func:`fallen_mask`) or ``final y < level``. Whether a body has fallen
    can change back and forth during a rollout (a body that sinks past the
    threshold can be pushed back up; one that rests can be knocked over), so
    no answer is final just because a body has fallen or is at rest. It is
    final when every body it counts is *certain* to end on one side of its
    height: given bounds ``low ≤ final y ≤ high`` that hold whatever happens
    up to the horizon (:class:`ipe.rollout.ReachBound` derives them from the
    energy left in the scene), a body is certain to have fallen if it has
    fallen at ``high`` and certain not to have if it has not at ``low`` (the
    tests are monotone in y, and the same float expressions as the queries').

    ``parts`` holds one ``(mask, threshold, level)`` per query: the bodies it
    counts (removed ones are left out at run time, as the queries do) and its
    drop threshold, or its ``level``.
    """

    parts: tuple[tuple[np.ndarray, float, float | None], ...]

    @staticmethod
    def _fallen(y0: np.ndarray, y: np.ndarray, threshold: float, level: float | None) -> np.ndarray:
        return y < level if level is not None else (y0 - y) > threshold

    def final(self, y0: np.ndarray, low: np.ndarray, high: np.ndarray, removed: np.ndarray) -> bool:
        """Whether every answer is the same for any final heights between ``low`` and ``high``."""
        for mask, thr, level in self.parts:
            sel = mask & ~removed
            decided = self._fallen(y0, high, thr, level) | ~self._fallen(y0, low, thr, level)
            if not decided[sel].all():
                return False
        return True

    def could_be_final(self, y0: np.ndarray, y: np.ndarray, floor: np.ndarray, removed: np.ndarray) -> bool:
        """A cheap filter before :meth:`final` (heights ``y`` now): every counted body has fallen now or
        cannot fall even at its ``floor`` height. A body still standing could only be decided by a bound
        narrower than its distance to the threshold; the filter gives those up. Never changes an answer."""
        for mask, thr, level in self.parts:
            sel = mask & ~removed
            if not (self._fallen(y0, y, thr, level) | ~self._fallen(y0, floor, thr, level))[sel].all():
                return False
        return True

    def possible(self, y0: np.ndarray, floor: np.ndarray, rise: np.ndarray, margin: float) -> bool:
        """Whether bounds of the kind :class:`~ipe.rollout.ReachBound` gives could ever decide every answer.

        ``floor``: the lowest height each body can reach; ``rise``: no upper
        bound is ever below this; ``margin``: no bound is ever narrower than
        this around the body. A body is undecidable if it can fall (its floor
        height counts as fallen), cannot be shown fallen even lying on the
        floor, and would count as fallen at ``margin`` below its start.
        Used to skip the checks where they cannot succeed; never changes an answer.
        """
        for mask, thr, level in self.parts:
            undecidable = self._fallen(y0, floor, thr, level) & ~self._fallen(y0, rise, thr, level) & \
                self._fallen(y0, y0 - margin, thr, level)
            if undecidable[mask].any():
                return False
        return True


def final_condition(queries, stim: Stimulus) -> HeightTest | None:
    """The :class:`HeightTest` that tells when the answers to ``queries`` are final, or ``None``.

    Only ``fall``, ``count_fallen`` and ``body_falls`` have one; ``None``
    when any other query is asked (its answer moves with every body's
    position, so only rest ends it) or none is.
    """
    scene = stim.scene
    n = len(scene.bodies)
    parts = []
    for q in queries:
        p = q.params
        if q.name in ("fall", "count_fallen"):
            mask = np.ones(n, dtype=bool)
            if p.get("bodies") is not None:
                wanted = set(_ids(p["bodies"]))
                mask &= np.array([bid in wanted for bid in scene.body_ids])
            if p.get("label") is not None:
                mask &= np.array([b.label == p["label"] for b in scene.bodies])
            parts.append((mask, fall_threshold(scene, p.get("threshold")), None))
        elif q.name == "body_falls":
            mask = np.array([bid == p["body"] for bid in scene.body_ids])
            level = p.get("level")
            parts.append((mask, fall_threshold(scene, p.get("threshold")), None if level is None else float(level)))
        else:
            return None
    return HeightTest(tuple(parts)) if parts else None


def stop_condition(queries, stim: Stimulus):
    """A test ``f(contacts, path) -> bool`` that is True once every query in ``queries`` has its final answer.

    Only the landing queries have one (``landing_x`` and ``time_to_land``:
    the target touched or the level crossed; ``first_contact``: the body
    touched one of the shapes it asks about); ``None`` when any other query
    is asked (it reads the end of the rollout) or none is.
    """
    tests = []
    for q in queries:
        p = q.params
        if q.name not in TRACKED_QUERIES:
            return None
        body = p["body"]
        if q.name in ("landing_x", "time_to_land") and p.get("target") is not None:
            key = (body, p["target"])
            tests.append(lambda c, path, key=key: key in c)
        elif q.name in ("landing_x", "time_to_land"):
            idx, lv = stim.scene.body_ids.index(body), float(p["level"])
            tests.append(lambda c, path, idx=idx, lv=lv: path[-1][idx, 1] < lv)
        else:
            among = p.get("among")
            wanted = None if among is None else ({among} if isinstance(among, str) else set(among))
            tests.append(lambda c, path, body=body, wanted=wanted:
                         any(b == body and (wanted is None or o in wanted) for b, o in c))
    if not tests:
        return None
    if len(tests) == 1:
        return tests[0]
    return lambda c, path: all(t(c, path) for t in tests)


@_register("landing_x", ("body", "target", "level"), "m", required=("body",))
def q_landing_x(r, stim, body, target=None, level=None) -> float:
    """x of the body's centre when it first touches ``target`` (or crosses ``level``); if never, its x at the end."""
    return landing(r, body, target, level)[0]


@_register("time_to_land", ("body", "target", "level"), "s", required=("body",))
def q_time_to_land(r, stim, body, target=None, level=None) -> float:
    """Time (s) at which the body first touches ``target`` (or crosses ``level``); NaN if never."""
    return landing(r, body, target, level)[1]


@_register("first_contact", ("body", "target", "among"), "P(first)", required=("body", "target"))
def q_first_contact(r, stim, body, target, among=None) -> float:
    """1 if the first shape the body touches (among ``among``) is ``target``, 0 if another, NaN if none."""
    ev = _events(r, "first_contact")
    wanted = None if among is None else ([among] if isinstance(among, str) else list(among))
    first = ev.first_contact(body, wanted)
    if first is None:
        return math.nan
    return 1.0 if first == target else 0.0


@_register("fall_angle", ("threshold", "bodies", "label"), "rad")
def q_fall_angle(r, stim, threshold=None, bodies=None, label=None) -> float:
    """Direction atan2(dy, dx) of the fallen bodies' mean displacement (rad); NaN if none fell."""
    m = fallen_mask(r, stim, threshold, bodies, label)
    if not m.any():
        return math.nan
    d = r.final[m, :2] - r.initial[m, :2]
    return float(math.atan2(float(np.mean(d[:, 1])), float(np.mean(d[:, 0]))))


def circular_summary(angles) -> dict[str, float]:
    """Circular statistics of angles (rad), NaNs dropped.

    Returns ``n``, ``mean`` (the circular mean direction, in (−π, π]),
    ``resultant`` (the mean resultant length R̄ ∈ [0, 1]: 1 when all angles
    agree, near 0 when they are spread evenly), ``circ_sd`` (√(−2 ln R̄), rad),
    ``kappa`` (the von Mises concentration estimated from R̄, Fisher 1993
    approximation) and ``p_left`` (fraction of angles pointing left,
    |θ| > π/2).
    """
    a = np.asarray(angles, dtype=float)
    a = a[~np.isnan(a)]
    n = len(a)
    if n == 0:
        return {"n": 0, "mean": math.nan, "resultant": math.nan, "circ_sd": math.nan, "kappa": math.nan,
                "p_left": math.nan}
    c, s_ = float(np.mean(np.cos(a))), float(np.mean(np.sin(a)))
    rbar = min(1.0, math.hypot(c, s_))
    mean = math.atan2(s_, c) if rbar > 0 else math.nan
    circ_sd = math.sqrt(-2.0 * math.log(rbar)) if rbar > 0 else math.inf
    if rbar < 0.53:
        kappa = 2 * rbar + rbar**3 + 5 * rbar**5 / 6
    elif rbar < 0.85:
        kappa = -0.4 + 1.39 * rbar + 0.43 / (1 - rbar)
    elif rbar < 1.0:
        kappa = 1 / (rbar**3 - 4 * rbar**2 + 3 * rbar)
    else:
        kappa = math.inf
    return {"n": n, "mean": mean, "resultant": rbar, "circ_sd": circ_sd, "kappa": float(kappa),
            "p_left": float(np.mean(np.abs(a) > math.pi / 2))}


class IdList(Rule):
    """One id, or a list (or tuple) of ids."""

    def __init__(self, description: str):
        self.description = description

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) or (isinstance(value, (list, tuple)) and all(isinstance(x, str) for x in value))


#: The declared rule of every query parameter (each query takes the ones its :class:`QuerySpec` lists).
PARAM_RULES: dict[str, Rule] = {
    "threshold": Optional(POSITIVE_NUMBER),
    "level": Optional(Number(description="a finite height (m)")),
    "body": Text(description="a string"),
    "support": Text(description="a string"),
    "label": Text(description="a string"),
    "target": Text(description="a string"),
    "among": Optional(IdList("a list of shape ids")),
    "bodies": Optional(IdList("a list of body ids")),
}


def _ids(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def check_query(q: Query, scene: Scene | None = None) -> None:
    """Raise :class:`InputError` if ``q`` names an unknown query or bad parameters (or, given the scene,
    names bodies or shapes that are not in it)."""
    spec = QUERIES.get(q.name) if isinstance(q.name, str) else None
    if spec is None:
        raise InputError(f"unknown query {q.name!r}; known: {', '.join(sorted(QUERIES))}")
    p = q.params
    for k in p:
        if k not in spec.params:
            raise InputError(f"query {q.name!r} has no parameter {k!r} (parameters: {', '.join(spec.params) or 'none'})")
    for k in spec.required:
        if k not in p:
            raise InputError(f"query {q.name!r} needs parameter {k!r}")
    for k in spec.params:
        if k in p:
            check(k, p[k], PARAM_RULES[k])
    if q.name == "off_table" and p.get("support") is None and p.get("level") is None:
        raise InputError("query 'off_table' needs parameter 'support' or 'level'")
    if q.name in ("landing_x", "time_to_land") and (p.get("target") is None) == (p.get("level") is None):
        raise InputError(f"query {q.name!r} needs exactly one of 'target' (a static id) or 'level' (a height)")
    if scene is not None:
        _check_references(p, scene)


def _check_references(p: Any, scene: Scene) -> None:
    """The bodies and shapes a query's parameters name are in ``scene``."""
    ids = set(scene.body_ids)
    statics = {s.id for s in scene.statics}
    for b in ([p["body"]] if "body" in p else []) + (_ids(p["bodies"]) if p.get("bodies") is not None else []):
        if b not in ids:
            raise InputError(f"unknown body {b!r}")
    if "support" in p and p["support"] not in statics:
        raise InputError(f"unknown static support {p['support']!r}")
    if p.get("target") is not None and p["target"] not in ids | statics:
        raise InputError(f"unknown target {p['target']!r}: no static shape or body has this id")
    for t in _ids(p["among"]) if p.get("among") is not None else []:
        if t not in ids | statics:
            raise InputError(f"unknown shape {t!r} in 'among'")


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
                params[key.strip()] = float(val) if key.strip() in ("threshold", "level") else val.strip()
            except ValueError:
                raise InputError(f"query parameter {key!r} must be a number, got {val!r}") from None
            if key.strip() in ("bodies", "among"):
                params[key.strip()] = [b for b in val.split("+") if b]
        q = Query(name.strip(), params)
    check_query(q)
    return q


def evaluate(q: Query, rollout, stim: Stimulus) -> float:
    """The value of query ``q`` on one rollout of ``stim``."""
    spec = QUERIES[q.name]
    return spec.fn(rollout, stim, **dict(q.params))
