"""Named, composable, seeded noise sources: how the IPE's simulations differ from the world.

Each source turns one stimulus into one *noisy* rollout set-up: it may change
the scene before the rollout starts (perception, mass belief) and it may add
time-dependent actions to the rollout's :class:`~ipe.world.Schedule` (a push).
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
    bodies are pushed apart bottom-up (:func:`ipe.world.resolve_overlaps`) so
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

All sources are exactly the identity when their parameter is 0.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, fields, replace
from typing import Sequence

import numpy as np

from .errors import InputError
from .scene import Scene, Stimulus
from .seeding import sample_seed, source_rng
from .world import Schedule, resolve_overlaps


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


@dataclass(frozen=True)
class NoiseParams:
    """One point in noise-parameter space.

    ``sigma``, ``phi``, ``mu`` as in the module docstring; ``angle_sigma``
    (rad) adds angle noise to σ; ``push_duration`` is how long φ acts (s).
    """

    sigma: float = 0.0
    phi: float = 0.0
    mu: float = 0.0
    angle_sigma: float = 0.0
    push_duration: float = 0.2

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise InputError(f"noise parameter {f.name} must be a finite number, got {v!r}")
            if v < 0:
                raise InputError(f"noise parameter {f.name} must be >= 0, got {v}")
            object.__setattr__(self, f.name, float(v))

    def sources(self) -> list[NoiseSource]:
        """The active noise sources, in the order they are applied."""
        out: list[NoiseSource] = [
            PerceptualNoise(self.sigma, self.angle_sigma),
            MassNoise(self.mu),
            ForceNoise(self.phi, self.push_duration),
        ]
        return [s for s in out if not s.is_null()]

    @property
    def is_null(self) -> bool:
        return not self.sources()

    def key(self) -> int:
        """A stable integer naming this point, used in the rollout seeds."""
        text = ",".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


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
    "NoiseParams",
    "apply_noise",
    "sample_seed",
]
