"""Scene files: the stimulus-set JSON format, version 1 (``docs/scene-format.md``), read and written.

:func:`load_stimuli` reads a file and returns a checked
:class:`~ipe.checks.StimulusSet`; :func:`save_stimuli` writes one,
atomically and deterministically. Reading is strict: every problem is one
:class:`~ipe.errors.InputError` line naming the file, the stimulus and the
field, e.g. ``stim.json: stimulus 'tower_000': scene.bodies[0].width: must be
> 0, got -0.1``.

The reader checks what only JSON can get wrong (an object where a list
belongs, a missing or unknown field) and hands the values to the
dataclasses of :mod:`ipe.scene`, which check their own fields; the
stimulus-level checks run once, when the :class:`~ipe.checks.StimulusSet` is
made. :func:`as_stimulus_set` is the entry point of every public function that
takes stimuli: a set, one stimulus, a list of them or a file path.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

from .checks import StimulusSet, check_stimulus
from .errors import InputError
from .fileio import read_json, write_json
from .scene import (
    DEFAULT_FRICTION,
    DEFAULT_GRAVITY,
    Ball,
    Block,
    DynamicBody,
    FieldError,
    Intervention,
    Query,
    Scene,
    Simulation,
    StaticBox,
    StaticPolygon,
    StaticRegularPolygon,
    StaticSegment,
    StaticShape,
    Stimulus,
    json_type,
    label_list,
)

SCHEMA_VERSION = 1
"""Version of the stimulus-set JSON format written by this package."""


# --------------------------------------------------------------------------- reading


class _Fields:
    """Reads the fields of one JSON object, tracking which were used, for strict parsing.

    Values are handed on in the types the dataclasses hold (a JSON number as
    a ``float``, or an ``int`` where a count belongs; a pair as a tuple);
    anything else is handed on as it is, for the dataclass to reject.
    """

    def __init__(self, data: Any, where: str, what: str = "object"):
        if not isinstance(data, dict):
            raise InputError(f"expected a JSON {what}, got {json_type(data)}", where)
        self.data = data
        self.where = where
        self.used: set[str] = set()

    def _at(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def raw(self, key: str, default: Any = None, required: bool = False) -> Any:
        self.used.add(key)
        if key not in self.data or self.data[key] is None:
            if required:
                raise InputError(f"missing required field '{key}'", self.where or None)
            return default
        return self.data[key]

    def number(self, key: str, default: Any = None, required: bool = False) -> Any:
        return _float(self.raw(key, default, required))

    def integer(self, key: str, default: Any = None, required: bool = False) -> Any:
        v = self.raw(key, default, required)
        if _is_json_number(v) and math.isfinite(v) and v == int(v):
            return int(v)
        return v

    def pair(self, key: str, default: Any = None, required: bool = False) -> Any:
        return _pair(self.raw(key, default, required))

    def string(self, key: str, default: Any = None, required: bool = False,
               choices: Sequence[str] | None = None) -> Any:
        """A string the reader itself needs (a ``type`` or a ``name``), checked here."""
        v = self.raw(key, default, required)
        if v is None:
            return default
        if not isinstance(v, str):
            raise InputError(f"must be a string, got {json_type(v)}", self._at(key))
        if choices is not None and v not in choices:
            raise InputError(f"unknown value {v!r}; expected one of {', '.join(choices)}", self._at(key))
        return v

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise InputError(f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}",
                             self.where or None)


def _is_json_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _float(v: Any) -> Any:
    return float(v) if _is_json_number(v) else v


def _pair(v: Any) -> Any:
    return tuple(_float(x) for x in v) if isinstance(v, list) else v


def _make(cls: type, where: str, **fields: Any) -> Any:
    """``cls(**fields)``, its field errors located at ``where`` in the file."""
    try:
        return cls(**fields)
    except FieldError as exc:
        raise exc.at(where) from None


def _material(f: _Fields) -> dict[str, Any]:
    return {"friction": f.number("friction", DEFAULT_FRICTION), "elasticity": f.number("elasticity", 0.0),
            "color": f.raw("color"), "label": f.raw("label")}


def _parse_body(data: Any, where: str) -> DynamicBody:
    f = _Fields(data, where)
    kind = f.string("type", "block", choices=("block", "ball"))
    common = dict(id=f.raw("id", required=True), position=f.pair("position", required=True),
                  angle=f.number("angle", 0.0), density=f.number("density"), mass=f.number("mass"),
                  velocity=f.pair("velocity", (0.0, 0.0)), angular_velocity=f.number("angular_velocity", 0.0),
                  material=f.raw("material"), **_material(f))
    if kind == "block":
        body = _make(Block, where, width=f.number("width", required=True), height=f.number("height", required=True),
                     corner_radius=f.number("corner_radius", 0.0), skin=f.number("skin", 0.0), **common)
    else:
        body = _make(Ball, where, radius=f.number("radius", required=True), **common)
    f.finish()
    return body


def _parse_static(data: Any, where: str) -> StaticShape:
    f = _Fields(data, where)
    kind = f.string("type", required=True, choices=("box", "polygon", "regular_polygon", "segment"))
    common = dict(id=f.raw("id", required=True), **_material(f))
    shape: StaticShape
    if kind == "box":
        shape = _make(StaticBox, where, position=f.pair("position", required=True),
                      width=f.number("width", required=True), height=f.number("height", required=True),
                      angle=f.number("angle", 0.0), corner_radius=f.number("corner_radius", 0.0),
                      skin=f.number("skin", 0.0), **common)
    elif kind == "polygon":
        raw = f.raw("vertices", required=True)
        vertices = tuple(_pair(v) for v in raw) if isinstance(raw, list) else raw
        shape = _make(StaticPolygon, where, vertices=vertices, position=f.pair("position", (0.0, 0.0)),
                      angle=f.number("angle", 0.0), **common)
    elif kind == "regular_polygon":
        shape = _make(StaticRegularPolygon, where, sides=f.integer("sides", required=True),
                      radius=f.number("radius", required=True), position=f.pair("position", required=True),
                      angle=f.number("angle", 0.0), **common)
    else:
        shape = _make(StaticSegment, where, a=f.pair("a", required=True), b=f.pair("b", required=True),
                      radius=f.number("radius", 0.0), **common)
    f.finish()
    return shape


def _parse_simulation(data: Any, where: str) -> Simulation:
    if data is None:
        return Simulation()
    f = _Fields(data, where)
    labels = f.raw("collision_noise_labels")
    sim = _make(
        Simulation, where,
        time_step=f.number("time_step", 1.0 / 60.0), substeps=f.integer("substeps", 4),
        horizon=f.number("horizon", 2.0), iterations=f.integer("iterations"),
        collision_slop=f.number("collision_slop"), rest_window=f.number("rest_window"),
        damping=f.number("damping", 1.0), angular_damping=f.number("angular_damping"),
        remove_below=f.number("remove_below"), collision_bias=f.number("collision_bias"),
        collision_noise_labels=tuple(labels) if isinstance(labels, list) and label_list(labels) is None else labels,
    )
    f.finish()
    return sim


def _parse_list(f: _Fields, key: str, where: str, required: bool = False) -> list:
    raw = f.raw(key, [], required=required)
    if not isinstance(raw, list):
        raise InputError(f"must be a list, got {json_type(raw)}", f"{where}.{key}" if where else key)
    return raw


def _parse_scene(data: Any, where: str) -> Scene:
    f = _Fields(data, where)
    bodies = tuple(_parse_body(b, f"{where}.bodies[{i}]") for i, b in enumerate(_parse_list(f, "bodies", where, True)))
    statics = tuple(_parse_static(s, f"{where}.statics[{i}]") for i, s in enumerate(_parse_list(f, "statics", where)))
    scene = _make(Scene, where, bodies=bodies, statics=statics, gravity=f.pair("gravity", DEFAULT_GRAVITY),
                  simulation=_parse_simulation(f.raw("simulation"), f"{where}.simulation"))
    f.finish()
    return scene


def _parse_query(data: Any, where: str) -> Query:
    """The query's name and parameters; whether they fit the scene is checked with the stimulus (ipe.checks)."""
    if isinstance(data, str):
        data = {"name": data}
    f = _Fields(data, where)
    name = f.string("name", required=True)
    params = {k: v for k, v in data.items() if k != "name"}
    f.used.update(params)
    f.finish()
    return Query(name=name, params=params)


def _parse_intervention(data: Any, where: str) -> Intervention:
    f = _Fields(data, where)
    kind = f.raw("type", required=True)
    bodies = f.raw("bodies", [])
    bodies = [bodies] if isinstance(bodies, str) else bodies
    iv = _make(Intervention, where, type=kind, time=f.number("time", required=True),
               bodies=tuple(bodies) if isinstance(bodies, list) else bodies,
               impulse=f.pair("impulse", (0.0, 0.0)) if kind == "impulse" else (0.0, 0.0))
    f.finish()
    return iv


def _stimulus_fields(data: Any) -> Stimulus:
    """A :class:`Stimulus` from its JSON object, each field checked (errors located within the stimulus)."""
    f = _Fields(data, "")
    sid = f.raw("id", required=True)
    scene = _parse_scene(f.raw("scene", required=True), "scene")
    query = _parse_query(f.raw("query", "fall"), "query")
    interventions = tuple(_parse_intervention(iv, f"interventions[{i}]")
                          for i, iv in enumerate(_parse_list(f, "interventions", "")))
    stim = _make(Stimulus, "", id=sid, scene=scene, query=query, interventions=interventions,
                 metadata=f.raw("metadata", {}))
    f.finish()
    return stim


def _label(data: Any, where: str | None) -> str:
    if isinstance(data, dict) and isinstance(data.get("id"), str):
        return f"stimulus {data['id']!r}"
    return where or "stimulus"


def parse_stimulus(data: Any, where: str | None = None, check_overlap: bool = True) -> Stimulus:
    """Build a :class:`Stimulus` from its JSON object and run the stimulus-level checks on it.

    Errors are prefixed with ``stimulus '<id>'`` (or ``where`` when the id
    itself is unreadable).
    """
    try:
        stim = _stimulus_fields(data)
        check_stimulus(stim, overlaps=check_overlap, where="")
    except InputError as exc:
        raise exc.prefixed(_label(data, where)) from None
    return stim


def parse_stimulus_set(data: Any, source: str = "<data>", check_overlap: bool = True) -> StimulusSet:
    """Build a checked :class:`StimulusSet` from the parsed JSON document; errors start with ``source``."""
    try:
        f = _Fields(data, "", what="object (a stimulus set)")
        version = f.raw("schema_version", required=True)
        if isinstance(version, bool) or not isinstance(version, int) or version != SCHEMA_VERSION:
            raise InputError(f"unsupported schema_version {version!r}; this ipe reads version {SCHEMA_VERSION}")
        name = f.raw("name", "")
        if not isinstance(name, str):
            raise InputError(f"must be a string, got {json_type(name)}", "name")
        metadata = f.raw("metadata", {})
        if not isinstance(metadata, dict):
            raise InputError(f"metadata must be an object, got {json_type(metadata)}")
        raw = f.raw("stimuli", required=True)
        if not isinstance(raw, list):
            raise InputError(f"stimuli must be a list, got {json_type(raw)}")
        if not raw:
            raise InputError("the stimulus set is empty")
        f.finish()
        stimuli, seen = [], set()
        for i, item in enumerate(raw):
            try:
                stim = _stimulus_fields(item)
            except InputError as exc:
                raise exc.prefixed(_label(item, f"stimuli[{i}]")) from None
            if stim.id in seen:
                raise InputError(f"duplicate stimulus id {stim.id!r}", f"stimuli[{i}].id")
            seen.add(stim.id)
            stimuli.append(stim)
        # the stimulus-level checks run here, once, as the set is made
        return StimulusSet(stimuli=tuple(stimuli), name=name, metadata=metadata, check_overlap=check_overlap)
    except InputError as exc:
        raise exc.prefixed(source) from None


def load_stimuli(path: str | Path, check_overlap: bool = True) -> StimulusSet:
    """Read and check a stimulus-set JSON file (see ``docs/scene-format.md``)."""
    data = read_json(path)
    return parse_stimulus_set(data, source=str(path), check_overlap=check_overlap)


def as_stimulus_set(stimuli: StimulusSet | Stimulus | Sequence[Stimulus] | str | Path) -> StimulusSet:
    """Accept a set, a single stimulus, a list of stimuli or a path, and return a checked set.

    A :class:`StimulusSet` is returned as it is (it was checked when it was
    made), unless it was made without the overlap check; anything else is
    made into one, which checks it, so a bad stimulus built in Python is a
    clear :class:`InputError`, not a crash inside the physics engine.
    """
    if isinstance(stimuli, (str, Path)):
        return load_stimuli(stimuli)
    if isinstance(stimuli, StimulusSet):
        if stimuli.overlaps_checked:
            return stimuli
        return StimulusSet(stimuli.stimuli, stimuli.name, stimuli.metadata)
    if isinstance(stimuli, Stimulus):
        return StimulusSet(stimuli=(stimuli,))
    try:
        stimuli = tuple(stimuli)
    except TypeError:
        raise InputError(f"expected stimuli (a StimulusSet, a Stimulus, a list of them or a file path), got "
                         f"{type(stimuli).__name__}") from None
    if not stimuli:
        raise InputError("no stimuli given")
    return StimulusSet(stimuli=stimuli)


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




def save_stimuli(stimuli: StimulusSet | Sequence[Stimulus], path: str | Path, name: str = "") -> Path:
    """Write a stimulus set as JSON, atomically. The output is deterministic."""
    if not isinstance(stimuli, StimulusSet):
        stimuli = StimulusSet(stimuli=tuple(stimuli), name=name)
    return write_json(path, stimulus_set_to_dict(stimuli))
