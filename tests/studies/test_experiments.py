"""Every script in ``experiments/`` runs with tiny settings and writes its results.

Each script is loaded from its file and its ``main([...])`` called in this
process with ``--tiny --workers 1 --out <tmp>``, as ``python
experiments/<name>.py --tiny`` would run it. The full-size runs (minutes
each) are documented in the scripts' docstrings.

As in Pyro's test suite, no script goes untested: a ``.py`` script without a
test of its own here runs through ``test_other_scripts_run_tiny`` (and fails
there if it has no ``--tiny`` mode), and ``test_every_script_runs_here``
fails when a file in ``experiments/`` is run by no test of this module.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
SCRIPTS = sorted(p.stem for p in EXPERIMENTS.glob("*.py") if not p.stem.startswith("_"))
# The scripts with a test of their own in this module (the test's name). Every other ``.py`` script runs in
# test_other_scripts_run_tiny; a script that is not Python must be listed here with its test.
OWN_TEST = {
    "bht_exp1.py": "test_bht_exp1_tiny",
    "mass.py": "test_mass_tiny",
    "direction.py": "test_direction_tiny",
    "illusions.py": "test_illusions_tiny",
    "bump.py": "test_bump_tiny",
    "trajectories.py": "test_trajectories_tiny",
    "parameter_recovery.py": "test_parameter_recovery_tiny",
    "video_comparison.sh": "test_video_comparison_script_tiny",
}
OTHER_SCRIPTS = [s for s in SCRIPTS if f"{s}.py" not in OWN_TEST]


def load(name: str):
    sys.path.insert(0, str(EXPERIMENTS))
    spec = importlib.util.spec_from_file_location(f"experiments_{name}", EXPERIMENTS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run(name: str, out: Path, *extra: str) -> dict:
    mod = load(name)
    assert mod.main(["--tiny", "--workers", "1", "--out", str(out), *extra]) == 0
    return json.loads((out / "summary.json").read_text())


def check_outputs(out: Path, figures: list[str]) -> pd.DataFrame:
    table = pd.read_csv(out / "results.csv")
    assert {"claim", "paper", "ours"} <= set(table.columns)
    assert len(table) >= 3
    md = (out / "results.md").read_text()
    assert md.startswith("# ") and "claim |" in md
    for f in figures:
        assert (out / f).stat().st_size > 1000, f
    return table


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("IPE_NO_PROGRESS", "1")


def test_every_script_runs_here():
    """Each file in ``experiments/`` (bar ``_``-prefixed helpers) is run by a test of this module."""
    files = {p.name for p in EXPERIMENTS.iterdir()
             if p.is_file() and not p.name.startswith(("_", ".")) and p.name != "README.md"}
    run_here = set(OWN_TEST) | {f"{s}.py" for s in OTHER_SCRIPTS}
    assert files - run_here == set(), "scripts in experiments/ that no test runs: add them to OWN_TEST with a test"
    assert set(OWN_TEST) <= files, "OWN_TEST names scripts that are gone"
    for test in OWN_TEST.values():
        assert callable(globals().get(test)), test
    assert {"bht_exp1", "mass", "direction", "illusions", "bump"} <= set(SCRIPTS)


def test_bht_exp1_tiny(tmp_path):
    summary = run("bht_exp1", tmp_path)
    table = check_outputs(tmp_path, ["heatmap_synthetic_towers.png", "noisy_vs_nonoise_synthetic_towers.png"])
    synth = [r for r in summary["results"] if r["data"] == "synthetic_towers"][0]
    assert math.isfinite(synth["r_ipe_ref"]) and -1 <= synth["r_ipe_ref"] <= 1
    grid = pd.read_csv(tmp_path / "grid_synthetic_towers.csv")
    assert len(grid) == 4 and set(grid.columns) == {"sigma", "phi", "r"}
    assert (table["paper"].dropna() == 0.92).any()
    from ipe.datasets import mental_jenga

    if (mental_jenga.default_root() / "data" / "exp2").is_dir():
        assert (tmp_path / "heatmap_mental_jenga_exp2.png").exists()
        assert any(r["data"] == "mental_jenga_exp2" for r in summary["results"])


def test_bht_exp1_skips_missing_mental_jenga(tmp_path):
    summary = run("bht_exp1", tmp_path, "--mj-root", str(tmp_path / "nowhere"))
    assert [r["data"] for r in summary["results"]] == ["synthetic_towers"]
    assert "skipped" in (tmp_path / "results.md").read_text()


def test_mass_tiny(tmp_path):
    summary = run("mass", tmp_path)
    check_outputs(tmp_path, ["pairs.png", "learning.png"])
    pairs = pd.read_csv(tmp_path / "pairs.csv")
    # The mass-blind observer sees both members of a pair alike: one prediction per pair.
    assert (pairs.groupby("pair")["p_mass_blind"].nunique() == 1).all()
    assert summary["part1"]["ordering_blind"] == 0.0
    assert 0.0 <= summary["part2"]["p_heavy_heavier"] <= 1.0


def test_direction_tiny(tmp_path):
    summary = run("direction", tmp_path)
    check_outputs(tmp_path, ["directions.png"])
    d = pd.read_csv(tmp_path / "directions.csv")
    assert len(d) == summary["towers"] >= 3
    # Falling towers fall: the no-noise direction is a downward angle.
    assert (d["no_noise"].between(-math.pi, 0.0)).all()


def test_illusions_tiny(tmp_path):
    run("illusions", tmp_path)
    check_outputs(tmp_path, ["illusions.png"])
    picks = pd.read_csv(tmp_path / "illusions.csv")
    assert set(picks["kind"]) == {"stands, judged to fall", "falls, judged to stand"}
    assert len(list((tmp_path / "renders").glob("*.png"))) == len(picks)
    stable = picks[picks["kind"] == "stands, judged to fall"]
    assert stable["stable"].all() and (stable["n_fallen_no_noise"] == 0).all()


def test_bump_tiny(tmp_path):
    summary = run("bump", tmp_path)
    check_outputs(tmp_path, ["cue_vs_nocue.png", "tables.png"])
    t = pd.read_csv(tmp_path / "tables.csv")
    assert set(t["direction"]) == {"L", "R"} and len(t) == 2 * summary["tables"]
    assert t["ipe_p_red"].between(0, 1).all()


def test_bump_scenes_are_valid_and_bumped():
    bump = load("bump")
    stimuli = bump.make_stimuli(3, seed=5)
    import ipe

    for s in stimuli:
        ipe.checks.check_stimulus(s)
        (iv,) = s.interventions
        assert iv.type == "impulse" and (iv.impulse[0] < 0) == s.id.endswith("_L")
    # Bumped hard to the right with no noise, the blocks move right.
    from ipe.montecarlo import run_sample

    _, r = run_sample(stimuli[1], ipe.NoiseParams(), 0, 0, [stimuli[1].query])
    assert np.mean(r.final[:, 0] - r.initial[:, 0]) > 0.05


def test_trajectories_tiny(tmp_path):
    summary = run("trajectories", tmp_path)
    check_outputs(tmp_path, ["spread.png", "fans.png", "fans/plinko_000.png"])
    sweep = pd.read_csv(tmp_path / "sweep.csv")
    levels = summary["levels"]
    assert len(sweep) == summary["worlds"] * 3 * len(levels)
    assert set(sweep["source"]) == {"launch_position", "collision_angle", "both"}
    # More motion noise, wider landings: the mean sd over worlds grows from the lowest to the highest level.
    both = sweep[sweep["source"] == "both"].groupby("level")["sd"].mean()
    assert both[max(levels)] > both[min(levels)] > 0
    assert 0.0 <= summary["frac_worlds_wider"] <= 1.0
    fans = pd.read_csv(tmp_path / "landing_summary.csv")
    assert len(fans) == 1 and fans["n"].iloc[0] == 5


@pytest.mark.parametrize("name", OTHER_SCRIPTS)
def test_other_scripts_run_tiny(name, tmp_path):
    """Scripts added by other issues run as ``python experiments/<name>.py --tiny --out <tmp>``."""
    import subprocess

    script = EXPERIMENTS / f"{name}.py"
    helptext = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert "--tiny" in helptext.stdout, f"experiments/{name}.py has no --tiny mode (or its --help fails)"
    args = [sys.executable, str(script), "--tiny"]
    if "--out" in helptext.stdout:
        args += ["--out", str(tmp_path)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_circular_correlation():
    common = load("_common")
    rng = np.random.default_rng(0)
    a = rng.uniform(-math.pi, math.pi, 50)
    assert common.circular_corr(a, a) == pytest.approx(1.0)
    assert common.circular_corr(a, -a) == pytest.approx(-1.0)
    b = rng.uniform(-math.pi, math.pi, 2000)
    c = rng.uniform(-math.pi, math.pi, 2000)
    assert abs(common.circular_corr(b, c)) < 0.1
    # Invariant to rotating one sample.
    assert common.circular_corr(a, a + 1.0) == pytest.approx(1.0)
    assert common.circular_mean([math.pi - 0.1, -math.pi + 0.1]) == pytest.approx(math.pi, abs=1e-9) or \
        common.circular_mean([math.pi - 0.1, -math.pi + 0.1]) == pytest.approx(-math.pi, abs=1e-9)


def test_video_comparison_script_tiny(tmp_path):
    """``experiments/video_comparison.sh`` end to end with tiny sizes: both baselines, renders, readout, the report."""
    import os
    import shutil
    import subprocess

    if shutil.which("ipe") is None:
        pytest.skip("the ipe command is not on PATH")
    env = dict(os.environ, IPE_NO_PROGRESS="1", N_TRAIN_CNN="16", EPOCHS_CNN="1", N_TEST_CNN="8", N_TRAIN_VIDEO="4",
               EPOCHS_VIDEO="1", N_TOWERS="6", N_PARTICIPANTS="4", IPE_SAMPLES="2")
    out = tmp_path / "vc"
    proc = subprocess.run(["bash", str(EXPERIMENTS / "video_comparison.sh"), str(out), str(tmp_path / "no-mj")],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = pd.read_csv(out / "towers" / "comparison" / "summary.csv")
    names = " ".join(summary.iloc[:, 0].astype(str))
    for row in ("CNN", "video model", "no-noise"):
        assert row in names, names
    assert (out / "towers" / "comparison" / "report.md").exists()


def test_parameter_recovery_tiny(tmp_path):
    """``experiments/parameter_recovery.py`` with tiny sizes writes its tables (the full studies are slow tests)."""
    mod = load("parameter_recovery")
    assert mod.main(["--datasets", "2", "--towers", "4", "--participants", "4", "--emulator-samples", "3",
                     "--warmup", "15", "--draws", "15", "--chains", "1", "--max-tree-depth", "4", "--svi-steps", "50",
                     "--workers", "1", "--out", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "datasets.csv")
    assert len(table) == 4 and set(table["parameter"]) == {"sigma", "phi"}
    summary = json.loads((tmp_path / "summary_2.json").read_text())
    assert 0.0 <= summary["coverage_90"] <= 1.0


@pytest.mark.slow
def test_parameter_recovery_jobs_give_the_same_table(tmp_path):
    """``--jobs 2`` fits data sets in two processes; each data set depends only on its index, so the tables agree."""
    import subprocess

    args = ["--datasets", "2", "--towers", "4", "--participants", "4", "--emulator-samples", "3", "--warmup", "15",
            "--draws", "15", "--chains", "1", "--workers", "1"]
    one, two = tmp_path / "one", tmp_path / "two"
    assert load("parameter_recovery").main([*args, "--out", str(one)]) == 0
    proc = subprocess.run([sys.executable, str(EXPERIMENTS / "parameter_recovery.py"), *args, "--jobs", "2",
                           "--out", str(two)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    cols = ["dataset", "parameter", "mean", "q05", "q95", "covered", "k_sims"]
    a, b = (pd.read_csv(p / "datasets.csv")[cols] for p in (one, two))
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.slow
def test_launch_and_collision_noise_are_recovered():
    """Synthetic participants at known launch and collision noise (docs/trajectories.md, "Recovery result"):
    from the stimulus means the truth lies in the 90 % intervals; from the clicks, which 40 rollouts per grid
    point resolve poorly, the fit either holds the truth or its verdict says it cannot be trusted (the
    emulator's Monte Carlo check) — never a confident miss."""
    table = load("landing_recovery").run(n_stimuli=8, n_participants=30, emulator_samples=40, grid_points=6, warmup=300,
                                 draws=300, chains=2, seed=4, true_launch=0.25, true_collision=0.2, motor_sd=8.0)
    noise = table["parameter"].isin(["launch_position", "collision_angle"])
    means = table[(table["data"] == "means") & noise]
    assert means["inside_90"].all(), means
    assert (means["r_hat"] < 1.05).all(), means
    trials = table[table["data"] == "trials"]
    assert trials["inside_90"].all() or not trials["converged"].any(), trials
