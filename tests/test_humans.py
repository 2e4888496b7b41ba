"""Human response data: schema, loaders, validation, aggregation, synthetic participants, CLI."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import ipe
from ipe.cli import main
from ipe.errors import InputError
from ipe.humans import (OPTIONAL_COLUMNS, RANGES, RESPONSE_COLUMNS, ResponseScale, aggregate, default_scale,
                        load_jspsych, load_responses, n_countable, participant_values, scale_for_stimuli,
                        split_half_reliability, synthesize, validate_responses)
from ipe.noise import NoiseParams
from ipe.scene import Intervention, Query


@pytest.fixture(scope="module")
def few(demo):
    return list(demo)[:4]


def table(**over):
    df = pd.DataFrame({"participant": ["a", "a", "b", "b"], "stimulus_id": ["tower_000", "tower_001"] * 2,
                       "response": [1.0, 7.0, 2.0, 6.0], "trial_index": [0, 1, 0, 1]})
    for k, v in over.items():
        df[k] = v
    return df


# --------------------------------------------------------------------------- scales


def test_scale_parse():
    s = ResponseScale.parse("rating:1-7")
    assert (s.kind, s.low, s.high, s.n_levels, str(s)) == ("rating", 1, 7, 7, "rating:1-7")
    assert ResponseScale.parse("count:0-19").n_levels == 20
    assert ResponseScale.parse(" probability : 0 - 100 ") == ResponseScale("probability", 0, 100)
    with pytest.raises(InputError, match="KIND:LOW-HIGH"):
        ResponseScale.parse("stars:1-5")
    with pytest.raises(InputError, match="low must be < high"):
        ResponseScale.parse("rating:7-1")
    with pytest.raises(InputError, match="kind must be one of"):
        ResponseScale("likert", 1, 7)


def test_default_scales(few):
    tower = few[0]
    assert default_scale(tower) == ResponseScale("rating", 1, 7)
    assert scale_for_stimuli(few) == ResponseScale("rating", 1, 7)
    counting = replace(tower, query=Query("count_fallen"))
    assert default_scale(counting) == ResponseScale("count", 0, 10)
    removed = replace(counting, id="removed", interventions=(Intervention("remove", 0.5, ("b0", "b1")),))
    assert n_countable(removed) == 8 and default_scale(removed) == ResponseScale("count", 0, 8)
    listed = replace(tower, id="listed", query=Query("off_table", {"level": 0.0, "bodies": ["b0", "b1", "b2"]}))
    assert default_scale(listed) == ResponseScale("count", 0, 3)
    assert scale_for_stimuli([removed, counting]) == ResponseScale("count", 0, 10)  # the largest N
    for name, params in (("body_falls", {"body": "b0"}), ("falls_left", {})):
        assert default_scale(replace(tower, query=Query(name, params))) == ResponseScale("probability", 0, 100)
    with pytest.raises(InputError, match="no default response scale for query 'distance'.*--scale"):
        default_scale(replace(tower, query=Query("distance")))
    with pytest.raises(InputError, match=r"different scales \(count, rating\)"):
        scale_for_stimuli([few[1], counting])


# --------------------------------------------------------------------------- files


def test_csv_and_parquet_roundtrip(tmp_path):
    df = validate_responses(table(participant=["007", "007", "b", "b"], rt=[812.5, 640.0, np.nan, 700.0],
                                  condition=["heavy", "heavy", "light", None],
                                  stimulus_set=["0012345678901234"] * 4))  # digits only: stays text
    assert list(df.columns) == list(RESPONSE_COLUMNS + OPTIONAL_COLUMNS)
    df.to_csv(tmp_path / "r.csv", index=False)
    df.to_parquet(tmp_path / "r.parquet", index=False)
    for name in ("r.csv", "r.parquet"):
        back = validate_responses(load_responses(tmp_path / name))
        pd.testing.assert_frame_equal(back, df)
    assert back["participant"].iloc[0] == "007"
    df.to_csv(tmp_path / "r.txt", index=False)
    pd.testing.assert_frame_equal(validate_responses(load_responses(tmp_path / "r.txt", fmt="csv")), df)
    mapped = df.rename(columns={"participant": "worker"})
    mapped.to_csv(tmp_path / "m.csv", index=False)
    assert list(load_responses(tmp_path / "m.csv", mapping={"participant": "worker"})["participant"]) == list(
        df["participant"])


def test_jspsych_export(tmp_path):
    raw = pd.DataFrame({
        "run_id": ["01", "01", "01", "01", "02"],
        "trial_type": ["instructions", "html-slider-response", "html-slider-response", "survey-likert",
                       "html-slider-response"],
        "stimulus": [None, "tower_000", "tower_001", "tower_002", "tower_000"],
        "response": [None, "3", "5", '{"Q0":4}', "2"],
        "rt": [1200, 800.5, 900, 1000, 700], "trial_index": [0, 1, 2, 3, 1],
        "time_elapsed": [1200, 2000, 2900, 3900, 900]})
    raw.to_csv(tmp_path / "js.csv", index=False)
    df = validate_responses(load_jspsych(tmp_path / "js.csv"))
    assert list(df["participant"]) == ["01", "01", "01", "02"]  # text ids keep their zeros
    assert list(df["response"]) == [3.0, 5.0, 4.0, 2.0]
    assert list(df["rt"]) == [800.5, 900.0, 1000.0, 700.0] and list(df["trial_index"]) == [1, 2, 3, 1]
    raw.rename(columns={"run_id": "worker_id", "stimulus": "tower"}).to_csv(tmp_path / "js2.csv", index=False)
    df2 = load_jspsych(tmp_path / "js2.csv", mapping={"participant": "worker_id", "stimulus_id": "tower"})
    assert len(df2) == 4 and set(df2.columns) == {"participant", "stimulus_id", "response", "rt", "trial_index"}
    with pytest.raises(InputError, match="js2.csv: no column for participant"):
        load_jspsych(tmp_path / "js2.csv", mapping={"stimulus_id": "tower"})
    with pytest.raises(InputError, match="mapped column 'nope'"):
        load_jspsych(tmp_path / "js2.csv", mapping={"participant": "nope", "stimulus_id": "tower"})


def test_bad_files(tmp_path):
    with pytest.raises(InputError, match="missing.csv: no such file"):
        load_responses(tmp_path / "missing.csv")
    with pytest.raises(InputError, match="unknown response file type 'xlsx'"):
        load_responses(tmp_path / "r.xlsx")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match="empty.csv: the file is empty"):
        load_responses(tmp_path / "empty.csv")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match="bad.parquet: cannot read responses") as err:
        load_responses(tmp_path / "bad.parquet")
    assert "\n" not in str(err.value)
    (tmp_path / "ok.csv").write_text("participant,stimulus_id,response\na,t,1\n")
    with pytest.raises(InputError, match="mapping names unknown schema column"):
        load_responses(tmp_path / "ok.csv", mapping={"subject": "participant"})
    with pytest.raises(InputError, match="not in the file: worker"):
        load_responses(tmp_path / "ok.csv", mapping={"participant": "worker"})
    with pytest.raises(InputError, match="no judgment trials"):
        (tmp_path / "instr.csv").write_text("subject,stimulus,response\nx,,\n")
        load_jspsych(tmp_path / "instr.csv")


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("mutate,match", [
    (lambda d: d.iloc[0:0], "the table is empty"),
    (lambda d: pd.DataFrame(), "the table is empty"),
    (lambda d: d.drop(columns=["response", "participant"]),
     r"missing required column.s. participant, response \(the file has: stimulus_id, trial_index\); .*map them: "
     r"--column participant=subject --column response=rating$"),
    (lambda d: d.rename(columns={"participant": "Subject"}), r"map them: --column participant=Subject$"),
    (lambda d: d.assign(mood=1, rtt=2), r"unknown column\(s\) mood, rtt;"),
    (lambda d: d.assign(response=["1", "x", "2", "3"]), "row 3: response 'x' is not a finite number"),
    (lambda d: d.assign(response=[1.0, 2.0, np.nan, 3.0]), "row 4: response NaN is not a finite number"),
    (lambda d: d.assign(stimulus_id=["tower_000", "nope", "zzz", "tower_001"]),
     "2 unknown stimulus id.s. .*'nope', 'zzz'$"),
    (lambda d: d.assign(stimulus_id=["a", "b", "c", "d"]), "4 unknown stimulus id.s. .*'a', 'b', 'c' and 1 more$"),
    (lambda d: d.assign(response=[1.0, 9.0, 2.0, 3.0]), "row 3: response 9 is outside the scale rating:1-7"),
    (lambda d: d.assign(response=[1.0, 2.0, 2.5, 3.0]), "row 4: response 2.5 is not a whole number .rating."),
    (lambda d: d.assign(trial_index=[0, 0, 1, 1], stimulus_id=["tower_000"] * 4),
     "row 3: participant 'a' answered stimulus 'tower_000' twice at trial_index 0"),
    (lambda d: d.assign(trial_index=[0, 1.5, 2, 3]), "row 3: trial_index 1.5 is not an integer"),
    (lambda d: d.assign(participant=["a", None, "b", "b"]), "row 3: participant is missing"),
])
def test_validation_errors(mutate, match, demo):
    with pytest.raises(InputError, match=match) as err:
        validate_responses(mutate(table()), stimuli=demo, scale=ResponseScale("rating", 1, 7), where="r.csv")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("r.csv: ")


def test_validation_normalises(demo):
    messy = pd.DataFrame({"condition": ["x", "y"], "response": ["3", 4], "stimulus_id": ["tower_000", "tower_001"],
                          "participant": [7, 7], "trial_index": [1.0, 0.0]}, index=[5, 9])
    out = validate_responses(messy, stimuli=demo, scale=ResponseScale.parse("probability:0-100"))
    assert list(out.columns) == ["participant", "stimulus_id", "response", "trial_index", "condition"]
    assert list(out.index) == [0, 1] and list(out["participant"]) == ["7", "7"]
    assert out["response"].dtype == float and out["trial_index"].dtype == np.int64
    assert list(messy["response"]) == ["3", 4]  # the input is not modified


# --------------------------------------------------------------------------- aggregation


def test_aggregate_numbers():
    agg = aggregate(validate_responses(table()))
    assert list(agg.columns) == ["stimulus_id", "n", "mean", "sd", "se"]
    agg = agg.set_index("stimulus_id")
    assert agg.loc["tower_000", "n"] == 2
    assert agg.loc["tower_000", "mean"] == 1.5 and agg.loc["tower_001", "mean"] == 6.5
    assert agg.loc["tower_000", "sd"] == pytest.approx(np.std([1, 2], ddof=1))
    assert agg.loc["tower_000", "se"] == pytest.approx(np.std([1, 2], ddof=1) / np.sqrt(2))


def test_split_half_reliability_tracks_agreement():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=30)
    agree, noise = [], []
    for j in range(20):
        for i in range(30):
            agree.append((f"p{j}", f"s{i}", truth[i] + rng.normal(0, 0.3)))
            noise.append((f"p{j}", f"s{i}", rng.normal()))
    cols = ["participant", "stimulus_id", "response"]
    high = split_half_reliability(pd.DataFrame(agree, columns=cols))
    low = split_half_reliability(pd.DataFrame(noise, columns=cols))
    assert high["r"] > 0.95 and abs(low["r"]) < 0.3
    assert high["q025"] <= high["r"] <= high["q975"] <= 1
    assert high["n_participants"] == 20 and high["n_splits"] == 100
    assert split_half_reliability(pd.DataFrame(agree, columns=cols), seed=3)["r"] == pytest.approx(high["r"], abs=0.01)
    with pytest.raises(InputError, match="at least two participants"):
        split_half_reliability(pd.DataFrame(agree[:30], columns=cols))


def test_split_half_reliability_of_disagreeing_halves_stays_a_correlation():
    """Two participants who answer in opposite orders: the corrected r is -1 and every split in [-1, 1]."""
    cols = ["participant", "stimulus_id", "response"]
    rows = [("a", f"s{i}", i) for i in range(5)] + [("b", f"s{i}", 4 - i) for i in range(5)]
    out = split_half_reliability(pd.DataFrame(rows, columns=cols))
    assert out["r"] == pytest.approx(-1.0)
    # two participants split only one way: no range over splits, rather than a zero-width one
    assert out["n_distinct"] == 1 and np.isnan(out["q025"]) and np.isnan(out["q975"])
    # mild disagreement: r = -0.5 between the halves becomes 2r / (1 + |r|) = -2/3, not 2r / (1 + r) = -2
    b = [2, 3, 4, 0, 1]  # Pearson r with 0..4 is -0.5
    rows = [("a", f"s{i}", i) for i in range(5)] + [("b", f"s{i}", b[i]) for i in range(5)]
    assert split_half_reliability(pd.DataFrame(rows, columns=cols))["r"] == pytest.approx(-2 / 3)


# --------------------------------------------------------------------------- synthetic participants


def test_participant_values_median_is_group_value():
    z = np.random.default_rng(1).standard_normal(20001)
    v = participant_values(0.2, *RANGES["sigma"], 0.3, z)
    assert np.median(v) == pytest.approx(0.2, abs=0.005)
    assert v.min() > 0 and v.max() < 1 and v.std() > 0.02
    lo, hi = 0.5, 2.0  # the formula, on a range other than 0-1
    u = np.log((1.2 - lo) / (hi - 1.2)) + 0.5 * z[:3]
    assert participant_values(1.2, lo, hi, 0.5, z[:3]) == pytest.approx(lo + (hi - lo) / (1 + np.exp(-u)))
    assert participant_values(0.3, 0.0, 1.0, 0.0, z[:3]) == pytest.approx([0.3] * 3)


def test_synthesize_is_deterministic_and_worker_independent(few):
    a, pa = synthesize(few, 3, 0.2, 0.2, seed=4)
    b, pb = synthesize(few, 3, 0.2, 0.2, seed=4, workers=2)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(pa, pb)
    c, pc = synthesize(few, 3, 0.2, 0.2, seed=5)
    assert not pa.equals(pc)
    assert list(a.columns) == ["participant", "stimulus_id", "response", "trial_index", "condition"]
    assert list(pa.columns) == ["participant", "sigma", "phi", "mu"] and (pa["mu"] == 0).all()
    clean = validate_responses(a, stimuli=few, scale=ResponseScale("rating", 1, 7))
    pd.testing.assert_frame_equal(clean, a)
    assert set(clean["response"]) <= set(range(1, 8)) and (clean["condition"] == "synthetic").all()
    for _, g in a.groupby("participant"):
        assert sorted(g["trial_index"]) == list(range(len(few))) and sorted(g["stimulus_id"]) == [s.id for s in few]
    orders = {tuple(g.sort_values("trial_index")["stimulus_id"]) for _, g in a.groupby("participant")}
    assert len(orders) > 1  # random orders
    mu_free, pm = synthesize(few, 3, 0.2, 0.2, mu=0.3, seed=4, free=("sigma", "phi", "mu"))
    pd.testing.assert_frame_equal(pm[["sigma", "phi"]], pa[["sigma", "phi"]])  # named streams
    assert pm["mu"].nunique() == 3


def test_synthesize_uses_the_first_k_rollouts_of_one_simulate_call(few):
    """The documented process, reproduced from ipe.simulate: k fixed at 4, no response noise, probability scale."""
    prob = ResponseScale("probability", 0, 100)
    r, truth = synthesize(few, 2, 0.3, 0.3, scale=prob, seed=8, samples_per_judgment=(4, 4), response_sd=0.0)
    points = [NoiseParams(sigma=s, phi=p) for s, p in zip(truth["sigma"], truth["phi"])]
    sims = ipe.simulate(few, points, n_samples=4, seed=8)
    expect = sims.groupby(["sigma", "stimulus_id"])["value"].mean()
    for j, pid in enumerate(truth["participant"]):
        got = r[r.participant == pid].set_index("stimulus_id")["response"]
        for s in few:
            assert got[s.id] == np.clip(np.round(100 * expect[(points[j].sigma, s.id)]), 0, 100)
    # participants at the same point (participant_sd = 0) still run their own simulations
    r0, t0 = synthesize(few[:2], 2, 0.3, 0.3, scale=prob, seed=8, participant_sd=0.0, samples_per_judgment=(3, 3),
                        response_sd=0.0)
    assert t0["sigma"].nunique() == 1
    sims0 = ipe.simulate(few[:2], NoiseParams(sigma=0.3, phi=0.3), n_samples=6, seed=8)
    for j, pid in enumerate(t0["participant"]):
        got = r0[r0.participant == pid].set_index("stimulus_id")["response"]
        block = sims0[sims0["sample"].between(3 * j, 3 * j + 2)].groupby("stimulus_id")["value"].mean()
        assert list(got[block.index]) == list(np.round(100 * block))


def test_synthetic_ratings_follow_the_ipe(demo):
    responses, truth = synthesize(demo, 6, 0.2, 0.1, seed=2, participant_sd=0.1)
    assert responses["response"].isin(range(1, 8)).all()
    human = aggregate(responses).set_index("stimulus_id")["mean"]
    model = ipe.IPE(sigma=0.2, phi=0.1, n_samples=20, seed=9).predict(demo).set_index("stimulus_id")["mean"]
    assert np.corrcoef(human.loc[model.index], model)[0, 1] > 0.7


def test_synthesize_counts_and_probabilities(few):
    counting = [replace(s, query=Query("count_fallen")) for s in few[:2]]
    r, _ = synthesize(counting, 2, 0.2, 0.2, seed=1, samples_per_judgment=(3, 3))
    validate_responses(r, stimuli=counting, scale=ResponseScale("count", 0, 10))
    assert r["response"].max() > 1  # counts, not fractions
    r, _ = synthesize(few[:2], 2, 0.2, 0.2, scale=ResponseScale("probability", 0, 100), seed=1,
                      samples_per_judgment=(3, 3))
    assert r["response"].between(0, 100).all() and (r["response"] == r["response"].round()).all()


@pytest.mark.parametrize("kwargs,match", [
    (dict(sigma=0.0), r"group sigma must lie strictly inside \(0, 1\)"),
    (dict(phi=1.0), "group phi must lie strictly inside"),
    (dict(free=("sigma", "gamma")), "unknown free parameter 'gamma'"),
    (dict(samples_per_judgment=(7, 3)), "1 <= a <= b"),
    (dict(seed=-1), "seed must be a non-negative integer, got -1"),
    (dict(n_participants=0), "n_participants must be a positive integer, got 0"),
    (dict(n_participants=True), "n_participants must be a positive integer, got True"),
    (dict(response_sd=-0.1), "response_sd must be a finite number >= 0 or None, got -0.1"),
    (dict(participant_sd=float("nan")), "participant_sd must be a finite number >= 0, got nan"),
    (dict(sigma=-1.0), "sigma must be a finite number >= 0, got -1.0"),
])
def test_synthesize_bad_input(kwargs, match, few):
    args = dict(n_participants=2, sigma=0.2, phi=0.2)
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        synthesize(few, **args)


# --------------------------------------------------------------------------- command line


def test_cli_synthesize_and_summary(few, tmp_path, capsys):
    path = ipe.save_stimuli(few, tmp_path / "s.json")
    rc = main(["humans", "synthesize", str(path), "-p", "3", "--sigma", "0.2", "--phi", "0.2", "--seed", "1",
               "--samples-per-judgment", "3", "--out", str(tmp_path / "r.csv"), "--truth", str(tmp_path / "t.csv")])
    assert rc == 0
    df = validate_responses(load_responses(tmp_path / "r.csv"), stimuli=few, scale=ResponseScale("rating", 1, 7))
    assert df["participant"].nunique() == 3 and len(df) == 12
    assert list(pd.read_csv(tmp_path / "t.csv").columns) == ["participant", "sigma", "phi", "mu"]
    direct, _ = synthesize(few, 3, 0.2, 0.2, seed=1, samples_per_judgment=(3, 3))
    pd.testing.assert_frame_equal(df, direct)
    capsys.readouterr()
    assert main(["humans", "summary", str(tmp_path / "r.csv"), "--stimuli", str(path)]) == 0
    out = capsys.readouterr().out
    assert "scale: rating:1-7" in out and "noise ceiling (split-half r of the human means)" in out and "tower_003" in out
    df.rename(columns={"participant": "worker"}).to_csv(tmp_path / "w.csv", index=False)
    assert main(["humans", "summary", str(tmp_path / "w.csv"), "--column", "participant=worker",
                 "--out", str(tmp_path / "agg.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "agg.csv")) == 4


@pytest.mark.parametrize("argv,fragment", [
    (["humans", "synthesize", "{s}", "-p", "2", "--sigma", "0", "--phi", ".2", "--seed", "1", "--out", "{t}/r.csv"],
     "strictly inside"),
    (["humans", "synthesize", "{s}", "-p", "2", "--sigma", ".2", "--phi", ".2", "--seed", "1", "--scale", "stars:1-5",
      "--out", "{t}/r.csv"], "KIND:LOW-HIGH"),
    (["humans", "synthesize", "{s}", "-p", "2", "--sigma", ".2", "--phi", ".2", "--seed", "1",
      "--samples-per-judgment", "7-3", "--out", "{t}/r.csv"], "1 <= A <= B"),
    (["humans", "synthesize", "{s}", "-p", "2", "--phi", ".2", "--seed", "1", "--out", "{t}/r.csv"], "--sigma"),
    (["humans", "synthesize", "{t}/missing.json", "-p", "2", "--sigma", ".2", "--phi", ".2", "--seed", "1",
      "--out", "{t}/r.csv"], "missing.json"),
    (["humans", "summary", "{t}/missing.csv"], "no such file"),
    (["humans", "summary", "{t}/bad.csv"], "unknown column(s) mood"),
    (["humans", "summary", "{t}/good.csv", "--stimuli", "{s}", "--scale", "rating:1-3"], "outside the scale"),
    (["humans", "summary", "{t}/high.csv", "--stimuli", "{s}"], "pass --scale"),
    (["humans", "summary", "{t}/good.csv", "--column", "participant"], "COLUMN=NAME"),
    (["humans", "summary", "{t}/good.csv", "--column", "subject=participant"], "unknown schema column"),
    # the other commands that read response tables
    (["fit", "{t}/bad.csv", "--stimuli", "{s}", "--out", "{t}/fit"], "unknown column"),
    (["fit", "{t}/good.csv", "--stimuli", "{s}", "--out", "{t}/fit", "--free", "gamma"], "--free"),
    (["fit", "{t}/good.csv", "--stimuli", "{s}", "--out", "{t}/fit", "--grid", "sigma=a,b"], "numbers"),
    (["fit", "{t}/good.csv", "--stimuli", "{s}", "--out", "{t}/fit", "--scale", "rating:1-3"], "outside"),
    (["fit", "{t}/good.csv", "--stimuli", "{s}", "--out", "{t}/fit", "--sims", "0.5"], "--sims"),
    (["fit", "{t}/good.csv", "--stimuli", "{s}", "--out", "{t}/fit", "--sims", "many"], "--sims"),
    (["compare", "{t}/good.csv", "--stimuli", "{s}", "--fit", "{t}", "--out", "{t}/c.csv"], "params.json"),
])
def test_cli_bad_input_one_line_exit_2(argv, fragment, few, tmp_path, capsys):
    s = ipe.save_stimuli(few, tmp_path / "s.json")
    pd.DataFrame({"participant": ["a"], "stimulus_id": ["tower_000"], "response": [3], "mood": [1]}).to_csv(
        tmp_path / "bad.csv", index=False)
    pd.DataFrame({"participant": ["a", "b"], "stimulus_id": ["tower_000"] * 2, "response": [5, 6]}).to_csv(
        tmp_path / "good.csv", index=False)
    pd.DataFrame({"participant": ["a", "b"], "stimulus_id": ["tower_000"] * 2, "response": [5, 60]}).to_csv(
        tmp_path / "high.csv", index=False)
    rc = main([a.format(s=s, t=tmp_path) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2, err
    assert len(err) == 1 and err[0].startswith("ipe: error:") and fragment in err[0], err


def test_docs_examples(tmp_path, demo):
    """The CSV examples in docs/data-format.md read as the page says."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "data-format.md").read_text(encoding="utf-8")
    csvs = re.findall(r"^```csv\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    export = next(i for i, c in enumerate(csvs) if c.startswith("run_id,"))
    (tmp_path / "export.csv").write_text(csvs[export])
    (tmp_path / "expected.csv").write_text(csvs[export + 1])
    got = validate_responses(load_jspsych(tmp_path / "export.csv"))
    pd.testing.assert_frame_equal(got, validate_responses(load_responses(tmp_path / "expected.csv")))
    for c in csvs[:export]:
        (tmp_path / "t.csv").write_text(c)
        validate_responses(load_responses(tmp_path / "t.csv"))


def test_jspsych_errors_name_the_files_row(tmp_path, demo):
    """Rows dropped on reading (instructions, fixation) do not shift the row an error names."""
    from ipe.humans import load_jspsych

    p = tmp_path / "js.csv"
    p.write_text("subject,stimulus,response,rt\n"
                 "a,,,\n"                       # row 2: instructions
                 "a,tower_000,3,800\n"          # row 3
                 "a,,,\n"                       # row 4: fixation
                 "a,tower_001,9,700\n")         # row 5: off the scale
    df = load_jspsych(p)
    with pytest.raises(InputError, match=r"js\.csv: row 5: response 9 is outside the scale rating:1-7"):
        validate_responses(df, stimuli=demo, scale=ResponseScale("rating", 1, 7), where=str(p))


def test_every_motion_noise_field_has_a_range_for_synthetic_participants():
    """Each motion-noise field (the Plinko family included) can be free in ``humans synthesize`` and the fitter."""
    from ipe.humans import RANGES
    from ipe.noise import MOTION_FIELDS

    missing = [f for f in MOTION_FIELDS if f not in RANGES]
    assert not missing, missing
    assert all(0.0 <= lo < hi for lo, hi in RANGES.values())
