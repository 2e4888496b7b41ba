"""Human response data: schema, loaders, validation, aggregation, synthetic participants, CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import ipe
from ipe.cli import main
from ipe.errors import InputError
from ipe.humans import (RANGES, ResponseScale, aggregate, default_scale, load_jspsych, load_responses,
                        participant_values, scale_for_stimuli, split_half_reliability, synthesize, validate_responses)


@pytest.fixture(scope="module")
def few(demo):
    return list(demo)[:4]


def table(**over):
    df = pd.DataFrame({"participant": ["a", "a", "b", "b"], "stimulus_id": ["tower_000", "tower_001"] * 2,
                       "response": [1.0, 7.0, 2.0, 6.0], "trial_index": [0, 1, 0, 1]})
    for k, v in over.items():
        df[k] = v
    return df


def test_scale_parse_and_defaults(few):
    s = ResponseScale.parse("rating:1-7")
    assert (s.kind, s.low, s.high, s.n_levels, str(s)) == ("rating", 1, 7, 7, "rating:1-7")
    assert ResponseScale.parse("probability:0-100").kind == "probability"
    assert default_scale(few[0]) == ResponseScale("rating", 1, 7)
    assert scale_for_stimuli(few) == ResponseScale("rating", 1, 7)
    with pytest.raises(InputError, match="KIND:LOW-HIGH"):
        ResponseScale.parse("stars:1-5")
    with pytest.raises(InputError, match="low must be < high"):
        ResponseScale.parse("rating:7-1")


def test_csv_and_parquet_roundtrip(tmp_path):
    df = validate_responses(table())
    df.to_csv(tmp_path / "r.csv", index=False)
    df.to_parquet(tmp_path / "r.parquet", index=False)
    for name in ("r.csv", "r.parquet"):
        back = validate_responses(load_responses(tmp_path / name))
        pd.testing.assert_frame_equal(back, df)
    mapped = df.rename(columns={"participant": "worker"})
    mapped.to_csv(tmp_path / "m.csv", index=False)
    assert list(load_responses(tmp_path / "m.csv", mapping={"participant": "worker"})["participant"]) == list(
        df["participant"])


def test_jspsych_export(tmp_path):
    raw = pd.DataFrame({
        "subject": ["x", "x", "x", "y"], "trial_type": ["instructions", "rating", "rating", "rating"],
        "stimulus": [None, "tower_000", "tower_001", "tower_000"], "response": [None, "3", "5", "2"],
        "rt": [1200, 800.5, 900, 700], "trial_index": [0, 1, 2, 1]})
    raw.to_csv(tmp_path / "js.csv", index=False)
    df = validate_responses(load_jspsych(tmp_path / "js.csv"))
    assert len(df) == 3 and list(df["participant"]) == ["x", "x", "y"]
    assert list(df["response"]) == [3.0, 5.0, 2.0]
    raw.rename(columns={"subject": "worker_id"}).to_csv(tmp_path / "js2.csv", index=False)
    assert len(load_jspsych(tmp_path / "js2.csv", mapping={"participant": "worker_id"})) == 3


@pytest.mark.parametrize("mutate,match", [
    (lambda d: d.iloc[0:0], "empty"),
    (lambda d: d.drop(columns=["response"]), "missing required column"),
    (lambda d: d.assign(mood=1), "unknown column"),
    (lambda d: d.assign(response=["1", "x", "2", "3"]), "row 1: response 'x'"),
    (lambda d: d.assign(response=[1.0, np.nan, 2.0, 3.0]), "row 1"),
    (lambda d: d.assign(stimulus_id=["tower_000", "nope", "zzz", "tower_001"]), "2 unknown stimulus id"),
    (lambda d: d.assign(response=[1.0, 9.0, 2.0, 3.0]), "outside the scale rating:1-7"),
    (lambda d: d.assign(response=[1.5, 2.0, 2.0, 3.0]), "not a whole number"),
    (lambda d: d.assign(trial_index=[0, 0, 1, 1], stimulus_id=["tower_000"] * 4), "twice"),
    (lambda d: d.assign(participant=[None, "a", "b", "b"]), "participant is missing"),
])
def test_validation_errors(mutate, match, demo):
    with pytest.raises(InputError, match=match) as err:
        validate_responses(mutate(table()), stimuli=demo, scale=ResponseScale("rating", 1, 7))
    assert "\n" not in str(err.value)


def test_bad_files(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_responses(tmp_path / "missing.csv")
    with pytest.raises(InputError, match="unknown response file type"):
        load_responses(tmp_path / "r.xlsx")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match="empty"):
        load_responses(tmp_path / "empty.csv")


def test_aggregate_numbers():
    agg = aggregate(validate_responses(table())).set_index("stimulus_id")
    assert agg.loc["tower_000", "mean"] == 1.5 and agg.loc["tower_001", "mean"] == 6.5
    assert agg.loc["tower_000", "sd"] == pytest.approx(np.std([1, 2], ddof=1))
    assert agg.loc["tower_000", "se"] == pytest.approx(agg.loc["tower_000", "sd"] / np.sqrt(2))


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
    assert high["r"] > 0.95 and abs(low["r"]) < 0.5
    assert high["q025"] <= high["r"] <= high["q975"]


def test_participant_values_median_is_group_value():
    z = np.random.default_rng(1).standard_normal(20001)
    v = participant_values(0.2, *RANGES["sigma"], 0.3, z)
    assert np.median(v) == pytest.approx(0.2, abs=0.005)
    assert v.min() > 0 and v.max() < 1 and v.std() > 0.02


def test_synthesize_is_deterministic_and_worker_independent(few):
    a, pa = synthesize(few, 3, 0.2, 0.2, seed=4)
    b, pb = synthesize(few, 3, 0.2, 0.2, seed=4, workers=2)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(pa, pb)
    c, _ = synthesize(few, 3, 0.2, 0.2, seed=5)
    assert not a.equals(c)
    clean = validate_responses(a, stimuli=few, scale=ResponseScale("rating", 1, 7))
    assert set(clean["response"]) <= set(range(1, 8))
    assert sorted(a[a.participant == a.participant.iloc[0]]["trial_index"]) == list(range(len(few)))


def test_synthetic_ratings_follow_the_ipe(demo):
    responses, _ = synthesize(demo, 6, 0.2, 0.1, seed=2, participant_sd=0.1)
    human = aggregate(responses).set_index("stimulus_id")["mean"]
    model = ipe.IPE(sigma=0.2, phi=0.1, n_samples=30, seed=9).predict(demo).set_index("stimulus_id")["mean"]
    assert np.corrcoef(human.loc[model.index], model)[0, 1] > 0.7


def test_synthesize_scales(few):
    r, _ = synthesize(few, 2, 0.2, 0.2, scale=ResponseScale("probability", 0, 100), seed=1)
    assert r["response"].between(0, 100).all()
    with pytest.raises(InputError, match="strictly inside"):
        synthesize(few, 2, 0.0, 0.2)


def test_cli_synthesize_and_summary(few, tmp_path, capsys):
    path = ipe.save_stimuli(few, tmp_path / "s.json")
    rc = main(["humans", "synthesize", str(path), "-p", "3", "--seed", "1", "--out", str(tmp_path / "r.csv"),
               "--truth", str(tmp_path / "t.csv")])
    assert rc == 0
    df = validate_responses(load_responses(tmp_path / "r.csv"), stimuli=few)
    assert df["participant"].nunique() == 3 and (tmp_path / "t.csv").exists()
    capsys.readouterr()
    assert main(["humans", "summary", str(tmp_path / "r.csv"), "--stimuli", str(path)]) == 0
    assert "split-half reliability" in capsys.readouterr().out


@pytest.mark.parametrize("argv,fragment", [
    (["humans", "synthesize", "{s}", "--sigma", "0", "--out", "{t}/r.csv"], "strictly inside"),
    (["humans", "synthesize", "{s}", "--scale", "stars:1-5", "--out", "{t}/r.csv"], "KIND:LOW-HIGH"),
    (["humans", "synthesize", "{s}", "--samples-per-judgment", "7-3", "--out", "{t}/r.csv"], "1 <= A <= B"),
    (["humans", "summary", "{t}/missing.csv"], "no such file"),
    (["humans", "summary", "{t}/bad.csv"], "unknown column"),
    (["fit", "{t}/bad.csv", "--stimuli", "{s}", "--out", "{t}/fit"], "unknown column"),
    (["fit", "{t}/good.csv", "--stimuli", "{s}", "--out", "{t}/fit", "--free", "gamma"], "--free"),
    (["fit", "{t}/good.csv", "--stimuli", "{s}", "--out", "{t}/fit", "--grid", "sigma=a,b"], "numbers"),
    (["fit", "{t}/good.csv", "--stimuli", "{s}", "--out", "{t}/fit", "--scale", "rating:1-3"], "outside"),
    (["compare", "{t}/good.csv", "--stimuli", "{s}", "--fit", "{t}", "--out", "{t}/c.csv"], "params.json"),
    (["predict", "{s}", "--params", "{t}/missing.json", "--out", "{t}/p.csv"], "missing.json"),
])
def test_cli_bad_input_one_line_exit_2(argv, fragment, few, tmp_path, capsys):
    s = ipe.save_stimuli(few, tmp_path / "s.json")
    pd.DataFrame({"participant": ["a"], "stimulus_id": ["tower_000"], "response": [3], "mood": [1]}).to_csv(
        tmp_path / "bad.csv", index=False)
    pd.DataFrame({"participant": ["a", "b"], "stimulus_id": ["tower_000"] * 2, "response": [5, 6]}).to_csv(
        tmp_path / "good.csv", index=False)
    rc = main([a.format(s=s, t=tmp_path) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2, err
    assert len(err) == 1 and err[0].startswith("ipe: error:") and fragment in err[0], err
