"""The kernel density of simulated landings (ipe.inference.landing_density): one θ or one per participant,
draws from the mixture, and the emulator's Monte Carlo check."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ipe.inference.diagnostics import Verdict
from ipe.inference.landing_density import (MAX_MC_SD, LandingDensity, bootstrap_counts, emulator_mc_problem,
                                           emulator_mc_sd)

F64 = dict(dtype=torch.float64)


@pytest.fixture(scope="module")
def density():
    """Two stimuli on a 3 × 2 grid, 50 rollouts each: stimulus 0 two-mode (±100), stimulus 1 one mode."""
    rng = np.random.default_rng(0)
    samples = np.empty((2, 6, 50))
    for g in range(6):
        samples[0, g] = np.where(rng.random(50) < 0.3 + 0.05 * g, -100.0, 100.0) + rng.normal(0, 2 + g, 50)
        samples[1, g] = rng.normal(10.0 * g, 5.0, 50)
    source = SimpleNamespace(samples_=samples, stimulus_ids_=["a", "b"],
                             grid_values_={"s": np.array([0.0, 0.1, 0.2]), "t": np.array([0.0, 1.0])})
    return LandingDensity(source, [(0, 1), (1, 1)], 1, seed=0)


def test_corners_take_one_theta_or_one_per_participant(density):
    s = torch.tensor([0.05, 0.2, 0.13, -1.0], **F64)  # the last is clamped to the grid
    t = torch.tensor([0.25, 1.0, 0.5, 0.0], **F64)
    idx, w = density.corners({"s": s, "t": t})
    assert idx.shape == w.shape == (4, 4)
    for j in range(4):
        i1, w1 = density.corners({"s": s[j], "t": t[j]})
        assert i1.shape == (4,)
        assert torch.equal(idx[j], i1) and torch.equal(w[j], w1)
    assert torch.allclose(w.sum(-1), torch.ones(4, **F64))
    # between grid values the weights are multilinear: s 0.05 is halfway, t 0.25 a quarter of the way
    i0, w0 = density.corners({"s": torch.tensor(0.05, **F64), "t": torch.tensor(0.25, **F64)})
    assert dict(zip(i0.tolist(), w0.tolist())) == pytest.approx({0: 0.375, 2: 0.375, 1: 0.125, 3: 0.125})


def test_a_theta_per_observation_gives_each_its_own_density(density):
    group = torch.tensor([0, 1, 0], dtype=torch.long)
    y = torch.tensor([-95.0, 12.0, 101.0], **F64)
    tau = torch.tensor(4.0, **F64)
    thetas = [(0.05, 0.3), (0.2, 1.0), (0.1, 0.0)]
    idx, w = density.corners({"s": torch.tensor([a for a, _ in thetas], **F64),
                              "t": torch.tensor([b for _, b in thetas], **F64)})
    each = density.loglik_at(idx, w, tau, group, y)[0]
    for k, (a, b) in enumerate(thetas):
        one = density.loglik({"s": torch.tensor(a, **F64), "t": torch.tensor(b, **F64)}, tau, group[k:k + 1],
                             y[k:k + 1])
        assert float(each[k]) == pytest.approx(float(one[0]), rel=1e-12)
    # a click between the two modes is far less likely than one on a mode
    mid = density.loglik({"s": torch.tensor(0.1, **F64), "t": torch.tensor(0.0, **F64)}, tau,
                         torch.tensor([0, 0]), torch.tensor([0.0, 100.0], **F64))
    assert float(mid[0]) < float(mid[1]) - 50


def test_draws_come_from_the_mixture(density):
    n = 4000
    group = torch.zeros(n, dtype=torch.long)
    idx, w = density.corners({"s": torch.tensor(0.0, **F64), "t": torch.tensor(0.0, **F64)})
    gen = torch.Generator().manual_seed(1)
    x = density.sample_at(idx, w, torch.tensor(3.0, **F64), group, gen).numpy()
    left = (x < 0).mean()
    kernels = density.centres[0, 0].numpy()
    assert left == pytest.approx((kernels < 0).mean(), abs=0.03)
    assert abs(np.median(x[x > 0]) - np.median(kernels[kernels > 0])) < 2.0
    again = density.sample_at(idx, w, torch.tensor(3.0, **F64), group, torch.Generator().manual_seed(1)).numpy()
    assert np.array_equal(x, again)  # seeded


def test_the_monte_carlo_check_measures_the_tilt_across_the_posterior():
    counts = bootstrap_counts(20, 30, seed=0, stream="test")
    assert counts.shape == (30, 20) and torch.all(counts.sum(1) == 20)
    assert torch.equal(counts, bootstrap_counts(20, 30, seed=0, stream="test"))
    weight = torch.linspace(-1.0, 1.0, 20, **F64)

    def total(values, chunk):  # a log-likelihood whose slope along "a" depends on which rows were drawn
        return values["a"] * (chunk * weight).sum(dim=1) + 0.0 * values["b"]
    sd = emulator_mc_sd(total, {"a": 0.5, "b": 1.0}, {"a": 0.1, "b": 0.2}, {"a": (0.0, 1.0), "b": (0.0, 2.0)}, counts)
    expected = float(torch.std(0.2 * (counts * weight).sum(dim=1)))
    assert sd["a"] == pytest.approx(expected) and sd["b"] == 0.0
    verdict = Verdict(converged=True, problems=[], advice=[])
    emulator_mc_problem(verdict, {"a": 0.5}, 40, "more rollouts (--emulator-samples {need})")
    assert verdict.converged and not verdict.problems
    emulator_mc_problem(verdict, {"a": 2.0 * MAX_MC_SD, "b": 0.1}, 40, "more rollouts (--emulator-samples {need})")
    assert not verdict.converged and verdict.problems[0]["parameter"] == "a"
    assert verdict.advice == ["more rollouts (--emulator-samples 160)"]
    assert "rarely draws" not in verdict.problems[0]["message"]
    emulator_mc_problem(verdict, {"a": 40.0}, 40, "more rollouts (--emulator-samples {need})")
    assert "rarely draws" in verdict.problems[1]["message"]


def test_pairs_stopped_early_are_drawn_up_to_the_most_rollouts():
    """An adaptive emulator leaves NaN where a pair stopped early: every grid point still gets as many kernel
    rows as the pair with the most rollouts, drawn from its own landings."""
    rng = np.random.default_rng(2)
    samples = rng.normal(0.0, 5.0, (1, 2, 30))
    samples[0, 0, 12:] = np.nan  # stopped after 12 rollouts
    source = SimpleNamespace(samples_=samples, stimulus_ids_=["a"], grid_values_={"s": np.array([0.0, 1.0])})
    density = LandingDensity(source, [(0, 1)], 1, seed=0)
    assert density.rows == 30 and torch.isfinite(density.centres).all()
    assert len(np.unique(density.centres[0, 0].numpy())) <= 12  # drawn again from its own 12 landings
    assert len(np.unique(density.centres[0, 1].numpy())) == 30  # every rollout once
