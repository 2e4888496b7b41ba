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
=============== ======== ==========================================================

Response scales (:class:`ResponseScale`): ``rating`` (integers ``low..high``,
e.g. 1–7 "will it fall?"), ``count`` (integers ``0..n``, e.g. how many blocks
fall) and ``probability`` (``0..100``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import InputError

RESPONSE_COLUMNS = ("participant", "stimulus_id", "response")
OPTIONAL_COLUMNS = ("rt", "trial_index", "condition")
RANGES = {"sigma": (0.0, 1.0), "phi": (0.0, 1.0), "mu": (0.0, 1.0)}
"""Ranges of the noise parameters for synthetic participants and the fitter's priors."""

SCALE_KINDS = ("rating", "count", "probability")
_SCALE_RE = re.compile(r"^\s*(rating|count|probability)\s*:\s*(-?\d+)\s*-\s*(-?\d+)\s*$")


@dataclass(frozen=True)
class ResponseScale:
    """The scale people answer on: ``kind`` in rating/count/probability, integer levels ``low..high``."""

    kind: str
    low: int
    high: int

    def __post_init__(self):
        if self.kind not in SCALE_KINDS:
            raise InputError(f"scale kind must be one of {', '.join(SCALE_KINDS)}, got {self.kind!r}")
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
        return self.high - self.low + 1

    def __str__(self) -> str:
        return f"{self.kind}:{self.low}-{self.high}"


def _n_counted(stim) -> int:
    removed = {b for iv in stim.interventions if iv.type == "remove" for b in iv.bodies}
    return sum(1 for b in stim.scene.bodies if b.id not in removed)


def default_scale(stim) -> ResponseScale:
    """The scale a stimulus's own query is answered on (see the module docstring)."""
    name = stim.query.name
    if name == "fall":
        return ResponseScale("rating", 1, 7)
    if name in ("count_fallen", "off_table"):
        bodies = stim.query.params.get("bodies")
        n = len(bodies) if isinstance(bodies, (list, tuple)) else _n_counted(stim)
        return ResponseScale("count", 0, max(n, 1))
    if name in ("body_falls", "falls_left"):
        return ResponseScale("probability", 0, 100)
    raise InputError(f"stimulus {stim.id!r}: no default response scale for query {name!r}; pass a scale "
                     "(e.g. --scale rating:1-7)")


def scale_for_stimuli(stimuli) -> ResponseScale:
    """One scale for a whole set: every stimulus's default must agree on the kind (counts take the largest n)."""
    from .scene import as_stimulus_set

    scales = [default_scale(s) for s in as_stimulus_set(stimuli)]
    if not scales:
        raise InputError("no stimuli")
    kinds = {s.kind for s in scales}
    if len(kinds) > 1:
        raise InputError(f"stimuli ask questions on different scales ({', '.join(sorted(kinds))}); pass a scale")
    return ResponseScale(scales[0].kind, min(s.low for s in scales), max(s.high for s in scales))


# --------------------------------------------------------------------------- loading


def load_responses(path: str | Path, mapping: Mapping[str, str] | None = None, fmt: str | None = None) -> pd.DataFrame:
    """Read a response table from ``.csv`` or ``.parquet`` (``fmt`` overrides the extension).

    ``mapping`` renames columns: ``{"participant": "subject"}`` reads the
    ``subject`` column as ``participant``. The table is not validated here
    (see :func:`validate_responses`).
    """
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in ("csv", "parquet", "pq"):
        raise InputError(f"{path}: unknown response file type {fmt!r}; expected .csv or .parquet")
    if not path.exists():
        raise InputError(f"{path}: no such file")
    try:
        if fmt == "csv":
            df = pd.read_csv(path, dtype={"participant": str, "stimulus_id": str, "condition": str})
        else:
            df = pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise InputError(f"{path}: cannot read responses ({' '.join(str(exc).split())[:200]})") from None
    if mapping:
        df = _apply_mapping(df, mapping, str(path))
    return df


def _apply_mapping(df: pd.DataFrame, mapping: Mapping[str, str], where: str) -> pd.DataFrame:
    bad = [k for k in mapping if k not in RESPONSE_COLUMNS + OPTIONAL_COLUMNS]
    if bad:
        raise InputError(f"{where}: mapping names unknown schema column(s) {', '.join(bad)}")
    missing = [v for v in mapping.values() if v not in df.columns]
    if missing:
        raise InputError(f"{where}: mapped column(s) not in the file: {', '.join(missing)}")
    out = df.drop(columns=[k for k in mapping if k in df.columns and k not in mapping.values()])
    return out.rename(columns={v: k for k, v in mapping.items()})


JSPSYCH_DEFAULTS = {
    "participant": ("participant", "subject", "subject_id", "run_id"),
    "stimulus_id": ("stimulus_id", "stimulus"),
    "response": ("response",),
    "rt": ("rt",),
    "trial_index": ("trial_index",),
    "condition": ("condition",),
}


def load_jspsych(path: str | Path, mapping: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Read a jsPsych-style CSV export into the schema.

    Columns are found by the usual jsPsych names (``subject``/``run_id`` →
    participant, ``stimulus`` → stimulus_id, ``response``, ``rt``,
    ``trial_index``) unless ``mapping`` names them. Rows that are not
    judgments (no stimulus id or no numeric response: instructions, consent,
    fixation) are dropped; jsPsych's ``rt`` is kept in ms.
    """
    path = Path(path)
    raw = load_responses(path, fmt="csv")
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
    if mapping:
        bad = [k for k in mapping if k not in JSPSYCH_DEFAULTS]
        if bad:
            raise InputError(f"{path}: mapping names unknown schema column(s) {', '.join(bad)}")
    missing = [c for c in RESPONSE_COLUMNS if c not in chosen]
    if missing:
        raise InputError(f"{path}: no column for {', '.join(missing)} in the jsPsych export; give a mapping")
    df = pd.DataFrame({c: raw[n] for c, n in chosen.items()})
    df["response"] = pd.to_numeric(df["response"], errors="coerce")
    keep = df["stimulus_id"].notna() & (df["stimulus_id"].astype(str).str.strip() != "") & df["response"].notna()
    df = df[keep].reset_index(drop=True)
    if "rt" in df:
        df["rt"] = pd.to_numeric(df["rt"], errors="coerce")
    if df.empty:
        raise InputError(f"{path}: no judgment trials (rows with a stimulus and a numeric response)")
    return df


# --------------------------------------------------------------------------- validation


def validate_responses(df: pd.DataFrame, stimuli=None, scale: ResponseScale | None = None,
                       where: str = "responses") -> pd.DataFrame:
    """Check a response table and return a clean copy in schema order.

    One-line :class:`~ipe.errors.InputError` for: an empty table, missing or
    unknown columns, non-numeric or missing responses, unknown stimulus ids,
    responses outside the scale or not on its integer levels, and repeated
    ``(participant, stimulus_id, trial_index)``.
    """
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"{where}: expected a table (pandas DataFrame)")
    if df.empty or len(df.columns) == 0:
        raise InputError(f"{where}: the table is empty")
    missing = [c for c in RESPONSE_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"{where}: missing required column(s) {', '.join(missing)}")
    unknown = [c for c in df.columns if c not in RESPONSE_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise InputError(f"{where}: unknown column(s) {', '.join(map(str, unknown))}; expected "
                         f"{', '.join(RESPONSE_COLUMNS + OPTIONAL_COLUMNS)}")
    out = df.copy().reset_index(drop=True)
    for c in ("participant", "stimulus_id"):
        if out[c].isna().any():
            row = int(np.flatnonzero(out[c].isna().to_numpy())[0])
            raise InputError(f"{where}: row {row}: {c} is missing")
        out[c] = out[c].map(_as_id)
    resp = pd.to_numeric(out["response"], errors="coerce")
    bad = resp.isna() | ~np.isfinite(resp.to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"{where}: row {row}: response {out['response'].iloc[row]!r} is not a finite number")
    out["response"] = resp.astype(float)
    if "rt" in out:
        out["rt"] = pd.to_numeric(out["rt"], errors="coerce").astype(float)
    if "trial_index" in out:
        ti = pd.to_numeric(out["trial_index"], errors="coerce")
        if ti.isna().any() or (ti != np.round(ti)).any():
            row = int(np.flatnonzero((ti.isna() | (ti != np.round(ti))).to_numpy())[0])
            raise InputError(f"{where}: row {row}: trial_index {out['trial_index'].iloc[row]!r} is not an integer")
        out["trial_index"] = ti.astype("int64")
        dup = out.duplicated(["participant", "stimulus_id", "trial_index"])
        if dup.any():
            row = int(np.flatnonzero(dup.to_numpy())[0])
            raise InputError(f"{where}: row {row}: participant {out['participant'].iloc[row]!r} answered stimulus "
                             f"{out['stimulus_id'].iloc[row]!r} twice at trial_index {out['trial_index'].iloc[row]}")
    if "condition" in out:
        out["condition"] = out["condition"].astype(str)
    if stimuli is not None:
        from .scene import as_stimulus_set

        known = set(as_stimulus_set(stimuli).ids)
        unknown_ids = sorted(set(out["stimulus_id"]) - known)
        if unknown_ids:
            shown = ", ".join(map(repr, unknown_ids[:3]))
            more = f" and {len(unknown_ids) - 3} more" if len(unknown_ids) > 3 else ""
            raise InputError(f"{where}: {len(unknown_ids)} unknown stimulus id(s): {shown}{more}")
    if scale is not None:
        y = out["response"].to_numpy()
        outside = (y < scale.low) | (y > scale.high)
        if outside.any():
            row = int(np.flatnonzero(outside)[0])
            raise InputError(f"{where}: row {row}: response {y[row]:g} is outside the scale {scale}")
        if scale.kind in ("rating", "count"):
            frac = y != np.round(y)
            if frac.any():
                row = int(np.flatnonzero(frac)[0])
                raise InputError(f"{where}: row {row}: response {y[row]:g} is not a whole number ({scale.kind})")
    cols = [c for c in RESPONSE_COLUMNS + OPTIONAL_COLUMNS if c in out.columns]
    return out[cols]


def _as_id(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


# --------------------------------------------------------------------------- aggregation


def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    """Per-stimulus summary of a validated table: ``stimulus_id, n, mean, sd, se``."""
    g = df.groupby("stimulus_id", sort=False)["response"]
    out = pd.DataFrame({"n": g.size(), "mean": g.mean(), "sd": g.std(ddof=1)}).reset_index()
    out["se"] = out["sd"] / np.sqrt(out["n"])
    return out[["stimulus_id", "n", "mean", "sd", "se"]]


def split_half_reliability(df: pd.DataFrame, n_splits: int = 100, seed: int = 0) -> dict[str, float]:
    """Split-half reliability of the per-stimulus means (the noise ceiling).

    Participants are split at random into two halves ``n_splits`` times; each
    time the Pearson r between the halves' stimulus means is
    Spearman–Brown corrected, ``2r / (1 + r)``. Returns ``r`` (the mean),
    ``q025`` and ``q975`` (percentiles over splits) and ``n_participants``.
    """
    parts = np.array(sorted(df["participant"].astype(str).unique()))
    if len(parts) < 2:
        raise InputError("split-half reliability needs at least two participants")
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(5,)))
    pivot = df.assign(participant=df["participant"].astype(str)).pivot_table(
        index="participant", columns="stimulus_id", values="response", aggfunc="mean").reindex(parts)
    values = pivot.to_numpy(dtype=float)
    rs = []
    for _ in range(n_splits):
        perm = rng.permutation(len(parts))
        half = len(parts) // 2
        a = np.nanmean(values[perm[:half]], axis=0)
        b = np.nanmean(values[perm[half:]], axis=0)
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() < 3 or a[ok].std() == 0 or b[ok].std() == 0:
            continue
        r = float(np.corrcoef(a[ok], b[ok])[0, 1])
        rs.append(2 * r / (1 + r) if r > -1 else -1.0)
    if not rs:
        return {"r": math.nan, "q025": math.nan, "q975": math.nan, "n_participants": len(parts)}
    rs_arr = np.array(rs)
    return {"r": float(rs_arr.mean()), "q025": float(np.quantile(rs_arr, 0.025)),
            "q975": float(np.quantile(rs_arr, 0.975)), "n_participants": len(parts)}


# --------------------------------------------------------------------------- synthetic participants


def participant_values(group: float, lo: float, hi: float, sd: float, z: np.ndarray) -> np.ndarray:
    """θ_j = lo + (hi − lo) · sigmoid(logit((g − lo)/(hi − lo)) + sd · z_j): the group value is the median."""
    frac = (group - lo) / (hi - lo)
    u = math.log(frac / (1 - frac)) + sd * np.asarray(z, dtype=float)
    return lo + (hi - lo) / (1 + np.exp(-u))


def synthesize(stimuli, n_participants: int, sigma: float, phi: float, mu: float = 0.0,
               scale: ResponseScale | None = None, seed: int = 0, participant_sd: float = 0.3,
               samples_per_judgment: tuple[int, int] = (3, 7), response_sd: float | None = None, workers: int = 1,
               progress: bool | None = None, free: Sequence[str] = ("sigma", "phi")
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Synthetic participants who judge by running a few noisy simulations.

    Generative process (the one :class:`ipe.inference.HierarchicalFit` inverts):

    1. Each participant j gets, for each ``free`` parameter θ with group value g,
       ``θ_j`` by :func:`participant_values` with ``z_j ~ N(0, 1)`` and
       ``sd = participant_sd`` (logit scale, range :data:`RANGES`); other
       parameters equal the group value.
    2. For each stimulus, ``k ~ Uniform{a..b}`` (``samples_per_judgment``)
       rollouts of its own query at θ_j; ``p̂`` is their mean (one
       :func:`ipe.simulate` call with one parameter point per participant).
    3. The answer on the scale, with ``ε ~ N(0, response_sd)`` (default 0.1):
       rating ``clip(round(low + (high − low)(p̂ + ε)))``; count
       ``clip(round(p̂ + ε·high))``; probability ``clip(round(100(p̂ + ε)))``.
    4. Each participant sees the stimuli in a random order (``trial_index``).

    Returns ``(responses, participants)``: the response table (schema above,
    ``condition = "synthetic"``) and each participant's true values.
    """
    from .montecarlo import simulate
    from .noise import NoiseParams
    from .scene import as_stimulus_set

    stimuli = as_stimulus_set(stimuli)
    if isinstance(n_participants, bool) or not isinstance(n_participants, (int, np.integer)) or n_participants < 1:
        raise InputError(f"participants must be a positive integer, got {n_participants!r}")
    a, b = samples_per_judgment
    if not (isinstance(a, (int, np.integer)) and isinstance(b, (int, np.integer)) and 1 <= a <= b):
        raise InputError(f"samples per judgment must be 1 <= a <= b, got {a}-{b}")
    if not (participant_sd >= 0 and math.isfinite(participant_sd)):
        raise InputError(f"participant sd must be >= 0, got {participant_sd}")
    response_sd = 0.1 if response_sd is None else response_sd
    if not (response_sd >= 0 and math.isfinite(response_sd)):
        raise InputError(f"response sd must be >= 0, got {response_sd}")
    scale = scale or scale_for_stimuli(stimuli)
    group = {"sigma": sigma, "phi": phi, "mu": mu}
    for name in free:
        if name not in RANGES:
            raise InputError(f"unknown free parameter {name!r}")
        lo, hi = RANGES[name]
        if not lo < group[name] < hi:
            raise InputError(f"group {name} must lie strictly inside ({lo:g}, {hi:g}), got {group[name]}")
    for name, v in group.items():
        if not (v >= 0 and math.isfinite(v)):
            raise InputError(f"{name} must be a finite number >= 0, got {v}")
    root = np.random.SeedSequence(int(seed))
    ss_part, ss_k, ss_resp, ss_order, ss_sim = root.spawn(5)
    rng_part = np.random.default_rng(ss_part)
    values = {}
    for name in ("sigma", "phi", "mu"):
        if name in free:
            lo, hi = RANGES[name]
            values[name] = participant_values(group[name], lo, hi, participant_sd,
                                              rng_part.standard_normal(n_participants))
        else:
            values[name] = np.full(n_participants, float(group[name]))
    points = [NoiseParams(sigma=float(values["sigma"][j]), phi=float(values["phi"][j]), mu=float(values["mu"][j]))
              for j in range(n_participants)]
    sim_seed = int(ss_sim.generate_state(1)[0] % (2 ** 31))
    table = simulate(stimuli, points, n_samples=b, seed=sim_seed, workers=workers, progress=progress)
    n_stim = len(stimuli)
    vals = table["value"].to_numpy(dtype=float).reshape(n_participants, n_stim, b)
    k = np.random.default_rng(ss_k).integers(a, b + 1, size=(n_participants, n_stim))
    mask = np.arange(b)[None, None, :] < k[:, :, None]
    use = np.where(mask, vals, np.nan)
    with np.errstate(all="ignore"):
        p_hat = np.nanmean(use, axis=2)
    p_hat = np.where(np.isnan(p_hat), 0.0, p_hat)
    eps = np.random.default_rng(ss_resp).normal(0.0, response_sd, size=p_hat.shape)
    if scale.kind == "rating":
        y = np.round(scale.low + (scale.high - scale.low) * (p_hat + eps))
    elif scale.kind == "count":
        y = np.round(p_hat + eps * scale.high)
    else:
        y = np.round(100.0 * (p_hat + eps))
    y = np.clip(y, scale.low, scale.high)
    rng_order = np.random.default_rng(ss_order)
    rows = []
    width = len(str(n_participants - 1))
    ids = [s.id for s in stimuli]
    for j in range(n_participants):
        order = rng_order.permutation(n_stim)
        pid = f"s{j:0{width}d}"
        for t, i in enumerate(order):
            rows.append((pid, ids[i], float(y[j, i]), t, "synthetic"))
    responses = pd.DataFrame(rows, columns=["participant", "stimulus_id", "response", "trial_index", "condition"])
    participants = pd.DataFrame({"participant": [f"s{j:0{width}d}" for j in range(n_participants)],
                                 "sigma": values["sigma"], "phi": values["phi"], "mu": values["mu"]})
    return responses, participants
