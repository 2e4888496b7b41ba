"""Scene → a fresh :class:`pymunk.Space`, stepping, and snapshots of body states.

This is the only module that touches pymunk. A :class:`World` is built anew
from plain data for every rollout: copies and pickles of a Space do not replay
their original, so nothing that is simulated is ever reused between samples.
(Only the shapes of the overlap checks, which are posed and queried but never
stepped, are pooled: :func:`query_shapes`.)

Solver settings
---------------
The defaults are chosen so that resting stacks of blocks *stay* at rest in SI
units (blocks of ~0.1–1 m under g = 9.81 m/s²):

* **step**: a frame of 1/60 s split into 4 substeps, so pymunk steps by
  1/240 s. Smaller steps make stacks stiffer; four substeps keep the
  penetration of a 10-block tower under a millimetre.
* ``iterations = 30``: the contact solver's iterations per step (pymunk's
  default of 10 lets tall stacks creep).
* ``collision_slop = 0.002 × scale`` where ``scale`` is the median short side
  of the dynamic bodies (0.2 mm for 0.1 m blocks). Pymunk's default of 0.1 is
  meant for pixel units and would let blocks sink 10 cm into each other.
* ``collision_bias = (1 - 0.2) ** 60``: 20 % of any overlap is corrected per
  1/60 s, gently enough not to launch resting blocks.
* **rest detection (early stopping)**: every 8 steps the body states are
  read in one call (:mod:`pymunk.batch`). The scene is at rest when no body
  has moved more than ``rest_tolerance`` (0.5 % of the scale in x and y,
  0.005 rad in angle) over the last ``rest_window`` (1/15 s) **and** no body
  has drifted more than half of it over the last :data:`DRIFT_WINDOW`
  (4/15 s, or the rest window if that is longer). Once it is at rest and no
  intervention or push is still to come, :func:`rollout` stops: the rest of
  the horizon would only replay the same resting state. (Scenes with a
  ball add a test of motion itself: see *Balls* below.) Net displacement
  over a window, unlike pymunk's speed-based sleeping, tells a stack's
  solver jitter (velocities of ~g·dt that average out) from a tower that
  has begun to tip (displacement that grows). The drift test is there for
  towers near a balance point: one that is coasting up to it, or just
  tipping away from it, moves slowly but always the same way, and 1/15 s of
  such motion looks like rest. (Without it, 138 of 6 552 tower rollouts
  stopped while their tower was still going to fall, 4–5 % of those with a
  φ push; with it, none; see ``docs/concepts.md``.) Pymunk's sleeping is *not* used, so up to the
  stop the physics is bit-for-bit that of a plain pymunk loop. On 150
  random towers, on the demo set and on noisy rollouts (``tests/test_world.py``)
  the fall counts equal those of the full horizon.

Each of these can be overridden per scene in ``scene.simulation``
(``collision_bias`` too).

Balls: rest is no motion, and a landing ends a rollout
--------------------------------------------------------
Displacement over a window cannot tell rest from motion that is symmetric
about a turning point: a ball that slides up a nearly flat obstacle top and
back passes both windows at its turning point. In a scene with a
:class:`~ipe.scene.Ball` the scene is at rest only when, besides the
displacement tests, every ball's speed — linear ``|v|`` and rotational
``|ω| · r`` — has stayed below :data:`REST_SPEED` (0.1 % of the scale per
second) at every rest check over the whole drift window (4/15 s). (Blocks
keep the displacement tests alone: a resting stack's solver jitter has
speeds of order g·dt.) A ball at
a turning point has zero speed for an instant only; to pass, it would need
an acceleration below about 2 · :data:`REST_SPEED` · s / (4/15 s), i.e. a
slope under 0.02° at g = 1500 px/s². A resting pymunk ball has a speed of
exactly 0 here, so the test costs no true rest. A ball wedged between
obstacles that spins in place is *moving* (its ``ω`` is large) and runs to
the horizon. Scenes without a ball (towers) keep exactly the rule above.

A tracked rollout can also be given :attr:`Schedule.stop_when`: a test of
the contacts and path so far, checked after every physics step, that ends
the rollout once every landing query asked of it has its answer (the
landing target touched, the level crossed). Up to that step the physics is
the same as over the full horizon, so a landing is bit for bit that of the
full horizon. ``early_stop=False`` turns off both stops.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pymunk
import pymunk.batch
from pymunk._chipmunk_cffi import lib as _cp

from .scene import (
    Ball,
    Block,
    Intervention,
    Scene,
    StaticBox,
    StaticSegment,
)

DEFAULT_ITERATIONS = 30
SLOP_FRACTION = 0.002
COLLISION_BIAS = (1.0 - 0.2) ** 60
DEFAULT_REST_WINDOW = 1.0 / 15.0  # s (16 steps of 1/240 s)
REST_TOLERANCE = 0.005  # fraction of the scale (x, y) and radians (angle)
REST_CHECK_EVERY = 8  # physics steps between rest checks
#: The drift window (s): at rest also needs no body to have moved more than DRIFT_TOLERANCE rest
#: tolerances over this long (at least the rest window), so slow one-way motion is not taken for rest.
DRIFT_WINDOW = 4.0 / 15.0
DRIFT_TOLERANCE = 0.5  # in rest tolerances
MOVING_FACTOR = 20.0  # beyond this many tolerances per window, checks pause for a window
#: Scenes with a ball: at rest also needs every ball's speed (|v| and |ω|·radius) below this many
#: scales per second at every rest check over the drift window (see "Balls" in the module docstring).
REST_SPEED = 0.001

_POSE_FIELDS = pymunk.batch.BodyFields.POSITION | pymunk.batch.BodyFields.ANGLE
_BATCH_FIELDS = pymunk.batch.BodyFields.BODY_ID | _POSE_FIELDS


@dataclass(frozen=True)
class SolverSettings:
    """The pymunk solver settings used for one scene (see the module docstring)."""

    dt: float
    n_steps: int
    iterations: int
    collision_slop: float
    collision_bias: float
    rest_window: float
    rest_tolerance: float

    @classmethod
    def for_scene(cls, scene: Scene) -> "SolverSettings":
        sim = scene.simulation
        scale = scene.short_scale
        return cls(
            dt=sim.dt,
            n_steps=sim.n_steps,
            iterations=sim.iterations or DEFAULT_ITERATIONS,
            collision_slop=SLOP_FRACTION * scale if sim.collision_slop is None else sim.collision_slop,
            collision_bias=COLLISION_BIAS if sim.collision_bias is None else sim.collision_bias,
            rest_window=DEFAULT_REST_WINDOW if sim.rest_window is None else sim.rest_window,
            rest_tolerance=REST_TOLERANCE,
        )


def skin_of(body_or_static) -> float:
    """The contact margin (``skin``) of a body or static shape; 0 for shapes that have none."""
    return float(getattr(body_or_static, "skin", 0.0) or 0.0)


def _static_shape(space_body: pymunk.Body, s) -> pymunk.Shape:
    if isinstance(s, StaticSegment):
        return pymunk.Segment(space_body, s.a, s.b, s.radius)
    r = s.corner_radius if isinstance(s, StaticBox) else 0.0
    if r:
        w, h = s.width / 2 - r, s.height / 2 - r
        verts = [(-w, -h), (w, -h), (w, h), (-w, h)]
    else:
        verts = s.local_vertices()
    c, si = math.cos(s.angle), math.sin(s.angle)
    px, py = s.position
    world = [(px + c * x - si * y, py + si * x + c * y) for x, y in verts]
    return pymunk.Poly(space_body, world, radius=r + skin_of(s))


def _dynamic_body(b) -> tuple[pymunk.Body, pymunk.Shape]:
    mass = b.effective_mass
    if isinstance(b, Block):
        moment = pymunk.moment_for_box(mass, (b.width, b.height))
        body = pymunk.Body(mass, moment)
        r = b.corner_radius
        # The core is width × height shrunk by the corner radius; pymunk's radius rounds it back out to
        # width × height, and the skin grows it further (mass and moment stay those of width × height).
        shape: pymunk.Shape = pymunk.Poly.create_box(body, (b.width - 2 * r, b.height - 2 * r), radius=r + b.skin)
    else:
        moment = pymunk.moment_for_circle(mass, 0, b.radius)
        body = pymunk.Body(mass, moment)
        shape = pymunk.Circle(body, b.radius)
    body.position = b.position
    body.angle = b.angle
    # A new body is at rest and a new shape inelastic: set these only when the scene says otherwise
    # (each pymunk property costs a Python call, and a rollout builds every body afresh).
    if b.velocity[0] or b.velocity[1]:
        body.velocity = b.velocity
    if b.angular_velocity:
        body.angular_velocity = b.angular_velocity
    shape.friction = b.friction
    if b.elasticity:
        shape.elasticity = b.elasticity
    return body, shape


class World:
    """A freshly built pymunk world for one scene.

    Parameters
    ----------
    scene:
        The (possibly noise-perturbed) scene.
    settings:
        Solver settings; by default :meth:`SolverSettings.for_scene`.
    """

    def __init__(self, scene: Scene, settings: SolverSettings | None = None):
        self.scene = scene
        self.settings = settings or SolverSettings.for_scene(scene)
        st = self.settings
        space = pymunk.Space()
        space.gravity = scene.gravity
        space.iterations = st.iterations
        space.collision_slop = st.collision_slop
        space.collision_bias = st.collision_bias
        sim = scene.simulation
        angular = sim.damping if sim.angular_damping is None else sim.angular_damping
        space.damping = angular
        # Pymunk's damping acts on linear and angular velocity alike; a different linear damping is
        # the rest of it, applied to the linear velocities after every step (see fast_steps).
        self.linear_factor = 1.0 if sim.damping == angular else (sim.damping / angular) ** st.dt
        self.static_shapes: list[pymunk.Shape] = []
        for s in scene.statics:
            shape = _static_shape(space.static_body, s)
            shape.friction = s.friction
            shape.elasticity = s.elasticity
            space.add(shape)
            self.static_shapes.append(shape)
        self.ids: tuple[str, ...] = scene.body_ids
        self.bodies: list[pymunk.Body] = []
        self.shapes: list[pymunk.Shape] = []
        for b in scene.bodies:
            body, shape = _dynamic_body(b)
            space.add(body, shape)
            self.bodies.append(body)
            self.shapes.append(shape)
        self.space = space
        self.step_index = 0
        self.removed = np.zeros(len(self.bodies), dtype=bool)
        self.culled = np.zeros(len(self.bodies), dtype=bool)
        ids = np.array([b.id for b in self.bodies], dtype=np.uintp)
        self._order = np.argsort(ids, kind="stable")
        self._sorted_ids = ids[self._order]
        self._last = self._read_all()
        self._buffer = pymunk.batch.Buffer()
        self._velocity_buffer = pymunk.batch.Buffer()
        self._raw_dynamic: np.ndarray | None = None  # where the dynamic bodies are in raw_poses()
        self._contact_listeners: dict[str, list[Callable]] | None = None

    def on_contact(self, begin: Callable | None = None, separate: Callable | None = None) -> None:
        """Call ``begin(arbiter)`` when two shapes start touching, ``separate(arbiter)`` when they stop.

        Several listeners can be added (collision noise, contact tracking);
        they share one wildcard pymunk collision handler, registered on the
        first call. Listeners must not add or remove bodies. A world with no
        listeners has no handler, so its stepping is untouched.
        """
        if self._contact_listeners is None:
            self._contact_listeners = {"begin": [], "separate": []}
            lists = self._contact_listeners

            def _begin(arbiter, space, data):
                for f in lists["begin"]:
                    f(arbiter)

            def _separate(arbiter, space, data):
                for f in lists["separate"]:
                    f(arbiter)

            self.space.on_collision(begin=_begin, separate=_separate)
        if begin is not None:
            self._contact_listeners["begin"].append(begin)
        if separate is not None:
            self._contact_listeners["separate"].append(separate)

    def shape_ids(self) -> dict[int, str]:
        """``id(shape) → body or static id`` for every shape in the world."""
        out = {id(sh): bid for sh, bid in zip(self.shapes, self.ids)}
        out.update({id(sh): s.id for sh, s in zip(self.static_shapes, self.scene.statics)})
        return out

    @property
    def time(self) -> float:
        return self.step_index * self.settings.dt

    def _read_all(self) -> np.ndarray:
        return np.array([(b.position.x, b.position.y, b.angle) for b in self.bodies], dtype=float)

    def state(self) -> np.ndarray:
        """``(n_bodies, 3)`` array of x, y, angle, in scene order.

        Removed bodies keep the state they had when removed. Reads all bodies
        in one call through :mod:`pymunk.batch`.
        """
        buf = self._buffer
        buf.clear()
        pymunk.batch.get_space_bodies(self.space, _BATCH_FIELDS, buf)
        ids = np.frombuffer(buf.int_buf(), dtype=np.uintp)
        vals = np.frombuffer(buf.float_buf(), dtype=np.float64).reshape(-1, 3)
        out = self._last.copy()
        if len(ids) and len(self._sorted_ids):
            # The batch also lists the space's static body; keep only ours.
            pos = np.minimum(np.searchsorted(self._sorted_ids, ids), len(self._sorted_ids) - 1)
            ok = self._sorted_ids[pos] == ids
            out[self._order[pos[ok]]] = vals[ok]
        self._last = out
        return out

    def remove(self, index: int) -> None:
        """Take dynamic body ``index`` (scene order) out of the world."""
        if self.removed[index] or self.culled[index]:
            self.removed[index] = True
            return
        self.state()
        self._take_out(index)
        self.removed[index] = True

    def _take_out(self, index: int) -> None:
        body, shape = self.bodies[index], self.shapes[index]
        self.space.remove(body, shape)
        self._raw_dynamic = None

    def cull_below(self, level: float) -> bool:
        """Take every dynamic body whose centre is below ``level`` out of the world (``simulation.remove_below``).

        Such bodies are marked in :attr:`culled`, not :attr:`removed`: they
        keep the state they had now and still count in the queries. Returns
        whether any body was taken out. Costs one batch read when none is.
        """
        if self._raw_dynamic is None:
            buf = self._buffer
            buf.clear()
            pymunk.batch.get_space_bodies(self.space, pymunk.batch.BodyFields.BODY_ID, buf)
            raw_ids = np.frombuffer(buf.int_buf(), dtype=np.uintp)
            self._raw_dynamic = np.nonzero(np.isin(raw_ids, self._sorted_ids))[0]
        ys = self.raw_poses()[1::3][self._raw_dynamic]
        if not len(ys) or ys.min() >= level:
            return False
        below = np.nonzero((self.state()[:, 1] < level) & ~self.removed & ~self.culled)[0]
        for index in below:
            self._take_out(int(index))
            self.culled[index] = True
        return bool(len(below))

    def apply_impulse(self, index: int, impulse: tuple[float, float]) -> None:
        if not self.removed[index]:
            self.bodies[index].apply_impulse_at_world_point(impulse, self.bodies[index].position)

    def resting_on(self, indices: Sequence[int], probe: float, up: tuple[float, float] = (0.0, 1.0)) -> list[int]:
        """The dynamic bodies that rest on ``indices``, directly or through others (scene order, breadth first).

        Body B rests on body A where they touch and, at the mean of their
        contact points c, the point ``c + probe·up`` lies inside B or
        ``c − probe·up`` lies inside A (the test of the Mental Jenga code's
        ``above_local`` contacts). "Inside" means inside the body's own
        outline, not its ``skin``: Box2D's ``TestPoint`` ignores the polygon
        radius too. Counting the skin would call two bricks that touch side
        by side, pressed a little into each other's margins, one resting on
        the other. The search follows resting bodies upwards; ``indices``
        themselves are not listed. Removed and culled bodies are skipped.
        """
        index_of = {id(sh): k for k, sh in enumerate(self.shapes)}
        skins = [skin_of(b) for b in self.scene.bodies]
        ux, uy = up
        found = list(dict.fromkeys(int(i) for i in indices))
        start = len(found)
        k = 0
        while k < len(found):
            cur = found[k]
            k += 1
            shape = self.shapes[cur]
            arbiters: list = []
            self.bodies[cur].each_arbiter(arbiters.append)
            for arb in arbiters:
                a, b = arb.shapes
                other = b if a is shape else a
                j = index_of.get(id(other))
                if j is None or j in found or self.removed[j] or self.culled[j]:
                    continue
                pts = arb.contact_point_set.points
                if not pts:
                    continue
                cx = sum(p.point_a.x + p.point_b.x for p in pts) / (2 * len(pts))
                cy = sum(p.point_a.y + p.point_b.y for p in pts) / (2 * len(pts))
                if (other.point_query((cx + probe * ux, cy + probe * uy)).distance < -skins[j]
                        or shape.point_query((cx - probe * ux, cy - probe * uy)).distance < -skins[cur]):
                    found.append(j)
        return found[start:]

    def raw_poses(self) -> np.ndarray:
        """x, y, angle of every body in the space, in pymunk's internal order, as one flat array.

        Cheaper than :meth:`state` (no reordering); the order only changes when
        bodies are added or removed, so two raw poses taken with no
        intervention in between can be compared element by element.
        """
        buf = self._buffer
        buf.clear()
        pymunk.batch.get_space_bodies(self.space, _POSE_FIELDS, buf)
        return np.frombuffer(buf.float_buf(), dtype=np.float64).copy()

    def max_speed(self, indices: Sequence[int] | None = None) -> float:
        """The largest speed ``max(|v|, |ω| · r)`` of the bodies ``indices`` (default all; scene order), in
        scales per second (``r``: a ball's radius, else half the scale). Removed and culled bodies are skipped."""
        s = self.scene.short_scale
        best = 0.0
        for k in range(len(self.bodies)) if indices is None else indices:
            if self.removed[k] or self.culled[k]:
                continue
            body = self.bodies[k]
            r = getattr(self.scene.bodies[k], "radius", s / 2)
            vx, vy = body.velocity
            best = max(best, math.hypot(vx, vy), abs(body.angular_velocity) * r)
        return best / s

    def rest_tolerance_vector(self, n: int) -> np.ndarray:
        st = self.settings
        tol_xy = st.rest_tolerance * self.scene.short_scale
        return np.tile(np.array([tol_xy, tol_xy, st.rest_tolerance]), n // 3)

    def step(self, n: int = 1) -> None:
        dt = self.settings.dt
        step = self.space.step
        for _ in range(n):
            step(dt)
            if self.linear_factor != 1.0:
                scale_linear_velocities(self.space, self.linear_factor, self._velocity_buffer)
        self.step_index += n

    def advance(self, n: int) -> None:
        """Step ``n`` times as fast as possible (:func:`fast_steps`), with the scene's linear damping."""
        fast_steps(self.space, self.settings.dt, n, self.linear_factor, self._velocity_buffer)
        self.step_index += max(n, 0)


@dataclass
class RolloutResult:
    """What one rollout left behind: plain arrays, no pymunk objects.

    ``initial`` and ``final`` are ``(n_bodies, 3)`` arrays of x, y, angle in
    scene order; ``removed`` marks bodies taken out by an intervention;
    ``culled`` those taken out because they dropped below
    ``simulation.remove_below`` (they keep the state they had then and,
    unlike removed ones, still count in the queries);
    ``steps`` is how many physics steps ran (fewer than ``n_steps`` when the
    rollout stopped early); ``trajectory`` is ``(n_frames, n_bodies, 3)`` when
    recorded, with ``times`` its time stamps.
    """

    body_ids: tuple[str, ...]
    initial: np.ndarray
    final: np.ndarray
    removed: np.ndarray
    steps: int
    n_steps: int
    trajectory: np.ndarray | None = None
    times: np.ndarray | None = None
    culled: np.ndarray | None = None
    events: "RolloutEvents | None" = None

    @property
    def stopped_early(self) -> bool:
        return self.steps < self.n_steps


@dataclass
class RolloutEvents:
    """What a tracked rollout (``Schedule.track``) saw step by step: plain arrays, no pymunk objects.

    ``path`` is ``(steps + 1, n_bodies, 3)``: x, y, angle of every dynamic
    body before the first step and after each physics step (scene order;
    removed bodies keep their last state). ``contacts`` maps ``(body id,
    other id)`` to ``(step, x, y)``: the first physics step in which the
    dynamic body started touching the other shape (a static or another
    body), and the body's centre then. Times are ``step * dt``.
    """

    dt: float
    path: np.ndarray
    contacts: dict[tuple[str, str], tuple[int, float, float]]

    def first_contact(self, body: str, among: Sequence[str] | None = None) -> str | None:
        """The id of the first shape ``body`` touched (restricted to ``among``), or ``None``."""
        best: tuple[int, str] | None = None
        for (b, other), (step, _, _) in self.contacts.items():
            if b == body and (among is None or other in among) and (best is None or step < best[0]):
                best = (step, other)
        return None if best is None else best[1]


class _ContactLog:
    def __init__(self, world: World):
        self.world = world
        self.names = world.shape_ids()
        self.dynamic = {id(sh) for sh in world.shapes}
        self.index = {id(sh): k for k, sh in enumerate(world.shapes)}
        self.step = 0
        self.contacts: dict[tuple[str, str], tuple[int, float, float]] = {}
        world.on_contact(begin=self._begin)

    def _begin(self, arbiter) -> None:
        a, b = arbiter.shapes
        for me, other in ((a, b), (b, a)):
            if id(me) in self.dynamic:
                key = (self.names[id(me)], self.names.get(id(other), "?"))
                if key not in self.contacts:
                    p = me.body.position
                    self.contacts[key] = (self.step, float(p.x), float(p.y))


@dataclass
class Schedule:
    """Time-dependent actions during a rollout.

    ``gravity_until``: ``(t_end, gravity)`` replaces the scene's gravity with
    ``gravity`` for ``gravity_from <= t < t_end`` (how a uniform horizontal
    push on every body is applied exactly and cheaply). ``interventions``: the stimulus's
    interventions. ``hooks``: callables ``hook(world)`` run before every step
    (per-step noise sources use these). ``on_remove``: callables
    ``hook(world, indices)`` run just before a ``remove`` intervention takes
    the bodies ``indices`` (scene order) out, while their contacts are still
    in the world (removal noise uses these). ``track``: record a
    :class:`RolloutEvents` (every step's poses and the first contacts), for
    the landing queries; the rollout then steps one physics step at a time.
    """

    gravity_until: tuple[float, tuple[float, float]] | None = None
    gravity_from: float = 0.0
    interventions: Sequence[Intervention] = ()
    hooks: list[Callable[[World], None]] = field(default_factory=list)
    track: bool = False
    on_remove: list[Callable[[World, list[int]], None]] = field(default_factory=list)
    stop_when: Callable[[dict, list], bool] | None = None
    """With ``track``: ``stop_when(contacts, path)`` is asked after every physics step (``contacts``
    and ``path`` as in :class:`RolloutEvents`, the path so far as a list of arrays); when it says
    True the rollout ends there (with ``early_stop`` only). :func:`ipe.montecarlo.run_sample` sets it
    when every query asked has a final answer once its landing target is touched."""


def rollout(scene: Scene, schedule: Schedule | None = None, early_stop: bool = True,
            record_every: int | None = None) -> RolloutResult:
    """Simulate ``scene`` from rest to its horizon in a fresh world.

    With ``early_stop`` the rollout ends as soon as the scene is at rest
    (see the module docstring) and nothing is scheduled any more, or, on a
    tracked rollout, as soon as ``schedule.stop_when`` says every landing
    asked of it has happened. ``record_every`` (in physics steps) records a
    downsampled trajectory.
    """
    schedule = schedule or Schedule()
    world = World(scene)
    st = world.settings
    n_steps = st.n_steps
    initial = world._last.copy()

    # Events: (step index, kind, payload), applied before that step.
    events: list[tuple[int, int, object]] = []
    for iv in schedule.interventions:
        events.append((int(math.ceil(iv.time / st.dt - 1e-9)), 1, iv))
    push_end = 0
    if schedule.gravity_until is not None:
        t_end, g = schedule.gravity_until
        push_start = int(math.ceil(schedule.gravity_from / st.dt - 1e-9))
        push_end = min(n_steps, int(math.ceil(t_end / st.dt - 1e-9)))
        if push_end > push_start:
            if push_start <= 0:
                world.space.gravity = g
            else:
                events.append((push_start, 2, g))
            events.append((push_end, 0, None))
    events.sort(key=lambda e: (e[0], e[1]))
    last_event = max((e[0] for e in events), default=0)
    index_of = {bid: i for i, bid in enumerate(world.ids)}

    frames: list[np.ndarray] = []
    times: list[float] = []
    if record_every:
        frames.append(initial.copy())
        times.append(0.0)

    hooks = schedule.hooks
    log = _ContactLog(world) if schedule.track else None
    path: list[np.ndarray] = [initial.copy()] if log is not None else []
    ev = 0
    dt = st.dt
    i = 0
    cull_level = scene.simulation.remove_below
    cull_every = scene.simulation.substeps  # physics steps per frame: culling is checked once a frame
    # Rest detection: compare poses one rest window apart. While the scene
    # is clearly moving (more than MOVING_FACTOR times the tolerance in a
    # window) checks are spaced out, so a long fall pays little for them.
    check_every = REST_CHECK_EVERY
    window = max(check_every, int(round(st.rest_window / dt / check_every)) * check_every)
    drift = max(window, int(round(DRIFT_WINDOW / dt / check_every)) * check_every)
    history: dict[int, np.ndarray] = {}
    next_check = check_every
    tol_vec: np.ndarray | None = None
    # Scenes with a ball: rest also needs no speed at every check over the drift window.
    balls = [k for k, b in enumerate(scene.bodies) if isinstance(b, Ball)]
    motion_rule = bool(balls)
    calm_since: int | None = None
    stop_when = schedule.stop_when if (early_stop and log is not None) else None
    while i < n_steps:
        while ev < len(events) and events[ev][0] <= i:
            _, kind, payload = events[ev]
            if kind == 0:
                world.space.gravity = scene.gravity
            elif kind == 2:
                world.space.gravity = payload
            else:
                if payload.type == "remove" and schedule.on_remove:
                    going = [index_of[b] for b in payload.bodies]
                    for h in schedule.on_remove:
                        h(world, going)
                _apply_intervention(world, payload, index_of)
            ev += 1
        # Run straight to the next event, check or recording point.
        nxt = n_steps
        if ev < len(events):
            nxt = min(nxt, events[ev][0])
        if early_stop:
            nxt = min(nxt, max(next_check, i + 1))
        if record_every:
            nxt = min(nxt, (i // record_every + 1) * record_every)
        if cull_level is not None:
            nxt = min(nxt, (i // cull_every + 1) * cull_every)
        if hooks:
            nxt = i + 1
            for h in hooks:
                h(world)
        if log is not None:
            nxt = i + 1
            log.step = nxt
        fast_steps(world.space, dt, nxt - i, world.linear_factor, world._velocity_buffer)
        world.step_index = i = nxt
        if log is not None:
            path.append(world.state())
            if stop_when is not None and stop_when(log.contacts, path):
                break
        if cull_level is not None and i % cull_every == 0 and world.cull_below(cull_level):
            history.clear()  # the raw poses changed shape; rest detection starts a new window
            tol_vec = None
        if record_every and i % record_every == 0:
            frames.append(world.state())
            times.append(i * dt)
        if early_stop and i >= next_check:
            next_check = i + check_every
            if i > last_event:
                if motion_rule:
                    if world.max_speed(balls) >= REST_SPEED:
                        calm_since = None
                    elif calm_since is None:
                        calm_since = i
                now = world.raw_poses()
                history[i] = now
                before = history.get(i - window)
                start = history.pop(i - drift, None)
                if before is not None:
                    if tol_vec is None:
                        tol_vec = world.rest_tolerance_vector(len(now))
                    excess = float(np.max(np.abs(now - before) / tol_vec))
                    # At rest: still over the rest window, and no drift over the longer one.
                    if excess < 1.0 and start is not None and \
                            float(np.max(np.abs(now - start) / tol_vec)) < DRIFT_TOLERANCE and \
                            (not motion_rule or (calm_since is not None and i - calm_since >= drift)):
                        break
                    if excess > MOVING_FACTOR:
                        # Clearly moving: skip a window, then look again.
                        history.clear()
                        next_check = i + window
    final = world.state()
    traj = None
    tarr = None
    if record_every:
        if times[-1] != i * dt:
            frames.append(final.copy())
            times.append(i * dt)
        traj = np.stack(frames)
        tarr = np.asarray(times)
    events = None
    if log is not None:
        events = RolloutEvents(dt=dt, path=np.stack(path), contacts=dict(log.contacts))
    return RolloutResult(body_ids=world.ids, initial=initial, final=final, removed=world.removed.copy(),
                         steps=i, n_steps=n_steps, trajectory=traj, times=tarr, culled=world.culled.copy(),
                         events=events)


def fast_steps(space: pymunk.Space, dt: float, n: int, linear_factor: float = 1.0,
               buffer: pymunk.batch.Buffer | None = None) -> None:
    """Step ``space`` ``n`` times by ``dt``: the same physics as ``space.step``, less Python per step.

    Steps call chipmunk's ``cpSpaceStep`` directly: with no Python collision
    handlers or post-step callbacks registered, that is exactly what
    ``Space.step`` does, minus its per-call bookkeeping. The first step goes
    through :meth:`pymunk.Space.step` when that bookkeeping has work to do:
    bodies added since the last step (pymunk checks their mass), shapes
    removed (pymunk releases them) or collision handlers registered (pymunk
    locks the space and runs their post-step callbacks). The tests check that both give
    bit-identical states. (The only handlers ipe registers,
    :meth:`World.on_contact` for contact tracking and collision noise, come
    with rollouts that step one step at a time, through ``Space.step``.)

    ``linear_factor`` ≠ 1 multiplies every body's linear velocity by it after
    each step (:func:`scale_linear_velocities`): linear damping beyond the
    space's own, which pymunk applies to angular velocity too.
    """
    if n <= 0:
        return
    cp_step = _cp.cpSpaceStep
    handle = space._space
    if space._bodies_to_check or space._removed_shapes or space._handlers:
        space.step(dt)
    else:
        cp_step(handle, dt)
    if linear_factor == 1.0:
        for _ in range(n - 1):
            cp_step(handle, dt)
        return
    buffer = buffer or pymunk.batch.Buffer()
    scale_linear_velocities(space, linear_factor, buffer)
    for _ in range(n - 1):
        cp_step(handle, dt)
        scale_linear_velocities(space, linear_factor, buffer)


_VELOCITY = pymunk.batch.BodyFields.VELOCITY


def scale_linear_velocities(space: pymunk.Space, factor: float, buffer: pymunk.batch.Buffer) -> None:
    """Multiply the linear velocity of every body in ``space`` by ``factor`` (one batch read, one batch write)."""
    buffer.clear()
    pymunk.batch.get_space_bodies(space, _VELOCITY, buffer)
    v = np.frombuffer(buffer.float_buf(), dtype=np.float64)
    v *= factor
    pymunk.batch.set_space_bodies(space, _VELOCITY, buffer)


def _apply_intervention(world: World, iv: Intervention, index_of: dict[str, int]) -> None:
    if iv.type == "remove":
        for b in iv.bodies:
            world.remove(index_of[b])
    elif iv.type == "impulse":
        targets = iv.bodies or world.ids
        for b in targets:
            idx = index_of[b]
            world.apply_impulse(idx, iv.impulse)
    else:  # pragma: no cover - validated in scene.py
        raise ValueError(f"unknown intervention {iv.type!r}")


def plain_rollout(scene: Scene) -> np.ndarray:
    """The reference: a plain pymunk loop over the full horizon, no early stop, no extras.

    Used by the benchmark and the tests as the yardstick for speed and for
    correctness of early stopping. Returns the final ``(n_bodies, 3)`` state.
    The scene's own physics is kept: a separate linear damping, and
    ``remove_below`` (checked once a frame; a culled body keeps its state).
    Interventions are not applied.
    """
    world = World(scene)
    space, dt = world.space, world.settings.dt
    level = scene.simulation.remove_below
    every = scene.simulation.substeps
    for k in range(world.settings.n_steps):
        space.step(dt)
        if world.linear_factor != 1.0:
            scale_linear_velocities(space, world.linear_factor, world._velocity_buffer)
        if level is not None and (k + 1) % every == 0:
            world.cull_below(level)
    if level is None:
        return np.array([(b.position.x, b.position.y, b.angle) for b in world.bodies], dtype=float)
    return world.state()


# --------------------------------------------------------------------------- geometry checks


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
# (tests/test_world.py checks this), and a rollout's overlap check builds no pymunk Space.
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
    return body, _static_shape(body, s)


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
        body, shape = _pooled(key, k, lambda b=b: _dynamic_body(b))
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
    placed: list[pymunk.Shape] = list(stat)
    moved: dict[int, tuple[float, float]] = {}
    # Overlap within the two skins is contact, not interpenetration (see find_overlaps).
    skin = {id(sh): skin_of(b) for sh, b in zip(dyn, scene.bodies)}
    skin.update({id(sh): skin_of(s) for sh, s in zip(stat, scene.statics)})

    def worst_overlap(shape):
        worst = (0.0, 0.0, 0.0)
        for other in placed:
            nx, ny, depth = separation_vector(other, shape)
            depth -= skin[id(other)] + skin[id(shape)]
            if depth > worst[2]:
                worst = (nx, ny, depth)
        return worst

    def move_to(shape, x, y):
        shape.body.position = (x, y)
        shape.cache_bb()

    for k in order:
        shape = dyn[k]
        body = shape.body
        x0, y0 = body.position
        free = False
        for _ in range(max_pushes):
            nx, ny, depth = worst_overlap(shape)
            if depth <= 1e-12:
                free = True
                break
            move_to(shape, body.position.x + nx * depth, body.position.y + ny * depth)
            moved[k] = (body.position.x, body.position.y)
        if not free and worst_overlap(shape)[2] > 1e-12:
            # Wedged: go back to the intended x and rise to the lowest free height.
            move_to(shape, x0, y0)
            bb = shape.bb
            lift = max((o.bb.top - bb.bottom for o in placed
                        if o.bb.right > bb.left and o.bb.left < bb.right), default=0.0)
            lo, hi = y0, y0 + max(lift, 0.0) + 1e-9
            for _ in range(40):
                mid = (lo + hi) / 2
                move_to(shape, x0, mid)
                if worst_overlap(shape)[2] > 1e-12:
                    lo = mid
                else:
                    hi = mid
            move_to(shape, x0, hi)
            moved[k] = (x0, hi)
        placed.append(shape)
    if not moved:
        return scene
    from dataclasses import replace as _replace

    bodies = list(scene.bodies)
    for k, pos in moved.items():
        bodies[k] = _replace(bodies[k], position=pos)
    return scene.with_bodies(bodies)
