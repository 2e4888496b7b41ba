"""The hierarchical fit (ipe.inference.hierarchical): options, outputs, honesty (warnings, time limits, SVI),
response links, and recovery on data from the model itself."""

from __future__ import annotations

import json
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from fitting_helpers import POSITION, PROB, RATING, LineEmulator, PositionEmulator, quiet_fit, synth
from ipe.cli import main
from ipe.errors import InputError
from ipe.humans import ResponseScale
from ipe.inference import ConvergenceWarning, EdgeWarning, HierarchicalFit, load_params
from ipe.inference.emulator import FixedPredictions
from ipe.inference.hierarchical import FitStopped
from ipe.inference.hierarchical_model import power_link


def test_sims_option_is_checked_and_fitted_kappa_is_saved(tmp_path):
    emu = LineEmulator(4)
    df = synth(emu, "rating", 1, 7, sigma=0.3, n_part=4, reps=1)
    scale = SimpleNamespace(kind="rating", low=1, high=7)
    for bad in (0.5, "some", float("nan"), True):
        with pytest.raises(InputError, match="sims"):
            HierarchicalFit(free=("sigma",), scale=scale, sims=bad).fit(df, emu)
    with pytest.raises(InputError, match="no spreads"):
        HierarchicalFit(free=(), scale=scale).fit(df, FixedPredictions(emu.stimulus_ids_, np.zeros(4)))
    fit = HierarchicalFit(free=("sigma",), scale=scale, num_warmup=30, num_samples=20, num_chains=1, seed=2,
                          max_tree_depth=5).fit(df, emu)
    assert 0 < fit.k_sims_["q05"] <= fit.k_sims_["mean"] <= fit.k_sims_["q95"]
    fit.save(tmp_path, figures=False)
    meta = json.loads((tmp_path / "params.json").read_text())["_meta"]
    assert meta["sims"] == "fit" and meta["k_sims"] == fit.k_sims_
    assert "k_sims" in set(fit.summary_["parameter"])


def test_fit_writes_every_output(tmp_path):
    emu = LineEmulator(6)
    df = synth(emu, "rating", 1, 7, sigma=0.3, n_part=6, reps=1)
    fit = HierarchicalFit(free=("sigma",), scale=SimpleNamespace(kind="rating", low=1, high=7), num_warmup=60,
                          num_samples=40, num_chains=2, seed=1, max_tree_depth=5).fit(df, emu)
    paths = fit.save(tmp_path)
    for key in ("params", "posterior", "diagnostics", "participants", "ppc", "posterior_figure", "ppc_figure"):
        assert paths[key].exists(), key
    params = json.loads((tmp_path / "params.json").read_text())
    assert set(params["sigma"]) == {"mean", "sd", "q05", "q95"}
    assert params["sigma"]["q05"] <= params["sigma"]["mean"] <= params["sigma"]["q95"]
    assert load_params(tmp_path / "params.json") == {"sigma": params["sigma"]["mean"]}
    diag = pd.read_csv(tmp_path / "diagnostics.csv")
    assert {"r_hat", "ess_bulk"} <= set(diag.columns)
    assert fit.idata_.log_likelihood["y"].shape == (2, 40, len(df))
    crit = fit.criteria()
    assert np.isfinite(crit["elpd_loo"]) and np.isfinite(crit["elpd_waic"])
    import arviz as az

    again = az.from_netcdf(tmp_path / "posterior.nc")
    assert "posterior_predictive" in again.groups()


def test_fit_is_reproducible():
    emu = LineEmulator(4)
    df = synth(emu, "probability", 0, 100, sigma=0.4, n_part=4, reps=1)
    kw = dict(free=("sigma",), scale=SimpleNamespace(kind="probability", low=0, high=100), num_warmup=30,
              num_samples=20, num_chains=1, seed=5, max_tree_depth=5)
    a = HierarchicalFit(**kw).fit(df, emu)
    b = HierarchicalFit(**kw).fit(df, emu)
    assert np.array_equal(a.idata_.posterior["sigma"].values, b.idata_.posterior["sigma"].values)


def test_bad_fit_input(tmp_path):
    emu = LineEmulator(3)
    df = synth(emu, "rating", 1, 7, sigma=0.3, n_part=2, reps=1)
    scale = SimpleNamespace(kind="rating", low=1, high=7)
    with pytest.raises(InputError, match="does not vary"):
        HierarchicalFit(free=("phi",), scale=scale).fit(df, emu)
    bad = df.assign(stimulus_id="nope")
    with pytest.raises(InputError, match="not built for"):
        HierarchicalFit(free=("sigma",), scale=scale).fit(bad, emu)
    with pytest.raises(InputError, match="num_samples"):
        HierarchicalFit(free=("sigma",), scale=scale, num_samples=0).fit(df, emu)
    with pytest.raises(InputError, match="range"):
        HierarchicalFit(free=("sigma",), scale=scale, ranges={"sigma": (1.0, 0.0)}).fit(df, emu)
    (tmp_path / "p.json").write_text('{"gamma": {"mean": 1}}')
    with pytest.raises(InputError, match="unknown parameter"):
        load_params(tmp_path / "p.json")


@pytest.mark.slow
def test_recovers_sigma_from_model_generated_ratings():
    emu = LineEmulator(12)
    df = synth(emu, "rating", 1, 7, sigma=0.3, n_part=25, reps=2, seed=3)
    fit = HierarchicalFit(free=("sigma",), scale=SimpleNamespace(kind="rating", low=1, high=7), num_warmup=300,
                          num_samples=300, num_chains=2, seed=2).fit(df, emu)
    p = fit.params_["sigma"]
    assert p["q05"] <= 0.3 <= p["q95"]
    assert abs(p["mean"] - 0.3) < 0.05
    assert fit.summary_["r_hat"].max() < 1.05


def test_one_chain_fit_saves_with_null_r_hat(tmp_path):
    """R-hat is undefined for one chain: params.json says null instead of failing on NaN."""
    emu = LineEmulator(4)
    df = synth(emu, "rating", 1, 7, sigma=0.3, n_part=4, reps=1)
    fit = HierarchicalFit(free=("sigma",), scale=SimpleNamespace(kind="rating", low=1, high=7), num_warmup=30,
                          num_samples=20, num_chains=1, seed=2, max_tree_depth=5).fit(df, emu)
    fit.save(tmp_path, figures=False)
    meta = json.loads((tmp_path / "params.json").read_text())["_meta"]
    assert meta["max_r_hat"] is None and meta["num_chains"] == 1
    assert load_params(tmp_path / "params.json") == {"sigma": fit.params_["sigma"]["mean"]}


def test_chains_start_from_the_most_probable_of_several_random_points():
    import pyro
    import pyro.distributions as dist

    from ipe.inference.hierarchical import _best_start

    def model():  # a narrow mode at 0.1 and a wide, lower plateau elsewhere
        a = pyro.sample("a", dist.Uniform(torch.tensor(0.0), torch.tensor(1.0)))
        pyro.factor("bump", 8.0 * torch.exp(-0.5 * ((a - 0.1) / 0.15) ** 2))

    starts = []
    for seed in range(10):
        pyro.set_rng_seed(seed)
        starts.append(float(torch.sigmoid(_best_start(model, 20)["a"])))
    assert max(starts) < 0.35  # each start lies in the mode; one random point would land there ~30 % of the time
    assert _best_start(model, 1) is None
    with pytest.raises(InputError, match="init_candidates"):
        HierarchicalFit(free=("sigma",), init_candidates=0, scale=SimpleNamespace(kind="rating", low=1, high=7)) \
            .fit(pd.DataFrame({"participant": ["p"], "stimulus_id": ["s"], "response": [1.0]}), None)


def test_too_few_draws_give_the_non_convergence_warning(tmp_path):
    emu = LineEmulator(4)
    df = synth(emu, "rating", 1, 7, sigma=0.3, n_part=4, reps=1)
    fit = HierarchicalFit(free=("sigma",), scale=RATING, num_warmup=15, num_samples=10, num_chains=2, seed=1,
                          max_tree_depth=5, svi_steps=50, jit=False)
    with pytest.warns(ConvergenceWarning, match="NOT CONVERGED") as rec:
        fit.fit(df, emu)
    text = str(rec[0].message)
    assert "ESS of" in text and "(needs >= 400)" in text  # names the quantity and the threshold
    assert "more draws" in text and "--hierarchy off" in text  # and what to try
    assert fit.verdict_.converged is False
    fit.save(tmp_path, figures=False)
    meta = json.loads((tmp_path / "params.json").read_text())["_meta"]
    assert meta["converged"] is False and meta["convergence"]["problems"]
    assert json.loads((tmp_path / "convergence.json").read_text())["converged"] is False


def _identified_probability_data(n_part=20, n_stim=8, sigma=0.3, seed=4):
    """Probability answers made by the model itself (no participant effects)."""
    emu = LineEmulator(n_stim)
    rng = np.random.default_rng(seed)
    q = emu.predict(torch.tensor([sigma])).numpy()
    rows = [(f"p{j}", sid, float(np.clip(np.round(100 * (0.05 + 0.9 * q[i]) + rng.normal(0, 8)), 0, 100)))
            for j in range(n_part) for i, sid in enumerate(emu.stimulus_ids_)]
    return emu, pd.DataFrame(rows, columns=["participant", "stimulus_id", "response"])


def test_a_well_specified_fit_gives_no_warning():
    """Clicks made by the group-level model itself, at σ = 0.3 with click noise 5: every check passes."""
    emu = PositionEmulator(8)
    df = _clicks(emu)
    fit = HierarchicalFit(free=("sigma",), scale=POSITION, num_warmup=150,
                          num_samples=500, num_chains=2, seed=0, hierarchy=False, response_bias=False, svi_steps=100)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        warnings.simplefilter("error", EdgeWarning)
        fit.fit(df, emu)
    v = fit.verdict_
    assert v.converged and v.max_r_hat <= 1.01 and v.min_ess_bulk >= 400 and v.min_ess_tail >= 400
    assert v.n_divergent == 0 and v.saturated_share <= 0.01
    assert fit.mc_sd_["sigma"] < 1.0  # the emulator's rollouts are enough
    p = fit.params_["sigma"]
    assert p["q05"] <= 0.3 <= p["q95"]


def test_prior_range_defaults_to_the_emulator_grid_and_may_not_leave_it():
    emu = LineEmulator(4)
    emu.grid_values_ = {"sigma": np.array([0.0, 0.1, 0.5])}
    df = synth(emu, "rating", 1, 7, sigma=0.3, n_part=4, reps=1)
    fit = quiet_fit(free=("sigma",), scale=RATING, num_warmup=20, num_samples=20, num_chains=1, seed=1,
                     max_tree_depth=4, svi_steps=30, jit=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit.fit(df, emu)
    assert fit.model_.ranges == {"sigma": (0.0, 0.5)}
    assert float(fit.idata_.posterior["sigma"].max()) <= 0.5
    with pytest.raises(InputError, match="beyond the emulator's grid"):
        HierarchicalFit(free=("sigma",), scale=RATING, ranges={"sigma": (0.0, 1.0)}).fit(df, emu)


def test_two_participants_fall_back_to_the_group_level_fit_and_say_so():
    emu = LineEmulator(4)
    df = synth(emu, "rating", 1, 7, sigma=0.3, n_part=2, reps=2)
    fit = HierarchicalFit(free=("sigma",), scale=RATING, num_warmup=20, num_samples=20, num_chains=1, seed=1,
                          max_tree_depth=4, svi_steps=30, jit=False)
    with pytest.warns(UserWarning, match="2 participants barely identify the hierarchy"):
        fit.fit(df, emu)
    assert fit.hierarchical_ is False and "z_sigma" not in fit.idata_.posterior and "tau_sigma" not in \
        fit.idata_.posterior
    assert fit.participants_["sigma"].nunique() == 1  # everyone at the group value
    forced = quiet_fit(free=("sigma",), scale=RATING, num_warmup=10, num_samples=10, num_chains=1, seed=1,
                        max_tree_depth=3, svi_steps=10, hierarchy=True, jit=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        forced.fit(df, emu)
    assert forced.hierarchical_ and "z_sigma" in forced.idata_.posterior


def _clicks(emu, sigma=0.3, n_part=10, seed=0):
    rng = np.random.default_rng(seed)
    q = emu.predict(torch.tensor([sigma])).numpy()
    return pd.DataFrame([(f"p{j}", sid, float(q[i] + rng.normal(0, 5))) for j in range(n_part)
                         for i, sid in enumerate(emu.stimulus_ids_)], columns=["participant", "stimulus_id", "response"])


def test_svi_method_gives_an_approximate_posterior_and_says_it_is_unchecked():
    emu = PositionEmulator(8)
    fit = HierarchicalFit(free=("sigma",), scale=POSITION, num_samples=100, num_chains=2, seed=0, method="svi",
                          svi_steps=300, hierarchy=False, response_bias=False)
    with pytest.warns(ConvergenceWarning, match="CONVERGENCE NOT CHECKED"):
        fit.fit(_clicks(emu), emu)
    assert fit.idata_.posterior["sigma"].shape == (1, 200)
    assert fit.verdict_.method == "svi" and not fit.verdict_.checked
    assert 0.25 < fit.params_["sigma"]["mean"] < 0.35
    with pytest.raises(InputError, match="method"):
        HierarchicalFit(free=("sigma",), scale=POSITION, method="vi").fit(_clicks(emu), emu)


class _Clock:
    """A clock that moves one second each time it is read: a time limit that does not depend on the load."""

    def __init__(self):
        self.t = 0.0

    def monotonic(self):
        self.t += 1.0
        return self.t


def test_max_time_stops_cleanly_and_keeps_the_draws(tmp_path, monkeypatch):
    clock = _Clock()
    for module in ("ipe.inference.sampling", "ipe.inference.hierarchical"):
        monkeypatch.setattr(f"{module}.time", SimpleNamespace(monotonic=clock.monotonic))
    emu = LineEmulator(4)
    df = synth(emu, "rating", 1, 7, sigma=0.3, n_part=4, reps=1)
    fit = quiet_fit(free=("sigma",), scale=RATING, num_warmup=5, num_samples=1000, num_chains=2, seed=1,
                     max_tree_depth=3, init="random", max_time=30.0, jit=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit.fit(df, emu)
    assert fit.stopped_early_ and 0 < fit.idata_.posterior.sizes["draw"] < 1000
    assert fit.idata_.posterior.sizes["chain"] == 1  # the second chain never started
    assert not fit.verdict_.converged and fit.verdict_.problems[0]["check"] == "stopped"
    fit.save(tmp_path, figures=False)
    assert json.loads((tmp_path / "params.json").read_text())["_meta"]["stopped_early"] is True
    with pytest.raises(FitStopped, match="before the first draw"):
        quiet_fit(free=("sigma",), scale=RATING, num_warmup=10, num_samples=10, num_chains=1, init="random",
                   max_time=0.5, jit=False).fit(df, emu)
    with pytest.raises(InputError, match="max_time"):
        HierarchicalFit(free=("sigma",), scale=RATING, max_time=-1).fit(df, emu)


def test_fixed_predictions_still_fit_with_no_free_parameters():
    emu, df = _identified_probability_data(n_part=4, n_stim=4)
    wrapped = FixedPredictions(emu.stimulus_ids_, np.linspace(0.1, 0.9, 4))
    fit = quiet_fit(free=(), scale=PROB, num_warmup=10, num_samples=10, num_chains=1, sims=None, svi_steps=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit.fit(df, wrapped)
    assert fit.hierarchical_ and "z_bias" in fit.idata_.posterior


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


@pytest.mark.parametrize("option,value,message", [
    ("num_warmup", 0, "num_warmup must be a positive integer, got 0"),
    ("num_chains", True, "num_chains must be a positive integer, got True"),
    ("svi_steps", 2.5, "svi_steps must be a positive integer, got 2.5"),
    ("target_accept", 1.0, "target_accept must be a finite number in (0, 1), got 1.0"),
    ("method", "vi", "method must be one of nuts, svi, got 'vi'"),
    ("init", "best", "init must be 'svi' or 'random', got 'best'"),
    ("hierarchy", "maybe", "hierarchy must be 'auto', True or False, got 'maybe'"),
    ("link", "cubic", "link must be one of linear, power, got 'cubic'"),
    ("max_time", float("inf"), "max_time must be a positive number of seconds or None, got inf"),
    ("response_bias", 1, "response_bias must be True or False, got 1"),
    ("sims", 0.5, "sims must be 'fit', a number >= 1 or None, got 0.5"),
])
def test_options_are_checked_once_with_one_message_before_any_work(option, value, message):
    """Every option breaks its declared rule with the one template, before the data are even looked at."""
    with pytest.raises(InputError) as err:
        HierarchicalFit(free=("sigma",), scale=RATING, **{option: value}).fit(None, None)
    assert str(err.value) == message
