"""Human responses: the tidy schema, loaders, validation, aggregation, and synthetic participants.

Schema (one row per trial; see ``docs/data-format.md``):

=============== ======== ==========================================================
column          type     meaning
=============== ======== ==========================================================
``participant`` str      who answered (required)
``stimulus_id`` str      the stimulus's ``id`` in the stimulus set (required)
``response``    float    the answer on the task's scale (required)
``rt``          float    response time in ms (optional)
``trial_index`` int      the trial's position in the participant's session (optional)
``condition``   str      between- or within-subject condition (optional)
``stimulus_set`` str     fingerprint of the stimulus set it was collected with (optional; :mod:`ipe.fingerprint`)
=============== ======== ==========================================================

Response scales (:class:`ResponseScale`): ``rating`` (integers ``low..high``,
e.g. 1–7 "will it fall?"), ``count`` (integers ``0..n``, e.g. how many blocks
fall) and ``probability`` (``0..100``).

Synthetic participants (:func:`synthesize`) judge by running a few noisy
simulations; their generative process is spelled out in that function's
docstring and in ``docs/data-format.md``, and :mod:`ipe.inference` inverts it.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import InputError
from .fileio import optional_import, read_csv
from .montecarlo import simulate
from .noise import NoiseParams
from .checks import StimulusSet
from .scene import x_extent
from .scenefile import as_stimulus_set
from .seeding import stream_rng
from .validation import BOOL, NONNEG_NUMBER, POSITIVE_INT, SEED, Integer, Optional, validate_params

_ANY_INTEGER = Integer()

RESPONSE_COLUMNS = ("participant", "stimulus_id", "response")
"""Required columns of a response table, in schema order."""
OPTIONAL_COLUMNS = ("rt", "trial_index", "condition", "stimulus_set")
"""Optional columns, in schema order (after the required ones)."""
RANGES = {"sigma": (0.0, 1.0), "phi": (0.0, 1.0), "mu": (0.0, 1.0), "friction": (0.0, 1.5),
          "removal_impulse": (0.0, 6.0),
          # motion noise (ipe.noise.MOTION_FIELDS), for fits to clicked landing positions
          **{name: (0.0, 0.6) for name in ("launch_angle", "launch_speed", "launch_position", "collision_angle",
                                           "collision_speed", "step_angle", "obstacle_position", "obstacle_angle",
                                           "drop_angle")},
          # the published Plinko collision noise: speed factor ~ Normal(1 - loss, sd) truncated at 0
          "collision_speed_loss": (0.0, 1.0), "collision_speed_sd": (0.0, 1.0)}
"""Ranges ``(lo, hi)`` of the noise parameters: synthetic participants live inside them; the fitter's priors
span them."""

SCALE_KINDS = ("rating", "count", "probability", "position")
_SCALE_RE = re.compile(r"^\s*(rating|count|probability|position)\s*:\s*(-?\d+)\s*-\s*(-?\d+)\s*$")
_ID_COLUMNS = ("participant", "stimulus_id", "condition", "stimulus_set")


@dataclass(frozen=True)
class ResponseScale:
    """The scale people answer on: ``kind`` in rating/count/probability/position, integer levels ``low..high``.

    ``rating`` and ``count`` answers must be whole numbers; ``probability``
    answers may be any number in ``low..high`` (usually 0–100). ``position``
    answers are clicked coordinates (e.g. where a ball will land), any number
    in ``low..high`` in the scene's length unit; they are fitted with a
    Gaussian likelihood around the IPE's mean with the IPE's spread
    (:mod:`ipe.inference.hierarchical`).
    """

    kind: str
    low: int
    high: int

    def __post_init__(self):
        if self.kind not in SCALE_KINDS:
            raise InputError(f"scale kind must be one of {', '.join(SCALE_KINDS)}, got {self.kind!r}")
        for name in ("low", "high"):
            v = getattr(self, name)
            if not (_ANY_INTEGER.accepts(v) or isinstance(v, float) and v.is_integer()):
                raise InputError(f"scale {self.kind}: {name} must be an integer, got {v!r}")
            object.__setattr__(self, name, int(v))
        if not self.low < self.high:
            raise InputError(f"scale {self.kind}: low must be < high, got {self.low}-{self.high}")

    @classmethod
    def parse(cls, text: str) -> "ResponseScale":
        """``"rating:1-7"``, ``"count:0-19"``, ``"probability:0-100"``."""
        m = _SCALE_RE.match(str(text))
        if not m:
            raise InputError(f"scale {text!r}: expected KIND:LOW-HIGH with KIND one of {', '.join(SCALE_KINDS)} "
                             "(e.g. rating:1-7)")
        return cls(m.group(1), int(m.group(2)), int(m.group(3)))

    @property
    def n_levels(self) -> int:
        """Number of integer levels ``low..high`` (the answer options of a rating or count)."""
        return self.high - self.low + 1

    def __str__(self) -> str:
        return f"{self.kind}:{self.low}-{self.high}"


def n_countable(stim) -> int:
    """How many bodies a counting query (``count_fallen``, ``off_table``) of ``stim`` can count at most.

    The dynamic bodies, less those a ``remove`` intervention takes out,
    restricted to the query's ``bodies`` and ``label`` when it names them
    (the same selection :mod:`ipe.queries` counts over).
    """
    removed = {b for iv in stim.interventions if iv.type == "remove" for b in iv.bodies}
    params = stim.query.params
    wanted = params.get("bodies")
    if isinstance(wanted, str):
        wanted = [wanted]
    label = params.get("label")
    return sum(1 for b in stim.scene.bodies
               if b.id not in removed and (wanted is None or b.id in wanted) and (label is None or b.label == label))


def default_scale(stim) -> ResponseScale:
    """The scale a stimulus's own query is answered on.

    ``fall`` → ``rating:1-7`` (Battaglia et al. 2013 asked "will it fall?"
    on 1–7); ``count_fallen`` and ``off_table`` → ``count:0-N`` with N from
    :func:`n_countable`; ``body_falls`` and ``falls_left`` →
    ``probability:0-100``. Other queries have no default (pass a scale).
    """
    name = stim.query.name
    if name == "fall":
        return ResponseScale("rating", 1, 7)
    if name in ("count_fallen", "off_table"):
        return ResponseScale("count", 0, max(n_countable(stim), 1))
    if name in ("body_falls", "falls_left"):
        return ResponseScale("probability", 0, 100)
    if name == "landing_x":  # a click anywhere across the scene's static shapes
        xs = [v for st in stim.scene.statics for v in x_extent(st)] or [b.position[0] for b in stim.scene.bodies]
        lo, hi = math.floor(min(xs)), math.ceil(max(xs))
        return ResponseScale("position", lo, hi if hi > lo else lo + 1)
    raise InputError(f"stimulus {stim.id!r}: no default response scale for query {name!r}; pass a scale "
                     "(e.g. --scale rating:1-7)")


def scale_for_stimuli(stimuli) -> ResponseScale:
    """One scale for a whole set: every stimulus's default must agree on the kind (counts take the largest N)."""
    scales = [default_scale(s) for s in as_stimulus_set(stimuli)]
    kinds = {s.kind for s in scales}
    if len(kinds) > 1:
        raise InputError(f"stimuli ask questions on different scales ({', '.join(sorted(kinds))}); pass a scale "
                         "(e.g. --scale rating:1-7)")
    return ResponseScale(scales[0].kind, min(s.low for s in scales), max(s.high for s in scales))


# --------------------------------------------------------------------------- loading


def _read_error(path: Path, exc: BaseException) -> InputError:
    return InputError(f"{path}: cannot read responses ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})")


def _read_csv(path: Path, dtype) -> pd.DataFrame:
    return read_csv(path, dtype=dtype, what="response file")


def load_responses(path: str | Path, mapping: Mapping[str, str] | None = None, fmt: str | None = None) -> pd.DataFrame:
    """Read a response table from ``.csv`` or ``.parquet`` (``fmt`` = ``"csv"``/``"parquet"`` overrides the extension).

    ``mapping`` maps schema columns to the file's names:
    ``{"participant": "subject"}`` reads the ``subject`` column as
    ``participant``. Id columns of a CSV are read as text (``007`` stays
    ``007``). The table is not validated here (see :func:`validate_responses`);
    read problems raise a one-line :class:`~ipe.errors.InputError` naming the file.
    """
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in ("csv", "parquet", "pq"):
        raise InputError(f"{path}: unknown response file type {fmt!r}; expected .csv or .parquet")
    _check_mapping(mapping, str(path))
    if fmt == "csv":
        names = {**{c: c for c in _ID_COLUMNS}, **dict(mapping or {})}
        df = _read_csv(path, {names[c]: str for c in _ID_COLUMNS})
    else:
        if not path.exists():
            raise InputError(f"{path}: no such file")
        optional_import("pyarrow", f"{path}: reading Parquet")
        try:
            df = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises its own error types for corrupt files
            raise _read_error(path, exc) from None
    if mapping:
        df = _apply_mapping(df, mapping, str(path))
    return df


def _check_mapping(mapping: Mapping[str, str] | None, where: str) -> None:
    if not mapping:
        return
    bad = [k for k in mapping if k not in RESPONSE_COLUMNS + OPTIONAL_COLUMNS]
    if bad:
        raise InputError(f"{where}: mapping names unknown schema column(s) {', '.join(map(str, bad))}; expected "
                         f"{', '.join(RESPONSE_COLUMNS + OPTIONAL_COLUMNS)}")


def _apply_mapping(df: pd.DataFrame, mapping: Mapping[str, str], where: str) -> pd.DataFrame:
    missing = [v for v in mapping.values() if v not in df.columns]
    if missing:
        raise InputError(f"{where}: mapped column(s) not in the file: {', '.join(map(str, missing))}")
    out = df.drop(columns=[k for k in mapping if k in df.columns and k not in mapping.values()])
    return out.rename(columns={v: k for k, v in mapping.items()})


JSPSYCH_DEFAULTS = {
    "participant": ("participant", "subject", "subject_id", "run_id"),
    "stimulus_id": ("stimulus_id", "stimulus"),
    "response": ("response",),
    "rt": ("rt",),
    "trial_index": ("trial_index",),
    "condition": ("condition",),
    "stimulus_set": ("stimulus_set",),
}
"""Column names :func:`load_jspsych` looks for, first match wins."""


def _jspsych_number(v):
    """A jsPsych response as a number: ``"5"`` → 5; a one-answer survey object ``{"Q0": 5}`` → 5; else NaN."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return math.nan
    text = str(v).strip()
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError:
            return math.nan
        if isinstance(obj, dict) and len(obj) == 1:
            text = str(next(iter(obj.values())))
        else:
            return math.nan
    try:
        x = float(text)
    except ValueError:
        return math.nan
    return x if math.isfinite(x) else math.nan


def load_jspsych(path: str | Path, mapping: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Read a jsPsych-style CSV export into the schema.

    Columns are found by the usual jsPsych names (:data:`JSPSYCH_DEFAULTS`:
    ``participant``/``subject``/``subject_id``/``run_id`` → participant,
    ``stimulus_id``/``stimulus`` → stimulus_id, ``response``, ``rt``,
    ``trial_index``, ``condition``); ``mapping`` overrides them, e.g.
    ``{"participant": "worker_id"}``. Other columns are dropped. Responses are
    made numeric (a one-question survey object such as ``{"Q0": 5}`` gives
    5); rows that are not judgments (no stimulus id or no numeric response:
    instructions, consent, fixation) are dropped. ``rt`` stays in ms.
    """
    path = Path(path)
    _check_mapping(mapping, str(path))
    raw = _read_csv(path, str)
    chosen: dict[str, str] = {}
    for col, names in JSPSYCH_DEFAULTS.items():
        if mapping and col in mapping:
            if mapping[col] not in raw.columns:
                raise InputError(f"{path}: mapped column {mapping[col]!r} (for {col}) not in the file")
            chosen[col] = mapping[col]
            continue
        for n in names:
            if n in raw.columns:
                chosen[col] = n
                break
    missing = [c for c in RESPONSE_COLUMNS if c not in chosen]
    if missing:
        raise InputError(f"{path}: no column for {', '.join(missing)} in the jsPsych export "
                         f"(looked for {', '.join(n for c in missing for n in JSPSYCH_DEFAULTS[c])}); map it: "
                         + " ".join(f"--column {c}={_COLUMN_EXAMPLES[c]}" for c in missing))
    df = pd.DataFrame({c: raw[n] for c, n in chosen.items()})
    df["response"] = df["response"].map(_jspsych_number).astype(float)
    sid = df["stimulus_id"].astype("string").str.strip()
    df["stimulus_id"] = sid
    keep = sid.notna().to_numpy() & (sid.fillna("") != "").to_numpy() & df["response"].notna().to_numpy()
    file_rows = [int(i) + 2 for i in np.flatnonzero(keep)]  # spreadsheet rows of the kept trials
    df = df[keep].reset_index(drop=True)
    if df.empty:
        raise InputError(f"{path}: no judgment trials (rows with a stimulus and a numeric response)")
    df.attrs["ipe_file_rows"] = file_rows
    df["stimulus_id"] = df["stimulus_id"].astype(str)
    for c in ("rt", "trial_index"):
        if c in df:
            df[c] = pd.to_numeric(df[c], errors="coerce")
    return df


# --------------------------------------------------------------------------- validation


def validate_responses(df: pd.DataFrame, stimuli=None, scale: ResponseScale | None = None,
                       where: str = "responses") -> pd.DataFrame:
    """Check a response table and return a clean copy in schema order.

    The copy has ``participant``, ``stimulus_id`` and ``condition`` as text,
    ``response`` and ``rt`` as float, ``trial_index`` as int64, the index
    reset, and the columns in schema order. Problems raise a one-line
    :class:`~ipe.errors.InputError` prefixed with ``where``: an empty table,
    missing or unknown columns, missing ids, non-numeric or missing responses,
    unknown stimulus ids (when ``stimuli`` is given), responses outside
    ``scale`` or not whole numbers on a rating/count scale, and repeated
    ``(participant, stimulus_id, trial_index)``. Rows are numbered as a
    spreadsheet shows the file: the header is row 1, the first data row row 2
    (for a jsPsych export, the row of the file the trial came from).
    A missing required column names the ``--column`` mapping that fixes it.
    """
    _check_columns(df, where)
    rownum = _row_numbering(df)
    out = df.copy().reset_index(drop=True)
    for c in ("participant", "stimulus_id"):
        isna = out[c].isna().to_numpy() | (out[c].map(lambda v: str(v).strip()) == "").to_numpy()
        if isna.any():
            raise InputError(f"{where}: row {rownum(np.flatnonzero(isna)[0])}: {c} is missing")
        ids = [_as_id(v) for v in out[c]]
        _refuse_merged_ids(out[c], ids, c, where)
        out[c] = _text_column(ids, out.index)
    resp = _numeric(out["response"], "response", where, rownum).astype(float)
    bad = ~np.isfinite(resp.to_numpy())
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(f"{where}: row {rownum(row)}: response {_show(out['response'].iloc[row])} is not a finite "
                         "number")
    out["response"] = resp
    if "rt" in out:
        out["rt"] = _numeric(out["rt"], "rt", where, rownum).astype(float)
    if "trial_index" in out:
        _clean_trial_index(out, where, rownum)
    if "condition" in out:
        out["condition"] = _text_column([None if _isna(v) else _as_id(v) for v in out["condition"]], out.index)
    if "stimulus_set" in out:
        out["stimulus_set"] = _text_column([None if _isna(v) else str(v).strip() for v in out["stimulus_set"]],
                                           out.index)
    if stimuli is not None:
        _check_known_ids(out, stimuli, where)
    if scale is not None:
        _check_on_scale(out["response"].to_numpy(), scale, where, rownum)
    cols = [c for c in RESPONSE_COLUMNS + OPTIONAL_COLUMNS if c in out.columns]
    return out[cols]


def _check_columns(df: pd.DataFrame, where: str) -> None:
    """A table with the required columns, no unknown or repeated one, and rows."""
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"{where}: expected a table (pandas DataFrame), got {type(df).__name__}")
    if len(df.columns) == 0:
        raise InputError(f"{where}: the table is empty (no columns)")
    missing = [c for c in RESPONSE_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(_missing_message(df, missing, where))
    unknown = [c for c in df.columns if c not in RESPONSE_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise InputError(f"{where}: unknown column(s) {', '.join(map(str, unknown))}; expected "
                         f"{', '.join(RESPONSE_COLUMNS + OPTIONAL_COLUMNS)}")
    if df.columns.duplicated().any():
        raise InputError(f"{where}: duplicated column(s) {', '.join(map(str, df.columns[df.columns.duplicated()]))}")
    if df.empty:
        raise InputError(f"{where}: the table is empty")


def _row_numbering(df: pd.DataFrame):
    """Row ``i`` of ``df`` as a spreadsheet numbers it (header = row 1), or the file's row for a jsPsych export."""
    file_rows = df.attrs.get("ipe_file_rows")
    if file_rows is None or len(file_rows) != len(df):
        file_rows = None

    def rownum(i) -> int:
        return int(file_rows[int(i)]) if file_rows is not None else int(i) + 2

    return rownum


def _clean_trial_index(out: pd.DataFrame, where: str, rownum) -> None:
    """``trial_index`` as whole numbers (int64), each ``(participant, stimulus_id, trial_index)`` once."""
    ti = _numeric(out["trial_index"], "trial_index", where, rownum).astype(float)
    badti = ~np.isfinite(ti.to_numpy()) | (ti.to_numpy() != np.round(ti.to_numpy()))
    if badti.any():
        row = int(np.flatnonzero(badti)[0])
        raise InputError(f"{where}: row {rownum(row)}: trial_index {_show(out['trial_index'].iloc[row])} is not "
                         "an integer")
    out["trial_index"] = ti.astype("int64")
    dup = out.duplicated(["participant", "stimulus_id", "trial_index"])
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        raise InputError(f"{where}: row {rownum(row)}: participant {out['participant'].iloc[row]!r} answered stimulus "
                         f"{out['stimulus_id'].iloc[row]!r} twice at trial_index {out['trial_index'].iloc[row]}")


def _check_known_ids(out: pd.DataFrame, stimuli, where: str) -> None:
    known = set(as_stimulus_set(stimuli).ids)
    unknown_ids = sorted(set(out["stimulus_id"]) - known)
    if unknown_ids:
        shown = ", ".join(map(repr, unknown_ids[:3]))
        more = f" and {len(unknown_ids) - 3} more" if len(unknown_ids) > 3 else ""
        raise InputError(f"{where}: {len(unknown_ids)} unknown stimulus id(s) (not in the stimulus set): "
                         f"{shown}{more}")


def _check_on_scale(y: np.ndarray, scale: ResponseScale, where: str, rownum) -> None:
    """Every response inside the scale, and a whole number on a rating or count scale."""
    outside = (y < scale.low) | (y > scale.high)
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise InputError(f"{where}: row {rownum(row)}: response {y[row]:g} is outside the scale {scale}")
    if scale.kind in ("rating", "count"):
        frac = y != np.round(y)
        if frac.any():
            row = int(np.flatnonzero(frac)[0])
            raise InputError(f"{where}: row {rownum(row)}: response {y[row]:g} is not a whole number ({scale.kind})")


def _refuse_merged_ids(raw: pd.Series, ids: list[str], column: str, where: str) -> None:
    """Refuse two different ids that would become one once their surrounding whitespace is gone
    (``"alice"`` and ``"alice\\n"``): their rows would merge into one participant or stimulus."""
    seen: dict[str, str] = {}
    for v, clean in zip(raw, ids):
        text = v if isinstance(v, str) else clean
        first = seen.setdefault(clean, text)
        if first != text:
            raise InputError(f"{where}: {column} ids {first!r} and {text!r} differ only by surrounding whitespace; "
                             "they would merge into one, so fix the file")


def _numeric(col: pd.Series, name: str, where: str, rownum=lambda i: i + 2) -> pd.Series:
    """``pd.to_numeric(col, errors="coerce")``, but a number too large for a float (a 400-digit integer) is a
    one-line :class:`~ipe.errors.InputError` naming its row instead of an OverflowError."""
    try:
        return pd.to_numeric(col, errors="coerce")
    except OverflowError:
        for row, v in enumerate(col):
            try:
                pd.to_numeric(pd.Series([v], dtype=object), errors="coerce")
            except OverflowError:
                raise InputError(f"{where}: row {rownum(row)}: {name} {_show(v)} is too large a number") from None
        raise InputError(f"{where}: {name}: a number is too large") from None


_COLUMN_SYNONYMS = {
    "participant": ("subject", "subject_id", "participant_id", "worker_id", "workerid", "pid", "prolific_pid", "sona_id",
                    "sub", "id"),
    "stimulus_id": ("stimulus", "stim", "stim_id", "item", "item_id", "tower", "scene", "trial_stimulus"),
    "response": ("rating", "answer", "resp", "judgment", "judgement", "button_pressed", "value"),
}
"""Column names that often hold a schema column: the missing-column message suggests them as ``--column``."""
_COLUMN_EXAMPLES = {"participant": "subject", "stimulus_id": "item", "response": "rating"}


def _missing_message(df: pd.DataFrame, missing: list[str], where: str) -> str:
    """``missing required column(s) …`` with the file's columns and the ``--column`` mapping that would fix it."""
    have = [str(c) for c in df.columns]
    lower = {c.strip().lower(): c for c in have}
    fixes = []
    for c in missing:
        guess = next((lower[n] for n in _COLUMN_SYNONYMS[c] if n in lower), None)
        fixes.append(f"--column {c}={guess or _COLUMN_EXAMPLES[c]}")
    shown = ", ".join(have[:8]) + (f" and {len(have) - 8} more" if len(have) > 8 else "")
    sep = ""
    if len(have) == 1 and any(ch in have[0] for ch in ";\t|"):
        sep = " (the file seems to use another separator than commas)"
    return (f"{where}: missing required column(s) {', '.join(missing)} (the file has: {shown}){sep}; if the file "
            f"names them otherwise, map them: {' '.join(fixes)}")


def _show(v) -> str:
    """A cell value for an error message: text quoted, numbers plain, missing as NaN."""
    if isinstance(v, str):
        return repr(v) if len(v) <= 40 else repr(v[:20]) + f"… ({len(v)} characters)"
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 10 ** 15:
        return f"{str(v)[:12]}… ({len(str(abs(v)))} digits)"
    if _isna(v):
        return "NaN"
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        return f"{float(v):g}"
    return repr(v)


def _text_column(values: list, index) -> pd.Series:
    """Text values in pandas' default text dtype (``object`` in pandas 2, ``str`` in pandas 3)."""
    return pd.Series(values, index=index, dtype=None if any(v is not None for v in values) else object)


def _isna(v) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _as_id(v) -> str:
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v).strip()


# --------------------------------------------------------------------------- aggregation


def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    """Per-stimulus summary of a validated table: ``stimulus_id, n, mean, sd, se``.

    ``sd`` is the sample standard deviation (ddof = 1; NaN for one answer),
    ``se = sd / sqrt(n)``. Rows are sorted by ``stimulus_id``.
    """
    g = df.groupby("stimulus_id", sort=True)["response"]
    out = pd.DataFrame({"n": g.size(), "mean": g.mean(), "sd": g.std(ddof=1)}).reset_index()
    out["se"] = out["sd"] / np.sqrt(out["n"])
    return out[["stimulus_id", "n", "mean", "sd", "se"]]


@validate_params(n_splits=POSITIVE_INT, seed=SEED)
def split_half_reliability(df: pd.DataFrame, n_splits: int = 100, seed: int = 0) -> dict[str, float]:
    """Split-half reliability of the per-stimulus means (the noise ceiling).

    Participants are split at random into two halves (⌊P/2⌋ and ⌈P/2⌉)
    ``n_splits`` times; each time the Pearson r between the halves'
    per-stimulus means (stimuli both halves answered) is Spearman–Brown
    corrected, ``2r / (1 + |r|)`` (the usual ``2r / (1 + r)`` for r ≥ 0; for
    halves that disagree, the same step towards −1, so the ceiling stays a
    correlation in [−1, 1]). Splits with fewer than 3 shared stimuli or
    a constant half are skipped. Returns ``r`` (the mean corrected r),
    ``q025`` and ``q975`` (its 2.5 and 97.5 percentiles over splits),
    ``n_splits`` (splits used), ``n_distinct`` (distinct splits among them)
    and ``n_participants``; the r's are NaN when no split could be used.
    With only one distinct split (2 participants: one in each half) there
    is no range over splits: ``q025`` and ``q975`` are NaN, not a
    zero-width interval.

    This is what ipe calls the **noise ceiling** everywhere (``ipe humans
    summary``, ``ipe sweep``, ``ipe compare``, the report; see
    :data:`ipe.metrics.NOISE_CEILING`).
    """
    parts = np.array(sorted(df["participant"].astype(str).unique()))
    if len(parts) < 2:
        raise InputError("split-half reliability needs at least two participants")
    rng = stream_rng(seed, "humans.split_half")
    pivot = df.assign(participant=df["participant"].astype(str)).pivot_table(
        index="participant", columns="stimulus_id", values="response", aggfunc="mean").reindex(parts)
    values = pivot.to_numpy(dtype=float)
    rs = []
    distinct = set()
    half = len(parts) // 2
    for _ in range(n_splits):
        perm = rng.permutation(len(parts))
        split = frozenset((frozenset(perm[:half].tolist()), frozenset(perm[half:].tolist())))
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            a = np.nanmean(values[perm[:half]], axis=0)
            b = np.nanmean(values[perm[half:]], axis=0)
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() < 3 or a[ok].std() == 0 or b[ok].std() == 0:
            continue
        r = float(np.corrcoef(a[ok], b[ok])[0, 1])
        rs.append(2 * r / (1 + abs(r)))
        distinct.add(split)
    if not rs:
        return {"r": math.nan, "q025": math.nan, "q975": math.nan, "n_splits": 0, "n_distinct": 0,
                "n_participants": len(parts)}
    rs_arr = np.array(rs)
    one = len(distinct) < 2
    return {"r": float(rs_arr.mean()), "q025": math.nan if one else float(np.quantile(rs_arr, 0.025)),
            "q975": math.nan if one else float(np.quantile(rs_arr, 0.975)), "n_splits": len(rs),
            "n_distinct": len(distinct), "n_participants": len(parts)}


# --------------------------------------------------------------------------- synthetic participants

STREAMS = ("participants:sigma", "participants:phi", "participants:mu", "samples_per_judgment", "response_noise",
           "trial_order")
"""Names of the random streams :func:`synthesize` draws from (see :func:`stream`)."""


def stream(seed: int, name: str) -> np.random.Generator:
    """The generator of one named stream of :func:`synthesize`.

    The named stream ``"ipe.humans:" + name`` of :func:`ipe.seeding.stream_rng`;
    names are in :data:`STREAMS`. Keyed by name, so switching μ free does not
    change the σ and φ draws.
    """
    return stream_rng(seed, f"ipe.humans:{name}")


def participant_values(group: float, lo: float, hi: float, sd: float, z: np.ndarray) -> np.ndarray:
    """θ_j = lo + (hi − lo) · sigmoid(logit((g − lo)/(hi − lo)) + sd · z_j): the group value is the median."""
    frac = (group - lo) / (hi - lo)
    if not 0 < frac < 1:
        raise InputError(f"group value {group} must lie strictly inside ({lo:g}, {hi:g})")
    dev = sd * np.asarray(z, dtype=float)
    u = math.log(frac / (1 - frac)) + dev
    return np.where(dev == 0, float(group), lo + (hi - lo) / (1 + np.exp(-u)))  # exactly g at no deviation


def _judgment_samples(samples_per_judgment) -> tuple[int, int]:
    """``(a, b)``: each judgment rests on a to b rollouts, ``1 <= a <= b``."""
    try:
        a, b = samples_per_judgment
    except (TypeError, ValueError):
        raise InputError(f"samples per judgment must be a pair (a, b), got {samples_per_judgment!r}") from None
    if not (_ANY_INTEGER.accepts(a) and _ANY_INTEGER.accepts(b) and 1 <= a <= b):
        raise InputError(f"samples per judgment must be integers 1 <= a <= b, got {a}-{b}")
    return int(a), int(b)


def _free_parameters(free: str | Sequence[str], group: dict[str, float]) -> tuple[str, ...]:
    """The parameters that vary across participants; each group value must lie strictly inside its range."""
    free = (free,) if isinstance(free, str) else tuple(free)
    for name in free:
        if name not in RANGES:
            raise InputError(f"unknown free parameter {name!r}; expected some of {', '.join(RANGES)}")
    for name in free:
        lo, hi = RANGES[name]
        if not lo < group[name] < hi:
            raise InputError(f"group {name} must lie strictly inside ({lo:g}, {hi:g}) to vary across participants, "
                             f"got {group[name]}")
    return free


def _participants(seed: int, P: int, group: dict[str, float], free: tuple[str, ...],
                  participant_sd: float) -> dict[str, np.ndarray]:
    """Step 1 of :func:`synthesize`: each participant's σ, φ, μ."""
    values = {}
    for name in ("sigma", "phi", "mu"):
        if name in free:
            lo, hi = RANGES[name]
            z = stream(seed, f"participants:{name}").standard_normal(P)
            values[name] = participant_values(float(group[name]), lo, hi, float(participant_sd), z)
        else:
            values[name] = np.full(P, float(group[name]))
    return values


def _judged_values(stimuli: StimulusSet, values: dict[str, np.ndarray], a: int, b: int, seed: int, workers: int,
                   progress: bool | None, early_stop: bool = True) -> np.ndarray:
    """Step 2 of :func:`synthesize`: ``p̂`` (participants × stimuli), the mean of each judgment's rollouts.

    One :func:`~ipe.montecarlo.simulate` call; participants sharing a point take disjoint blocks of b samples.
    """
    P, S = len(values["sigma"]), len(stimuli)
    points = [NoiseParams(sigma=float(values["sigma"][j]), phi=float(values["phi"][j]), mu=float(values["mu"][j]))
              for j in range(P)]
    unique: dict[NoiseParams, int] = {}
    point_of = np.empty(P, dtype=int)
    rank = np.empty(P, dtype=int)
    count: dict[int, int] = {}
    for j, p in enumerate(points):
        u = unique.setdefault(p, len(unique))
        point_of[j] = u
        rank[j] = count.get(u, 0)
        count[u] = rank[j] + 1
    n_samples = b * max(count.values())
    table = simulate(stimuli, list(unique), n_samples=n_samples, seed=seed, workers=workers, progress=progress,
                     early_stop=early_stop)
    if len(table) != len(unique) * S * n_samples:  # one row per rollout: each stimulus asks one query
        raise RuntimeError("unexpected shape of the rollouts table")
    vals = table["value"].to_numpy(dtype=float).reshape(len(unique), S, n_samples)
    k = stream(seed, "samples_per_judgment").integers(a, b + 1, size=(P, S))
    offsets = (rank * b)[:, None, None] + np.arange(b)[None, None, :]  # (P, 1, b)
    per = vals[point_of[:, None, None], np.arange(S)[None, :, None], offsets]  # (P, S, b)
    use = np.where(np.arange(b)[None, None, :] < k[:, :, None], per, np.nan)
    n_ok = np.sum(~np.isnan(use), axis=2)
    return np.where(n_ok > 0, np.nansum(use, axis=2) / np.maximum(n_ok, 1), 0.0)


def _on_scale(p_hat: np.ndarray, seed: int, response_sd: float, scale: ResponseScale) -> np.ndarray:
    """Step 3 of :func:`synthesize`: the answers on the scale, with response noise."""
    eps = stream(seed, "response_noise").normal(0.0, float(response_sd), size=p_hat.shape)
    if scale.kind == "rating":
        y = np.round(scale.low + (scale.high - scale.low) * (p_hat + eps))
    elif scale.kind == "count":
        y = np.round(p_hat + eps * (scale.high - scale.low))
    else:
        y = np.round(100.0 * (p_hat + eps))
    return np.clip(y, scale.low, scale.high)


def _response_rows(y: np.ndarray, ids: Sequence[str], pids: list[str], seed: int) -> pd.DataFrame:
    """Step 4 of :func:`synthesize`: each participant's trial order, as the response table."""
    rng_order = stream(seed, "trial_order")
    rows = []
    for j, pid in enumerate(pids):
        order = rng_order.permutation(len(ids))
        for t, i in enumerate(order):
            rows.append((pid, ids[i], float(y[j, i]), t, "synthetic"))
    responses = pd.DataFrame(rows, columns=["participant", "stimulus_id", "response", "trial_index", "condition"])
    responses["trial_index"] = responses["trial_index"].astype("int64")
    return responses


@validate_params(n_participants=POSITIVE_INT, sigma=NONNEG_NUMBER, phi=NONNEG_NUMBER, mu=NONNEG_NUMBER, seed=SEED,
                 participant_sd=NONNEG_NUMBER, response_sd=Optional(NONNEG_NUMBER), early_stop=BOOL)
def synthesize(stimuli, n_participants: int, sigma: float, phi: float, mu: float = 0.0,
               scale: ResponseScale | None = None, seed: int = 0, participant_sd: float = 0.3,
               samples_per_judgment: tuple[int, int] = (3, 7), response_sd: float | None = None, workers: int = 1,
               progress: bool | None = None, free: Sequence[str] = ("sigma", "phi"), early_stop: bool = True
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Synthetic participants who judge by running a few noisy simulations.

    Generative process (the one :mod:`ipe.inference` fits). P participants
    ``j = 0..P-1`` (ids ``s0..``, zero-padded), S stimuli ``i`` in set order,
    ``a, b = samples_per_judgment``; every draw comes from a named stream
    :func:`stream` ``(seed, name)``:

    1. **Participants.** For each ``free`` parameter θ (group value g, which
       must lie strictly inside ``RANGES[θ] = (lo, hi)``):
       ``z = stream(seed, "participants:θ").standard_normal(P)`` and
       ``θ_j = lo + (hi − lo) · sigmoid(logit((g − lo)/(hi − lo)) + participant_sd · z_j)``
       (:func:`participant_values`; g is the median participant). Parameters
       not in ``free`` equal their group value for everyone.
    2. **Simulations.** ``k = stream(seed, "samples_per_judgment").integers(a, b + 1, size=(P, S))``.
       One call ``ipe.simulate(stimuli, params=[NoiseParams(σ_j, φ_j, μ_j) for each
       distinct point], n_samples=b·m, seed=seed)`` runs each stimulus's own
       query, where m is the largest number of participants sharing one
       point (m = 1, i.e. one point per participant and ``n_samples = b``,
       unless ``participant_sd = 0`` or nothing is free). The r-th participant
       (r = 0, 1, … in participant order) at a point uses samples
       ``r·b .. r·b + k_ij − 1`` — with m = 1 simply the first ``k_ij``.
       ``p̂_ij`` is their mean, NaN values ignored, 0 if all are NaN.
    3. **Response.** ``ε = stream(seed, "response_noise").normal(0, response_sd, size=(P, S))``
       (``response_sd`` defaults to 0.1, in units of a 0–1 query value):
       rating ``y = clip(round(low + (high − low)(p̂ + ε)), low, high)``;
       count ``y = clip(round(p̂ + ε · (high − low)), low, high)`` (p̂ is a
       count; with ``count:0-N`` the noise is ε·N); probability
       ``y = clip(round(100 (p̂ + ε)), low, high)``. ``round`` is NumPy's
       (halves to even).
    4. **Order.** For j = 0..P-1 in turn, ``stream(seed, "trial_order").permutation(S)``
       is the order participant j sees the stimuli; ``trial_index`` 0..S-1.

    p̂ is the query's own value: a fraction for ``fall``, a probability for
    ``body_falls``/``falls_left``, a count for ``count_fallen``/``off_table``.
    The scale defaults to :func:`scale_for_stimuli`.

    Returns ``(responses, participants)``: the response table (columns
    ``participant, stimulus_id, response, trial_index, condition`` with
    ``condition = "synthetic"``, rows by participant then trial) and each
    participant's true ``sigma, phi, mu``. The result depends only on the
    arguments, never on ``workers``. ``early_stop=False`` runs every rollout
    of step 2 to its horizon (see :func:`ipe.simulate`).
    """
    stimuli = as_stimulus_set(stimuli)
    a, b = _judgment_samples(samples_per_judgment)
    group = {"sigma": sigma, "phi": phi, "mu": mu}
    free = _free_parameters(free, group)
    scale = scale or scale_for_stimuli(stimuli)
    values = _participants(seed, n_participants, group, free, participant_sd)
    p_hat = _judged_values(stimuli, values, a, b, seed, workers, progress, early_stop)
    y = _on_scale(p_hat, seed, 0.1 if response_sd is None else response_sd, scale)
    pids = [f"s{j:0{len(str(n_participants - 1))}d}" for j in range(n_participants)]
    responses = _response_rows(y, stimuli.ids, pids, seed)
    participants = pd.DataFrame({"participant": pids, "sigma": values["sigma"], "phi": values["phi"],
                                 "mu": values["mu"]})
    return responses, participants
