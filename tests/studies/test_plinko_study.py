"""The Plinko study (experiments/plinko.py): its plain-pymunk rebuild of the published engine agrees with ipe; its
hierarchical part runs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

from ipe.montecarlo import run_sample
from ipe.noise import NoiseParams
from ipe.stimuli.plinko import generate_plinko

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def load_study():
    sys.path.insert(0, str(EXPERIMENTS))
    try:
        spec = importlib.util.spec_from_file_location("experiments_plinko", EXPERIMENTS / "plinko.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.pop(0)
    return mod


def test_rebuild_lands_where_ipe_lands_without_noise():
    study = load_study()
    stimuli = study.all_holes(generate_plinko(1, seed=5))
    zero = {k: 0.0 for k in study.TRUTH}
    rng = np.random.default_rng(0)
    for s in stimuli:
        ipe_x = run_sample(s, NoiseParams(), 0, 0, [s.query])[0][0]
        assert abs(study.rebuild_landing(s, zero, rng) - ipe_x) < 0.5


def test_rebuild_noise_spreads_and_slows():
    study = load_study()
    s = study.all_holes(generate_plinko(1, seed=5))[0]
    rng = np.random.default_rng(1)
    x = [study.rebuild_landing(s, study.TRUTH, rng) for _ in range(8)]
    assert np.isfinite(x).all() and np.std(x) > 1.0


def test_part_5_fits_the_clicks_with_the_hierarchical_model(tmp_path, monkeypatch):
    """``--hierarchical``: the clicks fitted by ipe fit's hierarchical model on the landing emulator's rollouts."""
    import pandas as pd

    monkeypatch.setenv("IPE_NO_PROGRESS", "1")
    study = load_study()
    assert study.main(["--tiny", "--skip-compare", "--skip-n", "--hierarchical", "--workers", "1",
                       "--out", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "hierarchical.csv")
    assert {"collision_speed_loss", "collision_speed_sd", "motor_sd"} <= set(table["parameter"])
    assert table.set_index("parameter").loc["collision_speed_sd", "mc_sd"] >= 0
