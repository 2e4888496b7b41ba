"""What a fit's draws say (ipe.inference.posterior): one kind of interval everywhere."""

from __future__ import annotations

import json
import warnings

import pytest

from fitting_helpers import RATING, LineEmulator, quiet_fit, synth


def test_one_kind_of_interval_in_the_table_and_in_params_json(tmp_path):
    emu = LineEmulator(4)
    df = synth(emu, "rating", 1, 7, sigma=0.3, n_part=4, reps=1)
    fit = quiet_fit(free=("sigma",), scale=RATING, num_warmup=20, num_samples=20, num_chains=1, seed=1,
                     max_tree_depth=4, svi_steps=30, jit=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit.fit(df, emu)
    row = fit.summary_.set_index("parameter").loc["sigma"]
    assert not any(c.startswith("hdi") for c in fit.summary_.columns)
    assert row["q5%"] == pytest.approx(fit.params_["sigma"]["q05"]) and row["q95%"] == pytest.approx(
        fit.params_["sigma"]["q95"])
    fit.save(tmp_path, figures=False)
    assert "equal-tailed" in json.loads((tmp_path / "params.json").read_text())["_meta"]["interval"]
