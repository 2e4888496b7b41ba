"""Plain-data scenes and stimuli: frozen dataclasses that hold numbers, each with its own invariants.

Units are SI with y pointing up: metres, kilograms, seconds; angles in
radians (counter-clockwise). Densities are 2D (kg/m²): a block of
``width × height`` and ``density`` ρ has mass ``ρ · width · height``.

Nothing here touches pymunk, reads a file or knows the queries. Every
dataclass checks its own fields when it is made (``__post_init__``, against
the rules declared per class below), so a :class:`Block` with a negative
width or a NaN position cannot exist: making one raises a :class:`FieldError`
(an :class:`~ipe.errors.InputError`) such as
``Block 'b0': width: must be > 0, got -0.1``. The checks that need the whole
stimulus (unique ids, references, the query, overlaps) are in
:mod:`ipe.checks`; the JSON format (``docs/scene-format.md``) is read and
written by :mod:`ipe.scenefile`.

The field checks are cheap (a few microseconds for a Block): noise sources
make perturbed copies of bodies with :func:`dataclasses.replace` for every
sample, and each copy is checked.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping, Optional

from .errors import InputError

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
MAX_STEPS = 10_000_000
"""Most physics steps a horizon may take."""

ID_PATTERN = re.compile(r"[A-Za-z0-9_.:+-]{1,128}")
"""What an id (of a body, static shape or stimulus) may be, in full."""
COLOR_PATTERN = re.compile(r"#[0-9a-fA-F]{6}")


# --------------------------------------------------------------------------- field rules


class FieldError(InputError):
    """A field of a scene object that breaks its rule.

    ``field`` is the field's path inside the object (``"width"``,
    ``"position[0]"``; ``None`` for the object as a whole) and ``problem``
    says what is wrong (``"must be > 0, got -0.1"``). The message names the
    object, the field and the problem: ``Block 'b0': width: must be > 0, got
    -0.1``; :meth:`at` gives the same problem located in a file instead
    (``scene.bodies[0].width: must be > 0, got -0.1``).
    """

    def __init__(self, owner: str, field: str | None, problem: str, joint: str = "."):
        self.field, self.problem, self.joint = field, problem, joint
        super().__init__(problem, f"{owner}: {field}" if field else owner)

    def at(self, where: str) -> InputError:
        """The same problem, located at ``where`` (the object's place in a file) instead of the object."""
        if not self.field:
            return InputError(self.problem, where or None)
        return InputError(self.problem, f"{where}{self.joint}{self.field}" if where else self.field)


#: A rule: ``rule(value)`` is ``None`` when the value follows it, else ``(sub-path, problem)``.
Rule = Callable[[Any], Optional[tuple[str, str]]]


def json_type(v: Any) -> str:
    """What kind of value ``v`` is, in JSON's words ("a string", "an array", "null", ...)."""
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(v), "a number" if isinstance(v, (int, float)) else type(v).__name__)


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def number(low: float | None = None, strict: bool = False, size: bool = False, zero: bool = False,
           integer: bool = False, limit: float | None = None) -> Rule:
    """A finite real number (an ``int`` when ``integer``), ``> low`` (``strict``) or ``>= low``.

    ``size``: a width, height or radius, within :data:`SIZE_RANGE` (``zero``:
    0 is allowed too); ``limit``: ``|value| <= limit``.
    """
    low_text = None if low is None else f"must be {'>' if strict else '>='} {low:g}, got "

    def rule(v: Any) -> tuple[str, str] | None:
        t = type(v)
        if t is not float and t is not int:
            if not _is_number(v):
                return "", f"must be a number, got {json_type(v)}"
        if not math.isfinite(v):
            return "", f"must be finite, got {float(v)}"
        if integer:
            if not isinstance(v, numbers.Integral):
                return "", f"must be an integer, got {v}"
            shown: Any = int(v)
        else:
            shown = float(v)
        if low_text is not None and (v < low or (strict and v == low)):
            return "", f"{low_text}{shown}"
        if size and not (zero and v == 0) and not SIZE_RANGE[0] <= v <= SIZE_RANGE[1]:
            return "", f"must be within {SIZE_RANGE[0]:g}..{SIZE_RANGE[1]:g} m, got {v:g}"
        if limit is not None and abs(v) > limit:
            return "", f"must be within -{limit:g}..{limit:g}, got {v:g}"
        return None

    return rule


def optional(rule: Rule) -> Rule:
    """``None``, or a value that follows ``rule``."""
    return lambda v: None if v is None else rule(v)


def pair(limit: float) -> Rule:
    """A point or vector ``(x, y)`` of finite numbers within ``±limit``."""
    coord = number(limit=limit)

    def rule(v: Any) -> tuple[str, str] | None:
        if type(v) is not tuple and (isinstance(v, (str, bytes, dict)) or not hasattr(v, "__len__")):
            return "", f"must be a pair [x, y], got {json_type(v)}"
        if len(v) != 2:
            return "", f"must be a pair [x, y], got {len(v)} values"
        for i in (0, 1):
            bad = coord(v[i])
            if bad is not None:
                return f"[{i}]", bad[1]
        return None

    return rule


def text(pattern: re.Pattern | None = None, words: str | None = None) -> Rule:
    """A string, matching ``pattern`` in full if given (else ``words`` or "invalid value ...")."""

    def rule(v: Any) -> tuple[str, str] | None:
        if type(v) is not str:
            return "", f"must be a string, got {json_type(v)}"
        if pattern is not None and pattern.fullmatch(v) is None:
            return "", (f"invalid value {v!r}" if words is None else f"{words}, got {v!r}")
        return None

    return rule


def one_of(*choices: str) -> Rule:
    """One of the strings ``choices``."""
    string = text()

    def rule(v: Any) -> tuple[str, str] | None:
        bad = string(v)
        if bad is None and v not in choices:
            return "", f"unknown value {v!r}; expected one of {', '.join(choices)}"
        return bad

    return rule


def fraction_kept(what: str) -> Rule:
    """A fraction in (0, 1]: what is left of ``what`` after one second."""
    positive = number(0.0, strict=True)

    def rule(v: Any) -> tuple[str, str] | None:
        bad = positive(v)
        if bad is None and v > 1:
            return "", f"must be in (0, 1] ({what}), got {float(v)}"
        return bad

    return rule


def label_list(v: Any) -> tuple[str, str] | None:
    """A non-empty sequence of non-empty strings."""
    if not isinstance(v, (list, tuple)) or not v or not all(isinstance(x, str) and x for x in v):
        return "", f"must be a non-empty list of labels (strings), got {v!r}"
    return None


ID = text(ID_PATTERN)
COLOR = optional(text(COLOR_PATTERN, "colour must look like '#rrggbb'"))
NAME = optional(text())
NUMBER = number()
POSITIVE = number(0.0, strict=True)
NONNEG = number(0.0)
SIZE = number(0.0, strict=True, size=True)
POINT = pair(COORD_LIMIT)
VELOCITY = pair(VELOCITY_LIMIT)


def _owner(obj: Any) -> str:
    ident = getattr(obj, "id", None)
    return type(obj).__name__ if ident is None else f"{type(obj).__name__} {ident!r}"


def enforce(obj: Any, rules: tuple[tuple[str, Rule], ...], joint: str = ".") -> None:
    """Raise :class:`FieldError` for the first field of ``obj`` that breaks its rule."""
    for name, rule in rules:
        bad = rule(getattr(obj, name))
        if bad is not None:
            raise FieldError(_owner(obj), name + bad[0], bad[1], joint)


def _less_than_half_side(obj: Any, name: str) -> None:
    v = getattr(obj, name)
    if v and 2 * v >= min(obj.width, obj.height):
        raise FieldError(_owner(obj), name, f"must be less than half the shorter side, got {v}")


def _density_or_mass(obj: Any) -> None:
    if obj.density is not None and obj.mass is not None:
        raise FieldError(_owner(obj), None, "give either 'density' or 'mass', not both")


_MATERIAL_RULES = (("friction", NONNEG), ("elasticity", NONNEG), ("color", COLOR), ("label", NAME))
_BODY_RULES = (("id", ID), ("position", POINT), ("angle", NUMBER), ("density", optional(POSITIVE)),
               ("mass", optional(POSITIVE)), ("velocity", VELOCITY), ("angular_velocity", NUMBER),
               ("material", NAME)) + _MATERIAL_RULES


def convex_polygon(v: Any) -> tuple[str, str] | None:
    """At least 3 points ``(x, y)``, in order around a convex outline of non-zero area."""
    if not isinstance(v, (list, tuple)) or len(v) < 3:
        return "", "must be a list of at least 3 [x, y] points"
    for i, p in enumerate(v):
        bad = POINT(p)
        if bad is not None:
            return f"[{i}]{bad[0]}", bad[1]
    n, signs, area2 = len(v), set(), 0.0
    for i in range(n):
        (x0, y0), (x1, y1), (x2, y2) = v[i], v[(i + 1) % n], v[(i + 2) % n]
        cross = (x1 - x0) * (y2 - y1) - (y1 - y0) * (x2 - x1)
        if abs(cross) > 1e-12:
            signs.add(cross > 0)
        area2 += x0 * y1 - x1 * y0
    if len(signs) > 1:
        return "", "polygon is not convex"
    if abs(area2) < 1e-12:
        return "", "polygon has zero area"
    return None


def body_ids(v: Any) -> tuple[str, str] | None:
    """A sequence of ids (strings)."""
    if not isinstance(v, (list, tuple)) or not all(isinstance(b, str) for b in v):
        return "", "must be a list of body ids"
    return None


def _plain(v: Any, low: float, high: float) -> bool:
    """``v`` is a plain ``float`` in ``[low, high]`` (NaN is not: every comparison with it is false)."""
    return type(v) is float and low <= v <= high


def _plain_pair(v: Any, limit: float) -> bool:
    return type(v) is tuple and len(v) == 2 and _plain(v[0], -limit, limit) and _plain(v[1], -limit, limit)


def quick_body_ok(b: Any) -> bool:
    """A fast test that accepts only bodies the rules accept, in their common form (plain floats in range).

    Noise sources copy bodies for every sample; this keeps that cheap. Whatever it does not accept (an
    ``int`` width, a NaN, a label) goes through the declared rules, which give the message.
    """
    inf, lo, hi = math.inf, SIZE_RANGE[0], SIZE_RANGE[1]
    return (_plain_pair(b.position, COORD_LIMIT) and _plain_pair(b.velocity, VELOCITY_LIMIT)
            and _plain(b.angle, -inf, inf) and b.angle != inf and b.angle != -inf
            and _plain(b.angular_velocity, -inf, inf) and abs(b.angular_velocity) != inf
            and _plain(b.friction, 0.0, inf) and b.friction != inf
            and _plain(b.elasticity, 0.0, inf) and b.elasticity != inf
            and ((b.mass is None and (b.density is None or _plain(b.density, 0.0, inf) and 0.0 < b.density != inf))
                 or (b.density is None and _plain(b.mass, 0.0, inf) and 0.0 < b.mass != inf))
            and (b.label is None or type(b.label) is str) and (b.material is None or type(b.material) is str)
            and (b.color is None or type(b.color) is str and COLOR_PATTERN.fullmatch(b.color) is not None)
            and (_plain(b.width, lo, hi) and _plain(b.height, lo, hi) and b.corner_radius == 0.0 == b.skin
                 if type(b) is Block else _plain(b.radius, lo, hi))
            and type(b.id) is str and ID_PATTERN.fullmatch(b.id) is not None)


#: The declared rules of each dataclass's fields, checked in this order when one is made.
_BLOCK_RULES = _BODY_RULES + (("width", SIZE), ("height", SIZE), ("corner_radius", NONNEG), ("skin", NONNEG))
_BALL_RULES = _BODY_RULES + (("radius", SIZE),)
_BOX_RULES = (("id", ID), ("position", POINT), ("width", SIZE), ("height", SIZE), ("angle", NUMBER),
              ("corner_radius", NONNEG), ("skin", NONNEG)) + _MATERIAL_RULES
_POLYGON_RULES = (("id", ID), ("vertices", convex_polygon), ("position", POINT), ("angle", NUMBER)) + _MATERIAL_RULES
_REGULAR_POLYGON_RULES = (("id", ID), ("sides", number(3, integer=True)), ("radius", SIZE), ("position", POINT),
                          ("angle", NUMBER)) + _MATERIAL_RULES
_SEGMENT_RULES = (("id", ID), ("a", POINT), ("b", POINT), ("radius", number(0.0, size=True, zero=True))
                  ) + _MATERIAL_RULES
_SIMULATION_RULES = (
    ("time_step", POSITIVE), ("substeps", number(0, strict=True, integer=True)), ("horizon", POSITIVE),
    ("iterations", optional(number(0, strict=True, integer=True))), ("collision_slop", optional(NONNEG)),
    ("rest_window", optional(POSITIVE)), ("damping", POSITIVE), ("angular_damping", optional(POSITIVE)),
    ("remove_below", optional(NUMBER)), ("collision_bias", optional(POSITIVE)),
    ("collision_noise_labels", optional(label_list)),
)
_SIMULATION_FRACTIONS = (
    ("collision_bias", optional(fraction_kept("fraction of an overlap left after one second"))),
    ("damping", fraction_kept("fraction of velocity kept per second")),
    ("angular_damping", optional(fraction_kept("fraction of velocity kept per second"))),
)
_SCENE_RULES = (("gravity", POINT),)
_INTERVENTION_RULES = (("type", one_of("remove", "impulse")), ("time", NONNEG), ("bodies", body_ids),
                       ("impulse", POINT))
_STIMULUS_RULES = (("id", ID),)


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

    def __post_init__(self) -> None:
        if quick_body_ok(self):
            return
        enforce(self, _BLOCK_RULES)
        _density_or_mass(self)
        _less_than_half_side(self, "corner_radius")
        _less_than_half_side(self, "skin")

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

    def __post_init__(self) -> None:
        if quick_body_ok(self):
            return
        enforce(self, _BALL_RULES)
        _density_or_mass(self)

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

    def __post_init__(self) -> None:
        enforce(self, _BOX_RULES)
        _less_than_half_side(self, "corner_radius")
        _less_than_half_side(self, "skin")

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

    def __post_init__(self) -> None:
        enforce(self, _POLYGON_RULES)

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

    def __post_init__(self) -> None:
        enforce(self, _REGULAR_POLYGON_RULES)

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

    def __post_init__(self) -> None:
        enforce(self, _SEGMENT_RULES)
        if tuple(self.a) == tuple(self.b):
            raise FieldError(_owner(self), None, "segment end points 'a' and 'b' are the same point")


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

    def __post_init__(self) -> None:
        enforce(self, _SIMULATION_RULES)
        enforce(self, _SIMULATION_FRACTIONS, joint=": ")
        if self.n_steps < 1:
            raise FieldError("Simulation", None, "horizon is shorter than one physics step")
        if self.n_steps > MAX_STEPS:
            raise FieldError("Simulation", None, f"horizon / step gives {self.n_steps} steps; that is too many")

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

    def __post_init__(self) -> None:
        enforce(self, _SCENE_RULES)

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

    def __post_init__(self) -> None:
        enforce(self, _INTERVENTION_RULES)
        if self.type == "remove" and not self.bodies:
            raise FieldError("Intervention", None, "a 'remove' intervention needs 'bodies'")

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

    def __post_init__(self) -> None:
        enforce(self, _STIMULUS_RULES)
        if not isinstance(self.metadata, Mapping):
            raise FieldError(_owner(self), "metadata", f"must be an object, got {json_type(self.metadata)}")
