"""Population predictions: the fitted IPE averaged over the fitted participants (`ipe predict --population`)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from ipe.cli import main
from ipe.errors import InputError
from ipe.montecarlo import predict_population, simulate, summarize
from ipe.noise import NoiseParams
from ipe.scenefile import load_stimuli


@pytest.fixture
def towers(tmp_path):
    path = tmp_path / "towers.json"
    assert main(["stimuli", "towers", "--n", "3", "--seed", "4", "--out", str(path)]) == 0
    return path


def _fit_dir(path, group: dict[str, float], people: dict[str, list[float]] | None):
    """A directory with what `ipe fit` writes for `ipe predict --params`: params.json and participants.csv."""
    path.mkdir()
    (path / "params.json").write_text(json.dumps(
        {**{k: {"mean": v, "sd": 0.01, "q05": v, "q95": v} for k, v in group.items()}, "_meta": {"free": list(group)}}))
    if people is not None:
        n = len(next(iter(people.values())))
        pd.DataFrame({"participant": [f"p{i}" for i in range(n)], **people}).to_csv(path / "participants.csv",
                                                                                     index=False)
    return path / "params.json"


def test_population_mean_weighs_every_participant_equally(towers):
    stim = load_stimuli(towers)
    group = NoiseParams(sigma=0.2, phi=0.05)
    people = [{"sigma": 0.1}, {"sigma": 0.1}, {"sigma": 0.4}]  # two alike: one point, weight 2
    summary, rollouts = predict_population(stim, group, people, n_samples=6, seed=3, progress=False)
    # ceil(6 / 3) = 2 rollouts per distinct point, each point's own values in the rollouts table
    assert sorted(rollouts["sigma"].unique()) == [0.1, 0.4]
    per = summarize(simulate(stim, [NoiseParams(sigma=0.1, phi=0.05), NoiseParams(sigma=0.4, phi=0.05)],
                             n_samples=2, seed=3, progress=False))
    low = per[per["sigma"] == 0.1]["mean"].to_numpy()
    high = per[per["sigma"] == 0.4]["mean"].to_numpy()
    assert summary["mean"].to_numpy() == pytest.approx((2 * low + high) / 3)
    assert (summary["sigma"] == 0.2).all() and (summary["phi"] == 0.05).all()  # the group values
    assert (summary["participants"] == 3).all() and (summary["n_samples"] == 4).all()
    assert np.allclose(summary["se"], summary["sd"] / np.sqrt(summary["n_valid"]))


def test_population_of_one_is_the_plain_prediction(towers):
    stim = load_stimuli(towers)
    summary, _ = predict_population(stim, NoiseParams(), [{"sigma": 0.3, "phi": 0.1}], n_samples=5, seed=1,
                                    progress=False)
    plain = summarize(simulate(stim, NoiseParams(sigma=0.3, phi=0.1), n_samples=5, seed=1, progress=False))
    assert summary["mean"].tolist() == pytest.approx(plain["mean"].tolist())
    assert summary["sd"].tolist() == pytest.approx(plain["sd"].tolist())


def test_population_rejects_bad_input(towers):
    stim = load_stimuli(towers)
    with pytest.raises(InputError, match="empty"):
        predict_population(stim, NoiseParams(), [], n_samples=4)
    with pytest.raises(InputError, match="unknown noise parameter 'gravity'"):
        predict_population(stim, NoiseParams(), [{"gravity": 1.0}], n_samples=4)


def test_cli_population_reads_the_participants_beside_params_json(tmp_path, towers, capsys):
    params = _fit_dir(tmp_path / "fit", {"sigma": 0.2}, {"sigma": [0.05, 0.35]})
    out = tmp_path / "pop.csv"
    assert main(["predict", str(towers), "--params", str(params), "--population", "--samples", "4", "--seed", "2",
                 "--out", str(out), "--no-progress"]) == 0
    got = pd.read_csv(out)
    want, _ = predict_population(load_stimuli(towers), NoiseParams(sigma=0.2), [{"sigma": 0.05}, {"sigma": 0.35}],
                                 n_samples=4, seed=2, progress=False)
    assert got["mean"].tolist() == pytest.approx(want["mean"].tolist())
    assert (got["participants"] == 2).all()


@pytest.mark.parametrize("case, message", [
    ("no-params", "--population needs --params"),
    ("no-file", "participants.csv: no such file"),
    ("nan", "must be a finite number >= 0"),
    ("column", "no column 'sigma'"),
])
def test_cli_population_errors_are_one_line(tmp_path, towers, capsys, case, message):
    args = ["predict", str(towers), "--population", "--out", str(tmp_path / "p.csv")]
    if case != "no-params":
        people = {"no-file": None, "nan": {"sigma": [0.1, math.nan]}, "column": {"phi": [0.1, 0.2]}}[case]
        args += ["--params", str(_fit_dir(tmp_path / "fit", {"sigma": 0.2}, people))]
    rc = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and message in err[0]


class _SquareEmulator:
    """Predicts θ² times a per-stimulus factor: nonlinear, so the mean over people is not the value at the mean."""

    names_ = ("sigma",)
    grid_values_ = {"sigma": np.array([0.0, 1.0])}
    factors = np.array([1.0, 2.0, 3.0])

    def predict(self, theta):
        return theta[:, :1] ** 2 * torch.tensor(self.factors)


class _Fit:
    free = ("sigma",)
    emulator_ = _SquareEmulator()
    params_ = {"sigma": {"mean": 0.5}}

    def __init__(self, people: np.ndarray | None):
        data = {}
        if people is not None:  # (chain, draw, participant): each participant's draws
            data["sigma_participant"] = (("chain", "draw", "participant"), people)
        self.idata_ = type("IData", (), {"posterior": xr.Dataset(data)})()


def test_comparison_averages_the_emulator_over_the_fitted_participants():
    from ipe.inference.comparison import population_prediction

    draws = np.empty((2, 3, 2))
    draws[..., 0] = 0.2  # participant 0 sits at 0.2 in every draw, participant 1 at 0.8
    draws[..., 1] = 0.8
    got = population_prediction(_Fit(draws))
    assert got == pytest.approx((0.2 ** 2 + 0.8 ** 2) / 2 * _SquareEmulator.factors)
    assert not np.allclose(got, 0.5 ** 2 * _SquareEmulator.factors)
    # no participant values in the posterior: the group mean
    assert population_prediction(_Fit(None)) == pytest.approx(0.5 ** 2 * _SquareEmulator.factors)
