"""Exports of an experiment database: the tidy response table, and materials for PsychoPy and jsPsych.

:func:`response_table` gives the schema of :mod:`ipe.humans`
(``participant, stimulus_id, response, rt, trial_index, condition``),
checked with :func:`ipe.humans.validate_responses` against the test
stimuli and the task's scale, so ``ipe fit`` reads the CSV directly.
:func:`export_materials` writes every stimulus image plus
``conditions.csv`` (PsychoPy's loop file) and ``timeline_variables.json``
(jsPsych's ``timeline_variables``).
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..fileio import atomic_write, write_csv, write_json
from ..humans import OPTIONAL_COLUMNS, RESPONSE_COLUMNS, validate_responses
from .materials import PARTICIPANT_RE, Materials, materials_from_design
from .store import Store, open_store

COLUMNS = list(RESPONSE_COLUMNS + OPTIONAL_COLUMNS)
_SAFE = re.compile(r"[A-Za-z0-9_\-.]{1,100}")


def response_table(store: Store, materials: Materials, phase: str = "test", validate: bool = True) -> pd.DataFrame:
    """The stored responses of ``phase`` as a tidy table (rows by participant and trial).

    With ``validate`` the table goes through
    :func:`ipe.humans.validate_responses` (test phase: against the test
    stimuli and the task's scale). An empty database gives an empty table
    with the schema's columns.
    """
    rows = store.rows(phase)
    bad = [r for r in rows if not PARTICIPANT_RE.fullmatch(str(r["participant"]))
           or (r["condition"] is not None and not PARTICIPANT_RE.fullmatch(str(r["condition"])))]
    if bad:
        # Only a database written by an older server can hold these (it took "alice\n"); they are never
        # stripped into another participant's rows, but left out, loudly.
        shown = ", ".join(sorted({repr(r["participant"]) for r in bad})[:3])
        warnings.warn(f"{store.path}: left out {len(bad)} {phase} response(s) of participant id(s) that are "
                      f"not valid ids ({shown}); they were stored by an older server", stacklevel=2)
        rows = [r for r in rows if r not in bad]
    df = pd.DataFrame([{c: r.get(c) for c in COLUMNS} for r in rows], columns=COLUMNS)
    df["stimulus_set"] = store.stimulus_set or None
    df["trial_index"] = df["trial_index"].astype("int64")
    df["response"] = df["response"].astype(float)
    df["rt"] = df["rt"].astype(float)
    if df.empty or not validate:
        return df
    if phase == "test":
        out = validate_responses(df, stimuli=materials.test_set(), scale=materials.task.scale(materials.test_set()),
                                 where=f"{store.path}")
    else:
        out = validate_responses(df, where=f"{store.path}")
    # Ids leave exactly as they were stored (validation's copy is in the same row order).
    for c in ("participant", "stimulus_id", "condition"):
        out[c] = df[c].to_numpy(dtype=object)
    return out


def integers_when_whole(table: pd.DataFrame) -> pd.DataFrame:
    """A copy for writing: each float column whose values are all whole numbers becomes integers (``4``, not ``4.0``).

    Missing values stay missing (pandas' nullable ``Int64``, written as an empty cell).
    """
    out = table.copy()
    for c in out.columns:
        if pd.api.types.is_float_dtype(out[c].dtype):
            v = out[c].to_numpy(dtype=float)
            ok = np.isfinite(v)
            if ok.any() and (np.isnan(v) | ok).all() and (v[ok] == np.round(v[ok])).all() \
                    and (np.abs(v[ok]) < 2 ** 53).all():
                out[c] = out[c].round().astype("Int64")
    return out


def iso_times(table: pd.DataFrame, columns) -> pd.DataFrame:
    """A copy with Unix-epoch seconds in ``columns`` as ISO 8601 UTC text (``2026-12-06T18:13:17.699Z``)."""
    out = table.copy()
    for c in columns:
        t = pd.to_datetime(pd.to_numeric(out[c], errors="coerce"), unit="s", utc=True)
        out[c] = [None if pd.isna(x) else x.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z" for x in t]
    return out


def load_experiment(db: str | Path) -> tuple[Store, Materials]:
    """Open an experiment database and rebuild its materials from the design stored in it."""
    store = open_store(db)
    return store, materials_from_design(store.design)


def export_responses(db: str | Path, out: str | Path, phase: str = "test") -> pd.DataFrame:
    """Write the tidy responses of ``db`` to ``out`` (CSV, atomically) and return the table."""
    store, materials = load_experiment(db)
    try:
        table = response_table(store, materials, phase)
    finally:
        store.close()
    write_csv(out, integers_when_whole(table))
    return table


def image_name(materials: Materials, i: int) -> str:
    """File name of stimulus ``i``'s image: ``<id>.png`` when the id is file-safe, else ``stimulus_<i>.png``."""
    sid = materials.stimuli[i].id
    return f"{sid}.png" if _SAFE.fullmatch(sid) and sid not in (".", "..") else f"stimulus_{i:04d}.png"


def export_materials(db: str | Path, out_dir: str | Path) -> pd.DataFrame:
    """Write ``images/*.png``, ``conditions.csv`` and ``timeline_variables.json`` under ``out_dir``.

    ``conditions.csv`` has one row per stimulus: ``stimulus_id, image,
    phase, task, prompt, low, high, x0, x1, y0, y1`` (the image's frame in
    scene metres, for mapping clicks), and ``truth`` for practice trials
    (the noise-free answer on the task's scale, for feedback). Returns that table.
    """
    store, m = load_experiment(db)
    store.close()
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    cfg = m.public_config()
    for i, s in enumerate(m.stimuli):
        name = image_name(m, i)
        atomic_write(out / "images" / name, lambda fh, b=m.images[i]: fh.write(b), mode="wb")
        lo, hi = m.task.bounds(s, m.frames[i])
        x0, x1, y0, y1 = m.frames[i]
        practice = i < m.n_practice
        rows.append({"stimulus_id": s.id, "image": f"images/{name}", "phase": "practice" if practice else "test",
                     "task": m.task.name, "prompt": cfg["prompt"], "low": lo, "high": hi,
                     "x0": x0, "x1": x1, "y0": y0, "y1": y1, "truth": m.truths[i] if practice else None})
    table = pd.DataFrame(rows)
    tidy = integers_when_whole(table)
    write_csv(out / "conditions.csv", tidy)
    write_json(out / "timeline_variables.json",
               json.loads(tidy.to_json(orient="records")))
    return table
