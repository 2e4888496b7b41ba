"""Model comparison: k-fold held-out scores, LOO/WAIC for every model, the noise ceiling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from ipe.baselines import FEATURES, baseline_table, feature_table, minmax, pearson
from ipe.humans import ResponseScale
from ipe.inference import HierarchicalFit
from ipe.inference.comparison import compare_models, kfold_scores, plot_comparison
from ipe.inference.diagnostics import ConvergenceWarning
from ipe.inference.emulator import FixedPredictions


class DemoEmulator(FixedPredictions):
    """Analytic stand-in for an emulator over the demo towers: P(fall) rises with sigma at per-tower rates."""

    def __init__(self, ids, base):
        super().__init__(ids, np.zeros(len(ids)))
        self.base = torch.as_tensor(base, dtype=torch.float64)
        self.names_ = ("sigma",)
        self.grid_values_ = {"sigma": np.array([0.0, 1.0])}

    def predict(self, theta):
        theta = torch.as_tensor(theta, dtype=torch.float64)
        return self.base + (1 - self.base) * (1 - torch.exp(-3 * theta[..., :1]))


def test_features_of_demo_towers(demo):
    feats = feature_table(demo)
    assert list(feats.columns) == ["stimulus_id", *FEATURES]
    assert (feats["n_blocks"] == 10).all() and (feats["height"] > 0.5).all() and (feats["com_offset"] >= 0).all()
    base = baseline_table(list(demo)[:3])
    assert base["no_noise"].tolist() == [0.0, 0.6, 0.0]


def test_minmax_and_pearson():
    assert minmax([1, 2, 3]).tolist() == [0.0, 0.5, 1.0]
    assert minmax([1, 2, 3], orient=-1).tolist() == [1.0, 0.5, 0.0]
    assert np.isnan(pearson([1, 1, 1], [1, 2, 3]))


def test_kfold_prefers_the_true_predictor():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=40)
    y = 2 + 3 * x + rng.normal(0, 0.1, 40)
    scores = kfold_scores(y, {"good": x, "noise": rng.uniform(size=40)}, None, [], k=5)
    assert scores["good"]["r_kfold"] > 0.95 > scores["noise"]["r_kfold"]


def test_compare_models_table(demo, tmp_path):
    ids = demo.ids
    nn = baseline_table(demo)["no_noise"].to_numpy()
    emu = DemoEmulator(ids, nn * 0.8)
    rng = np.random.default_rng(1)
    rows = []
    truth = emu.predict(torch.tensor([0.3])).numpy()
    for j in range(8):
        for i, sid in enumerate(ids):
            rows.append((f"p{j}", sid, float(np.clip(np.round(1 + 6 * (truth[i] + rng.normal(0, 0.1))), 1, 7))))
    responses = pd.DataFrame(rows, columns=["participant", "stimulus_id", "response"])
    scale = ResponseScale("rating", 1, 7)
    # the analytic stand-in has no spreads: the homoscedastic response model (the data have none either)
    fit = HierarchicalFit(free=("sigma",), scale=scale, num_warmup=40, num_samples=30, num_chains=1, seed=0,
                          max_tree_depth=5, sims=None).fit(responses, emu)
    # one chain of 20 draws cannot pass the checks: one warning names every baseline that did not converge
    with pytest.warns(ConvergenceWarning, match=r"compare: the response model of 2 of 2 baselines did not converge: "
                                                r"no-noise model \(max R-hat .*\); feature: height .*--warmup 500"):
        table = compare_models(responses, demo, fit, scale, k=3, num_warmup=30, num_samples=20, num_chains=1,
                               features=("height",))
    assert table["model"].tolist() == ["IPE (fitted noise)", "no-noise model", "feature: height",
                                       "noise ceiling (split-half)"]
    ipe_row = table.iloc[0]
    assert ipe_row["r"] > 0.8 and np.isfinite(ipe_row["elpd_loo"]) and np.isfinite(table.iloc[1]["elpd_waic"])
    assert table["delta_elpd_loo"].iloc[:3].max() == 0.0
    assert 0 < table.iloc[-1]["r"] <= 1
    assert plot_comparison(table, tmp_path / "c.png").exists()


def test_compare_checks_its_options_first():
    import pytest

    from ipe.errors import InputError

    with pytest.raises(InputError) as err:
        compare_models(None, None, None, None, k=1)
    assert str(err.value) == "k must be an integer >= 2, got 1"


def test_folds_come_from_their_own_stream():
    import pytest

    """The fold split is the "compare.folds" stream's permutation (no longer shared with the synthetic clicks)."""
    from ipe.seeding import stream_rng

    y = np.arange(10.0)
    x = y + np.array([0.5, -0.5] * 5)
    got = kfold_scores(y, {"x": x}, None, (), k=2, seed=3)["x"]
    folds = np.array_split(stream_rng(3, "compare.folds").permutation(10), 2)
    oof = np.empty(10)
    for test in folds:
        train = np.setdiff1d(np.arange(10), test)
        b, a = np.polyfit(x[train], y[train], 1)
        oof[test] = a + b * x[test]
    assert got["rmse_kfold"] == pytest.approx(float(np.sqrt(np.mean((oof - y) ** 2))))
