"""Metrics: Pearson r with a bootstrap CI, Cohen's κ, accuracy, RMSE, the split-half ceiling."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ipe.errors import InputError
from ipe.humans import ResponseScale, split_half_reliability
from ipe.metrics import (
    accuracy,
    binary_responses,
    cohen_kappa,
    human_human_kappa,
    kappa_with_humans,
    normalise_responses,
    pearson,
    pearson_ci,
    rmse,
    split_half_ceiling,
)


def test_pearson_ci_brackets_r_and_is_seeded():
    rng = np.random.default_rng(0)
    x = rng.normal(size=60)
    y = 0.6 * x + rng.normal(size=60)
    a = pearson_ci(x, y, n_boot=500, seed=3)
    assert a["lo"] < a["r"] < a["hi"] and a["n"] == 60
    assert a["r"] == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert pearson_ci(x, y, n_boot=500, seed=3) == a
    assert pearson_ci(x, y, n_boot=500, seed=4) != a
    # a stronger relation gives a narrower interval
    b = pearson_ci(x, x + 0.1 * rng.normal(size=60), n_boot=500)
    assert b["hi"] - b["lo"] < a["hi"] - a["lo"]


def test_pearson_handles_constant_and_nan():
    assert math.isnan(pearson([1, 1, 1, 1], [1, 2, 3, 4]))
    assert math.isnan(pearson_ci([1, 1, 1], [1, 2, 3])["r"])
    assert pearson([1, 2, np.nan, 4, 5], [2, 4, 100, 8, 10]) == pytest.approx(1.0)
    with pytest.raises(InputError):
        pearson_ci([1, 2, 3], [1, 2])


def test_cohen_kappa_known_values():
    # 2x2 table [[20, 5], [10, 15]]: p_o = 0.7, p_e = 0.5 → κ = 0.4
    a = [1] * 25 + [0] * 25
    b = [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(a, a) == 1.0
    assert cohen_kappa([1, 0, 1, 0], [0, 1, 0, 1]) == pytest.approx(-1.0)
    assert cohen_kappa([1, 1, 1], [1, 1, 1]) == 1.0
    assert cohen_kappa([1, 1], [0, 0]) == 0.0  # p_o = p_e = 0
    assert cohen_kappa(["a", "b", None, "a"], ["a", "b", "b", "a"]) == 1.0
    # three categories
    k = cohen_kappa([0, 1, 2, 0, 1, 2], [0, 1, 2, 0, 2, 1])
    assert -1 <= k < 1


def test_accuracy_and_rmse():
    assert accuracy([1, 0, 1, np.nan], [1, 1, 1, 0]) == pytest.approx(2 / 3)
    assert math.isnan(accuracy([np.nan], [1]))
    assert rmse([0, 1, 2], [0, 1, 4]) == pytest.approx(math.sqrt(4 / 3))
    assert rmse([1, np.nan], [2, 5]) == 1.0


def test_split_half_ceiling_is_the_humans_one():
    rng = np.random.default_rng(1)
    truth = rng.uniform(1, 7, 15)
    rows = [(f"p{j}", f"s{i}", float(np.clip(round(truth[i] + rng.normal(0, 1)), 1, 7)))
            for j in range(10) for i in range(15)]
    df = pd.DataFrame(rows, columns=["participant", "stimulus_id", "response"])
    assert split_half_ceiling(df, seed=2) == split_half_reliability(df, seed=2)
    assert split_half_ceiling(df)["r"] > 0.8


def test_binary_responses_and_kappas():
    df = pd.DataFrame({"participant": ["a"] * 4 + ["b"] * 4, "stimulus_id": ["s1", "s2", "s3", "s4"] * 2,
                       "response": [7, 1, 6, 2, 7, 2, 3, 4]})
    hb = binary_responses(df, ResponseScale("rating", 1, 7))
    assert hb["label"].tolist() == [1, 0, 1, 0, 1, 0, 0, 0]  # 4 is the middle: not "falls"
    counts = binary_responses(df.assign(response=[0, 1, 2, 0, 0, 0, 1, 3]), ResponseScale("count", 0, 10))
    assert counts["label"].tolist() == [0, 1, 1, 0, 0, 0, 1, 1]
    model = pd.Series({"s1": 1, "s2": 0, "s3": 1, "s4": 0})
    k = kappa_with_humans(model, hb)
    assert k["n"] == 2 and k["kappa"] == pytest.approx((1.0 + 0.5) / 2)
    hh = human_human_kappa(hb)
    assert hh["n"] == 1 and hh["kappa"] == pytest.approx(0.5)
    assert normalise_responses([1, 4, 7], ResponseScale("rating", 1, 7)).tolist() == [0.0, 0.5, 1.0]


@pytest.mark.parametrize("level", [0.0, 1.0, 1.5, float("nan"), True])
def test_pearson_ci_level_breaks_its_rule_with_one_message(level):
    with pytest.raises(InputError) as exc:
        pearson_ci([1.0, 2.0, 3.0], [1.0, 2.0, 4.0], level=level)
    assert str(exc.value) == f"level must be a finite number in (0, 1), got {level!r}"
