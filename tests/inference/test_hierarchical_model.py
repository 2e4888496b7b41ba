"""The hierarchical model (ipe.inference.hierarchical_model): likelihoods, the power link, the emulator's error."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from fitting_helpers import LineEmulator, synth
from ipe.inference import HierarchicalFit
from ipe.inference.hierarchical_model import HierarchicalModel, power_link, prepare_trials


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


def test_an_adaptive_emulators_error_uses_each_pairs_own_rollout_count(demo):
    """A pair that stopped early (``target_se``) has sd/√n with its own n: larger than the cap's sd/√n_samples."""
    import ipe
    from ipe.inference import Emulator
    from ipe.noise import NoiseParams

    two = list(demo)[:2]
    grid = {"sigma": [0.0, 0.3]}
    rollouts = ipe.simulate(two, [NoiseParams(sigma=v) for v in grid["sigma"]], n_samples=20, seed=3,
                            common_random_numbers=True, progress=False)
    fixed = Emulator(grid=grid, n_samples=20, seed=3).fit(two, rollouts=rollouts)
    # the same rollouts, but the pair (σ = 0.3, first tower) stopped after 5 of its 20
    early = (rollouts["sigma"] == 0.3) & (rollouts["stimulus_id"] == two[0].id) & (rollouts["sample"] >= 5)
    stopped = Emulator(grid=grid, n_samples=20, seed=3, target_se=0.2).fit(two, rollouts=rollouts[~early])
    assert not fixed.counts_vary() and stopped.counts_vary() and stopped.grid_n_[1, 0] == 5
    sd = stopped.grid_sd_[1, 0]
    assert sd > 0
    at = torch.tensor([[0.3]], dtype=torch.float64)
    assert float(stopped.predict_mc_se(at)[0, 0]) == pytest.approx(sd / np.sqrt(5), rel=0.02)
    assert float(stopped.predict_mc_se(at)[0, 1]) == pytest.approx(stopped.grid_sd_[1, 1] / np.sqrt(20), rel=0.02)
    df = pd.DataFrame({"participant": ["a", "a", "b", "b"], "stimulus_id": [two[0].id, two[1].id] * 2,
                       "response": [3.0, 5.0, 4.0, 6.0]})
    scale = SimpleNamespace(kind="rating", low=1, high=7)
    values = {"sigma": torch.tensor([0.3, 0.3], dtype=torch.float64)}
    e = torch.tensor([1.0, -1.0], dtype=torch.float64)
    for emu, n_first in ((fixed, 20), (stopped, 5)):
        data = prepare_trials(df, emu, scale)
        m = HierarchicalModel(data, emu, ("sigma",), {"sigma": (0.0, 0.3)})
        q = m.expected(values)[data.participant, data.stimulus]
        offset = m._with_emulator_error(q, {"e_emu": e}) - q
        first = data.stimulus == 0
        # the first tower's offset is e · sd/√n with that pair's own n (the fixed emulator's: the cap, 20)
        want = m._spread[data.participant, data.stimulus][first] / np.sqrt(n_first)
        assert torch.allclose(offset[first], want, rtol=0.03), (emu.grid_n_, offset, want)
