"""Fair comparisons in `ipe compare`: matched binarisation, AUC, error consistency, bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import ipe
from ipe.agreement import bootstrap_scores, matched_labels, paired_differences
from ipe.humans import ResponseScale, synthesize
from ipe.report import compare_judgments, write_report

SIGMA, PHI = 0.2, 0.05


@pytest.fixture(scope="module")
def study():
    """Synthetic participants who run the IPE (σ 0.2, φ 0.05) on the demo towers, and the models to compare."""
    stim = ipe.load_demo()
    responses, _ = synthesize(stim, 8, sigma=SIGMA, phi=PHI, seed=1, participant_sd=0.0, samples_per_judgment=(3, 5),
                              progress=False)
    truth = ipe.IPE.ground_truth(progress=False).predict(stim)
    gen = ipe.IPE(sigma=SIGMA, phi=PHI, n_samples=40, seed=1, progress=False).predict(stim)
    rng = np.random.default_rng(3)
    cnn = truth.copy()  # a confident classifier: the no-noise answer, blurred, as a probability-like value
    cnn["mean"] = np.clip(truth["mean"] + rng.normal(0, 0.15, len(truth)), 0, 1)
    cnn = cnn.drop(columns=[c for c in ("p_falls",) if c in cnn.columns])
    return stim, responses, truth, {"IPE (generating)": gen, "CNN": cnn}


def test_generating_ipe_has_the_highest_matched_kappa(study, tmp_path):
    stim, responses, truth, models = study
    summary, per = compare_judgments(responses, stim, models, ground_truth=truth, n_boot=300, seed=0)
    row = summary.set_index("model")
    others = [m for m in row.index if m not in ("IPE (generating)", "humans (noise ceiling)")]
    assert others == ["no-noise", "CNN"]
    k = row["kappa_matched"]
    assert k["IPE (generating)"] >= max(k[m] for m in others), row[["kappa", "kappa_matched"]]
    # every model number has its bootstrap interval, and it brackets the number
    for m in ["IPE (generating)", *others]:
        for s in ("kappa_matched", "auc", "error_consistency", "accuracy_matched", "r"):
            lo, hi = row.loc[m, f"{s}_lo"], row.loc[m, f"{s}_hi"]
            assert lo <= row.loc[m, s] <= hi, (m, s)
    # model-human kappa beside human-human kappa, with its interval
    h = row.loc["humans (noise ceiling)"]
    assert h["kappa_matched"] == h["kappa"] and h["kappa_matched_lo"] <= h["kappa"] <= h["kappa_matched_hi"]
    # paired differences, scatter plot and report files
    diffs = summary.attrs["differences"]
    d = diffs[(diffs["score"] == "kappa_matched") & (diffs["model_a"] == "no-noise")
              & (diffs["model_b"] == "IPE (generating)")].iloc[0]
    assert d["lo"] <= d["diff"] <= d["hi"]
    assert "IPE (generating): says falls" in per.columns and "humans_say_falls" in per.columns
    paths = write_report(tmp_path, summary, per)
    assert paths["differences"].exists() and paths["scatter"].stat().st_size > 0
    assert "kappa_matched" in paths["markdown"].read_text()
    assert pd.read_csv(paths["summary"])["kappa_matched"].notna().sum() == len(summary)


def test_matched_labels_use_the_peoples_rule():
    rating = ResponseScale("rating", 1, 7)
    assert matched_labels([0.4, 0.5, 0.51, np.nan], rating)[:3].tolist() == [0.0, 0.0, 1.0]
    assert np.isnan(matched_labels([np.nan], rating)[0])
    count = ResponseScale("count", 0, 10)
    assert matched_labels([0.04, 0.05], count).tolist() == [0.0, 1.0]
    prob = ResponseScale("probability", 0, 100)
    assert matched_labels([0.5, 0.49], prob).tolist() == [1.0, 0.0]


def test_scores_on_a_known_case():
    """A model equal to every participant: κ 1, AUC 1; its opposite: κ -1, AUC 0; seeded intervals."""
    H = np.array([[1, 0, 1, 0, 1, 0], [1, 0, 1, 0, 1, 0]], dtype=float)
    gt = np.array([1, 0, 1, 0, 0, 1], dtype=float)
    scale = ResponseScale("rating", 1, 7)
    same = bootstrap_scores([0.9, 0.1, 0.8, 0.2, 0.7, 0.3], H, gt, scale, n_boot=200)
    assert same["kappa_matched"] == 1.0 and same["auc"] == 1.0 and same["error_consistency"] == 1.0
    opp = bootstrap_scores([0.1, 0.9, 0.2, 0.8, 0.3, 0.7], H, gt, scale, n_boot=200)
    assert opp["kappa_matched"] == -1.0 and opp["auc"] == 0.0
    again = bootstrap_scores([0.1, 0.9, 0.2, 0.8, 0.3, 0.7], H, gt, scale, n_boot=200)
    assert again == opp
    d = paired_differences({"a": [0.9, 0.1, 0.8, 0.2, 0.7, 0.3], "b": [0.1, 0.9, 0.2, 0.8, 0.3, 0.7]}, H, gt, scale,
                           n_boot=200)
    k = d[d["score"] == "kappa_matched"].iloc[0]
    assert k["diff"] == 2.0 and k["p_a_better"] == 1.0
