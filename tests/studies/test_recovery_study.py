"""The parameter-recovery acceptance studies of the fitting issue, run through ``experiments/parameter_recovery.py``.

Both are slow (the emulator of 60 towers, then one NUTS fit per data set):
run them with ``pytest -m slow tests/studies/test_recovery_study.py``. Measured
numbers are in ``docs/fitting.md``.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "parameter_recovery.py"


def _script():
    spec = importlib.util.spec_from_file_location("parameter_recovery", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_one_dataset_recovers_sigma_and_phi(tmp_path):
    """30 participants × 60 towers, σ = φ = 0.2: 90% intervals hold the truth, means within 0.05."""
    assert _script().main(["--datasets", "1", "--out", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "datasets.csv")
    assert table["covered"].all(), table
    assert (table["abs_error"] < 0.05).all(), table


@pytest.mark.slow
def test_coverage_of_90_percent_intervals_over_20_datasets(tmp_path):
    """20 synthetic data sets: the 90% intervals of σ and φ cover the truth 80–97% of the time."""
    import subprocess
    import sys

    # two data sets at a time (one torch thread each), the settings of the run reported in docs/fitting.md
    proc = subprocess.run([sys.executable, str(SCRIPT), "--datasets", "20", "--jobs", "2", "--warmup", "100",
                           "--draws", "100", "--out", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "summary_20.json").read_text())
    assert 0.80 <= summary["coverage_90"] <= 0.97, summary
