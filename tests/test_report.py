"""The judgment comparison (summary.csv, figures, report) and `ipe compare --humans`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import ipe
from ipe.cli import main
from ipe.errors import InputError
from ipe.humans import ResponseScale
from ipe.report import SUMMARY_COLUMNS, compare_judgments, judgment_column, judgment_says_falls, p_falls, write_report


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    stim = ipe.load_demo()
    truth = ipe.IPE.ground_truth(progress=False).predict(stim)
    rng = np.random.default_rng(0)
    nn = truth.set_index("stimulus_id")["mean"]
    rows = []
    for j in range(8):
        for s in stim.ids:
            rows.append((f"p{j}", s, float(np.clip(round(1 + 6 * nn[s] + rng.normal(0, 1.2)), 1, 7))))
    responses = pd.DataFrame(rows, columns=["participant", "stimulus_id", "response"])
    d = tmp_path_factory.mktemp("cmp")
    return stim, truth, responses, d


def test_judgment_helpers(demo):
    s = demo[1]
    assert judgment_says_falls(0.1, s) == 1.0 and judgment_says_falls(0.0, s) == 0.0
    assert np.isnan(judgment_says_falls(float("nan"), s))
    samples = pd.DataFrame({"stimulus_id": [s.id] * 4, "value": [0.0, 0.2, 0.3, float("nan")]})
    assert p_falls(samples, demo)[s.id] == pytest.approx(2 / 3)
    table = pd.DataFrame({"stimulus_id": ["tower_000", "tower_001"], "query": ["fall", "fall"], "mean": [0.1, 0.5]})
    col = judgment_column(table, list(demo)[:3])
    assert col["tower_001"] == 0.5 and np.isnan(col["tower_002"])
    with pytest.raises(InputError, match="unknown stimulus id 'zzz'"):
        judgment_column(pd.DataFrame({"stimulus_id": ["zzz"], "mean": [1.0]}), demo, "m")


def test_compare_judgments_rows_and_scores(setup):
    stim, truth, responses, d = setup
    rng = np.random.default_rng(1)
    noisy = truth.copy()
    noisy["mean"] = np.clip(truth["mean"] + rng.normal(0, 0.3, len(truth)), 0, 1)
    summary, per = compare_judgments(responses, stim, {"CNN": noisy, "video model": truth.iloc[:6]},
                                     scale=ResponseScale("rating", 1, 7), ground_truth=truth,
                                     kinds={"CNN": "baseline", "video model": "video"}, n_boot=300)
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert summary["model"].tolist() == ["no-noise", "CNN", "video model", "humans (noise ceiling)"]
    row = summary.set_index("model")
    assert row.loc["no-noise", "accuracy"] == 1.0
    assert row.loc["no-noise", "r"] > 0.8 and row.loc["no-noise", "r_lo"] < row.loc["no-noise", "r"]
    assert row.loc["video model", "n_stimuli"] == 6
    assert row.loc["CNN", "accuracy"] < 1.0 or row.loc["CNN", "r"] < row.loc["no-noise", "r"]
    assert 0 < row.loc["humans (noise ceiling)", "r"] <= 1
    assert -1 <= row.loc["humans (noise ceiling)", "kappa"] <= 1
    assert len(per) == len(stim) and {"human_mean", "no-noise", "CNN"} <= set(per.columns)
    paths = write_report(d / "report", summary, per, notes=["a note"])
    for key in ("summary", "per_stimulus", "scatter", "bars", "markdown", "html"):
        assert paths[key].exists() and paths[key].stat().st_size > 0
    text = paths["markdown"].read_text()
    assert "| no-noise |" in text and "bars.png" in text and "a note" in text


def test_cli_compare_humans(setup, tmp_path, capsys):
    stim, truth, responses, _ = setup
    s = ipe.save_stimuli(stim, tmp_path / "s.json")
    responses.to_csv(tmp_path / "r.csv", index=False)
    truth.to_csv(tmp_path / "cnn.csv", index=False)
    rc = main(["compare", "--humans", str(tmp_path / "r.csv"), "--stimuli", str(s), "--model",
               f"CNN={tmp_path / 'cnn.csv'}", "--samples", "4", "--out", str(tmp_path / "out")])
    assert rc == 0, capsys.readouterr().err
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert summary["model"].tolist()[:3] == ["no-noise", "IPE (σ=0.2, φ=0.05)", "CNN"]
    assert "feature: com_offset" in set(summary["model"])
    assert (tmp_path / "out" / "report.html").exists()
    capsys.readouterr()
    pd.DataFrame({"stimulus_id": ["nope"], "query": ["fall"], "mean": [1.0]}).to_csv(tmp_path / "bad.csv", index=False)
    (tmp_path / "empty.csv").write_text("")
    base = ["compare", "--humans", str(tmp_path / "r.csv"), "--stimuli", str(s), "--out", str(tmp_path / "o2")]
    cases = [
        (base + ["--model", "CNN"], "NAME=JUDGMENTS.csv"),
        (base + ["--model", f"X={tmp_path / 'missing.csv'}"], "no such file"),
        (base + ["--model", f"X={tmp_path / 'empty.csv'}"], "empty"),
        (base + ["--model", f"X={tmp_path / 'bad.csv'}", "--no-ipe"], "unknown stimulus id 'nope'"),
        (base + ["--fit", str(tmp_path)], "not both"),
        (["compare", "--stimuli", str(s), "--out", str(tmp_path / "o3")], "--fit"),
    ]
    for argv, fragment in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("ipe: error:") and fragment in err[0], (argv, err)


def test_counts_are_normalised_on_the_response_scale_when_stimuli_differ_in_size():
    """People answer counts on one scale (0 to the largest N); the model's counts are mapped on the same one."""
    import dataclasses

    from ipe.humans import scale_for_stimuli
    from ipe.report import normalise_judgment

    small = ipe.generate_towers(1, seed=1, n_blocks=5, query="count_fallen")[0]
    big = ipe.generate_towers(1, seed=1, n_blocks=8, query="count_fallen")[0]
    scale = scale_for_stimuli([small, dataclasses.replace(big, id="big")])
    assert (scale.kind, scale.low, scale.high) == ("count", 0, 8)
    assert normalise_judgment(2.0, small, scale) == pytest.approx(0.25)
    assert normalise_judgment(2.0, big, scale) == pytest.approx(0.25)
    assert normalise_judgment(2.0, small) == pytest.approx(0.4)  # no scale: over its own bodies
    assert normalise_judgment(0.3, ipe.generate_towers(1, seed=1)[0], scale) == 0.3  # `fall` is a proportion
