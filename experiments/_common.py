"""Helpers shared by the experiment scripts: output folders, tables, correlations, paper-vs-ours printouts.

Not part of the ``ipe`` package; each script in ``experiments/`` imports it
from its own folder.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ipe.fileio import write_csv, write_json, write_text

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def parser(doc: str, name: str) -> argparse.ArgumentParser:
    """An argument parser with the options every script shares: ``--tiny``, ``--out``, ``--seed``, ``--workers``."""
    ap = argparse.ArgumentParser(description=doc.strip().splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="a few seconds' run with tiny sizes (what the tests use)")
    ap.add_argument("--out", type=Path, default=RESULTS / name, help=f"output folder (default results/{name})")
    ap.add_argument("--seed", type=int, default=2013)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    return ap


def sizes(args, tiny: dict, full: dict, keys: Sequence[str]) -> dict:
    """The run's sizes: ``tiny`` with ``--tiny``, else ``full``, each of ``keys`` overridden by its option when given."""
    cfg = dict(tiny if args.tiny else full)
    for k in keys:
        if getattr(args, k) is not None:
            cfg[k] = getattr(args, k)
    return cfg


def progress() -> bool | None:
    """Progress bars on a terminal unless ``IPE_NO_PROGRESS`` is set."""
    return False if os.environ.get("IPE_NO_PROGRESS") else None


def pearson(x, y) -> float:
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 3 or np.std(x) == 0 or np.std(y) == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


def bootstrap_r(x, y, n: int = 1000, seed: int = 0, fn=pearson) -> tuple[float, float]:
    """95% percentile bootstrap interval of ``fn(x, y)`` over items (resampled with replacement)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(7,)))
    vals = []
    for _ in range(n):
        i = rng.integers(0, len(x), len(x))
        v = fn(x[i], y[i])
        if math.isfinite(v):
            vals.append(v)
    if not vals:
        return math.nan, math.nan
    return float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))


def circular_mean(angles) -> float:
    a = np.asarray(angles, float)
    a = a[np.isfinite(a)]
    if len(a) == 0:
        return math.nan
    return float(np.arctan2(np.mean(np.sin(a)), np.mean(np.cos(a))))


def circular_corr(a, b) -> float:
    """Circular correlation coefficient of two angle samples (Jammalamadaka & SenGupta 2001, eq. 8.2.2)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if len(a) < 3:
        return math.nan
    sa, sb = np.sin(a - circular_mean(a)), np.sin(b - circular_mean(b))
    den = math.sqrt(float(np.sum(sa ** 2) * np.sum(sb ** 2)))
    return float(np.sum(sa * sb) / den) if den > 0 else math.nan


def jsonable(obj):
    """``obj`` with NaN/inf floats as ``None`` and numpy scalars and tuples as plain JSON values."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def markdown_table(df: pd.DataFrame, floatfmt: str = ".3f") -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        cells = []
        for v in row:
            if isinstance(v, (float, np.floating)):
                cells.append("" if not math.isfinite(v) else format(v, floatfmt))
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_results(out: Path, name: str, title: str, claims: pd.DataFrame, details: dict | None = None,
                  notes: Sequence[str] = ()) -> None:
    """Write ``results.csv`` and ``results.md`` (paper vs ours) and ``summary.json``; print the table.

    ``claims`` has columns ``claim, paper, ours`` (and more if wanted): one row
    per number the script reproduces.
    """
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "results.csv", claims)
    text = f"# {title}\n\n" + markdown_table(claims) + "".join(f"\n{n}\n" for n in notes)
    write_text(out / "results.md", text)
    write_json(out / "summary.json", jsonable({"experiment": name, "claims": claims.to_dict(orient="records"),
                                                **(details or {})}))
    print(text, flush=True)
