"""The hierarchical Pyro fit: outputs, diagnostics, likelihoods, and recovery on data from the model itself."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from ipe.errors import InputError
from ipe.inference import HierarchicalFit, load_params
from ipe.inference.emulator import FixedPredictions
from ipe.inference.hierarchical_model import HierarchicalModel, prepare_trials


class LineEmulator(FixedPredictions):
    """A cheap analytic 'emulator': P(fall) of stimulus i rises with sigma at its own rate."""

    def __init__(self, n_stim: int):
        super().__init__([f"s{i}" for i in range(n_stim)], np.zeros(n_stim))
        self.rates = torch.linspace(0.5, 4.0, n_stim, dtype=torch.float64)
        self.names_ = ("sigma",)
        self.grid_values_ = {"sigma": np.array([0.0, 1.0])}

        self.grid_sd_ = np.zeros((2, n_stim))  # it has spreads: predict_sd below

    def predict(self, theta):
        theta = torch.as_tensor(theta, dtype=torch.float64)
        return 1.0 - torch.exp(-self.rates * theta[..., :1])

    def predict_sd(self, theta):
        p = self.predict(theta)
        return torch.sqrt(p * (1 - p)).clamp_min(1e-3)  # one rollout's answer is 0 or 1


def synth(emu, kind, low, high, sigma, n_part=16, seed=0, reps=2):
    rng = np.random.default_rng(seed)
    rows = []
    for j in range(n_part):
        s_j = 1 / (1 + np.exp(-(np.log(sigma / (1 - sigma)) + 0.3 * rng.standard_normal())))
        p = emu.predict(torch.tensor([s_j])).numpy()
        for _ in range(reps):
            for i, sid in enumerate(emu.stimulus_ids_):
                lat = p[i] + rng.normal(0, 0.1)
                y = np.clip(np.round(low + (high - low) * lat), low, high)
                rows.append((f"p{j}", sid, float(y)))
    return pd.DataFrame(rows, columns=["participant", "stimulus_id", "response"])


def _values(n_levels: int, **extra):
    f = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    return {"sigma": f(0.3), "tau_sigma": f(0.2), "z_sigma": torch.zeros(1, dtype=torch.float64), "tau_bias": f(0.1),
            "z_bias": torch.zeros(1, dtype=torch.float64), "beta": f(8.0), "cut_first": f(1.0),
            "cut_gaps": torch.ones(n_levels - 2, dtype=torch.float64), "a": f(0.05), "b": f(0.9), "s0": f(0.1),
            **{k: f(v) for k, v in extra.items()}}


def _every_level_model(kind, low, high, sims, link="linear"):
    """A model of one participant answering stimulus s1 once at every level of the scale, and those levels."""
    emu = LineEmulator(3)
    levels = np.arange(low, high + 1)
    df = pd.DataFrame({"participant": ["a"] * len(levels), "stimulus_id": ["s1"] * len(levels),
                       "response": levels.astype(float)})
    scale = SimpleNamespace(kind=kind, low=low, high=high)
    model = HierarchicalModel(prepare_trials(df, emu, scale), emu, ("sigma",), {"sigma": (0.0, 1.0)}, sims=sims, link=link)
    return model, levels


@pytest.mark.parametrize("sims", [None, "fit", 3.0])
@pytest.mark.parametrize("kind,low,high", [("rating", 1, 7), ("probability", 0, 100), ("count", 0, 10)])
def test_likelihood_sums_to_one_over_levels(kind, low, high, sims):
    m, levels = _every_level_model(kind, low, high, sims)
    s = _values(len(levels), k_sims=4.0)
    total = torch.exp(m.trial_log_lik(s)).sum()
    assert float(total) == pytest.approx(1.0, abs=1e-6)
    draws = m.sample_responses(s, torch.Generator().manual_seed(0))
    assert torch.all((draws >= low) & (draws <= high))


@pytest.mark.parametrize("kind,low,high", [("rating", 1, 7), ("count", 0, 10)])
def test_few_simulations_widen_the_response_distribution_where_the_ipe_is_unsure(kind, low, high):
    """Judging from κ rollouts adds variance v/κ: extreme answers get likelier as κ falls, only where v > 0."""
    emu = LineEmulator(3)
    df = pd.DataFrame({"participant": ["a", "a"], "stimulus_id": ["s1", "s1"], "response": [float(low), float(high)]})
    scale = SimpleNamespace(kind=kind, low=low, high=high)
    n = high - low + 1

    def extremes(sims, sigma=0.3):
        m = HierarchicalModel(prepare_trials(df, emu, scale), emu, ("sigma",), {"sigma": (0.0, 1.0)}, sims=sims)
        v = _values(n)
        v["sigma"] = torch.tensor(sigma, dtype=torch.float64)
        return torch.exp(m.trial_log_lik(v)).sum().item()

    assert extremes(1.0) > extremes(5.0) > extremes(1e6)
    assert extremes(1e6) == pytest.approx(extremes(1e9), rel=1e-4)
    # where the IPE is certain (sigma near 0: P(fall) = 0, no spread) κ hardly matters
    assert extremes(1.0, sigma=1e-6) == pytest.approx(extremes(1e6, sigma=1e-6), rel=0.02)


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


def test_emulator_error_is_a_per_stimulus_offset_of_sd_over_root_n(tmp_path):
    """With an emulator of n rollouts per point, each stimulus gets e_i · sd / √n, e_i ~ N(0, 1), shared by all."""
    emu = LineEmulator(4)
    df = synth(emu, "rating", 1, 7, sigma=0.3, n_part=4, reps=1)
    scale = SimpleNamespace(kind="rating", low=1, high=7)
    data = prepare_trials(df, emu, scale)
    assert not HierarchicalModel(data, emu, ("sigma",), {"sigma": (0.0, 1.0)}).emulator_error  # no n: off
    emu.n_samples = 16
    m = HierarchicalModel(data, emu, ("sigma",), {"sigma": (0.0, 1.0)})
    assert m.emulator_error and not HierarchicalModel(data, emu, ("sigma",), {"sigma": (0.0, 1.0)},
                                                      sims=None).emulator_error
    v = _values(7, k_sims=5.0)
    values = m.participant_values({"sigma": v["sigma"]}, {"sigma": v["tau_sigma"]}, {"sigma": v["z_sigma"]})
    q = m.expected({k: t.expand(4) for k, t in values.items()})[data.participant, data.stimulus]
    e = torch.arange(4, dtype=torch.float64) - 1.5
    shifted = m._with_emulator_error(q, {"e_emu": e})
    want = q + e[data.stimulus] * m._spread[data.participant, data.stimulus] / 4.0
    assert torch.allclose(shifted, want)
    fit = HierarchicalFit(free=("sigma",), scale=scale, num_warmup=30, num_samples=20, num_chains=1, seed=2,
                          max_tree_depth=5).fit(df, emu)
    assert fit.idata_.posterior["e_emu"].shape == (1, 20, 4)
    fit.save(tmp_path, figures=False)
    assert json.loads((tmp_path / "params.json").read_text())["_meta"]["emulator_error"] is True


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


@pytest.mark.parametrize("sims", [None, "fit"])
@pytest.mark.parametrize("kind,low,high", [("probability", 0, 100), ("count", 0, 10)])
def test_power_link_likelihood_sums_to_one_and_moves_the_mean_answer(kind, low, high, sims):
    def mean_answer(link, gamma):
        m, levels = _every_level_model(kind, low, high, sims, link=link)
        p = torch.exp(m.trial_log_lik(_values(len(levels), k_sims=4.0, link_gamma=gamma)))
        assert float(p.sum()) == pytest.approx(1.0, abs=1e-6)
        return float((p * torch.tensor(levels, dtype=torch.float64)).sum())

    linear = mean_answer("linear", 1.0)
    assert mean_answer("power", 1.0) == pytest.approx(linear, rel=1e-9)  # γ = 1 is the linear link
    assert mean_answer("power", 0.3) > linear  # q < 1 is lifted by a compressive link
