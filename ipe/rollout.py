"""The rollout loop: one scene simulated in a fresh :class:`~ipe.world.World`, with scheduled events and early stop.

:func:`rollout` steps a scene to its horizon (or to rest), applying the
:class:`Schedule`'s events (interventions, the force-noise push, named by
:class:`EventKind`) and per-step hooks, and returns a :class:`RolloutResult`
of plain arrays. :func:`plain_rollout` is the yardstick: a plain pymunk loop
over the full horizon. The solver settings are those of :mod:`ipe.world`.

Rest detection and early stopping
---------------------------------
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
  random towers, on the demo set and on noisy rollouts (``tests/test_rollout.py``)
  the fall counts equal those of the full horizon.

``rest_window`` can be overridden per scene in ``scene.simulation``.

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
full horizon.

Answer-aware stopping
---------------------
A rollout can also be given :attr:`Schedule.final_when`, the
:class:`ipe.queries.HeightTest` of its height-based queries (``fall``,
``count_fallen``, ``body_falls``). After the last scheduled event, at a rest
check at most every :data:`FINAL_CHECK_EVERY` steps, :class:`ReachBound`
bounds every body's height from now to the horizon by the energy left in the
scene and a floor (with solver margins, :data:`REACH_PENETRATION` and
:data:`REACH_ENERGY_SLACK`); if every answer is the same for any final
heights within the bounds, the rollout ends there: its answers are provably
those of the full horizon. On noisy BHT towers this almost never happens
before rest (``docs/concepts.md``). ``early_stop=False`` turns off every stop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from .scene import Ball, Block, Intervention, Scene, StaticBox, top_surface, x_extent
from .world import World, skin_of

REST_CHECK_EVERY = 8  # physics steps between rest checks
#: The drift window (s): at rest also needs no body to have moved more than DRIFT_TOLERANCE rest
#: tolerances over this long (at least the rest window), so slow one-way motion is not taken for rest.
DRIFT_WINDOW = 4.0 / 15.0
DRIFT_TOLERANCE = 0.5  # in rest tolerances
MOVING_FACTOR = 20.0  # beyond this many tolerances per window, checks pause for a window
#: Scenes with a ball: at rest also needs every ball's speed (|v| and |ω|·radius) below this many
#: scales per second at every rest check over the drift window (see "Balls" in the module docstring).
REST_SPEED = 0.001
#: The reach bound's solver margins (see "Answer-aware stopping"): how far a body's centre may sink below its
#: lowest resting height on the floor (in short sides; 2.3× the most seen on noisy BHT towers) and how much
#: energy the solver may add (in total weight × short side; 2× the most seen, which came from bodies pushed
#: back out of the floor after a fast impact).
REACH_PENETRATION = 0.5
REACH_ENERGY_SLACK = 0.15
#: Answer-aware stopping asks its test at a rest check at most once per this many physics steps (1/7.5 s):
#: each test reads every body's motion, and on noisy BHT towers it rarely ends a rollout before rest.
FINAL_CHECK_EVERY = 32


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
    """The first contacts of a tracked rollout: a contact listener that reads what chipmunk reports, sets nothing."""

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
    final_when: Any = None
    """Answer-aware stopping (with ``early_stop`` only): the queries' :class:`ipe.queries.HeightTest`.
    At every rest check after the last scheduled event it is asked whether every answer is the same for
    any final heights within the provable bounds of :class:`ReachBound`; if so the rollout ends there.
    :func:`ipe.runner.run_sample` sets it from :func:`ipe.queries.final_condition`."""


class EventKind(IntEnum):
    """What a scheduled rollout event does. Events due at one step are applied in this order."""

    PUSH_END = 0
    """The force-noise push ends: the scene's own gravity again."""
    INTERVENTION = 1
    """A stimulus intervention (``remove`` or ``impulse``)."""
    PUSH_START = 2
    """The force-noise push begins: gravity tilted (``Schedule.gravity_until``)."""


class Event(NamedTuple):
    """One scheduled event: applied before physics step ``step``."""

    step: int
    kind: EventKind
    payload: object = None


def _step_at(t: float, dt: float) -> int:
    """The first physics step at or after time ``t``."""
    return int(math.ceil(t / dt - 1e-9))


def plan_events(world: World, schedule: Schedule) -> list[Event]:
    """The schedule's events in the order they are applied (step, then :class:`EventKind`).

    A push that starts at time 0 is applied here, to ``world``, and is not an event.
    """
    dt, n_steps = world.settings.dt, world.settings.n_steps
    events = [Event(_step_at(iv.time, dt), EventKind.INTERVENTION, iv) for iv in schedule.interventions]
    if schedule.gravity_until is not None:
        t_end, g = schedule.gravity_until
        push_start = _step_at(schedule.gravity_from, dt)
        push_end = min(n_steps, _step_at(t_end, dt))
        if push_end > push_start:
            if push_start <= 0:
                world.set_gravity(g)
            else:
                events.append(Event(push_start, EventKind.PUSH_START, g))
            events.append(Event(push_end, EventKind.PUSH_END))
    events.sort(key=lambda e: (e.step, e.kind))
    return events


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


def apply_event(world: World, event: Event, schedule: Schedule, index_of: dict[str, int]) -> None:
    """Apply one event to ``world`` (``index_of``: body id → scene index)."""
    if event.kind == EventKind.PUSH_END:
        world.set_gravity(world.scene.gravity)
    elif event.kind == EventKind.PUSH_START:
        world.set_gravity(event.payload)
    else:
        iv = event.payload
        if iv.type == "remove" and schedule.on_remove:
            going = [index_of[b] for b in iv.bodies]
            for h in schedule.on_remove:
                h(world, going)
        _apply_intervention(world, iv, index_of)


class RestCheck:
    """Rest detection for early stopping (see the module docstring): poses compared a rest window apart.

    While the scene is clearly moving (more than :data:`MOVING_FACTOR` times
    the tolerance in a window) checks are spaced out, so a long fall pays
    little for them. ``next_check`` is the step of the next check; no check
    passes before the last scheduled event (``last_event``).
    """

    def __init__(self, world: World, last_event: int):
        dt = world.settings.dt
        every = self.every = REST_CHECK_EVERY
        self.window = max(every, int(round(world.settings.rest_window / dt / every)) * every)
        self.drift = max(self.window, int(round(DRIFT_WINDOW / dt / every)) * every)
        self.last_event = last_event
        self.next_check = every
        self.history: dict[int, np.ndarray] = {}
        self.tolerance: np.ndarray | None = None
        # Scenes with a ball: rest also needs no speed at every check over the drift window.
        self.balls = [k for k, b in enumerate(world.scene.bodies) if isinstance(b, Ball)]
        self.calm_since: int | None = None

    def restart(self) -> None:
        """Bodies were culled: the raw poses changed shape, so a new window starts."""
        self.history.clear()
        self.tolerance = None

    def at_rest(self, world: World, i: int) -> bool:
        """Check at step ``i`` (``i >= next_check``): whether the scene is at rest."""
        self.next_check = i + self.every
        if i <= self.last_event:
            return False
        if self.balls:
            if world.max_speed(self.balls) >= REST_SPEED:
                self.calm_since = None
            elif self.calm_since is None:
                self.calm_since = i
        now = world.raw_poses()
        history = self.history
        history[i] = now
        before = history.get(i - self.window)
        start = history.pop(i - self.drift, None)
        if before is None:
            return False
        if self.tolerance is None:
            self.tolerance = world.rest_tolerance_vector(len(now))
        excess = float(np.max(np.abs(now - before) / self.tolerance))
        # At rest: still over the rest window, and no drift over the longer one.
        if excess < 1.0 and start is not None and \
                float(np.max(np.abs(now - start) / self.tolerance)) < DRIFT_TOLERANCE and \
                (not self.balls or (self.calm_since is not None and i - self.calm_since >= self.drift)):
            return True
        if excess > MOVING_FACTOR:
            # Clearly moving: skip a window, then look again.
            history.clear()
            self.next_check = i + self.window
        return False


class ReachBound:
    """Provable bounds on every body's height from now to the horizon: the physics behind answer-aware stopping.

    After the last scheduled event nothing adds energy to a scene whose
    gravity points straight down, with no per-step hooks, no contact
    listeners, damping ≤ 1 and elasticity ≤ 1: its energy ``E`` (kinetic,
    rotational and potential) can only fall, up to what the solver adds
    (:data:`REACH_ENERGY_SLACK`). A *floor* (a level static box under every
    body) keeps each body's centre at or above ``y_min`` = floor top + the
    body's smallest half-extent, up to :data:`REACH_PENETRATION`, for as long
    as the body stays over it. With ``A = E + slack − Σ m g y_min`` (the
    energy that could still be turned into any one body's motion or height):

    * body ``i`` can never rise above ``y_min_i + A / (m_i g)``;
    * no body moves faster than ``√(2A / m_i)``, so in the time left to the
      horizon ``τ`` it moves at most ``√(2A / m_i) · τ`` (plus the margin);
    * the floor bound holds to the horizon if no body can reach the floor's
      edge by then (checked with the same speed bound).

    :meth:`bounds` returns ``(y_low, y_high)`` per body, or ``None`` when the
    floor cannot be shown to hold. :meth:`for_world` returns ``None`` for a
    scene where the argument does not apply.
    """

    def __init__(self, world: World, floor_top: float, floor_x: tuple[float, float], low: np.ndarray,
                 reach: np.ndarray, mass: np.ndarray):
        scene = world.scene
        self.world = world
        s = scene.short_scale
        self.g = -float(scene.gravity[1])
        self.m = mass
        self._moment: np.ndarray | None = None
        self.margin = REACH_PENETRATION * s
        self.y_min = floor_top + low - self.margin
        self.radius = reach
        self.floor_x = floor_x
        self.slack = REACH_ENERGY_SLACK * float(mass.sum()) * self.g * s
        # No bound on a body's height is ever tighter than this above its floor height (the slack is always there).
        self.rise_floor = self.y_min + np.minimum(self.slack / (mass * self.g), self.margin)
        self.dt, self.n_steps = world.settings.dt, world.settings.n_steps

    @property
    def moment(self) -> np.ndarray:
        if self._moment is None:
            self._moment = np.array([b.moment for b in self.world.bodies], dtype=float)
        return self._moment

    @classmethod
    def for_world(cls, world: World, schedule: "Schedule") -> "ReachBound | None":
        """The bound for ``world``, or ``None`` when something could add energy or there is no floor."""
        scene = world.scene
        sim = scene.simulation
        gx, gy = scene.gravity
        if schedule.hooks or schedule.track or world.has_contact_listeners() or gx != 0 or gy >= 0:
            return None
        angular = sim.damping if sim.angular_damping is None else sim.angular_damping
        if sim.damping > 1 or angular > 1 or not scene.bodies:
            return None
        if any(b.elasticity > 1 for b in scene.bodies) or any(st.elasticity > 1 for st in scene.statics):
            return None
        # The floor: the lowest level box that lies under every body (whole outlines).
        low, reach, xs, ys = [], [], [], []
        for b in scene.bodies:
            if isinstance(b, Block):
                low.append(min(b.width, b.height) / 2 + b.skin)
                reach.append(math.hypot(b.width, b.height) / 2 + b.skin)
            else:
                low.append(b.radius)
                reach.append(b.radius)
            xs.append(b.position[0])
            ys.append(b.position[1])
        margin = REACH_PENETRATION * scene.short_scale
        left = min(x - r for x, r in zip(xs, reach))
        right = max(x + r for x, r in zip(xs, reach))
        lowest = min(y - lo for y, lo in zip(ys, low)) + margin
        best = None
        for st in scene.statics:
            if not isinstance(st, StaticBox) or st.angle != 0:
                continue
            x0, x1 = x_extent(st)
            top = top_surface(st) + skin_of(st)
            if x0 <= left and right <= x1 and top <= lowest and (best is None or top < best[0]):
                best = (top, (x0, x1))
        if best is None:
            return None
        mass = np.array([b.effective_mass for b in scene.bodies], dtype=float)
        return cls(world, best[0], best[1], np.array(low), np.array(reach), mass)

    def bounds(self, step: int) -> tuple[np.ndarray, np.ndarray] | None:
        """``(y_low, y_high)``: every body's centre height stays within these from ``step`` to the horizon."""
        world = self.world
        mo = world.motion()
        x, y = mo[:, 0], mo[:, 1]
        gone = world.removed | world.culled
        here = ~gone
        m, g, y_min = self.m[here], self.g, self.y_min[here]
        xh, yh = x[here], y[here]
        if np.any(yh < y_min):
            return None
        kinetic = 0.5 * (m * (mo[here, 3] ** 2 + mo[here, 4] ** 2) + self.moment[here] * mo[here, 5] ** 2)
        available = float(kinetic.sum() + (m * g * (yh - y_min)).sum()) + self.slack
        travel = np.sqrt(2.0 * available / m) * (self.n_steps - step) * self.dt + self.margin
        x0, x1 = self.floor_x
        r = self.radius[here]
        if np.any(xh - travel - r < x0) or np.any(xh + travel + r > x1):
            return None
        low, high = y.copy(), y.copy()
        low[here] = np.minimum(np.maximum(y_min, yh - travel), yh)
        high[here] = np.maximum(np.minimum(y_min + available / (m * g), yh + travel), yh)
        return low, high


class _Rollout:
    """One rollout's state: the world, its events, the rest check and what is recorded."""

    def __init__(self, scene: Scene, schedule: Schedule, early_stop: bool, record_every: int | None):
        self.scene, self.schedule, self.record_every = scene, schedule, record_every
        self.world = world = World(scene)
        self.initial = world.last_state.copy()
        self.events = plan_events(world, schedule)
        last_event = max((e.step for e in self.events), default=0)
        self.rest = RestCheck(world, last_event) if early_stop else None
        self.frames: list[np.ndarray] = [self.initial.copy()] if record_every else []
        self.times: list[float] = [0.0] if record_every else []
        self.log = _ContactLog(world) if schedule.track else None
        self.path: list[np.ndarray] = [self.initial.copy()] if self.log is not None else []
        self.stop_when = schedule.stop_when if (early_stop and self.log is not None) else None
        self.final = None
        self.next_final = 0
        if early_stop and schedule.final_when is not None:
            reach = ReachBound.for_world(world, schedule)
            if reach is not None and schedule.final_when.possible(self.initial[:, 1], reach.y_min, reach.rise_floor,
                                                                  reach.margin):
                self.final = (reach, schedule.final_when)

    # The loop's state is kept in locals: this runs once per stretch of physics steps (every step for
    # tracked rollouts and rollouts with hooks), so attribute look-ups would cost time.
    def run(self) -> int:
        """Step to the horizon, to rest or to ``stop_when``; returns the number of physics steps run."""
        world, events, rest, log, path, stop_when = (self.world, self.events, self.rest, self.log, self.path,
                                                     self.stop_when)
        schedule, record_every = self.schedule, self.record_every
        hooks = schedule.hooks
        n_steps, dt = world.settings.n_steps, world.settings.dt
        cull_level = self.scene.simulation.remove_below
        cull_every = self.scene.simulation.substeps  # physics steps per frame: culling is checked once a frame
        index_of = {bid: k for k, bid in enumerate(world.ids)}
        ev = i = 0
        while i < n_steps:
            while ev < len(events) and events[ev].step <= i:
                apply_event(world, events[ev], schedule, index_of)
                ev += 1
            # Run straight to the next event, check or recording point.
            nxt = n_steps
            if ev < len(events):
                nxt = min(nxt, events[ev].step)
            if rest is not None:
                nxt = min(nxt, max(rest.next_check, i + 1))
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
            world.advance(nxt - i)
            i = nxt
            if log is not None:
                path.append(world.state())
                if stop_when is not None and stop_when(log.contacts, path):
                    break
            if cull_level is not None and i % cull_every == 0 and world.cull_below(cull_level) and rest is not None:
                rest.restart()
            if record_every and i % record_every == 0:
                self.frames.append(world.state())
                self.times.append(i * dt)
            if rest is not None and i >= rest.next_check:
                if rest.at_rest(world, i):
                    break
                if self.final is not None and rest.last_event < i < n_steps and i >= self.next_final:
                    self.next_final = i + FINAL_CHECK_EVERY
                    if self._answers_final(i):
                        break
        return i

    def _answers_final(self, i: int) -> bool:
        """Answer-aware stopping: whether the queries' answers are provably those of the horizon."""
        reach, test = self.final
        if not test.could_be_final(self.initial[:, 1], self.world.state()[:, 1], reach.y_min, self.world.removed):
            return False
        b = reach.bounds(i)
        return b is not None and test.final(self.initial[:, 1], b[0], b[1], self.world.removed)

    def result(self, steps: int) -> RolloutResult:
        """The :class:`RolloutResult` after ``steps`` physics steps."""
        world, dt = self.world, self.world.settings.dt
        final = world.state()
        trajectory = times = None
        if self.record_every:
            if self.times[-1] != steps * dt:
                self.frames.append(final.copy())
                self.times.append(steps * dt)
            trajectory, times = np.stack(self.frames), np.asarray(self.times)
        events = None
        if self.log is not None:
            events = RolloutEvents(dt=dt, path=np.stack(self.path), contacts=dict(self.log.contacts))
        return RolloutResult(body_ids=world.ids, initial=self.initial, final=final, removed=world.removed.copy(),
                             steps=steps, n_steps=world.settings.n_steps, trajectory=trajectory, times=times,
                             culled=world.culled.copy(), events=events)


def rollout(scene: Scene, schedule: Schedule | None = None, early_stop: bool = True,
            record_every: int | None = None) -> RolloutResult:
    """Simulate ``scene`` from rest to its horizon in a fresh world.

    With ``early_stop`` the rollout ends as soon as the scene is at rest
    (see the module docstring) and nothing is scheduled any more, or, on a
    tracked rollout, as soon as ``schedule.stop_when`` says every landing
    asked of it has happened. ``record_every`` (in physics steps) records a
    downsampled trajectory.
    """
    run = _Rollout(scene, schedule or Schedule(), early_stop, record_every)
    return run.result(run.run())


def plain_rollout(scene: Scene) -> np.ndarray:
    """The reference: a plain pymunk loop over the full horizon, no early stop, no extras.

    Used by the benchmark and the tests as the yardstick for speed and for
    correctness of early stopping. Returns the final ``(n_bodies, 3)`` state.
    The scene's own physics is kept: a separate linear damping, and
    ``remove_below`` (checked once a frame; a culled body keeps its state).
    Interventions are not applied.
    """
    world = World(scene)
    level = scene.simulation.remove_below
    if level is None:
        world.step(world.settings.n_steps)
        return world.read_state()
    every = scene.simulation.substeps
    for k in range(world.settings.n_steps):
        world.step()
        if (k + 1) % every == 0:
            world.cull_below(level)
    return world.state()
