"""Stimulus-level checks, and :class:`StimulusSet`: the collection of stimuli that have passed them.

A :class:`~ipe.scene.Stimulus` checks its own fields when it is made (see
:mod:`ipe.scene`); what only the whole stimulus can tell is checked here, as
a list of declared constraints (:data:`CONSTRAINTS`). Each constraint yields
``(field, problem)`` pairs, and every broken one is reported with one
template, :data:`TEMPLATE`::

    stimulus 'tower_000': interventions[0].bodies: unknown body 'nobody'

**Where the checks run.** :class:`StimulusSet` runs them on every stimulus
when it is made (``__post_init__``), so a set that exists has been checked:
the layers under the public entry points take a ``StimulusSet`` and trust it.
:func:`ipe.scenefile.as_stimulus_set` turns what a user passes (a set, a
stimulus, a list, a file path) into one, and returns a set it is given as it
is, without checking it again.
"""

from __future__ import annotations

import json
from dataclasses import InitVar, dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping

from .errors import InputError
from .queries import check_query
from .scene import Stimulus
from .geometry import find_overlaps

#: The one message of a broken constraint (``where`` is ``stimulus '<id>'`` unless a caller names another place).
TEMPLATE = "{where}: {field}: {problem}"

Violation = tuple[str, str]
"""``(field, problem)``: where in the stimulus, and what is wrong there."""


def _has_bodies(stim: Stimulus) -> Iterator[Violation]:
    if not stim.scene.bodies:
        yield "scene.bodies", "a scene needs at least one dynamic body"


def _unique_shape_ids(stim: Stimulus) -> Iterator[Violation]:
    seen: dict[str, str] = {}
    for kind, shapes in (("bodies", stim.scene.bodies), ("statics", stim.scene.statics)):
        for i, s in enumerate(shapes):
            if s.id in seen:
                yield f"scene.{kind}[{i}].id", f"duplicate id {s.id!r} (also {seen[s.id]})"
            seen.setdefault(s.id, f"scene.{kind}[{i}]")


def _interventions_refer_to_bodies(stim: Stimulus) -> Iterator[Violation]:
    ids, horizon = set(stim.scene.body_ids), stim.scene.simulation.horizon
    for i, iv in enumerate(stim.interventions):
        for b in iv.bodies:
            if b not in ids:
                yield f"interventions[{i}].bodies", f"unknown body {b!r}"
        if iv.time >= horizon:
            yield f"interventions[{i}].time", f"time {iv.time} is not inside the horizon ({horizon} s)"


def _query_fits_scene(stim: Stimulus) -> Iterator[Violation]:
    try:
        check_query(stim.query, stim.scene)
    except InputError as exc:
        yield "query", str(exc)


def _json_default(o: Any) -> Any:
    """numpy numbers and arrays, as JSON holds them."""
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON data")


def _json_data(stim: Stimulus) -> Iterator[Violation]:
    for name, value in (("metadata", stim.metadata), ("query", dict(stim.query.params))):
        try:
            json.dumps(value, default=_json_default)
        except (TypeError, ValueError) as exc:
            yield name, f"cannot be written as JSON ({exc})"


def _no_overlaps(stim: Stimulus) -> Iterator[Violation]:
    for a, b, depth, tol in find_overlaps(stim.scene):
        yield "scene", f"bodies {a!r} and {b!r} overlap by {depth:.4g} m (tolerance {tol:.3g} m)"


#: The stimulus-level constraints, in the order they are checked: ``(name, constraint)``.
CONSTRAINTS: tuple[tuple[str, Callable[[Stimulus], Iterator[Violation]]], ...] = (
    ("has_bodies", _has_bodies),
    ("unique_shape_ids", _unique_shape_ids),
    ("interventions_refer_to_bodies", _interventions_refer_to_bodies),
    ("query_fits_scene", _query_fits_scene),
    ("json_data", _json_data),
    ("no_overlaps", _no_overlaps),
)


def violations(stim: Stimulus, overlaps: bool = True) -> Iterator[Violation]:
    """Every broken constraint of ``stim`` (``overlaps=False``: all but the overlap check)."""
    for name, constraint in CONSTRAINTS:
        if overlaps or name != "no_overlaps":
            yield from constraint(stim)


def check_stimulus(stim: Stimulus, overlaps: bool = True, where: str | None = None) -> Stimulus:
    """Raise :class:`InputError` (:data:`TEMPLATE`) for the first broken constraint of ``stim``; else return it.

    ``where`` replaces the ``stimulus '<id>'`` at the front of the message
    (``""``: the field alone, for a caller that puts its own place in front).
    """
    for fieldname, problem in violations(stim, overlaps):
        where = f"stimulus {stim.id!r}" if where is None else where
        if not where:
            raise InputError(problem, fieldname)
        raise InputError(TEMPLATE.format(where=where, field=fieldname, problem=problem))
    return stim


@dataclass(frozen=True)
class StimulusSet:
    """An ordered, uniquely-identified collection of checked stimuli.

    Making one runs :func:`check_stimulus` on every stimulus and checks that
    their ids are unique: a set that exists has passed the checks, and code
    that receives one trusts it. ``check_overlap=False`` leaves the overlap
    check out (a reader that knows its stimuli were checked before, e.g. the
    experiment's database); :func:`ipe.scenefile.as_stimulus_set` runs it when
    such a set reaches a simulation (:attr:`overlaps_checked`).
    """

    stimuli: tuple[Stimulus, ...]
    name: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    check_overlap: InitVar[bool] = True
    overlaps_checked: bool = field(init=False, repr=False, compare=False, default=True)

    def __post_init__(self, check_overlap: bool) -> None:
        # the checks run here, once per set made
        stimuli = tuple(self.stimuli)
        bad = next((s for s in stimuli if not isinstance(s, Stimulus)), None)
        if bad is not None:
            raise InputError(f"expected Stimulus objects, got {type(bad).__name__} {bad!r:.60}")
        for s in stimuli:
            check_stimulus(s, overlaps=check_overlap)
        seen: set[str] = set()
        for s in stimuli:
            if s.id in seen:
                raise InputError(f"duplicate stimulus id {s.id!r}")
            seen.add(s.id)
        object.__setattr__(self, "stimuli", stimuli)
        object.__setattr__(self, "overlaps_checked", bool(check_overlap))

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

    def subset(self, ids: Iterable[str]) -> "StimulusSet":
        """The stimuli whose id is in ``ids``, in this set's order, as a set that is not checked again.

        Every part of a checked set is checked; an empty subset is an :class:`InputError`.
        """
        keep = set(ids)
        stimuli = tuple(s for s in self.stimuli if s.id in keep)
        if not stimuli:
            raise InputError("no stimuli given")
        part = object.__new__(StimulusSet)  # not through __init__: these stimuli passed the checks in this set
        for name, value in (("stimuli", stimuli), ("name", self.name), ("metadata", self.metadata),
                            ("overlaps_checked", self.overlaps_checked)):
            object.__setattr__(part, name, value)
        return part
