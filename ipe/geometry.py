"""Overlap geometry: which bodies of a scene interpenetrate, by how much, and pushing them apart.

These queries pose pymunk shapes but never step them: :func:`find_overlaps`
(the stimulus checks), :func:`penetration` and :func:`separation_vector`
(contact tests of two shapes), :func:`resolve_overlaps` (noisy scenes are
pushed apart bottom-up before they are simulated) and :func:`query_shapes`
(the scene's shapes, pooled per thread). The shapes are built by
:mod:`ipe.world`, the only module that builds pymunk bodies; the contact test
calls chipmunk's ``cpShapesCollide`` directly (see :func:`_collide`).
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Callable

import pymunk
from pymunk._chipmunk_cffi import lib as _cp

from .scene import Block, Scene
from .world import build_dynamic_body, build_static_shape, skin_of


def overlap_tolerance(a_size: float, b_size: float) -> float:
    """Allowed interpenetration between two bodies: 1 % of the smaller one's short side."""
    return 0.01 * min(a_size, b_size)


def find_overlaps(scene: Scene, include_statics: bool = True) -> list[tuple[str, str, float, float]]:
    """Pairs of bodies that interpenetrate beyond :func:`overlap_tolerance`.

    The depth is that of the outlines: overlap within the two shapes'
    ``skin`` (a contact margin, as Box2D's polygon radius) is contact, not
    interpenetration, and is not counted. Returns ``(id_a, id_b, depth,
    tolerance)`` tuples, dynamic–dynamic pairs first, then dynamic–static
    pairs.
    """
    dyn_shapes, stat_shapes = query_shapes(scene)
    dyn = [(b.id, sh, b.short_side, skin_of(b)) for b, sh in zip(scene.bodies, dyn_shapes)]
    stat = [(s.id, sh, skin_of(s)) for s, sh in zip(scene.statics, stat_shapes)]
    out: list[tuple[str, str, float, float]] = []
    for i in range(len(dyn)):
        ida, sa, za, ka = dyn[i]
        for j in range(i + 1, len(dyn)):
            idb, sb, zb, kb = dyn[j]
            d = penetration(sa, sb) - ka - kb
            tol = overlap_tolerance(za, zb)
            if d > tol:
                out.append((ida, idb, d, tol))
    if include_statics:
        for ida, sa, za, ka in dyn:
            for idb, sb, kb in stat:
                d = penetration(sa, sb) - ka - kb
                tol = overlap_tolerance(za, za)
                if d > tol:
                    out.append((ida, idb, d, tol))
    return out


def _collide(a: pymunk.Shape, b: pymunk.Shape) -> tuple[float, float, float]:
    """Raw contact test: ``(nx, ny, depth)`` with ``depth > 0`` when the shapes overlap.

    Calls chipmunk's ``cpShapesCollide`` directly, because pymunk's
    ``Shape.shapes_collide`` asserts when the bounding boxes meet but the
    shapes do not.
    """
    if not a.bb.intersects(b.bb):
        return (0.0, 0.0, 0.0)
    pts = _cp.cpShapesCollide(a._shape, b._shape)
    if pts.count <= 0 or (pts.normal.x == 0.0 and pts.normal.y == 0.0):
        # Chipmunk finds no contact (or a degenerate one) for coincident shapes. Catch that
        # case: if b's centre lies inside a, push b out past a's nearest edge.
        q = a.point_query(b.body.position)
        if q.distance < 0:
            bb = b.bb
            extent = max(bb.right - bb.left, bb.top - bb.bottom) / 2
            g = q.gradient
            if g.length == 0:
                g = pymunk.Vec2d(0.0, 1.0)
            return (g.x, g.y, -q.distance + extent)
        return (0.0, 0.0, 0.0)
    depth = max(-pts.points[i].distance for i in range(pts.count))
    return (pts.normal.x, pts.normal.y, max(0.0, depth))


def penetration(a: pymunk.Shape, b: pymunk.Shape) -> float:
    """How deep two shapes interpenetrate (m); 0 when they do not touch."""
    return _collide(a, b)[2]


def separation_vector(a: pymunk.Shape, b: pymunk.Shape) -> tuple[float, float, float]:
    """``(nx, ny, depth)``: moving ``b`` by ``depth`` along ``n`` separates it from ``a``."""
    return _collide(a, b)


# Shapes for geometric queries (overlap tests), pooled per thread by geometry. They live in no
# space and are never stepped: cpShapesCollide and point queries are pure functions of a shape's
# geometry and pose, so re-posing a pooled shape gives the same answers as building a fresh one
# (tests/test_geometry.py checks this), and a rollout's overlap check builds no pymunk Space.
_QUERY_POOL = threading.local()
_QUERY_POOL_LIMIT = 256  # geometry keys per thread before the pool is dropped and rebuilt


def _geometry_key(b) -> tuple:
    if isinstance(b, Block):
        return ("block", b.width, b.height, b.corner_radius, b.skin)
    return ("ball", b.radius)


def _pooled(key, k: int, make: Callable[[], tuple[pymunk.Body, pymunk.Shape]]) -> tuple[pymunk.Body, pymunk.Shape]:
    pool = getattr(_QUERY_POOL, "shapes", None)
    if pool is None or len(pool) > _QUERY_POOL_LIMIT:
        pool = _QUERY_POOL.shapes = {}
    slot = pool.setdefault(key, [])
    while len(slot) <= k:
        slot.append(make())
    return slot[k]


def _static_query_shape(s) -> tuple[pymunk.Body, pymunk.Shape]:
    body = pymunk.Body(body_type=pymunk.Body.STATIC)
    return body, build_static_shape(body, s)


def query_shapes(scene: Scene) -> tuple[list[pymunk.Shape], list[pymunk.Shape]]:
    """The scene's dynamic and static shapes, posed, for geometric queries only (never stepped).

    The shapes come from a per-thread pool keyed by geometry and are re-posed
    on every call, so the next call invalidates the previous call's shapes.
    Moving one (``shape.body.position = …``) needs ``shape.cache_bb()``
    before it is queried again.
    """
    used: dict = {}
    dyn = []
    for b in scene.bodies:
        key = _geometry_key(b)
        k = used[key] = used.get(key, -1) + 1
        body, shape = _pooled(key, k, lambda b=b: build_dynamic_body(b))
        body.position = b.position
        body.angle = b.angle
        shape.cache_bb()
        dyn.append(shape)
    stat = []
    for s in scene.statics:
        try:
            key = ("static", s)
            k = used[key] = used.get(key, -1) + 1
            _, shape = _pooled(key, k, lambda s=s: _static_query_shape(s))
        except TypeError:  # an unhashable static: build it afresh
            _, shape = _static_query_shape(s)
        shape.cache_bb()
        stat.append(shape)
    return dyn, stat


class _Placement:
    """The shapes placed so far (bottom-up) and the skins of every shape: overlap within two skins is contact."""

    def __init__(self, placed: list[pymunk.Shape], skin: dict[int, float]):
        self.placed, self.skin = placed, skin

    def worst_overlap(self, shape: pymunk.Shape) -> tuple[float, float, float]:
        """``(nx, ny, depth)`` of the deepest overlap of ``shape`` with a placed shape (depth 0: none)."""
        worst = (0.0, 0.0, 0.0)
        skin = self.skin
        for other in self.placed:
            nx, ny, depth = separation_vector(other, shape)
            depth -= skin[id(other)] + skin[id(shape)]
            if depth > worst[2]:
                worst = (nx, ny, depth)
        return worst

    def push_out(self, shape: pymunk.Shape, max_pushes: int) -> tuple[bool, tuple[float, float] | None]:
        """Move ``shape`` out along the contact normal, up to ``max_pushes`` times: ``(free, new position)``."""
        body = shape.body
        moved = None
        for _ in range(max_pushes):
            nx, ny, depth = self.worst_overlap(shape)
            if depth <= 1e-12:
                return True, moved
            _move_to(shape, body.position.x + nx * depth, body.position.y + ny * depth)
            moved = (body.position.x, body.position.y)
        return self.worst_overlap(shape)[2] <= 1e-12, moved

    def lift(self, shape: pymunk.Shape, x0: float, y0: float) -> tuple[float, float]:
        """Put a wedged ``shape`` back at ``x0`` and raise it to the lowest free height above ``y0`` (bisection)."""
        _move_to(shape, x0, y0)
        bb = shape.bb
        lift = max((o.bb.top - bb.bottom for o in self.placed
                    if o.bb.right > bb.left and o.bb.left < bb.right), default=0.0)
        lo, hi = y0, y0 + max(lift, 0.0) + 1e-9
        for _ in range(40):
            mid = (lo + hi) / 2
            _move_to(shape, x0, mid)
            if self.worst_overlap(shape)[2] > 1e-12:
                lo = mid
            else:
                hi = mid
        _move_to(shape, x0, hi)
        return (x0, hi)


def _move_to(shape: pymunk.Shape, x: float, y: float) -> None:
    shape.body.position = (x, y)
    shape.cache_bb()


def resolve_overlaps(scene: Scene, max_pushes: int = 4) -> Scene:
    """Push interpenetrating dynamic bodies apart, bottom-up.

    Bodies are visited from the lowest to the highest (by centre height). Each
    one is checked against the static shapes and every body already visited.
    While it overlaps one, it is moved out along the contact normal by the
    penetration depth, so a block that noise pushed into its neighbour ends up
    touching it. If a few such pushes do not free it (it is wedged between
    two others), it is instead raised to the lowest free height above its
    place, found by bisection. Moving bottom-up means a block lifted out of
    the one below it also lifts the blocks resting on it. Returns a new
    :class:`Scene`; bodies that did not overlap are unchanged.
    """
    dyn, stat = query_shapes(scene)
    order = sorted(range(len(dyn)), key=lambda k: (scene.bodies[k].position[1], k))
    # Overlap within the two skins is contact, not interpenetration (see find_overlaps).
    skin = {id(sh): skin_of(b) for sh, b in zip(dyn, scene.bodies)}
    skin.update({id(sh): skin_of(s) for sh, s in zip(stat, scene.statics)})
    placement = _Placement(list(stat), skin)
    moved: dict[int, tuple[float, float]] = {}
    for k in order:
        shape = dyn[k]
        x0, y0 = shape.body.position
        free, pos = placement.push_out(shape, max_pushes)
        if pos is not None:
            moved[k] = pos
        if not free:  # wedged: go back to the intended x and rise to the lowest free height
            moved[k] = placement.lift(shape, x0, y0)
        placement.placed.append(shape)
    if not moved:
        return scene
    bodies = list(scene.bodies)
    for k, pos in moved.items():
        bodies[k] = replace(bodies[k], position=pos)
    return scene.with_bodies(bodies)
