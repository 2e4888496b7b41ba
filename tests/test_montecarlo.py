"""Monte Carlo rollouts: reproducible tables whatever the workers, batches or grid; exact summaries."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import ipe
from ipe.montecarlo import PARAM_COLUMNS, ROLLOUT_COLUMNS, SUMMARY_COLUMNS, iter_points
from ipe.noise import NoiseParams

NOISY = NoiseParams(sigma=0.2, phi=0.1)
N = 6  # samples per stimulus: enough to see noise, small enough to be quick


@pytest.fixture(scope="module")
def few(demo):
    """The first four demo towers (two stable, two falling)."""
    return ipe.StimulusSet(stimuli=tuple(demo)[:4], name="demo4")


@pytest.fixture(scope="module")
def serial_table(few):
    return ipe.simulate(few, NOISY, n_samples=N, seed=11, workers=1)


# --------------------------------------------------------------------------- reproducibility


def test_process_backend_is_bit_identical_to_serial(few, serial_table):
    par = ipe.simulate(few, NOISY, n_samples=N, seed=11, workers=2)
    pd.testing.assert_frame_equal(par, serial_table, check_exact=True)
    assert par.equals(serial_table)


def test_explicit_backends_agree(few, serial_table):
    ser = ipe.simulate(few, NOISY, n_samples=N, seed=11, workers=2, backend="serial")
    assert ser.equals(serial_table)
    # a one-process pool, with tiny batches: still the same table
    one = ipe.simulate(few, NOISY, n_samples=N, seed=11, workers=1, backend="process", batch_size=2)
    assert one.equals(serial_table)


@pytest.mark.parametrize("batch_size", [1, 4, N, 100])
def test_batch_size_does_not_change_results(few, serial_table, batch_size):
    t = ipe.simulate(few, NOISY, n_samples=N, seed=11, batch_size=batch_size)
    assert t.equals(serial_table)


def test_same_seed_same_table_different_seed_different(few, serial_table):
    again = ipe.simulate(few, NOISY, n_samples=N, seed=11)
    assert again.equals(serial_table)
    other = ipe.simulate(few, NOISY, n_samples=N, seed=12)
    assert list(other.columns) == list(serial_table.columns)
    assert not np.array_equal(other["value"].to_numpy(), serial_table["value"].to_numpy())


def test_more_samples_extend_the_table(few, serial_table):
    """A sample's seed depends on its index only: sample k is the same in a longer run."""
    longer = ipe.simulate(few, NOISY, n_samples=N + 2, seed=11)
    head = longer[longer["sample"] < N].reset_index(drop=True)
    assert head.equals(serial_table)


# --------------------------------------------------------------------------- table layout


def test_rollouts_table_layout(few, serial_table):
    t = serial_table
    assert list(t.columns) == ROLLOUT_COLUMNS
    assert len(t) == len(few) * N
    assert t["sample"].dtype == np.int64 and t["steps"].dtype == np.int64
    # (stimulus, sample) order, samples 0..N-1 for every stimulus
    assert t["stimulus_id"].tolist() == [s for s in few.ids for _ in range(N)]
    assert t["sample"].tolist() == list(range(N)) * len(few)
    assert (t["query"] == "fall").all()
    assert t[["stimulus_id", "sample", "query"]].duplicated().sum() == 0
    for c, v in NOISY.as_dict().items():
        assert (t[c] == v).all()
    assert t["value"].between(0, 1).all()
    assert (t["steps"] > 0).all()


def test_one_row_per_stimulus_sample_and_query(few):
    qs = ["fall", "count_fallen", "falls_left"]
    t = ipe.simulate(few, NOISY, n_samples=3, seed=1, queries=qs)
    assert len(t) == len(few) * 3 * len(qs)
    assert not t[["stimulus_id", "sample", "query"]].duplicated().any()
    counts = t.groupby(["stimulus_id", "query"]).size()
    assert (counts == 3).all() and len(counts) == len(few) * len(qs)
    # queries vary fastest, in the order given
    assert t["query"].tolist()[: len(qs)] == qs
    # count_fallen and fall agree: count = fall × number of blocks
    wide = t.pivot_table(index=["stimulus_id", "sample"], columns="query", values="value")
    n_blocks = 10
    np.testing.assert_allclose(wide["count_fallen"], wide["fall"] * n_blocks)
    # falls_left is undefined (NaN) exactly when nothing fell
    assert (wide["falls_left"].isna() == (wide["count_fallen"] == 0)).all()


def test_single_query_string_and_query_object(few):
    a = ipe.simulate(few, NoiseParams(), n_samples=1, queries="count_fallen")
    b = ipe.simulate(few, NoiseParams(), n_samples=1, queries=ipe.Query("count_fallen"))
    assert a.equals(b)
    assert (a["query"] == "count_fallen").all()


# --------------------------------------------------------------------------- summarize


def _manual_summary(t: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (sid, q), g in t.groupby(["stimulus_id", "query"], sort=False):
        v = g["value"].dropna()
        n_valid = len(v)
        sd = v.std(ddof=1) if n_valid > 1 else (0.0 if n_valid == 1 else math.nan)
        rows.append(dict(stimulus_id=sid, query=q, n_samples=len(g), mean=v.mean() if n_valid else math.nan,
                         sd=sd, se=sd / math.sqrt(n_valid) if n_valid else math.nan, n_valid=n_valid))
    return pd.DataFrame(rows)


def test_summarize_matches_manual_groupby(few):
    t = ipe.simulate(few, NOISY, n_samples=N, seed=3, queries=["fall", "falls_left"])
    s = ipe.summarize(t)
    assert list(s.columns) == SUMMARY_COLUMNS
    assert len(s) == len(few) * 2
    expect = _manual_summary(t)
    assert s["stimulus_id"].tolist() == expect["stimulus_id"].tolist()
    assert s["query"].tolist() == expect["query"].tolist()
    assert s["n_samples"].tolist() == [N] * len(s)
    assert s["n_valid"].tolist() == expect["n_valid"].tolist()
    for c in ("mean", "sd", "se"):
        np.testing.assert_allclose(s[c].to_numpy(float), expect[c].to_numpy(float), rtol=1e-12, atol=0,
                                   equal_nan=True, err_msg=c)
    # fall is always defined; falls_left only when something fell
    fall = s[s["query"] == "fall"]
    assert (fall["n_valid"] == N).all()
    for c, v in NOISY.as_dict().items():
        assert (s[c] == v).all()


def test_summarize_se_is_sd_over_sqrt_n(few, serial_table):
    s = ipe.summarize(serial_table)
    np.testing.assert_allclose(s["se"], s["sd"] / np.sqrt(s["n_valid"]))
    assert s["stimulus_id"].tolist() == few.ids


def test_summarize_hand_made_table():
    t = pd.DataFrame({"stimulus_id": ["a"] * 4 + ["b"] * 2 + ["c"],
                      "query": ["q"] * 7,
                      "value": [0.0, 1.0, 1.0, math.nan, 0.5, 0.5, 2.0]})
    s = ipe.summarize(t).set_index("stimulus_id")
    assert s.loc["a", "n_samples"] == 4 and s.loc["a", "n_valid"] == 3
    assert s.loc["a", "mean"] == pytest.approx(2 / 3)
    assert s.loc["a", "sd"] == pytest.approx(np.std([0, 1, 1], ddof=1))
    assert s.loc["a", "se"] == pytest.approx(np.std([0, 1, 1], ddof=1) / math.sqrt(3))
    assert s.loc["b", "sd"] == 0.0 and s.loc["b", "mean"] == 0.5
    # one valid value: sd 0 (not NaN)
    assert s.loc["c", "sd"] == 0.0 and s.loc["c", "se"] == 0.0 and s.loc["c", "mean"] == 2.0


def test_summarize_rejects_bad_tables():
    with pytest.raises(ipe.InputError):
        ipe.summarize(pd.DataFrame({"stimulus_id": ["a"], "value": [1.0]}))
    with pytest.raises(ipe.InputError):
        ipe.summarize(pd.DataFrame({"stimulus_id": [], "query": [], "value": []}))


# --------------------------------------------------------------------------- parameter grids


def test_grid_of_points_gives_rows_for_each_point(few):
    points = iter_points(sigma=(0.0, 0.2), phi=(0.0, 0.1))
    assert len(points) == 4
    t = ipe.simulate(few, points, n_samples=3, seed=5)
    assert len(t) == len(points) * len(few) * 3
    s = ipe.summarize(t)
    assert len(s) == len(points) * len(few)
    got = {tuple(r) for r in s[PARAM_COLUMNS].drop_duplicates().itertuples(index=False)}
    want = {tuple(p.as_dict()[c] for c in PARAM_COLUMNS) for p in points}
    assert got == want
    assert (s.groupby(PARAM_COLUMNS).size() == len(few)).all()
    # rows are in (point, stimulus, sample) order
    first = t.drop_duplicates(PARAM_COLUMNS)[["sigma", "phi"]].values.tolist()
    assert first == [[p.sigma, p.phi] for p in points]


def test_point_results_do_not_depend_on_the_rest_of_the_grid(few):
    p1, p2 = NoiseParams(sigma=0.2), NoiseParams(sigma=0.3, phi=0.05)
    grid = ipe.simulate(few, [p1, p2], n_samples=3, seed=5)
    alone = ipe.simulate(few, p2, n_samples=3, seed=5)
    part = grid[grid["sigma"] == 0.3].reset_index(drop=True)
    assert part.equals(alone)


def test_common_random_numbers(few):
    # mu only acts between materials: the demo towers have one, so mu changes nothing but the seeds.
    a, b = NoiseParams(sigma=0.2), NoiseParams(sigma=0.2, mu=0.5)
    indep = ipe.simulate(few, [a, b], n_samples=4, seed=9)
    crn = ipe.simulate(few, [a, b], n_samples=4, seed=9, common_random_numbers=True)
    va = crn.loc[crn["mu"] == 0, "value"].to_numpy()
    vb = crn.loc[crn["mu"] == 0.5, "value"].to_numpy()
    np.testing.assert_array_equal(va, vb)  # same draws at both points
    ia = indep.loc[indep["mu"] == 0, "value"].to_numpy()
    ib = indep.loc[indep["mu"] == 0.5, "value"].to_numpy()
    assert not np.array_equal(ia, ib)  # independent draws per point
    # with CRN the table is still independent of the number of workers
    crn2 = ipe.simulate(few, [a, b], n_samples=4, seed=9, common_random_numbers=True, workers=2)
    assert crn2.equals(crn)


# --------------------------------------------------------------------------- no noise


def test_no_noise_gives_the_same_answer_for_every_sample(few):
    t = ipe.simulate(few, NoiseParams(), n_samples=5, seed=4, queries=["fall", "count_fallen"])
    per = t.groupby(["stimulus_id", "query"])["value"].nunique(dropna=False)
    assert (per == 1).all()
    s = ipe.summarize(t)
    assert (s["sd"] == 0).all() and (s["se"] == 0).all()
    # and the seed is irrelevant
    t2 = ipe.simulate(few, NoiseParams(), n_samples=5, seed=99, queries=["fall", "count_fallen"])
    np.testing.assert_array_equal(t["value"], t2["value"])


def test_noise_makes_samples_differ(few, serial_table):
    per = serial_table.groupby("stimulus_id")["value"].nunique()
    assert (per > 1).any()


# --------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize("kwargs", [
    dict(n_samples=0),
    dict(n_samples=-3),
    dict(n_samples=2.5),
    dict(n_samples=True),
    dict(backend="threads"),
    dict(backend="dask", scheduler=3),  # dask is a backend now (tests/test_dask_backend.py); a bad scheduler is not
    dict(backend="process", scheduler="tcp://127.0.0.1:9"),
    dict(workers=0),
    dict(seed=-1),
    dict(queries=[]),
    dict(queries="no_such_query"),
])
def test_bad_arguments_raise_input_error(few, kwargs):
    args = dict(n_samples=2)
    args.update(kwargs)
    with pytest.raises(ipe.InputError):
        ipe.simulate(few, NoiseParams(), **args)


def test_empty_grid_and_bad_noise_raise_input_error(few):
    with pytest.raises(ipe.InputError):
        ipe.simulate(few, [], n_samples=2)
    with pytest.raises(ipe.InputError):
        NoiseParams(sigma=-0.1)
    with pytest.raises(ipe.InputError):
        ipe.simulate([], NoiseParams(), n_samples=2)


def test_a_point_given_twice_is_refused(few):
    """Its rollouts would enter summarize twice: n_samples doubled and se understated."""
    from ipe.errors import InputError

    p = NoiseParams(sigma=0.2)
    with pytest.raises(InputError, match=r"the parameter point \(sigma=0.2\) is given twice"):
        ipe.simulate(few, [p, NoiseParams(phi=0.1), NoiseParams(sigma=0.2)], n_samples=2, progress=False)
    with pytest.raises(InputError, match=r"\(no noise\) is given twice"):
        ipe.simulate(few, [NoiseParams(), NoiseParams()], n_samples=2, progress=False)
