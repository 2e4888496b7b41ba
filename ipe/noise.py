"""Named, composable, seeded noise sources: how the IPE's simulations differ from the world.

Each source turns one stimulus into one *noisy* rollout set-up: it may change
the scene before the rollout starts (perception, mass belief) and it may add
time-dependent actions to the rollout's :class:`~ipe.rollout.Schedule` (a push).
Sources draw from their own generator, keyed by their name inside the
rollout's seed (:func:`ipe.seeding.source_rng`), so switching one source on
or off never changes what another one draws *from the same rollout seed*.
(The rollout seed itself is keyed by the whole parameter point, so two
points differ in all their draws unless ``common_random_numbers=True``,
which gives every point the same rollout seeds.)

The parameters are in the units of Battaglia, Hamrick & Tenenbaum (2013):

``sigma`` (σ) — perceptual position noise
    ``x_i ← x_i + σ · s · ε_i``, ``ε_i ~ N(0, 1)`` independently per body,
    where ``s`` is the scene's median short side (the short side of a block:
    σ = 1 moves a block by one block-thickness on average). Optional angle
    noise ``θ_i ← θ_i + σ_θ · η_i`` (radians). After the shift, overlapping
    bodies are pushed apart bottom-up (:func:`ipe.geometry.resolve_overlaps`) so
    noisy scenes never start interpenetrating.

``phi`` (φ) — force noise
    A horizontal push on every dynamic body during the first ``duration``
    (200 ms) of the rollout — or, when the stimulus removes bodies after a
    settling period (Jenga), the first 200 ms after the (last) removal, when
    the scene people judge begins: ``F_i = d · φ · m_i · |g| · x̂`` with
    ``d = ±1`` equally likely. φ is the push's magnitude as a fraction of each
    body's weight (φ = 0.1 is a sideways acceleration of 0.1 g), the same for
    all bodies, as when the table a tower stands on is jolted. It is applied
    exactly, as a tilt of gravity during the push.

``mu`` (μ) — mass (density-ratio) uncertainty
    Bodies are grouped by ``material``. The material with the lowest nominal
    density is the reference; every other material's density is multiplied by
    ``exp(μ · ζ_k)``, ``ζ_k ~ N(0, 1)``, so the log heavy:light ratio has
    standard deviation μ. Scenes with one material are unaffected.

``friction`` — friction uncertainty (property uncertainty beside μ; 0 by default)
    Every contact's friction coefficient is multiplied by ``exp(friction · ζ)``,
    ``ζ ~ N(0, 1)``, one draw per rollout: the observer is unsure how
    slippery the materials are, not which brick is more slippery. pymunk
    multiplies the coefficients of the two shapes in contact, so every shape,
    static ones included, gets ``exp(friction · ζ / 2)``.

Motion noise (balls among obstacles, Smith & Vul 2013; the counterfactual
simulation model of Gerstenberg et al. 2021) — each 0 by default:

``launch_angle`` (rad), ``launch_speed`` (log units), ``launch_position`` (short sides) — launch noise
    At release, every ball's velocity is rotated by ``launch_angle · ε₁``
    and its speed multiplied by ``exp(launch_speed · ε₂)``; its centre moves
    by ``launch_position · s · (ε₃, ε₄)`` (isotropic, ``s`` as for σ: for a
    scene of balls, the ball diameter). A ball at rest keeps zero velocity.

``collision_angle`` (rad), ``collision_speed`` (log units) — collision noise
    Whenever a dynamic body stops touching another shape (chipmunk's
    *separate* event: it bounces off, or rolls off an edge), its velocity is
    rotated by ``collision_angle · ε`` and its speed multiplied by
    ``exp(collision_speed · ε')`` before the next physics step.

``collision_speed_loss``, ``collision_speed_sd`` (fractions of the speed) — the published Plinko speed noise
    At the same moment the speed is also multiplied by a factor
    ``c ~ Normal(1 − collision_speed_loss, collision_speed_sd)`` truncated
    at 0 (drawn by inverse CDF; with sd 0, ``c = max(1 − loss, 0)``). The
    Plinko model of Gerstenberg et al. draws its collision speed factor from
    such a truncated normal with a mean near 0.56 (``collision_speed_loss``
    ≈ 0.44). When the scene sets ``simulation.collision_noise_labels``
    (e.g. ``["obstacle"]``), collision noise — angle and speed alike — acts
    only when a body leaves a shape with one of these labels: walls, ground
    and lid then bounce the ball without noise.

``drop_angle`` (rad) — drop noise (the published Plinko model's drop noise)
    A ball released at rest has no velocity to turn at release, so its
    direction of motion is turned once, when its centre has first moved one
    ball diameter from where it started (for a Plinko ball: as it leaves
    the hole): its velocity is rotated by ``drop_angle · ε``. Balls that
    start moving are turned by ``launch_angle`` instead.

``step_angle`` (rad/√s) — per-step direction noise
    Before every physics step of length ``dt`` every dynamic body's velocity
    is rotated by ``step_angle · √dt · ε``: the direction of motion diffuses
    like a random walk with ``step_angle²`` rad² per second, independently of
    the time step.

``obstacle_position`` (short sides), ``obstacle_angle`` (rad) — obstacle noise
    Every static shape labelled ``"obstacle"`` is moved by
    ``obstacle_position · s · (ε₁, ε₂)`` and rotated about its centre by
    ``obstacle_angle · ε₃`` (a segment about its midpoint).

Launch and obstacle noise change the scene before the rollout (a ball pushed
into a shape is moved out, as after σ); collision and step noise act during
the rollout through :attr:`ipe.rollout.Schedule.hooks`, so with them the
rollout is stepped one physics step at a time. They read and set velocities
through :class:`ipe.world.World` (``velocity``, ``set_velocity``,
``apply_impulse``), never through pymunk.

All sources are exactly the identity when their parameter is 0.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, fields, replace
from typing import Sequence

import numpy as np

from .geometry import resolve_overlaps
from .rollout import Schedule
from .scene import Ball, Scene, StaticSegment, Stimulus
from .seeding import sample_seed, source_rng
from .validation import NONNEG_NUMBER, check

#: The one declared rule of every noise parameter (a finite number >= 0): NoiseParams checks it, and the CLI
#: checks its noise options with it under the option's name.
PARAM_RULE = NONNEG_NUMBER


class NoiseSource:
    """Base class: a named source of noise. Subclasses override one or both hooks."""

    name: str = "noise"

    def is_null(self) -> bool:
        """True when the source changes nothing (its level is 0)."""
        return False

    def perturb_scene(self, scene: Scene, rng: np.random.Generator) -> Scene:
        """Return the scene as this source makes the observer see it."""
        return scene

    def add_to_schedule(self, scene: Scene, rng: np.random.Generator, schedule: Schedule) -> None:
        """Add time-dependent actions to the rollout's schedule."""


@dataclass(frozen=True)
class PerceptualNoise(NoiseSource):
    """Gaussian horizontal position noise σ (in short sides) and optional angle noise (rad)."""

    sigma: float = 0.0
    angle_sigma: float = 0.0
    name = "perceptual"

    def is_null(self) -> bool:
        return self.sigma == 0 and self.angle_sigma == 0

    def perturb_scene(self, scene: Scene, rng: np.random.Generator) -> Scene:
        if self.is_null():
            return scene
        n = len(scene.bodies)
        dx = rng.standard_normal(n) * (self.sigma * scene.short_scale)
        dth = rng.standard_normal(n) * self.angle_sigma
        bodies = [
            replace(b, position=(b.position[0] + float(dx[i]), b.position[1]), angle=b.angle + float(dth[i]))
            for i, b in enumerate(scene.bodies)
        ]
        return resolve_overlaps(scene.with_bodies(bodies))


@dataclass(frozen=True)
class ForceNoise(NoiseSource):
    """A horizontal push of φ × weight on every body, direction ±1, for ``duration`` seconds."""

    phi: float = 0.0
    duration: float = 0.2
    name = "force"

    def is_null(self) -> bool:
        return self.phi == 0 or self.duration == 0

    def add_to_schedule(self, scene: Scene, rng: np.random.Generator, schedule: Schedule) -> None:
        if self.is_null():
            return
        direction = 1.0 if rng.random() < 0.5 else -1.0
        gx, gy = scene.gravity
        g = math.hypot(gx, gy)
        start = max((iv.time for iv in schedule.interventions if iv.type == "remove"), default=0.0)
        schedule.gravity_from = start
        schedule.gravity_until = (start + self.duration, (gx + direction * self.phi * g, gy))


@dataclass(frozen=True)
class FrictionNoise(NoiseSource):
    """Log-normal uncertainty in every friction coefficient: one factor ``exp(friction · ζ)`` per rollout."""

    friction: float = 0.0
    name = "friction"

    def is_null(self) -> bool:
        return self.friction == 0

    def perturb_scene(self, scene: Scene, rng: np.random.Generator) -> Scene:
        if self.is_null():
            return scene
        # pymunk's contact friction is the product of the two shapes' coefficients: the square root of the
        # factor on every shape scales every contact (body-body and body-static alike) by the factor.
        half = math.exp(0.5 * self.friction * float(rng.standard_normal()))
        bodies = tuple(replace(b, friction=b.friction * half) for b in scene.bodies)
        statics = tuple(replace(s, friction=s.friction * half) for s in scene.statics)
        return replace(scene, bodies=bodies, statics=statics)


@dataclass(frozen=True)
class MassNoise(NoiseSource):
    """Log-normal uncertainty μ in the density ratio between materials."""

    mu: float = 0.0
    name = "mass"

    def is_null(self) -> bool:
        return self.mu == 0

    def perturb_scene(self, scene: Scene, rng: np.random.Generator) -> Scene:
        if self.is_null():
            return scene
        density: dict[str, float] = {}
        for b in scene.bodies:
            key = b.material or ""
            density[key] = min(density.get(key, math.inf), b.effective_density)
        if len(density) < 2:
            return scene
        names = sorted(density)
        reference = min(names, key=lambda k: (density[k], k))
        others = [k for k in names if k != reference]
        z = rng.standard_normal(len(others))
        factor = {k: math.exp(self.mu * float(z[i])) for i, k in enumerate(others)}
        factor[reference] = 1.0
        bodies = [
            replace(b, density=b.effective_density * factor[b.material or ""], mass=None) for b in scene.bodies
        ]
        return scene.with_bodies(bodies)


def _rotate(vx: float, vy: float, angle: float, factor: float = 1.0) -> tuple[float, float]:
    c, s = math.cos(angle), math.sin(angle)
    return factor * (c * vx - s * vy), factor * (s * vx + c * vy)


@dataclass(frozen=True)
class LaunchNoise(NoiseSource):
    """Noise on every ball's release: direction (rad), speed (log units) and position (short sides).

    ``angle``: s.d. of the rotation of the initial velocity (rad);
    ``speed``: s.d. of the log of the speed factor (0.1 ≈ ±10 %);
    ``position``: s.d. of the shift of the centre along x and along y, in
    units of the scene's median short side (a ball's diameter).
    Blocks are not launched and stay as they are.
    """

    angle: float = 0.0
    speed: float = 0.0
    position: float = 0.0
    name = "launch"

    def is_null(self) -> bool:
        return self.angle == 0 and self.speed == 0 and self.position == 0

    def perturb_scene(self, scene: Scene, rng: np.random.Generator) -> Scene:
        if self.is_null():
            return scene
        balls = [i for i, b in enumerate(scene.bodies) if isinstance(b, Ball)]
        if not balls:
            return scene
        eps = rng.standard_normal((len(balls), 4))
        step = self.position * scene.short_scale
        bodies = list(scene.bodies)
        for k, i in enumerate(balls):
            b = bodies[i]
            vx, vy = _rotate(b.velocity[0], b.velocity[1], self.angle * float(eps[k, 0]),
                             math.exp(self.speed * float(eps[k, 1])))
            bodies[i] = replace(b, velocity=(vx, vy), position=(b.position[0] + step * float(eps[k, 2]),
                                                                  b.position[1] + step * float(eps[k, 3])))
        out = scene.with_bodies(bodies)
        return resolve_overlaps(out) if self.position > 0 else out


class _CollisionKick:
    """The per-rollout state of :class:`CollisionNoise`: bodies that just left a contact get a kick."""

    def __init__(self, source: "CollisionNoise", rng: np.random.Generator, labels: Sequence[str] | None = None):
        self.source = source
        self.rng = rng
        self.labels = None if labels is None else frozenset(labels)
        self.pending: set[int] = set()
        self.index: dict[int, int] | None = None
        self.noisy: set[int] | None = None  # id() of the shapes whose contacts count (labels given)

    def _separate(self, arbiter) -> None:
        a, b = arbiter.shapes
        for me, other in ((a, b), (b, a)):
            k = self.index.get(id(me)) if self.index is not None else None
            if k is not None and (self.noisy is None or id(other) in self.noisy):
                self.pending.add(k)

    def __call__(self, world) -> None:
        if self.index is None:
            self.index = world.shape_index()
            if self.labels is not None:
                self.noisy = world.labelled_shapes(self.labels)
            world.on_contact(separate=self._separate)
            return
        if not self.pending:
            return
        src = self.source
        for k in sorted(self.pending):
            if not world.is_active(k):
                continue
            e = self.rng.standard_normal(2)
            factor = math.exp(src.speed * float(e[1]))
            if src.loss or src.speed_sd:
                factor *= truncated_speed_factor(self.rng, 1.0 - src.loss, src.speed_sd)
            vx, vy = world.velocity(k)
            world.set_velocity(k, _rotate(vx, vy, src.angle * float(e[0]), factor))
        self.pending.clear()


class _DropTurn:
    """The per-rollout state of :class:`DropNoise`: turn each ball once, one diameter after its release."""

    def __init__(self, balls: list[tuple[int, float, float, float]], turns: np.ndarray):
        self.waiting = {k: (x, y, d * d, float(t)) for (k, x, y, d), t in zip(balls, turns)}

    def __call__(self, world) -> None:
        if not self.waiting:
            return
        for k in list(self.waiting):
            x0, y0, d2, turn = self.waiting[k]
            if not world.is_active(k):
                del self.waiting[k]
                continue
            x, y = world.position(k)
            if (x - x0) ** 2 + (y - y0) ** 2 >= d2:
                vx, vy = world.velocity(k)
                world.set_velocity(k, _rotate(vx, vy, turn))
                del self.waiting[k]


@dataclass(frozen=True)
class DropNoise(NoiseSource):
    """Drop noise of the published Plinko model: a ball released at rest has its direction turned once.

    ``angle`` (rad): s.d. of the rotation of the velocity, applied when the
    ball's centre has first moved one diameter from where it started (see
    the module docstring). Balls that start moving are left to
    :class:`LaunchNoise`.
    """

    angle: float = 0.0
    name = "drop"

    def is_null(self) -> bool:
        return self.angle == 0

    def add_to_schedule(self, scene: Scene, rng: np.random.Generator, schedule: Schedule) -> None:
        if self.is_null():
            return
        balls = [(k, b.position[0], b.position[1], 2 * b.radius) for k, b in enumerate(scene.bodies)
                 if isinstance(b, Ball) and b.velocity == (0.0, 0.0)]
        if balls:
            schedule.hooks.append(_DropTurn(balls, rng.standard_normal(len(balls)) * self.angle))


def truncated_speed_factor(rng: np.random.Generator, mean: float, sd: float) -> float:
    """One draw of ``Normal(mean, sd)`` truncated to ``[0, ∞)`` (inverse CDF: one uniform per draw)."""
    if sd == 0:
        return max(mean, 0.0)
    from scipy.special import ndtr, ndtri

    lo = float(ndtr(-mean / sd))
    u = lo + (1.0 - lo) * float(rng.random())
    return max(0.0, mean + sd * float(ndtri(min(u, 1.0 - 1e-16))))


@dataclass(frozen=True)
class CollisionNoise(NoiseSource):
    """Noise on the velocity of a body as it leaves a contact (Smith & Vul 2013; Gerstenberg et al.'s Plinko).

    ``angle``: s.d. of the rotation of the velocity (rad); ``speed``: s.d.
    of the log of the speed factor; ``loss`` and ``speed_sd``: the speed is
    also multiplied by ``Normal(1 − loss, speed_sd)`` truncated at 0 (the
    published Plinko collision noise). ``labels``: act only when the body
    leaves a shape with one of these labels (default: the scene's
    ``simulation.collision_noise_labels``; ``None`` there means every
    contact). Applied before the physics step after chipmunk reports that
    the body stopped touching another shape.
    """

    angle: float = 0.0
    speed: float = 0.0
    loss: float = 0.0
    speed_sd: float = 0.0
    labels: tuple[str, ...] | None = None
    name = "collision"

    def is_null(self) -> bool:
        return self.angle == 0 and self.speed == 0 and self.loss == 0 and self.speed_sd == 0

    def add_to_schedule(self, scene: Scene, rng: np.random.Generator, schedule: Schedule) -> None:
        if not self.is_null():
            labels = self.labels if self.labels is not None else scene.simulation.collision_noise_labels
            schedule.hooks.append(_CollisionKick(self, rng, labels))


class _StepTurn:
    def __init__(self, sd: float, rng: np.random.Generator):
        self.sd = sd
        self.rng = rng

    def __call__(self, world) -> None:
        n = world.n_bodies
        if not n:
            return
        turn = self.rng.standard_normal(n) * (self.sd * math.sqrt(world.settings.dt))
        for k in range(n):
            if not world.is_active(k):
                continue
            vx, vy = world.velocity(k)
            world.set_velocity(k, _rotate(vx, vy, float(turn[k])))


@dataclass(frozen=True)
class StepNoise(NoiseSource):
    """Per-step direction noise: every step of length dt rotates each velocity by ``angle · √dt · ε`` (rad/√s)."""

    angle: float = 0.0
    name = "step"

    def is_null(self) -> bool:
        return self.angle == 0

    def add_to_schedule(self, scene: Scene, rng: np.random.Generator, schedule: Schedule) -> None:
        if not self.is_null():
            schedule.hooks.append(_StepTurn(self.angle, rng))


OBSTACLE_LABEL = "obstacle"
"""Static shapes with this ``label`` are the ones :class:`ObstacleNoise` moves."""


def _move_static(s, dx: float, dy: float, dth: float):
    if isinstance(s, StaticSegment):
        mx, my = (s.a[0] + s.b[0]) / 2, (s.a[1] + s.b[1]) / 2

        def f(p):
            rx, ry = _rotate(p[0] - mx, p[1] - my, dth)
            return (mx + rx + dx, my + ry + dy)

        return replace(s, a=f(s.a), b=f(s.b))
    return replace(s, position=(s.position[0] + dx, s.position[1] + dy), angle=s.angle + dth)


@dataclass(frozen=True)
class ObstacleNoise(NoiseSource):
    """Uncertainty about where the obstacles are: shift (short sides) and rotation (rad).

    Moves every static shape labelled :data:`OBSTACLE_LABEL` by
    ``position · s · (ε₁, ε₂)`` and turns it about its centre by
    ``angle · ε₃``. Other statics (ground, walls) stay put.
    """

    position: float = 0.0
    angle: float = 0.0
    name = "obstacle"

    def is_null(self) -> bool:
        return self.position == 0 and self.angle == 0

    def perturb_scene(self, scene: Scene, rng: np.random.Generator) -> Scene:
        if self.is_null():
            return scene
        idx = [i for i, s in enumerate(scene.statics) if s.label == OBSTACLE_LABEL]
        if not idx:
            return scene
        eps = rng.standard_normal((len(idx), 3))
        step = self.position * scene.short_scale
        statics = list(scene.statics)
        for k, i in enumerate(idx):
            statics[i] = _move_static(statics[i], step * float(eps[k, 0]), step * float(eps[k, 1]),
                                      self.angle * float(eps[k, 2]))
        return resolve_overlaps(replace(scene, statics=tuple(statics)))


class _RemovalKick:
    """The per-rollout state of :class:`RemovalNoise`: kick what rested on the bodies being removed."""

    def __init__(self, source: "RemovalNoise", scene: Scene, rng: np.random.Generator):
        self.source = source
        self.rng = rng
        gx, gy = scene.gravity
        g = math.hypot(gx, gy)
        self.up = (-gx / g, -gy / g) if g > 0 else (0.0, 1.0)
        s = scene.short_scale
        self.probe = REMOVAL_PROBE * s
        self.speed = REMOVAL_SPEED * math.sqrt(g * s)
        self.kicked: int | None = None  # how many bodies the kick found (None: not called yet)

    def __call__(self, world, indices: list[int]) -> None:
        targets = world.resting_on(indices, self.probe, self.up)
        self.kicked = len(targets)
        # one direction for every kicked body, θ ~ U(45°, 135°) from the horizontal, then one Γ(L) size each
        theta = self.rng.uniform(math.pi / 4, 3 * math.pi / 4)
        ux, uy = self.up
        cx, cy = math.cos(theta), math.sin(theta)  # along (up_y, −up_x) and along up
        dx, dy = cx * uy + cy * ux, -cx * ux + cy * uy
        sizes = self.rng.gamma(self.source.level, 1.0, size=len(targets)) if targets else ()
        for k, size in zip(targets, sizes):
            dv = self.speed * float(size)
            m = world.mass(k)
            world.apply_impulse(k, (m * dv * dx, m * dv * dy))


@dataclass(frozen=True)
class RemovalNoise(NoiseSource):
    """A random kick to what rested on a removed body (the "impulse-aligned" noise of Mental Jenga).

    When a ``remove`` intervention takes a body out, every dynamic body that
    rests on it, directly or through others (:meth:`ipe.world.World.resting_on`),
    gets a velocity kick ``Δv_i = G_i · v₀`` along one direction shared by all
    of them: θ ~ U(45°, 135°) from the horizontal, pointing up (against
    gravity). ``G_i ~ Gamma(level, 1)`` independently per body (mean and
    variance ``level``); ``v₀ = REMOVAL_SPEED · sqrt(|g| · s)``, s the scene's
    median short side, so that on Mental Jenga bricks (0.4 m, g = 10,
    3.2 kg) one unit is the authors' 3 N·s impulse. Stimuli without a
    removal are unaffected.
    """

    level: float = 0.0
    name = "removal"

    def is_null(self) -> bool:
        return self.level == 0

    def add_to_schedule(self, scene: Scene, rng: np.random.Generator, schedule: Schedule) -> None:
        if not self.is_null() and any(iv.type == "remove" for iv in schedule.interventions):
            schedule.on_remove.append(_RemovalKick(self, scene, rng))


REMOVAL_SPEED = 15 / 32
"""Unit of the removal kick as a fraction of sqrt(|g| · s): 3 N·s on a 3.2 kg, 0.4 m Mental Jenga brick at g = 10."""

REMOVAL_PROBE = 0.025
"""How far above/below a contact point :meth:`ipe.world.World.resting_on` looks, in short sides (1 cm on 0.4 m)."""

MOTION_FIELDS = ("launch_angle", "launch_speed", "launch_position", "collision_angle", "collision_speed",
                 "step_angle", "obstacle_position", "obstacle_angle", "drop_angle", "collision_speed_loss",
                 "collision_speed_sd")
"""The motion-noise fields of :class:`NoiseParams` (all 0 by default)."""

PLINKO_FIELDS = ("drop_angle", "collision_angle", "collision_speed_loss", "collision_speed_sd")
"""The published Plinko noise family (Gerstenberg et al.): drop noise, collision angle noise and the truncated
normal collision speed factor."""

PROPERTY_FIELDS = ("friction",)
"""Property-uncertainty fields besides μ (0 by default)."""

INTERVENTION_FIELDS = ("removal_impulse",)
"""Noise in how an intervention is carried out (0 by default)."""

_KEYED_WHEN_SET = MOTION_FIELDS + PROPERTY_FIELDS + INTERVENTION_FIELDS  # added later: in the seed key only when ≠ 0

NOISE_UNITS = {
    "sigma": "short sides", "phi": "fraction of weight", "mu": "log density ratio", "angle_sigma": "rad",
    "push_duration": "s", "launch_angle": "rad", "launch_speed": "log speed", "launch_position": "short sides",
    "collision_angle": "rad", "collision_speed": "log speed", "step_angle": "rad/sqrt(s)",
    "obstacle_position": "short sides", "obstacle_angle": "rad", "friction": "log friction",
    "removal_impulse": "gamma shape", "drop_angle": "rad", "collision_speed_loss": "fraction of speed",
    "collision_speed_sd": "fraction of speed",
}
"""The unit of every noise parameter."""


@dataclass(frozen=True)
class NoiseParams:
    """One point in noise-parameter space.

    ``sigma``, ``phi``, ``mu`` as in the module docstring; ``angle_sigma``
    (rad) adds angle noise to σ; ``push_duration`` is how long φ acts (s).
    ``friction`` is the log-sd of friction uncertainty; ``removal_impulse``
    the shape of the Gamma-sized kick :class:`RemovalNoise` gives what rested
    on a removed body. The motion noise
    (:data:`MOTION_FIELDS`, units in :data:`NOISE_UNITS`) composes with them:
    launch and obstacle noise after σ and μ, collision and step noise during
    the rollout.
    """

    sigma: float = 0.0
    phi: float = 0.0
    mu: float = 0.0
    angle_sigma: float = 0.0
    push_duration: float = 0.2
    launch_angle: float = 0.0
    launch_speed: float = 0.0
    launch_position: float = 0.0
    collision_angle: float = 0.0
    collision_speed: float = 0.0
    step_angle: float = 0.0
    obstacle_position: float = 0.0
    obstacle_angle: float = 0.0
    friction: float = 0.0
    removal_impulse: float = 0.0
    drop_angle: float = 0.0
    collision_speed_loss: float = 0.0
    collision_speed_sd: float = 0.0

    def __post_init__(self):
        # Every field follows one declared rule (a finite number >= 0), checked here, where a point is made.
        for f in fields(self):
            v = check(f"noise parameter {f.name}", getattr(self, f.name), PARAM_RULE)
            # a plain float, and -0.0 as 0.0: equal points must name the same seeds (key() reads repr)
            object.__setattr__(self, f.name, v + 0.0)

    def sources(self) -> list[NoiseSource]:
        """The active noise sources, in the order they are applied."""
        out: list[NoiseSource] = [
            PerceptualNoise(self.sigma, self.angle_sigma),
            MassNoise(self.mu),
            FrictionNoise(self.friction),
            ForceNoise(self.phi, self.push_duration),
            RemovalNoise(self.removal_impulse),
            ObstacleNoise(self.obstacle_position, self.obstacle_angle),
            LaunchNoise(self.launch_angle, self.launch_speed, self.launch_position),
            DropNoise(self.drop_angle),
            CollisionNoise(self.collision_angle, self.collision_speed, self.collision_speed_loss,
                           self.collision_speed_sd),
            StepNoise(self.step_angle),
        ]
        return [s for s in out if not s.is_null()]

    @property
    def is_null(self) -> bool:
        return not self.sources()

    def key(self) -> int:
        """A stable integer naming this point, used in the rollout seeds.

        Motion-noise and friction fields enter the key only when they are not
        0, so points without them keep the keys (and the draws) they always had.
        """
        text = ",".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)
                        if f.name not in _KEYED_WHEN_SET or getattr(self, f.name) != 0)
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")

    def as_dict(self) -> dict[str, float]:
        """Every field by name (the parameter columns of the Monte Carlo tables)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The field names, in order: the parameter columns of :mod:`ipe.montecarlo`'s tables."""
        return tuple(f.name for f in fields(cls))


def apply_noise(stimulus: Stimulus, sources: Sequence[NoiseSource], ss: np.random.SeedSequence
                ) -> tuple[Scene, Schedule]:
    """Compose ``sources`` on one stimulus for one rollout seeded by ``ss``.

    Returns the perturbed scene and the rollout schedule (the stimulus's
    interventions plus whatever the sources add).
    """
    scene = stimulus.scene
    schedule = Schedule(interventions=stimulus.interventions)
    for src in sources:
        if src.is_null():
            continue
        rng = source_rng(ss, src.name)
        scene = src.perturb_scene(scene, rng)
        src.add_to_schedule(scene, rng, schedule)
    return scene, schedule


__all__ = [
    "NoiseSource",
    "PerceptualNoise",
    "ForceNoise",
    "MassNoise",
    "FrictionNoise",
    "RemovalNoise",
    "INTERVENTION_FIELDS",
    "REMOVAL_SPEED",
    "LaunchNoise",
    "CollisionNoise",
    "DropNoise",
    "PLINKO_FIELDS",
    "truncated_speed_factor",
    "StepNoise",
    "ObstacleNoise",
    "OBSTACLE_LABEL",
    "MOTION_FIELDS",
    "PROPERTY_FIELDS",
    "NOISE_UNITS",
    "NoiseParams",
    "apply_noise",
    "sample_seed",
]
