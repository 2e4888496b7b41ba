"""The stimulus set's fingerprint: which towers a response table was collected with.

Every generated set names its stimuli ``tower_000``, ``tower_001``, …, so a
response table matches the ids of any other set of the same size. The
fingerprint is a hash of the set's *content* (every stimulus's id, scene,
query and interventions, as :func:`ipe.scenefile.stimulus_to_dict` writes
them, sorted by id; metadata such as a generator's notes is left out): the same towers give the same fingerprint whatever
the file's layout, order, name or metadata; one block moved gives another.

The browser experiment records the fingerprint of the set it serves in its
database (``meta.stimulus_set``) and in every exported response row (the
``stimulus_set`` column). ``ipe humans summary``, ``ipe fit`` and
``ipe compare`` call :func:`check_stimulus_set`: a table recorded with
another set is refused (one line, exit 2); a table that records none gets
a warning.
"""

from __future__ import annotations

import hashlib
import json
import sys

from .errors import InputError
from .scenefile import as_stimulus_set, stimulus_to_dict

COLUMN = "stimulus_set"
"""The response-table column that holds the fingerprint."""

LENGTH = 16
"""Hex digits kept of the SHA-256 (64 bits)."""


def stimulus_fingerprint(stimuli) -> str:
    """The fingerprint (16 hex digits) of a stimulus set, a list of stimuli or a path to one."""

    items = sorted(({k: v for k, v in stimulus_to_dict(s).items() if k != "metadata"}
                    for s in as_stimulus_set(stimuli)), key=lambda d: d["id"])
    text = json.dumps(items, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:LENGTH]


def check_stimulus_set(table, stimuli, stimuli_label: str, where: str, warn=None) -> str:
    """Check that the response ``table`` was collected with ``stimuli``; returns the set's fingerprint.

    Raises :class:`~ipe.errors.InputError` when the table's ``stimulus_set``
    column names another fingerprint. When the table records none, ``warn``
    gets a warning that names ``stimuli_label`` (default: :func:`warn_later`,
    so that the command's own output comes first and a command that then
    fails on bad input still prints one line).
    """
    import pandas as pd

    expected = stimulus_fingerprint(stimuli)
    recorded = []
    if COLUMN in getattr(table, "columns", ()):
        recorded = sorted({str(v).strip() for v in table[COLUMN] if not pd.isna(v) and str(v).strip()})
    if not recorded:
        msg = (f"warning: {where} does not record which stimulus set it was collected with (no {COLUMN} "
               f"column); check that {stimuli_label} is the set the participants saw")
        (warn or warn_later)(msg)
        return expected
    other = [v for v in recorded if v != expected]
    if other:
        raise InputError(f"{where} was collected with stimulus set {other[0]}, but {stimuli_label} is set "
                         f"{expected} (same ids, other towers?); pass the stimulus file the experiment used")
    return expected


_PENDING: list[str] = []


def warn_later(msg: str) -> None:
    """Keep a warning for :func:`flush_warnings` (the CLI prints it after a command that succeeded)."""
    if msg not in _PENDING:
        _PENDING.append(msg)


def flush_warnings(show: bool = True, stream=None) -> None:
    """Print the kept warnings on stderr (``show=False``: drop them, as after an error)."""
    pending = list(_PENDING)
    _PENDING.clear()
    if show:
        for msg in pending:
            print(msg, file=stream or sys.stderr)
