"""The power response link of count and probability scales (`ipe fit --link power`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from ipe.cli import main
from ipe.errors import InputError
from ipe.humans import ResponseScale
from ipe.inference import HierarchicalFit
from ipe.inference.emulator import FixedPredictions
from ipe.inference.hierarchical_model import power_link


def test_power_link_maps_the_unit_interval_onto_itself_and_its_slope_is_the_derivative():
    q = torch.linspace(0, 1, 101, dtype=torch.float64)
    same, one = power_link(q, torch.tensor(1.0, dtype=torch.float64))
    assert torch.allclose(same, q) and torch.allclose(one, torch.ones_like(q))
    g, slope = power_link(q, torch.tensor(0.3, dtype=torch.float64))
    assert float(g[0]) == pytest.approx(0.0) and float(g[-1]) == pytest.approx(1.0)
    assert bool((g[1:] > g[:-1]).all()) and bool((g[1:50] > q[1:50]).all())  # compresses: above the diagonal
    qq = q.clone().requires_grad_(True)
    power_link(qq, torch.tensor(0.3, dtype=torch.float64))[0].sum().backward()
    assert torch.allclose(qq.grad[1:-1], slope[1:-1])
    outside, _ = power_link(torch.tensor([-0.2, 1.3], dtype=torch.float64), torch.tensor(0.5, dtype=torch.float64))
    assert outside.tolist() == pytest.approx([0.0, 1.0])  # clamped


def _counts(gamma: float, seed: int = 0):
    """20 participants × 30 stimuli answering 0–10 with mean 10·(0.05 + 0.9·g(q)) and sd 0.8."""
    rng = np.random.default_rng(seed)
    ids = [f"s{i}" for i in range(30)]
    q = np.linspace(0.0, 1.0, 30)
    g = power_link(torch.tensor(q), torch.tensor(gamma, dtype=torch.float64))[0].numpy()
    rows = []
    for p in range(20):
        y = np.clip(np.round(10 * (0.05 + 0.9 * g) + rng.normal(0, 0.8, size=30)), 0, 10)
        rows += [{"participant": f"p{p}", "stimulus_id": s, "response": float(v)} for s, v in zip(ids, y)]
    return pd.DataFrame(rows), FixedPredictions(ids, 10 * q)


def test_fit_recovers_the_exponent_and_loo_prefers_the_link_that_made_the_data():
    responses, preds = _counts(gamma=0.3)
    opts = dict(free=(), scale=ResponseScale("count", 0, 10), num_warmup=100, num_samples=100, num_chains=1,
                sims=None, seed=1)
    power = HierarchicalFit(link="power", **opts).fit(responses, preds)
    gamma = power.link_gamma_
    assert gamma["q05"] <= 0.3 <= gamma["q95"] and abs(gamma["mean"] - 0.3) < 0.05, gamma
    linear = HierarchicalFit(link="linear", **opts).fit(responses, preds)
    assert power.criteria()["elpd_loo"] > linear.criteria()["elpd_loo"] + 20
    assert not hasattr(linear, "link_gamma_")


def test_link_and_its_exponent_are_saved_in_params_json(tmp_path):
    responses, preds = _counts(gamma=0.5, seed=2)
    fit = HierarchicalFit(free=(), scale=ResponseScale("count", 0, 10), num_warmup=20, num_samples=20,
                          num_chains=1, sims=None, link="power").fit(responses, preds)
    fit.save(tmp_path, figures=False)
    import json

    meta = json.loads((tmp_path / "params.json").read_text())["_meta"]
    assert meta["link"] == "power" and meta["link_gamma"]["q05"] <= meta["link_gamma"]["mean"]


def test_bad_links_are_refused():
    responses, preds = _counts(gamma=0.5)
    with pytest.raises(InputError, match="link must be one of linear, power"):
        HierarchicalFit(free=(), scale=ResponseScale("count", 0, 10), sims=None, link="cubic").fit(responses, preds)
    ratings = responses.assign(response=responses["response"].clip(1, 7))
    with pytest.raises(InputError, match="the power link is for count and probability scales"):
        HierarchicalFit(free=(), scale=ResponseScale("rating", 1, 7), sims=None, link="power").fit(ratings, preds)


@pytest.mark.parametrize("args, message", [
    (["--link", "cubic"], "--link 'cubic': expected one of linear, power"),
    (["--link", "power", "--scale", "rating:1-7"], "--link power: only for count and probability scales"),
])
def test_cli_link_errors_are_one_line_before_any_simulation(tmp_path, capsys, args, message):
    stimuli = tmp_path / "towers.json"
    assert main(["stimuli", "towers", "--n", "2", "--seed", "1", "--out", str(stimuli)]) == 0
    responses = tmp_path / "r.csv"
    pd.DataFrame({"participant": ["a", "a"], "stimulus_id": ["tower_000", "tower_001"],
                  "response": [3, 4]}).to_csv(responses, index=False)
    capsys.readouterr()
    rc = main(["fit", str(responses), "--stimuli", str(stimuli), "--out", str(tmp_path / "fit"), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and message in err[0], err
