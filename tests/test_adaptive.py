"""Adaptive sample counts (``target_se``): rounds of rollouts until every query's se meets the target.

Cheap by design: two or three demo towers, at most 24 samples.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ipe import IPE, generate_towers, load_demo
from ipe.adaptive import next_count, simulate_adaptive
from ipe.cli import main
from ipe.errors import InputError
from ipe.montecarlo import simulate, summarize
from ipe.noise import NoiseParams
from ipe.checks import StimulusSet
from spies import counting_rollouts

POINTS = [NoiseParams(sigma=0.2, phi=0.1), NoiseParams(sigma=0.05)]
DEMO = Path(__file__).resolve().parents[1] / "data" / "demo_towers.json"
KEY = ["sigma", "phi", "stimulus_id", "sample", "query"]


@pytest.fixture(scope="module")
def stim():
    demo = load_demo()
    return StimulusSet(tuple(demo)[:3], name="demo3")


@pytest.fixture(scope="module")
def adaptive(stim):
    return simulate(stim, POINTS, n_samples=24, seed=5, target_se=0.08)


def test_a_pair_that_stops_at_n_equals_the_first_n_rows_of_a_fixed_run(stim, adaptive):
    fixed = simulate(stim, POINTS, n_samples=24, seed=5)
    counts = summarize(adaptive).set_index(["sigma", "stimulus_id"])["n_samples"]
    assert counts.min() < 24, "the test needs at least one pair that stopped early"
    merged = adaptive.merge(fixed, on=KEY, how="left", suffixes=("", "_fixed"), validate="one_to_one")
    assert len(merged) == len(adaptive)
    np.testing.assert_array_equal(merged["value"].to_numpy(), merged["value_fixed"].to_numpy())
    np.testing.assert_array_equal(merged["steps"].to_numpy(), merged["steps_fixed"].to_numpy())
    # each pair holds exactly samples 0 .. n-1, in order
    for _, g in adaptive.groupby(["sigma", "stimulus_id"], sort=False):
        assert g["sample"].tolist() == list(range(len(g)))


def test_every_pair_meets_the_target_or_the_cap(adaptive):
    s = summarize(adaptive)
    assert ((s["se"] <= 0.08) | (s["n_samples"] == 24)).all()
    assert (s["n_samples"] >= 16).all()
    # stopping is not trivial: the counts differ between pairs
    assert s["n_samples"].nunique() > 1


def test_same_table_for_every_backend_worker_count_and_batch_size(stim, adaptive):
    other = simulate(stim, POINTS, n_samples=24, seed=5, target_se=0.08, workers=2, batch_size=3)
    pd.testing.assert_frame_equal(adaptive, other)


def test_the_cache_stores_each_round_and_a_rerun_reads_them_back(stim, tmp_path):
    one = StimulusSet(tuple(stim)[:1], name="one")
    kw = dict(n_samples=24, seed=5, target_se=0.08, cache=tmp_path / "c")
    first = simulate(one, POINTS[0], **kw)
    from ipe.cache import SimulationCache

    store = SimulationCache(tmp_path / "c")
    again = simulate(one, POINTS[0], **{**kw, "cache": store})
    pd.testing.assert_frame_equal(first, again)
    assert store.stats.misses == 0 and store.stats.hits >= 1


def test_next_count_projects_from_the_standard_error():
    rng = np.random.default_rng(0)
    v = rng.integers(0, 2, size=(16, 1)).astype(float)
    se = float(v.std(ddof=1)) / 4
    assert next_count(v[:0], 0.05, 16, 100) == 16
    want = math.ceil(16 * (se / 0.05) ** 2)
    assert next_count(v, 0.05, 16, 100) == min(64, max(want, 20))
    assert next_count(v, 1.0, 16, 100) == 16  # met: stop
    assert next_count(v, 1e-6, 16, 30) == 30  # the cap
    assert next_count(np.zeros((16, 1)), 0.01, 16, 100) == 16  # all agree: se 0
    assert next_count(np.full((16, 1), np.nan), 0.01, 16, 100) == 32  # no se yet: double


@pytest.mark.parametrize("bad", [0, -0.1, math.nan, math.inf, True, "0.1", None])
def test_bad_targets_are_refused(bad, stim):
    with pytest.raises(InputError, match="target_se must be a finite number > 0"):
        simulate_adaptive(stim, POINTS, target_se=bad, max_samples=4)


def test_bad_target_through_simulate_is_refused_before_any_rollout(stim):
    with pytest.raises(InputError, match="target_se"):
        simulate(stim, POINTS, n_samples=4, target_se=-1.0)


def test_ipe_estimator_takes_target_se(stim):
    model = IPE(sigma=0.2, n_samples=20, seed=1, target_se=0.5)
    assert model.get_params()["target_se"] == 0.5
    pred = model.predict(StimulusSet(tuple(stim)[:1]))
    assert pred["n_samples"].tolist() == [16]  # met after the first round
    assert simulate_adaptive(StimulusSet(tuple(stim)[:1]), NoiseParams(sigma=0.2), target_se=0.5, max_samples=20,
                             seed=1).equals(model.simulate(StimulusSet(tuple(stim)[:1])))


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
@pytest.mark.parametrize("command", ["predict", "sweep"])
def test_cli_bad_target_is_one_line_and_exit_2(command, value, tmp_path, capsys):
    args = [command, str(DEMO), "--samples", "2", "--out", str(tmp_path / "o.csv"), f"--target-se={value}"]
    if command == "sweep":
        args += ["--grid", "sigma=0,0.1", "--no-cache"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ipe: error: --target-se must be a finite number > 0"), err
    assert not (tmp_path / "o.csv").exists()


def test_cli_predict_with_target_se(stim, tmp_path):
    from ipe.scenefile import save_stimuli

    path = save_stimuli(StimulusSet(tuple(stim)[:2], name="two"), tmp_path / "s.json")
    out = tmp_path / "p.csv"
    assert main(["predict", str(path), "--sigma", "0.2", "--samples", "20", "--seed", "1", "--target-se", "0.5",
                 "--out", str(out)]) == 0
    got = pd.read_csv(out)
    assert got["n_samples"].tolist() == [16, 16]
    assert (got["se"] <= 0.5).all()
    assert main(["predict", str(path), "--sigma", "0.2", "--samples", "20", "--target-se", "0.5", "--params",
                 str(tmp_path / "x.json"), "--population", "--out", str(tmp_path / "q.csv")]) == 2


def test_adaptive_progress_off_a_terminal_prints_plain_lines(stim, monkeypatch, capsys):
    """`--progress` with stderr redirected (a log file): the plain counter must take the adaptive rounds.

    It used to stop the run at the first round (PlainProgress had no ``refresh``).
    """
    monkeypatch.delenv("IPE_NO_PROGRESS", raising=False)
    monkeypatch.setenv("IPE_PROGRESS_INTERVAL", "0")
    df = simulate(stim, POINTS[:1], n_samples=12, seed=5, target_se=0.1, progress=True)
    assert len(df)
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "ETA" in ln]
    assert lines


PUSH_ONLY = [NoiseParams(phi=0.3), NoiseParams(phi=0.1)]


def _count_rollouts(monkeypatch, **kw):
    every = tuple(generate_towers(5, seed=2013))
    towers = StimulusSet((every[1], every[2], every[4]), name="push-sensitive")  # each has a pair with 2 rounds
    with counting_rollouts(monkeypatch) as calls:
        table = simulate(towers, PUSH_ONLY, n_samples=24, seed=5, target_se=0.02, progress=False, **kw)
    return towers, table, len(calls)


def test_push_only_rollouts_are_simulated_once_across_rounds(monkeypatch):
    """At points where the push is the only noise, a pair's later rounds copy its earlier rollouts of the same
    physics (same_physics_key) instead of simulating them again; the table is the fixed run's first n rows."""
    from ipe.runner import prepare_sample, same_physics_key

    towers, table, calls = _count_rollouts(monkeypatch)  # serial: the first round is one batch per pair
    counts = summarize(table).set_index(["phi", "stimulus_id"])["n_samples"]
    assert counts.max() > 16, "the test needs a pair with a second round"
    distinct = 0
    for (phi, sid), n in counts.items():
        stim = next(s for s in towers if s.id == sid)
        p = NoiseParams(phi=phi)
        distinct += len({same_physics_key(stim, p, *prepare_sample(stim, p, 5, k, [stim.query]))
                         for k in range(n)})
    assert calls == distinct  # one rollout per distinct physics of each pair, over all its rounds
    fixed = simulate(towers, PUSH_ONLY, n_samples=24, seed=5, progress=False)
    merged = table.merge(fixed, on=KEY, how="left", suffixes=("", "_fixed"), validate="one_to_one")
    np.testing.assert_array_equal(merged["value"].to_numpy(), merged["value_fixed"].to_numpy())
    np.testing.assert_array_equal(merged["steps"].to_numpy(), merged["steps_fixed"].to_numpy())
    _, pooled, _ = _count_rollouts(monkeypatch, workers=2, batch_size=3)
    pd.testing.assert_frame_equal(table, pooled)


def test_copied_rollouts_complete_their_rounds_in_the_cache(tmp_path):
    """A round whose samples are copied from an earlier round is still stored whole: a rerun reads every round."""
    from ipe.cache import SimulationCache

    one = StimulusSet((tuple(generate_towers(3, seed=2013))[2],), name="one")
    kw = dict(n_samples=24, seed=5, target_se=0.02, progress=False)
    first = simulate(one, PUSH_ONLY[0], cache=tmp_path / "c", **kw)
    assert first["sample"].max() == 23, "the test needs a second round"
    store = SimulationCache(tmp_path / "c")
    again = simulate(one, PUSH_ONLY[0], cache=store, **kw)
    pd.testing.assert_frame_equal(first, again)
    assert store.stats.misses == 0 and store.stats.hits >= 2 and store.stats.rollouts_read == 24
    pd.testing.assert_frame_equal(first, simulate(one, PUSH_ONLY[0], **kw))
