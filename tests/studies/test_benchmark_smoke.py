"""Smoke test of ``benchmarks/bench_rollouts.py --quick``: it runs, writes its JSON, and judgments agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "bench_rollouts.py"

TOP_KEYS = {
    "machine", "stimuli", "rounds", "rollouts_per_round", "plain_rollouts_per_s",
    "ipe_full_horizon_rollouts_per_s", "ipe_early_stop_rollouts_per_s", "ratio_full_horizon_vs_plain",
    "ratio_early_stop_vs_plain", "judgments_identical_to_plain", "steps_early_stop_per_stimulus",
    "steps_full_horizon", "scaling_noisy", "scaling_no_noise",
}
SCALING_KEYS = {"rollouts", "workers1_s", "workers2_s", "speedup", "identical"}


def run_quick(script: str, out: Path, *args: str, env=None) -> tuple[dict, str]:
    """Run ``benchmarks/SCRIPT --quick ARGS --out OUT`` (it must exit 0): its JSON result and its stdout."""
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), "--quick", *args, "--out", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert out.is_file()
    return json.loads(out.read_text(encoding="utf-8")), proc.stdout


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "r.json"
    return run_quick(SCRIPT.name, out, env=dict(os.environ, IPE_NO_PROGRESS="1"))


def test_quick_benchmark_writes_expected_keys(result):
    res, _ = result
    assert TOP_KEYS <= set(res)
    assert {"python", "pymunk", "cpus", "platform"} <= set(res["machine"])
    assert SCALING_KEYS | {"params"} <= set(res["scaling_noisy"])
    assert SCALING_KEYS <= set(res["scaling_no_noise"])
    assert res["stimuli"] == 12
    assert res["rounds"] == 1
    assert res["rollouts_per_round"] == 12
    for k in ("plain_rollouts_per_s", "ipe_full_horizon_rollouts_per_s", "ipe_early_stop_rollouts_per_s"):
        assert res[k] > 0, k
    assert len(res["steps_early_stop_per_stimulus"]) == 12
    assert all(0 < s <= res["steps_full_horizon"] for s in res["steps_early_stop_per_stimulus"])
    assert res["scaling_noisy"]["params"]["sigma"] == 0.2


def test_quick_benchmark_judgments_are_identical(result):
    res, stdout = result
    assert res["judgments_identical_to_plain"] is True
    assert res["scaling_noisy"]["identical"] is True
    assert res["scaling_no_noise"]["identical"] is True
    assert "judgments identical to the plain loop: True" in stdout


def test_quick_benchmark_does_not_touch_the_committed_results(result):
    """``--out`` is honoured: the run writes to the temporary path, not benchmarks/results/."""
    res, stdout = result
    assert str(REPO / "benchmarks" / "results" / "rollouts.json") not in stdout


def test_ceiling_benchmark_quick_bounds_are_ordered(tmp_path):
    """``benchmarks/bench_ceiling.py --quick``: stepping-only bounds lie above ipe's rate, the oracle's above both."""
    out = tmp_path / "ceiling.json"
    res, _ = run_quick("bench_ceiling.py", out)
    rates = res["rollouts_per_cpu_s"]
    assert res["rollouts"] == 3 * 3 * 2
    assert 0 < rates["ipe"] < rates["stepping_only"] <= rates["stepping_only_oracle_stop"]
    assert 0 < res["stepping_share"] < 1
    assert 0 <= res["mean_steps_until_answer_settles"] <= res["mean_steps_run"] <= 480


def test_fidelity_benchmark_quick_compares_settings_with_the_reference(tmp_path):
    """``benchmarks/bench_fidelity.py --quick``: every setting gets a cost, r, |Δ| against 2 se, and a frontier mark."""
    out = tmp_path / "fidelity.json"
    res, stdout = run_quick("bench_fidelity.py", out, "--set", "towers")
    assert res["complete"] is True and res["stimuli"] == 3 and res["samples"] == 4
    rows = res["settings"]
    assert [r["is_default"] for r in rows].count(True) == 1
    default = next(r for r in rows if r["is_default"])
    assert (default["substeps"], default["iterations"], default["slop"]) == (4, 30, 1.0)
    assert res["reference"]["steps_per_rollout"] > default["steps_per_rollout"]
    for r in rows:
        assert r["cpu_ms_per_rollout"] > 0 and 0 <= r["within_2se"] <= r["n_stimuli"] == 3
        assert r["passes"] == (r["within_2se"] == 3 and r["r"] >= 0.995)
        assert r["whole_set"]["pairs"] == 3 and 0 < r["whole_set"]["chi2_p"] <= 1
        assert 0 <= r["rollouts_differing"] <= r["rollouts_compared"] == 3 * 4
    assert any(r["on_frontier"] for r in rows)
    assert "| reference" in stdout


def test_savings_benchmark_quick_reads_adaptive_counts_off_the_fixed_run(tmp_path):
    """``benchmarks/bench_savings.py --quick``: the read-off adaptive counts equal a real adaptive run's."""
    out = tmp_path / "savings.json"
    res, _ = run_quick("bench_savings.py", out)
    assert res["adaptive_run"]["counts_match_read_off"] is True
    for r in res["adaptive"]:
        assert 0 <= r["rollouts_saved"] < 1 and r["pairs_meeting_target_or_cap"] == r["pairs"]
    assert all(r["sample_factor"] > 0 for r in res["crn"])


def test_bht_rollout_benchmark_quick_compares_every_stop_rollout_by_rollout(tmp_path):
    """``bench_rollouts.py --bht --quick``: plain loop with the push, full horizon, rest and answer-aware stops agree."""
    out = tmp_path / "bht.json"
    res, _ = run_quick(SCRIPT.name, out, "--bht")
    assert res["rollouts"] == 3 * 2
    assert res["judgments_identical_rollout_by_rollout"] is True
    assert set(res["ratio_vs_plain"]) == {"plain", "full", "rest", "answer"}
    assert res["params"]["sigma"] == 0.2 and res["params"]["phi"] == 0.2


def test_sweep_best_benchmark_quick_projects_fixed_and_adaptive(tmp_path):
    """``bench_sweep_best.py --quick``: the σ = 0 row shares its rollouts; both projections are written."""
    out = tmp_path / "best.json"
    res, _ = run_quick("bench_sweep_best.py", out)
    row0 = res["row0_fixed"]
    assert row0["rows"] == 3 * 3 * 8
    assert row0["rollouts_simulated"] <= 3 * (1 + 2 + 2)  # φ = 0: one per tower; φ > 0: one per push direction
    assert res["diagonal_fixed"]["rollouts_simulated"] == res["diagonal_fixed"]["rows"]
    for kind in ("fixed", "adaptive"):
        assert res[f"projected_sweep_{kind}"]["cpu_s"] > 0


def _bench_fidelity():
    import importlib

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        return importlib.import_module("bench_fidelity")
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


def test_whole_set_test_tells_monte_carlo_error_from_a_shift():
    """Two samples of one distribution pass the whole-set test; a shift of 0.15 on every judgment does not."""
    fid = _bench_fidelity()
    rng = np.random.default_rng(1)
    p = rng.uniform(0.2, 0.8, size=40)
    a = [rng.binomial(1, q, size=24).astype(float) for q in p]
    b = [rng.binomial(1, q, size=48).astype(float) for q in p]
    same = fid.whole_set_test(a, b, draws=400)
    assert same["within_mc_error"] and same["chi2_p"] >= 0.05 and same["pairs_that_can_differ"] == 40
    assert 0.5 * 40 < same["chi2_expected"] < 1.5 * 40  # Σz² under Monte Carlo error alone ≈ the number of pairs
    shifted = [rng.binomial(1, np.clip(q + 0.15, 0, 1), size=48).astype(float) for q in p]
    moved = fid.whole_set_test(a, shifted, draws=400)
    assert not moved["within_mc_error"] and moved["chi2_p"] < 0.01 and moved["count_over_2"] > moved["count_over_2_expected"]
    # one value on both sides: no Monte Carlo error, no test (z = 0); the same value unequal on the two sides: z > 0
    flat = fid.whole_set_test([np.ones(16)], [np.ones(48)], draws=50)
    assert flat["chi2"] == 0 and flat["pairs_that_can_differ"] == 0
    assert fid.whole_set_test([np.zeros(16)], [np.ones(48)], draws=50)["max_abs_z"] > 4


def test_sweep_fidelity_benchmark_quick_checks_sampled_points_against_the_reference(tmp_path):
    """``bench_sweep_fidelity.py --quick``: corners + a drawn point, the rerun reproduces the sweep, whole-set tests."""
    out = tmp_path / "sf.json"
    res, stdout = run_quick("bench_sweep_fidelity.py", out)
    assert res["complete"] and res["reproduces_sweep"] is True
    points = [(p["point"]["sigma"], p["point"]["phi"]) for p in res["points"]]
    assert {(0.0, 0.0), (0.0, 0.2), (0.3, 0.0), (0.3, 0.2)} <= set(points) and len(points) == 4
    for p in res["points"]:
        assert p["stimuli"] == 3 and len(p["z"]) == 3 and p["default48"]["reproduces_sweep"] == 3
        assert p["default48"]["rollouts"] == 3 * 8
    for key in ("whole_set", "whole_set_default48"):
        w = res[key]
        assert w["pairs"] == 12 and 0 < w["chi2_p"] <= 1 and isinstance(w["within_mc_error"], bool)
    assert "Monte Carlo error" in stdout


def test_sweep_best_row0_sharing_quick_tables_identical(tmp_path):
    """``bench_sweep_best.py --quick --row0-sharing``: with and without sharing across rounds, the same table."""
    out = tmp_path / "row0.json"
    res, _ = run_quick("bench_sweep_best.py", out, "--row0-sharing", "--repeats", "1")
    assert res["tables_identical"] is True
    shared, per_round = res["runs"]["shared"][0], res["runs"]["per_round"][0]
    assert shared["rows"] == per_round["rows"] and shared["rollouts_simulated"] <= per_round["rollouts_simulated"]
