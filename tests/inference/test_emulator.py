"""The emulator: smooth, differentiable, and faithful to fresh Monte Carlo off the grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ipe
from ipe.errors import InputError
from ipe.inference.emulator import Emulator, FixedPredictions, bspline_basis, bspline_eval, bspline_pieces, _knots


@pytest.fixture(scope="module")
def four(demo):
    return list(demo)[:4]


@pytest.fixture(scope="module")
def emulator(four):
    grid = {"sigma": [0.0, 0.15, 0.35, 0.6], "phi": [0.0, 0.1, 0.25, 0.5]}
    return Emulator(grid=grid, n_samples=24, seed=3, smoothing=1e-3).fit(four)


def test_bspline_partition_of_unity_and_gradient():
    kn = torch.as_tensor(_knots(0.0, 1.0, 6), dtype=torch.float64)
    x = torch.linspace(0, 1, 57, dtype=torch.float64, requires_grad=True)
    b = bspline_basis(x, kn)
    assert b.shape == (57, 6)
    assert torch.allclose(b.sum(-1), torch.ones(57, dtype=torch.float64))
    (b[:, 2].sum()).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("values", [None, np.array([0.0, 0.05, 0.1, 0.2, 0.3, 0.45, 0.7, 1.0])])
@pytest.mark.parametrize("n_basis", [4, 6, 8])
def test_bspline_pieces_match_the_recursion(values, n_basis):
    """The piecewise-polynomial basis the emulator predicts with equals Cox–de Boor's, values and gradients."""
    kn = torch.as_tensor(_knots(0.0, 1.0, n_basis, values=values), dtype=torch.float64)
    x = torch.cat([torch.linspace(0, 1, 101, dtype=torch.float64), kn.unique(),
                   torch.rand(200, generator=torch.Generator().manual_seed(0), dtype=torch.float64)])
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    old, new = bspline_basis(x1, kn), bspline_eval(x2, *bspline_pieces(kn))
    assert torch.allclose(new, old, rtol=0, atol=1e-12)
    w = torch.arange(1.0, n_basis + 1, dtype=torch.float64)
    g_old, = torch.autograd.grad((old * w).sum(), x1)
    g_new, = torch.autograd.grad((new * w).sum(), x2)
    inner = ~torch.isin(x, kn)  # at a knot the recursion's one-sided derivative may differ from the polynomial's
    assert torch.allclose(g_new[inner], g_old[inner], rtol=0, atol=1e-9)


def test_emulator_reproduces_grid_means(emulator):
    design_pred = emulator.predict(torch.as_tensor(emulator.grid_points_)).numpy()
    # smoothing averages Monte Carlo noise, but stays close to the grid means
    assert np.abs(design_pred - emulator.grid_means_).max() < 0.15
    assert emulator.residual_sd_ < 0.05


def test_emulator_is_differentiable(emulator):
    theta = torch.tensor([[0.2, 0.2]], dtype=torch.float64, requires_grad=True)
    emulator.predict(theta).sum().backward()
    assert torch.isfinite(theta.grad).all()
    # more noise, more falls: P(fall) summed over stimuli rises with phi here
    assert theta.grad[0, 1] > 0


def test_emulator_agrees_with_fresh_monte_carlo_off_grid(emulator, four):
    """At parameter values between grid points the emulator matches new simulations within MC error."""
    for sigma, phi in [(0.25, 0.18), (0.45, 0.05)]:
        fresh = ipe.summarize(ipe.simulate(four, ipe.NoiseParams(sigma=sigma, phi=phi), n_samples=80, seed=99))
        pred = emulator.predict(torch.tensor([sigma, phi], dtype=torch.float64)).numpy()
        emu_se = np.nanmax(emulator.grid_se_, axis=0)  # the emulator's own Monte Carlo error (24 samples)
        tol = 3.0 * np.sqrt(fresh["se"].to_numpy() ** 2 + emu_se ** 2) + 0.02
        assert np.all(np.abs(fresh["mean"].to_numpy() - pred) <= tol), (sigma, phi, fresh["mean"].to_numpy(), pred)


def test_emulator_clamps_outside_the_grid(emulator):
    inside = emulator.predict(torch.tensor([0.6, 0.5], dtype=torch.float64))
    outside = emulator.predict(torch.tensor([5.0, 9.0], dtype=torch.float64))
    assert torch.allclose(inside, outside)


def test_save_load_roundtrip(emulator, tmp_path):
    path = emulator.save(tmp_path / "emu.npz")
    again = Emulator.load(path)
    theta = torch.tensor([[0.1, 0.3], [0.5, 0.05]], dtype=torch.float64)
    assert torch.equal(again.predict(theta), emulator.predict(theta))
    assert again.stimulus_ids_ == emulator.stimulus_ids_


def test_emulator_is_deterministic(four):
    grid = {"sigma": [0.0, 0.3], "phi": [0.0, 0.3]}
    a = Emulator(grid=grid, n_samples=4, seed=1).fit(four)
    b = Emulator(grid=grid, n_samples=4, seed=1, workers=2).fit(four)
    assert np.array_equal(a.grid_means_, b.grid_means_)


def test_bad_emulator_input(four, tmp_path):
    with pytest.raises(InputError, match="unknown parameter"):
        Emulator(grid={"gamma": [0, 1]}).fit(four)
    with pytest.raises(InputError, match="at least 2"):
        Emulator(grid={"sigma": [0.2]}).fit(four)
    with pytest.raises(InputError, match="not fitted"):
        Emulator().predict(torch.zeros(2))
    (tmp_path / "bad.npz").write_text("nope")
    with pytest.raises(InputError, match="not an emulator file"):
        Emulator.load(tmp_path / "bad.npz")
    with pytest.raises(InputError, match="no such file"):
        Emulator.load(tmp_path / "missing.npz")


def test_fixed_predictions_broadcast():
    fp = FixedPredictions(["a", "b"], [0.1, 0.9])
    out = fp.predict(torch.zeros(3, 0, dtype=torch.float64))
    assert out.shape == (3, 2) and float(out[2, 1]) == pytest.approx(0.9)
    with pytest.raises(InputError):
        FixedPredictions(["a"], [float("nan")])


def test_surfaces_keep_the_slope_of_a_response_that_is_steep_at_small_noise():
    """A flattened surface biases fits (docs/fitting.md): slopes of a steep known function stay within 3 %."""
    from ipe.inference.emulator import DEFAULT_GRID

    grid = {"sigma": DEFAULT_GRID["sigma"], "phi": DEFAULT_GRID["phi"]}
    emu = Emulator(grid=grid)
    emu.grid_values_ = {k: np.asarray(v, dtype=float) for k, v in grid.items()}
    mesh = np.meshgrid(*emu.grid_values_.values(), indexing="ij")
    emu.grid_points_ = np.stack([m.ravel() for m in mesh], axis=1)
    scales = (0.05, 0.1, 0.2)  # P(fall) = 1 − exp(−(φ + 0.3 σ)/c): steep near 0, as towers are
    s, p = emu.grid_points_[:, 0], emu.grid_points_[:, 1]
    emu.grid_means_ = np.stack([1 - np.exp(-(p + 0.3 * s) / c) for c in scales], axis=1)
    emu.stimulus_ids_, emu.queries_ = ["a", "b", "c"], ["fall"] * 3
    emu._fit_surfaces()
    phis = np.array([0.1, 0.15, 0.2, 0.25])
    theta = torch.tensor([[0.2, v] for v in phis], dtype=torch.float64, requires_grad=True)
    pred = emu.predict(theta)
    slope = torch.autograd.grad(pred.sum(), theta)[0][:, 1].numpy()
    true = sum(np.exp(-(phis + 0.06) / c) / c for c in scales)
    np.testing.assert_allclose(slope, true, rtol=0.03)
    want = np.stack([1 - np.exp(-(phis + 0.06) / c) for c in scales], axis=1)
    np.testing.assert_allclose(pred.detach().numpy(), want, atol=0.005)


def test_model_potential_is_the_same_with_the_piecewise_basis(emulator, monkeypatch):
    """Pyro's potential energy of a fit (and its gradient) at random points: piecewise-polynomial basis == recursion."""
    import pandas as pd
    from pyro.infer.mcmc.util import initialize_model

    from ipe.humans import ResponseScale
    from ipe.inference import emulator as emu_mod
    from ipe.inference.hierarchical_model import HierarchicalModel, prepare_trials, prior_ranges

    scale = ResponseScale.parse("rating:1-7")
    ids = emulator.stimulus_ids_
    responses = pd.DataFrame({"participant": [f"p{j}" for j in range(3) for _ in ids], "stimulus_id": ids * 3,
                              "response": [float(1 + (3 * j + i) % 7) for j in range(3) for i in range(len(ids))]})
    free = ("sigma", "phi")
    model = HierarchicalModel(prepare_trials(responses, emulator, scale), emulator, free,
                              prior_ranges(free, None, emulator))
    gen = torch.Generator().manual_seed(1)
    params, potential, _, _ = initialize_model(model.model)
    points = [{k: v + torch.randn(v.shape, generator=gen, dtype=v.dtype) for k, v in params.items()} for _ in range(5)]

    def energy_and_grad():
        out = []
        for z in points:
            z = {k: v.clone().requires_grad_() for k, v in z.items()}
            e = potential(z)
            out.append((e.detach(), torch.autograd.grad(e, list(z.values()))))
        return out

    new = energy_and_grad()

    def recursion_basis(self, theta):  # the emulator's basis before 2026-12-07: Cox–de Boor at every call
        theta = torch.as_tensor(theta)
        _, coef, lo, hi = self._tensors(theta.dtype)
        x = torch.minimum(torch.maximum(theta, lo), hi)
        basis = None
        for d, kn in enumerate(self.knots_):
            b = emu_mod.bspline_basis(x[..., d], torch.as_tensor(kn, dtype=theta.dtype))
            basis = b if basis is None else (basis.unsqueeze(-1) * b.unsqueeze(-2)).flatten(-2)
        return basis, coef

    monkeypatch.setattr(emu_mod.Emulator, "_basis", recursion_basis)
    old = energy_and_grad()
    for (e_new, g_new), (e_old, g_old) in zip(new, old):
        assert torch.isfinite(e_new) and abs(float(e_new - e_old)) <= 1e-9 * max(1.0, abs(float(e_old)))
        for a, b in zip(g_new, g_old):
            assert torch.allclose(a, b, rtol=1e-7, atol=1e-9)


def test_adaptive_emulator_keeps_the_first_rollouts_of_the_fixed_one(four, tmp_path):
    """``target_se``: each (stimulus, grid point) stops once its se is small enough, on the fixed run's seeds."""
    from ipe.inference.emulator import emulator_key

    grid = {"sigma": [0.0, 0.3]}
    two = four[:2]
    from ipe.noise import NoiseParams

    rollouts = ipe.simulate(two, [NoiseParams(sigma=v) for v in grid["sigma"]], n_samples=20, seed=3,
                            common_random_numbers=True)
    fixed = Emulator(grid=grid, n_samples=20, seed=3).fit(two, rollouts=rollouts)
    adaptive = Emulator(grid=grid, n_samples=20, seed=3, target_se=0.12).fit(two)
    assert fixed.grid_n_.min() == fixed.grid_n_.max() == 20
    n = adaptive.grid_n_
    assert n.min() < 20 and n.max() <= 20, n
    full = n == 20
    # a pair that ran every rollout is the fixed pair; one that stopped early met the target (or all agreed)
    assert np.array_equal(adaptive.grid_means_[full], fixed.grid_means_[full])
    assert np.all(adaptive.grid_se_[~full] <= 0.12 + 1e-12)
    for pt, sid in np.argwhere(~full):
        rows = rollouts[(rollouts["stimulus_id"] == adaptive.stimulus_ids_[sid])
                        & (rollouts["sigma"] == adaptive.grid_points_[pt, 0])].sort_values("sample")
        assert adaptive.grid_means_[pt, sid] == pytest.approx(rows["value"].to_numpy()[:int(n[pt, sid])].mean())
    back = Emulator.load(adaptive.save(tmp_path / "a.npz"))
    assert back.target_se == 0.12 and np.array_equal(back.grid_n_, n)
    # the store tells them apart; a fixed emulator's key does not mention target_se (older keys still hold)
    assert emulator_key(adaptive, four) != emulator_key(fixed, four)
    with pytest.raises(InputError, match="target_se"):
        Emulator(grid=grid, n_samples=4, target_se=-1.0).fit(four)
