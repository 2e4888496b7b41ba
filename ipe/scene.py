"""Plain-data scenes and stimuli, their JSON format, and validation.

Units are SI with y pointing up: metres, kilograms, seconds; angles in
radians (counter-clockwise). Densities are 2D (kg/m²): a block of
``width × height`` and ``density`` ρ has mass ``ρ · width · height``.

The objects here are frozen dataclasses that hold numbers only; nothing in
this module touches pymunk except the overlap check, which asks
:mod:`ipe.world` for the geometry. The JSON format is specified in
``docs/scene-format.md``; :func:`load_stimuli` and :func:`save_stimuli` read
and write it, and every problem is reported as a one-line
:class:`~ipe.errors.InputError` naming the file, the stimulus and the field.
"""

from __future__ import annotations

import math
import re
import weakref
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from .errors import InputError
from .fileio import read_json, write_json

SCHEMA_VERSION = 1
"""Version of the stimulus-set JSON format written by this package."""

Vec2 = tuple[float, float]

DEFAULT_GRAVITY: Vec2 = (0.0, -9.81)
DEFAULT_FRICTION = 0.7
COORD_LIMIT = 1e4
"""Largest ``|x|`` or ``|y|`` (m) of a position, vertex or segment end: beyond ~1e4 m, float rounding eats the
per-step fall of a body (at 1e308 gravity is lost entirely and nothing falls)."""
SIZE_RANGE = (1e-4, 1e4)
"""Smallest and largest width, height or radius (m) of a body or static shape."""
VELOCITY_LIMIT = 1e4
"""Largest ``|vx|`` or ``|vy|`` (m/s) of an initial velocity."""
DEFAULT_DENSITY = 1.0

_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
_ID_RE = re.compile(r"^[A-Za-z0-9_.:+-]{1,128}$")


# --------------------------------------------------------------------------- bodies


@dataclass(frozen=True)
class Block:
    """A dynamic rectangular block.

    ``position`` is the centre, ``width``/``height`` the side lengths along the
    body's own x/y axes, ``angle`` its rotation. Give ``density`` (kg/m²) or
    ``mass`` (kg), not both; with neither, the density is 1.
    ``material`` groups bodies that share a density for the mass noise μ
    (e.g. ``"heavy"``/``"light"``); ``label`` and ``color`` are for people and
    renderers. ``corner_radius`` rounds the corners (the outline stays
    ``width`` × ``height``). ``skin`` is a contact margin around the block,
    as Box2D's polygon radius: the block collides as its outline grown by
    ``skin`` on every side (with corners rounded by it), while its mass,
    moment, noise scale and rendering stay those of ``width`` × ``height``.
    Overlaps within the two skins are contact, not interpenetration.
    """

    id: str
    position: Vec2
    width: float
    height: float
    angle: float = 0.0
    density: float | None = None
    mass: float | None = None
    friction: float = DEFAULT_FRICTION
    elasticity: float = 0.0
    velocity: Vec2 = (0.0, 0.0)
    angular_velocity: float = 0.0
    color: str | None = None
    label: str | None = None
    material: str | None = None
    corner_radius: float = 0.0
    skin: float = 0.0

    type = "block"

    @property
    def area(self) -> float:
        return self.width * self.height

    @property
    def short_side(self) -> float:
        return min(self.width, self.height)

    @property
    def long_side(self) -> float:
        return max(self.width, self.height)

    @property
    def effective_density(self) -> float:
        if self.mass is not None:
            return self.mass / self.area
        return DEFAULT_DENSITY if self.density is None else self.density

    @property
    def effective_mass(self) -> float:
        return self.mass if self.mass is not None else self.effective_density * self.area


@dataclass(frozen=True)
class Ball:
    """A dynamic ball (disc) of ``radius`` centred at ``position``."""

    id: str
    position: Vec2
    radius: float
    angle: float = 0.0
    density: float | None = None
    mass: float | None = None
    friction: float = DEFAULT_FRICTION
    elasticity: float = 0.0
    velocity: Vec2 = (0.0, 0.0)
    angular_velocity: float = 0.0
    color: str | None = None
    label: str | None = None
    material: str | None = None

    type = "ball"

    @property
    def area(self) -> float:
        return math.pi * self.radius**2

    @property
    def short_side(self) -> float:
        return 2 * self.radius

    @property
    def long_side(self) -> float:
        return 2 * self.radius

    @property
    def effective_density(self) -> float:
        if self.mass is not None:
            return self.mass / self.area
        return DEFAULT_DENSITY if self.density is None else self.density

    @property
    def effective_mass(self) -> float:
        return self.mass if self.mass is not None else self.effective_density * self.area


@dataclass(frozen=True)
class StaticBox:
    """A static rectangle (ground, table top, wall).

    ``corner_radius`` rounds its corners; ``skin`` is a contact margin around
    it, as on :class:`Block`.
    """

    id: str
    position: Vec2
    width: float
    height: float
    angle: float = 0.0
    friction: float = DEFAULT_FRICTION
    elasticity: float = 0.0
    color: str | None = None
    label: str | None = None
    corner_radius: float = 0.0
    skin: float = 0.0

    type = "box"

    def local_vertices(self) -> list[Vec2]:
        w, h = self.width / 2, self.height / 2
        return [(-w, -h), (w, -h), (w, h), (-w, h)]


@dataclass(frozen=True)
class StaticPolygon:
    """A static convex polygon; ``vertices`` are relative to ``position`` and rotated by ``angle``."""

    id: str
    vertices: tuple[Vec2, ...]
    position: Vec2 = (0.0, 0.0)
    angle: float = 0.0
    friction: float = DEFAULT_FRICTION
    elasticity: float = 0.0
    color: str | None = None
    label: str | None = None

    type = "polygon"

    def local_vertices(self) -> list[Vec2]:
        return list(self.vertices)


@dataclass(frozen=True)
class StaticRegularPolygon:
    """A static regular polygon with ``sides`` corners on a circle of ``radius`` (circumradius).

    With ``angle = 0`` the first corner points along +x.
    """

    id: str
    sides: int
    radius: float
    position: Vec2 = (0.0, 0.0)
    angle: float = 0.0
    friction: float = DEFAULT_FRICTION
    elasticity: float = 0.0
    color: str | None = None
    label: str | None = None

    type = "regular_polygon"

    def local_vertices(self) -> list[Vec2]:
        return [
            (self.radius * math.cos(2 * math.pi * k / self.sides), self.radius * math.sin(2 * math.pi * k / self.sides))
            for k in range(self.sides)
        ]


@dataclass(frozen=True)
class StaticSegment:
    """A static line segment from ``a`` to ``b`` (world coordinates) with thickness ``radius``."""

    id: str
    a: Vec2
    b: Vec2
    radius: float = 0.0
    friction: float = DEFAULT_FRICTION
    elasticity: float = 0.0
    color: str | None = None
    label: str | None = None

    type = "segment"


DynamicBody = Block | Ball
StaticShape = StaticBox | StaticPolygon | StaticRegularPolygon | StaticSegment


def world_vertices(shape: StaticBox | StaticPolygon | StaticRegularPolygon | Block) -> list[Vec2]:
    """Corners of a polygonal shape in world coordinates."""
    if isinstance(shape, Block):
        w, h = shape.width / 2, shape.height / 2
        local = [(-w, -h), (w, -h), (w, h), (-w, h)]
    else:
        local = shape.local_vertices()
    c, s = math.cos(shape.angle), math.sin(shape.angle)
    px, py = shape.position
    return [(px + c * x - s * y, py + s * x + c * y) for x, y in local]


def top_surface(shape: StaticShape) -> float:
    """Highest y of a static shape: the height of its top surface."""
    if isinstance(shape, StaticSegment):
        return max(shape.a[1], shape.b[1]) + shape.radius
    return max(y for _, y in world_vertices(shape))


def x_extent(shape: StaticShape) -> tuple[float, float]:
    """Leftmost and rightmost x of a static shape."""
    if isinstance(shape, StaticSegment):
        return min(shape.a[0], shape.b[0]) - shape.radius, max(shape.a[0], shape.b[0]) + shape.radius
    xs = [x for x, _ in world_vertices(shape)]
    return min(xs), max(xs)


# --------------------------------------------------------------------------- scene


@dataclass(frozen=True)
class Simulation:
    """Time stepping of a scene.

    ``time_step`` is one frame (s); each frame is split into ``substeps``
    physics steps, so pymunk steps by ``time_step / substeps``. ``horizon`` is
    the simulated duration (2 s by default, as in Battaglia et al. 2013).
    ``iterations``, ``collision_slop`` and ``rest_window`` override the solver
    defaults chosen in :mod:`ipe.world` (leave them ``None`` unless you know
    why). ``damping`` is the fraction of every body's velocity kept after one
    second (pymunk's ``Space.damping``; 1 = none): of its linear velocity,
    and of its angular velocity too unless ``angular_damping`` gives that
    fraction separately (Box2D's ``linearDamping`` damps linear velocity only:
    ``angular_damping = 1``). ``remove_below`` (m), when set, takes every
    dynamic body whose centre has dropped below that height out of the world,
    checked once per frame, as Box2D Mental Jenga does with bricks that fell
    off the table; such a body keeps the state it had then (so it counts as
    fallen) and can no longer hit anything.

    ``collision_bias`` is pymunk's ``Space.collision_bias``: the fraction of
    an overlap left uncorrected after one second (default ``(1 - 0.2) ** 60``,
    20 % corrected per 1/60 s; pymunk's own default is ``(1 - 0.1) ** 60``).
    ``collision_noise_labels``, when set, limits collision noise
    (:class:`ipe.noise.CollisionNoise`) to contacts with shapes whose
    ``label`` is one of these (e.g. ``["obstacle"]``); by default every
    contact counts.
    """

    time_step: float = 1.0 / 60.0
    substeps: int = 4
    horizon: float = 2.0
    iterations: int | None = None
    collision_slop: float | None = None
    rest_window: float | None = None
    damping: float = 1.0
    angular_damping: float | None = None
    remove_below: float | None = None
    collision_bias: float | None = None
    collision_noise_labels: tuple[str, ...] | None = None

    @property
    def dt(self) -> float:
        """The physics step: ``time_step / substeps``."""
        return self.time_step / self.substeps

    @property
    def n_steps(self) -> int:
        """Physics steps in the horizon."""
        return int(round(self.horizon / self.dt))


@dataclass(frozen=True)
class Scene:
    """A 2D world: dynamic bodies, static shapes, gravity and time stepping."""

    bodies: tuple[DynamicBody, ...]
    statics: tuple[StaticShape, ...] = ()
    gravity: Vec2 = DEFAULT_GRAVITY
    simulation: Simulation = field(default_factory=Simulation)

    def body(self, body_id: str) -> DynamicBody:
        for b in self.bodies:
            if b.id == body_id:
                return b
        raise KeyError(body_id)

    def static(self, static_id: str) -> StaticShape:
        for s in self.statics:
            if s.id == static_id:
                return s
        raise KeyError(static_id)

    @property
    def body_ids(self) -> tuple[str, ...]:
        return tuple(b.id for b in self.bodies)

    @property
    def block_scale(self) -> float:
        """The typical size of the scene's bodies: the median long side (m)."""
        sides = sorted(b.long_side for b in self.bodies)
        if not sides:
            return 1.0
        return sides[len(sides) // 2]

    @property
    def short_scale(self) -> float:
        """The median short side of the dynamic bodies (m): the unit of σ."""
        sides = sorted(b.short_side for b in self.bodies)
        if not sides:
            return 1.0
        return sides[len(sides) // 2]

    def with_bodies(self, bodies: Iterable[DynamicBody]) -> "Scene":
        return replace(self, bodies=tuple(bodies))


# --------------------------------------------------------------------------- stimulus


@dataclass(frozen=True)
class Query:
    """The question a stimulus asks, by name, with parameters.

    See :mod:`ipe.queries` for the names and their parameters.
    """

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **dict(self.params)}

    @property
    def key(self) -> str:
        """A short text form used in tables, e.g. ``body_falls(body=b3)``."""
        if not self.params:
            return self.name
        inner = ",".join(f"{k}={_fmt_param(v)}" for k, v in sorted(self.params.items()))
        return f"{self.name}({inner})"


def _fmt_param(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return "+".join(str(x) for x in v)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(float(v))  # threshold=1 and threshold=1.0 (the CLI's "threshold=1") are one query
    return str(v)


@dataclass(frozen=True)
class Intervention:
    """Something done to the scene at ``time`` seconds into the rollout.

    ``type="remove"`` takes ``bodies`` out of the world (Jenga-style removal
    after a settling period). ``type="impulse"`` applies ``impulse`` (N·s,
    world frame) at the centre of each of ``bodies`` (every dynamic body
    when ``bodies`` is empty), e.g. a bump of the table.
    """

    type: str
    time: float
    bodies: tuple[str, ...] = ()
    impulse: Vec2 = (0.0, 0.0)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.type, "time": self.time, "bodies": list(self.bodies)}
        if self.type == "impulse":
            d["impulse"] = list(self.impulse)
        return d


@dataclass(frozen=True)
class Stimulus:
    """One trial's world: an id, a scene, the query it asks, interventions, metadata."""

    id: str
    scene: Scene
    query: Query = field(default_factory=lambda: Query("fall"))
    interventions: tuple[Intervention, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StimulusSet:
    """An ordered, uniquely-identified collection of stimuli."""

    stimuli: tuple[Stimulus, ...]
    name: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Stimulus]:
        return iter(self.stimuli)

    def __len__(self) -> int:
        return len(self.stimuli)

    def __getitem__(self, key: int | str) -> Stimulus:
        if isinstance(key, str):
            for s in self.stimuli:
                if s.id == key:
                    return s
            raise KeyError(key)
        return self.stimuli[key]

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.stimuli]


# --------------------------------------------------------------------------- parsing helpers


class _Fields:
    """Reads fields of one JSON object, tracking which were used, for strict parsing."""

    def __init__(self, data: Any, where: str, what: str = "object"):
        if not isinstance(data, dict):
            raise InputError(f"expected a JSON {what}, got {_jtype(data)}", where)
        self.data = data
        self.where = where
        self.used: set[str] = set()

    def _at(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def has(self, key: str) -> bool:
        return key in self.data and self.data[key] is not None

    def raw(self, key: str, default: Any = None, required: bool = False) -> Any:
        self.used.add(key)
        if key not in self.data or self.data[key] is None:
            if required:
                raise InputError(f"missing required field '{key}'", self.where or None)
            return default
        return self.data[key]

    def number(self, key: str, default: Any = None, required: bool = False, positive: bool = False,
               nonneg: bool = False, integer: bool = False) -> Any:
        v = self.raw(key, default=None, required=required)
        if v is None:
            return default
        return _number(v, self._at(key), positive=positive, nonneg=nonneg, integer=integer)

    def vec2(self, key: str, default: Any = None, required: bool = False, limit: float = COORD_LIMIT) -> Any:
        v = self.raw(key, default=None, required=required)
        if v is None:
            return default
        return _vec2(v, self._at(key), limit)

    def size(self, key: str, default: Any = None, required: bool = False, zero: bool = False) -> Any:
        """A width, height or radius: within :data:`SIZE_RANGE` (``zero``: 0 is allowed too)."""
        v = self.number(key, default, required=required, positive=not zero, nonneg=zero)
        if v is not None and not (zero and v == 0) and not SIZE_RANGE[0] <= v <= SIZE_RANGE[1]:
            raise InputError(f"must be within {SIZE_RANGE[0]:g}..{SIZE_RANGE[1]:g} m, got {v:g}", self._at(key))
        return v

    def string(self, key: str, default: Any = None, required: bool = False, pattern: re.Pattern | None = None,
               choices: Sequence[str] | None = None) -> Any:
        v = self.raw(key, default=None, required=required)
        if v is None:
            return default
        if not isinstance(v, str):
            raise InputError(f"must be a string, got {_jtype(v)}", self._at(key))
        if pattern is not None and not pattern.match(v):
            raise InputError(f"invalid value {v!r}", self._at(key))
        if choices is not None and v not in choices:
            raise InputError(f"unknown value {v!r}; expected one of {', '.join(choices)}", self._at(key))
        return v

    def color(self, key: str) -> str | None:
        v = self.string(key)
        if v is not None and not _COLOR_RE.match(v):
            raise InputError(f"colour must look like '#rrggbb', got {v!r}", self._at(key))
        return v

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise InputError(f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}",
                             self.where or None)


def _jtype(v: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(v), "a number" if isinstance(v, (int, float)) else type(v).__name__)


def _number(v: Any, where: str, positive: bool = False, nonneg: bool = False, integer: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise InputError(f"must be a number, got {_jtype(v)}", where)
    if not math.isfinite(v):
        raise InputError(f"must be finite, got {v}", where)
    if integer:
        if float(v) != int(v):
            raise InputError(f"must be an integer, got {v}", where)
        v = int(v)
    else:
        v = float(v)
    if positive and v <= 0:
        raise InputError(f"must be > 0, got {v}", where)
    if nonneg and v < 0:
        raise InputError(f"must be >= 0, got {v}", where)
    return v


def _vec2(v: Any, where: str, limit: float = COORD_LIMIT) -> Vec2:
    if not isinstance(v, (list, tuple)) or len(v) != 2:
        raise InputError(f"must be a pair [x, y], got {_jtype(v) if not isinstance(v, list) else f'{len(v)} values'}",
                         where)
    out = (_number(v[0], f"{where}[0]"), _number(v[1], f"{where}[1]"))
    for i, x in enumerate(out):
        if abs(x) > limit:
            raise InputError(f"must be within -{limit:g}..{limit:g}, got {x:g}", f"{where}[{i}]")
    return out


def _common_material(f: _Fields) -> dict[str, Any]:
    return {
        "friction": f.number("friction", DEFAULT_FRICTION, nonneg=True),
        "elasticity": f.number("elasticity", 0.0, nonneg=True),
        "color": f.color("color"),
        "label": f.string("label"),
    }


def _parse_body(data: Any, where: str) -> DynamicBody:
    f = _Fields(data, where)
    kind = f.string("type", "block", choices=("block", "ball"))
    bid = f.string("id", required=True, pattern=_ID_RE)
    common = dict(
        id=bid,
        position=f.vec2("position", required=True),
        angle=f.number("angle", 0.0),
        density=f.number("density", None, positive=True),
        mass=f.number("mass", None, positive=True),
        velocity=f.vec2("velocity", (0.0, 0.0), limit=VELOCITY_LIMIT),
        angular_velocity=f.number("angular_velocity", 0.0),
        material=f.string("material"),
        **_common_material(f),
    )
    if common["density"] is not None and common["mass"] is not None:
        raise InputError("give either 'density' or 'mass', not both", where)
    if kind == "block":
        body: DynamicBody = Block(width=f.size("width", required=True),
                                  height=f.size("height", required=True),
                                  corner_radius=f.number("corner_radius", 0.0, nonneg=True),
                                  skin=f.number("skin", 0.0, nonneg=True), **common)
        if 2 * body.corner_radius >= min(body.width, body.height):
            raise InputError(f"must be less than half the shorter side, got {body.corner_radius}",
                             f"{where}.corner_radius")
        _check_skin(body.skin, body, f"{where}.skin")
    else:
        body = Ball(radius=f.size("radius", required=True), **common)
    f.finish()
    return body


def _parse_static(data: Any, where: str) -> StaticShape:
    f = _Fields(data, where)
    kind = f.string("type", required=True, choices=("box", "polygon", "regular_polygon", "segment"))
    sid = f.string("id", required=True, pattern=_ID_RE)
    common = _common_material(f)
    shape: StaticShape
    if kind == "box":
        shape = StaticBox(id=sid, position=f.vec2("position", required=True),
                          width=f.size("width", required=True),
                          height=f.size("height", required=True),
                          angle=f.number("angle", 0.0), corner_radius=f.number("corner_radius", 0.0, nonneg=True),
                          skin=f.number("skin", 0.0, nonneg=True), **common)
        if 2 * shape.corner_radius >= min(shape.width, shape.height):
            raise InputError(f"must be less than half the shorter side, got {shape.corner_radius}",
                             f"{where}.corner_radius")
        _check_skin(shape.skin, shape, f"{where}.skin")
    elif kind == "polygon":
        raw = f.raw("vertices", required=True)
        if not isinstance(raw, list) or len(raw) < 3:
            raise InputError("must be a list of at least 3 [x, y] points", f"{where}.vertices")
        verts = tuple(_vec2(v, f"{where}.vertices[{i}]") for i, v in enumerate(raw))
        _check_convex(verts, f"{where}.vertices")
        shape = StaticPolygon(id=sid, vertices=verts, position=f.vec2("position", (0.0, 0.0)),
                              angle=f.number("angle", 0.0), **common)
    elif kind == "regular_polygon":
        sides = f.number("sides", required=True, integer=True)
        if sides < 3:
            raise InputError(f"must be >= 3, got {sides}", f"{where}.sides")
        shape = StaticRegularPolygon(id=sid, sides=sides, radius=f.size("radius", required=True),
                                     position=f.vec2("position", required=True), angle=f.number("angle", 0.0),
                                     **common)
    else:
        a, b = f.vec2("a", required=True), f.vec2("b", required=True)
        if a == b:
            raise InputError("segment end points 'a' and 'b' are the same point", where)
        shape = StaticSegment(id=sid, a=a, b=b, radius=f.size("radius", 0.0, zero=True), **common)
    f.finish()
    return shape


def _check_skin(skin: float, shape: Block | StaticBox, where: str) -> None:
    if skin >= 0.5 * min(shape.width, shape.height):
        raise InputError(f"must be less than half the shorter side, got {skin}", where)


def _check_convex(verts: Sequence[Vec2], where: str) -> None:
    n = len(verts)
    cross_signs = set()
    area2 = 0.0
    for i in range(n):
        x0, y0 = verts[i]
        x1, y1 = verts[(i + 1) % n]
        x2, y2 = verts[(i + 2) % n]
        cr = (x1 - x0) * (y2 - y1) - (y1 - y0) * (x2 - x1)
        if abs(cr) > 1e-12:
            cross_signs.add(cr > 0)
        area2 += x0 * y1 - x1 * y0
    if len(cross_signs) > 1:
        raise InputError("polygon is not convex", where)
    if abs(area2) < 1e-12:
        raise InputError("polygon has zero area", where)


def _label_list(v: Any, where: str) -> tuple[str, ...] | None:
    if v is None:
        return None
    if not isinstance(v, list) or not v or not all(isinstance(x, str) and x for x in v):
        raise InputError(f"must be a non-empty list of labels (strings), got {v!r}", where)
    return tuple(v)


def _parse_simulation(data: Any, where: str) -> Simulation:
    if data is None:
        return Simulation()
    f = _Fields(data, where)
    sim = Simulation(
        time_step=f.number("time_step", 1.0 / 60.0, positive=True),
        substeps=f.number("substeps", 4, positive=True, integer=True),
        horizon=f.number("horizon", 2.0, positive=True),
        iterations=f.number("iterations", None, positive=True, integer=True),
        collision_slop=f.number("collision_slop", None, nonneg=True),
        rest_window=f.number("rest_window", None, positive=True),
        damping=f.number("damping", 1.0, positive=True),
        angular_damping=f.number("angular_damping", None, positive=True),
        remove_below=f.number("remove_below", None),
        collision_bias=f.number("collision_bias", None, positive=True),
        collision_noise_labels=_label_list(f.raw("collision_noise_labels"), f"{where}.collision_noise_labels"),
    )
    f.finish()
    if sim.collision_bias is not None and sim.collision_bias > 1:
        raise InputError(f"must be in (0, 1] (fraction of an overlap left after one second), "
                         f"got {sim.collision_bias}", _w(where, "collision_bias"))
    for key in ("damping", "angular_damping"):
        v = getattr(sim, key)
        if v is not None and v > 1:
            raise InputError(f"must be in (0, 1] (fraction of velocity kept per second), got {v}", _w(where, key))
    if sim.n_steps < 1:
        raise InputError("horizon is shorter than one physics step", where)
    if sim.n_steps > 10_000_000:
        raise InputError(f"horizon / step gives {sim.n_steps} steps; that is too many", where)
    return sim


def _parse_scene(data: Any, where: str) -> Scene:
    f = _Fields(data, where)
    raw_bodies = f.raw("bodies", required=True)
    if not isinstance(raw_bodies, list):
        raise InputError(f"must be a list, got {_jtype(raw_bodies)}", f"{where}.bodies")
    if not raw_bodies:
        raise InputError("a scene needs at least one dynamic body", f"{where}.bodies")
    bodies = tuple(_parse_body(b, f"{where}.bodies[{i}]") for i, b in enumerate(raw_bodies))
    raw_statics = f.raw("statics", [])
    if not isinstance(raw_statics, list):
        raise InputError(f"must be a list, got {_jtype(raw_statics)}", f"{where}.statics")
    statics = tuple(_parse_static(s, f"{where}.statics[{i}]") for i, s in enumerate(raw_statics))
    scene = Scene(bodies=bodies, statics=statics, gravity=f.vec2("gravity", DEFAULT_GRAVITY),
                  simulation=_parse_simulation(f.raw("simulation"), f"{where}.simulation"))
    f.finish()
    return scene


def _parse_query(data: Any, where: str) -> Query:
    from . import queries  # local import: queries depends on scene

    if isinstance(data, str):
        data = {"name": data}
    f = _Fields(data, where)
    name = f.string("name", required=True)
    params = {k: v for k, v in data.items() if k != "name"}
    f.used.update(params)
    f.finish()
    q = Query(name=name, params=params)
    try:
        queries.check_query(q)
    except InputError as exc:
        raise exc.prefixed(where) from None
    return q


def _parse_intervention(data: Any, where: str) -> Intervention:
    f = _Fields(data, where)
    kind = f.string("type", required=True, choices=("remove", "impulse"))
    time = f.number("time", required=True, nonneg=True)
    raw = f.raw("bodies", [])
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(b, str) for b in raw):
        raise InputError("must be a list of body ids", f"{where}.bodies")
    impulse = f.vec2("impulse", (0.0, 0.0)) if kind == "impulse" else (0.0, 0.0)
    if kind == "remove" and not raw:
        raise InputError("a 'remove' intervention needs 'bodies'", where)
    f.finish()
    return Intervention(type=kind, time=time, bodies=tuple(raw), impulse=impulse)


def _w(where: str | None, fieldname: str) -> str:
    return f"{where}: {fieldname}" if where else fieldname


def parse_stimulus(data: Any, where: str | None = None, check_overlap: bool = True) -> Stimulus:
    """Build a validated :class:`Stimulus` from its JSON object.

    Errors are prefixed with ``stimulus '<id>'`` (or ``where`` when the id
    itself is unreadable).
    """
    if isinstance(data, dict) and isinstance(data.get("id"), str):
        label = f"stimulus {data['id']!r}"
    else:
        label = where or "stimulus"
    try:
        f = _Fields(data, "")
        sid = f.string("id", required=True, pattern=_ID_RE)
        scene = _parse_scene(f.raw("scene", required=True), "scene")
        query = _parse_query(f.raw("query", "fall"), "query")
        raw_iv = f.raw("interventions", [])
        if not isinstance(raw_iv, list):
            raise InputError(f"must be a list, got {_jtype(raw_iv)}", "interventions")
        interventions = tuple(_parse_intervention(iv, f"interventions[{i}]") for i, iv in enumerate(raw_iv))
        metadata = f.raw("metadata", {})
        if not isinstance(metadata, dict):
            raise InputError(f"must be an object, got {_jtype(metadata)}", "metadata")
        f.finish()
        stim = Stimulus(id=sid, scene=scene, query=query, interventions=interventions, metadata=metadata)
        validate_stimulus(stim, check_overlap=check_overlap, where="", check_fields=False)
    except InputError as exc:
        raise exc.prefixed(label) from None
    if check_overlap:
        _mark_valid(stim)
    return stim


def validate_stimulus(stim: Stimulus, check_overlap: bool = True, where: str | None = None,
                      check_fields: bool = True) -> None:
    """Run the checks that loading a file runs: every field, unique ids, references, the query, overlaps.

    For a stimulus built in Python, the field checks (finite positions,
    positive sizes and masses, convex polygons, …) run on its JSON form, as
    :func:`load_stimuli` would; ``check_fields=False`` skips them (the loader
    has run them already). Raises :class:`InputError` prefixed with ``where``
    (by default ``stimulus '<id>'``).
    """
    from . import queries

    if check_fields:
        # the loader's checks, all of them, on the stimulus's JSON form (its errors name the stimulus)
        import json

        try:
            data = json.loads(json.dumps(stimulus_to_dict(stim), default=_json_default))
            parse_stimulus(data, check_overlap=check_overlap)
        except (TypeError, ValueError) as exc:
            if not isinstance(exc, InputError):
                exc = InputError(f"stimulus {stim.id!r}: cannot be written as JSON ({exc})")
            raise (exc if where is None else exc.prefixed(where)) from None
        return
    where = f"stimulus {stim.id!r}" if where is None else where
    scene = stim.scene
    seen: dict[str, str] = {}
    for i, b in enumerate(scene.bodies):
        if b.id in seen:
            raise InputError(f"duplicate id {b.id!r} (also {seen[b.id]})", _w(where, f"scene.bodies[{i}].id"))
        seen[b.id] = f"scene.bodies[{i}]"
    for i, s in enumerate(scene.statics):
        if s.id in seen:
            raise InputError(f"duplicate id {s.id!r} (also {seen[s.id]})", _w(where, f"scene.statics[{i}].id"))
        seen[s.id] = f"scene.statics[{i}]"
    body_ids = set(scene.body_ids)
    for i, iv in enumerate(stim.interventions):
        for b in iv.bodies:
            if b not in body_ids:
                raise InputError(f"unknown body {b!r}", _w(where, f"interventions[{i}].bodies"))
        if iv.time >= scene.simulation.horizon:
            raise InputError(f"time {iv.time} is not inside the horizon ({scene.simulation.horizon} s)",
                             _w(where, f"interventions[{i}].time"))
    try:
        queries.check_query(stim.query, scene)
    except InputError as exc:
        raise exc.prefixed(_w(where, "query")) from None
    if check_overlap:
        from .geometry import find_overlaps

        for a, b, depth, tol in find_overlaps(scene):
            raise InputError(f"bodies {a!r} and {b!r} overlap by {depth:.4g} m (tolerance {tol:.3g} m)",
                             _w(where, "scene"))


# --------------------------------------------------------------------------- writing


def _body_to_dict(b: DynamicBody) -> dict[str, Any]:
    d: dict[str, Any] = {"id": b.id, "type": b.type, "position": list(b.position)}
    if isinstance(b, Block):
        d.update(width=b.width, height=b.height)
        if b.corner_radius:
            d["corner_radius"] = b.corner_radius
        if b.skin:
            d["skin"] = b.skin
    else:
        d.update(radius=b.radius)
    if b.angle:
        d["angle"] = b.angle
    if b.mass is not None:
        d["mass"] = b.mass
    elif b.density is not None:
        d["density"] = b.density
    d["friction"] = b.friction
    if b.elasticity:
        d["elasticity"] = b.elasticity
    if any(b.velocity):
        d["velocity"] = list(b.velocity)
    if b.angular_velocity:
        d["angular_velocity"] = b.angular_velocity
    for key in ("color", "label", "material"):
        if getattr(b, key) is not None:
            d[key] = getattr(b, key)
    return d


def _static_to_dict(s: StaticShape) -> dict[str, Any]:
    d: dict[str, Any] = {"id": s.id, "type": s.type}
    if isinstance(s, StaticBox):
        d.update(position=list(s.position), width=s.width, height=s.height)
        if s.corner_radius:
            d["corner_radius"] = s.corner_radius
        if s.skin:
            d["skin"] = s.skin
    elif isinstance(s, StaticPolygon):
        d.update(vertices=[list(v) for v in s.vertices], position=list(s.position))
    elif isinstance(s, StaticRegularPolygon):
        d.update(sides=s.sides, radius=s.radius, position=list(s.position))
    else:
        d.update(a=list(s.a), b=list(s.b))
        if s.radius:
            d["radius"] = s.radius
    if not isinstance(s, StaticSegment) and s.angle:
        d["angle"] = s.angle
    d["friction"] = s.friction
    if s.elasticity:
        d["elasticity"] = s.elasticity
    for key in ("color", "label"):
        if getattr(s, key) is not None:
            d[key] = getattr(s, key)
    return d


def scene_to_dict(scene: Scene) -> dict[str, Any]:
    """JSON-ready dict of a :class:`Scene`."""
    sim = scene.simulation
    simd: dict[str, Any] = {"time_step": sim.time_step, "substeps": sim.substeps, "horizon": sim.horizon}
    for key in ("iterations", "collision_slop", "rest_window"):
        if getattr(sim, key) is not None:
            simd[key] = getattr(sim, key)
    if sim.damping != 1.0:
        simd["damping"] = sim.damping
    for key in ("angular_damping", "remove_below", "collision_bias"):
        if getattr(sim, key) is not None:
            simd[key] = getattr(sim, key)
    if sim.collision_noise_labels is not None:
        simd["collision_noise_labels"] = list(sim.collision_noise_labels)
    return {
        "gravity": list(scene.gravity),
        "simulation": simd,
        "bodies": [_body_to_dict(b) for b in scene.bodies],
        "statics": [_static_to_dict(s) for s in scene.statics],
    }


def stimulus_to_dict(stim: Stimulus) -> dict[str, Any]:
    """JSON-ready dict of a :class:`Stimulus`."""
    d: dict[str, Any] = {"id": stim.id, "query": stim.query.to_dict()}
    if stim.interventions:
        d["interventions"] = [iv.to_dict() for iv in stim.interventions]
    d["metadata"] = dict(stim.metadata)
    d["scene"] = scene_to_dict(stim.scene)
    return d


def stimulus_set_to_dict(stimuli: StimulusSet) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "name": stimuli.name,
        "metadata": dict(stimuli.metadata),
        "stimuli": [stimulus_to_dict(s) for s in stimuli],
    }


# --------------------------------------------------------------------------- files


def parse_stimulus_set(data: Any, source: str = "<data>", check_overlap: bool = True) -> StimulusSet:
    """Validate and build a :class:`StimulusSet` from the parsed JSON document."""
    try:
        f = _Fields(data, "", what="object (a stimulus set)")
        version = f.raw("schema_version", required=True)
        if isinstance(version, bool) or not isinstance(version, int) or version != SCHEMA_VERSION:
            raise InputError(f"unsupported schema_version {version!r}; this ipe reads version {SCHEMA_VERSION}")
        name = f.string("name", "")
        metadata = f.raw("metadata", {})
        if not isinstance(metadata, dict):
            raise InputError(f"metadata must be an object, got {_jtype(metadata)}")
        raw = f.raw("stimuli", required=True)
        if not isinstance(raw, list):
            raise InputError(f"stimuli must be a list, got {_jtype(raw)}")
        if not raw:
            raise InputError("the stimulus set is empty")
        f.finish()
        stimuli = []
        seen: set[str] = set()
        for i, item in enumerate(raw):
            stim = parse_stimulus(item, f"stimuli[{i}]", check_overlap=check_overlap)
            if stim.id in seen:
                raise InputError(f"duplicate stimulus id {stim.id!r}", f"stimuli[{i}].id")
            seen.add(stim.id)
            stimuli.append(stim)
    except InputError as exc:
        raise exc.prefixed(source) from None
    return StimulusSet(stimuli=tuple(stimuli), name=name, metadata=metadata)


def load_stimuli(path: str | Path, check_overlap: bool = True) -> StimulusSet:
    """Read and validate a stimulus-set JSON file (see ``docs/scene-format.md``)."""
    data = read_json(path)
    return parse_stimulus_set(data, source=str(path), check_overlap=check_overlap)


def save_stimuli(stimuli: StimulusSet | Sequence[Stimulus], path: str | Path, name: str = "") -> Path:
    """Write a stimulus set as JSON, atomically. The output is deterministic."""
    if not isinstance(stimuli, StimulusSet):
        stimuli = StimulusSet(stimuli=tuple(stimuli), name=name)
    return write_json(path, stimulus_set_to_dict(stimuli))


#: Stimuli known to pass :func:`validate_stimulus` (loaded from files or checked once already), by id().
_VALIDATED: dict[int, "weakref.ref[Stimulus]"] = {}


def _mark_valid(stim: Stimulus) -> None:
    key = id(stim)
    _VALIDATED[key] = weakref.ref(stim, lambda _ref, key=key: _VALIDATED.pop(key, None))


def _checked(stim: Stimulus) -> Stimulus:
    ref = _VALIDATED.get(id(stim))
    if ref is None or ref() is not stim:
        validate_stimulus(stim)
        _mark_valid(stim)
    return stim


def _json_default(o: Any) -> Any:
    """numpy numbers and arrays in a Python-built stimulus, as JSON would hold them."""
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON data")


def as_stimulus_set(stimuli: StimulusSet | Stimulus | Sequence[Stimulus] | str | Path) -> StimulusSet:
    """Accept a set, a single stimulus, a list of stimuli or a path, and return a set.

    Stimuli built in Python are validated (once) as a file's would be, so a
    negative size or a NaN position is a clear :class:`InputError`, not a
    crash inside the physics engine.
    """
    if isinstance(stimuli, (str, Path)):
        return load_stimuli(stimuli)
    if isinstance(stimuli, StimulusSet):
        for s in stimuli:
            _checked(s)
        return stimuli
    if isinstance(stimuli, Stimulus):
        return StimulusSet(stimuli=(_checked(stimuli),))
    try:
        stimuli = tuple(stimuli)
    except TypeError:
        raise InputError(f"expected stimuli (a StimulusSet, a Stimulus, a list of them or a file path), got "
                         f"{type(stimuli).__name__}") from None
    bad = next((s for s in stimuli if not isinstance(s, Stimulus)), None)
    if bad is not None:
        raise InputError(f"expected Stimulus objects, got {type(bad).__name__} {bad!r:.60}")
    for s in stimuli:
        _checked(s)
    if not stimuli:
        raise InputError("no stimuli given")
    ids = [s.id for s in stimuli]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise InputError(f"duplicate stimulus id {dup!r}")
    return StimulusSet(stimuli=stimuli)
