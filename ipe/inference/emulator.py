"""A smooth, differentiable stand-in for the Monte Carlo: per-stimulus predictions over noise parameters.

Fitting σ, φ (and μ) to people needs the IPE's expected answer at many
parameter values, with gradients (NUTS). Running fresh simulations inside the
sampler is far too slow, so the :class:`Emulator`

1. runs the Monte Carlo once on a grid of the free parameters, with
   **common random numbers** (every grid point reuses the same seeds, so the
   Monte Carlo noise is smooth across the grid instead of jagged), and
2. fits, for every stimulus, a tensor-product cubic B-spline surface to the
   grid means by penalised least squares (a P-spline: a small second-difference
   penalty averages out what Monte Carlo noise is left).

:meth:`Emulator.predict` evaluates those surfaces in torch, so predictions are
smooth in the parameters and differentiable with autograd. Outside the grid's
range the parameters are clamped to it.

Example::

    emu = Emulator(grid={"sigma": [0, .1, .2, .4, .7, 1], "phi": [0, .1, .2, .4, .7, 1]},
                   n_samples=40, seed=0).fit(stimuli)
    emu.predict(torch.tensor([[0.2, 0.2]]))      # shape (1, n_stimuli)
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ..errors import InputError
from ..estimator import ParamsMixin
from ..fileio import atomic_write
from ..montecarlo import simulate, summarize
from ..noise import INTERVENTION_FIELDS, MOTION_FIELDS, PROPERTY_FIELDS, NoiseParams
from ..scenefile import as_stimulus_set
from ..validation import POSITIVE_INT, POSITIVE_NUMBER, SEED, check

PARAM_NAMES = ("sigma", "phi", "mu") + PROPERTY_FIELDS + INTERVENTION_FIELDS + MOTION_FIELDS
DEFAULT_GRID = {
    "sigma": (0.0, 0.05, 0.1, 0.2, 0.3, 0.45, 0.65, 1.0),
    "phi": (0.0, 0.05, 0.1, 0.2, 0.3, 0.45, 0.65, 1.0),
    "mu": (0.0, 0.25, 0.5, 0.75, 1.0),
    "friction": (0.0, 0.25, 0.5, 0.75, 1.0, 1.5),
    "removal_impulse": (0.0, 0.25, 0.5, 1.0, 2.0, 3.0, 4.5, 6.0),
    # motion noise (ipe.noise): for the landing fit (ipe.inference.landing)
    **{name: (0.0, 0.05, 0.1, 0.2, 0.3, 0.45, 0.6) for name in MOTION_FIELDS},
}
"""Grid values per parameter, denser where judgments change fastest (small noise)."""


def _knots(lo: float, hi: float, n_basis: int, degree: int = 3, values: np.ndarray | None = None) -> np.ndarray:
    """A clamped knot vector on [lo, hi] with ``n_basis`` cubic B-splines.

    The inner knots are evenly spaced in ``values`` (the sorted grid values)
    by their index — where the grid is dense, so are the knots — or evenly in
    [lo, hi] when ``values`` is None.
    """
    n_inner = n_basis - degree - 1
    if n_inner <= 0:
        inner = np.array([])
    elif values is None:
        inner = np.linspace(lo, hi, n_inner + 2)[1:-1]
    else:
        at = np.linspace(0.0, len(values) - 1.0, n_inner + 2)[1:-1]
        inner = np.interp(at, np.arange(len(values)), values)
    return np.concatenate([np.full(degree + 1, lo), inner, np.full(degree + 1, hi)])


def bspline_basis(x: torch.Tensor, knots: torch.Tensor, degree: int = 3) -> torch.Tensor:
    """B-spline basis functions at ``x`` (any shape) → shape ``x.shape + (n_basis,)``.

    Cox–de Boor recursion written in torch so the result is differentiable in
    ``x``. ``x`` must lie within ``[knots[0], knots[-1]]``; the last interval is
    closed on the right.
    """
    t = knots
    n_basis = len(t) - degree - 1
    xe = x.unsqueeze(-1)
    lo_k, hi_k = t[:-1], t[1:]
    b = ((xe >= lo_k) & (xe < hi_k)).to(x.dtype)
    # close the last non-empty interval on the right
    last = int(torch.nonzero(hi_k > lo_k).max())
    at_end = (x == t[-1]).to(x.dtype).unsqueeze(-1)
    b = b.clone()
    b[..., last] = torch.maximum(b[..., last], at_end[..., 0])
    for k in range(1, degree + 1):
        left_den = t[k:-1] - t[: -k - 1]
        right_den = t[k + 1:] - t[1:-k]
        left = torch.where(left_den > 0, (xe - t[: -k - 1]) / torch.where(left_den > 0, left_den, 1.0), 0.0)
        right = torch.where(right_den > 0, (t[k + 1:] - xe) / torch.where(right_den > 0, right_den, 1.0), 0.0)
        b = left * b[..., :-1] + right * b[..., 1:]
    assert b.shape[-1] == n_basis
    return b


def bspline_pieces(knots: torch.Tensor, degree: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """The B-splines of ``knots`` as piecewise polynomials: ``(starts, coef)``.

    ``starts`` (m,) are the left ends of the m non-empty knot intervals;
    ``coef`` (m, degree + 1, n_basis) the power-basis coefficients there, so
    on interval j, ``B_i(x) = Σ_p coef[j, p, i] · (x − starts[j])^p``. Made
    once from :func:`bspline_basis` at ``degree + 1`` points per interval
    (exact up to rounding: each B-spline is a polynomial of that degree on
    every interval); :func:`bspline_eval` then needs a handful of tensor
    operations instead of the Cox–de Boor recursion.
    """
    t = knots.to(torch.float64)
    lo, hi = t[:-1], t[1:]
    keep = torch.nonzero(hi > lo).flatten()
    starts, ends = lo[keep], hi[keep]
    frac = torch.linspace(0.1, 0.9, degree + 1, dtype=torch.float64)
    coef = []
    for a, b in zip(starts.tolist(), ends.tolist()):
        dx = frac * (b - a)
        vander = dx.unsqueeze(-1) ** torch.arange(degree + 1, dtype=torch.float64)  # (p, p)
        coef.append(torch.linalg.solve(vander, bspline_basis(a + dx, t, degree)))
    return starts, torch.stack(coef)


def bspline_eval(x: torch.Tensor, starts: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
    """B-spline basis at ``x`` from :func:`bspline_pieces` → ``x.shape + (n_basis,)``; differentiable in ``x``.

    ``x`` must lie within the knots' range (the emulator clamps it); the same
    values as :func:`bspline_basis` (to rounding, ~1e-15).
    """
    j = (torch.searchsorted(starts, x.detach().contiguous(), right=True) - 1).clamp(0, len(starts) - 1)
    dx = (x - starts[j]).unsqueeze(-1)
    c = coef[j]  # (..., degree + 1, n_basis)
    out = c[..., -1, :]
    for p in range(c.shape[-2] - 2, -1, -1):  # Horner
        out = out * dx + c[..., p, :]
    return out


class Emulator(ParamsMixin):
    """Smooth per-stimulus predictions of the IPE over its free noise parameters.

    Parameters
    ----------
    grid:
        ``{name: values}`` for each free parameter (names among ``sigma``,
        ``phi``, ``mu``); ``None`` uses :data:`DEFAULT_GRID` for ``free``.
    free:
        The free parameters when ``grid`` is not given.
    fixed:
        Values of the other noise parameters (``NoiseParams`` fields).
    n_samples:
        Rollouts per stimulus and grid point (with ``target_se``: at most).
    target_se:
        ``None`` (default): every stimulus gets ``n_samples`` rollouts at
        every grid point. A number: adaptive counts (:mod:`ipe.adaptive`):
        each (stimulus, grid point) runs in rounds until the standard error
        of its mean is at most ``target_se`` (in the query's units: bricks
        for a count, probability for ``fall``), ``n_samples`` at most. A
        pair that stops at ``k`` rollouts holds exactly the first ``k`` of
        the fixed run (same seeds, common random numbers), so the pairs
        that need all ``n_samples`` are unchanged and the others are at
        most ``target_se`` away from them; stimuli that hardly vary (a tower
        nothing rests on, a clear answer) stop after the first round. The
        model's emulator-error term (``HierarchicalFit(emulator_error=True)``)
        then uses each pair's own count (:meth:`predict_mc_se`).
    seed:
        The Monte Carlo seed (common random numbers across the grid).
    query:
        The query to emulate; ``None`` uses each stimulus's own query.
    n_basis:
        Cubic B-splines per parameter (default: one per grid value, at most
        8). The inner knots are spaced evenly in the grid values' index, so
        they are as dense as the grid (the default grids are dense at small
        noise, where judgments change fastest).
    smoothing:
        Weight of the second-difference penalty (relative to the data term).
        Common random numbers already make the grid means smooth; more
        smoothing flattens the surfaces and biases a fit (see
        ``docs/fitting.md``, parameter recovery).
    workers, progress, early_stop, backend, scheduler, cache:
        Passed to :func:`ipe.simulate` (``cache`` reuses the grid's rollouts
        across refits; none of them changes the result).
    keep_samples:
        Also keep every rollout's value (``samples_``), saved with the
        emulator: what the kernel-density likelihood of a clicked position
        reads (:class:`~ipe.inference.landing_density.LandingDensity`; ``ipe
        fit`` builds its emulator so for a ``position`` scale).

    Notes
    -----
    Fitted attributes: ``stimulus_ids_``, ``grid_table_`` (the Monte Carlo
    means on the grid), ``grid_n_`` (the rollouts behind each mean:
    ``n_samples``, or fewer with ``target_se``), ``coef_`` (n_stimuli ×
    n_basis_total) and ``residual_sd_``; with ``keep_samples``, ``samples_``
    (``(n_stimuli, n_grid_points, n_samples)``, grid points in C order over
    ``grid_values_``, NaN where a pair stopped early or a value is missing),
    else ``samples_`` is ``None``.
    """

    def __init__(self, grid: Mapping[str, Sequence[float]] | None = None, free: Sequence[str] = ("sigma", "phi"),
                 fixed: Mapping[str, float] | None = None, n_samples: int = 40, seed: int = 0,
                 target_se: float | None = None, query: str | None = None, n_basis: int | None = None,
                 smoothing: float = 1e-4, workers: int = 1, progress: bool | None = None, early_stop: bool = True,
                 backend: str | None = None, scheduler=None, cache=None, keep_samples: bool = False):
        self.keep_samples = keep_samples
        self.grid = grid
        self.free = free
        self.fixed = fixed
        self.n_samples = n_samples
        self.target_se = target_se
        self.seed = seed
        self.query = query
        self.n_basis = n_basis
        self.smoothing = smoothing
        self.workers = workers
        self.progress = progress
        self.early_stop = early_stop
        self.backend = backend
        self.scheduler = scheduler
        self.cache = cache

    # ------------------------------------------------------------------ set-up

    def _grid(self) -> dict[str, np.ndarray]:
        grid = self.grid if self.grid is not None else {k: DEFAULT_GRID[k] for k in self.free}
        if not grid:
            raise InputError("the emulator needs at least one free parameter")
        out = {}
        for name, vals in grid.items():
            if name not in PARAM_NAMES:
                raise InputError(f"emulator grid: unknown parameter {name!r}; expected one of {', '.join(PARAM_NAMES)}")
            v = np.unique(np.asarray(vals, dtype=float))
            if len(v) < 2 or not np.all(np.isfinite(v)) or v[0] < 0:
                raise InputError(f"emulator grid: {name} needs at least 2 distinct finite values >= 0")
            out[name] = v
        return out

    @property
    def names_(self) -> tuple[str, ...]:
        return tuple(self.grid_values_)

    def _points(self) -> list[NoiseParams]:
        fixed = dict(self.fixed or {})
        bad = [k for k in fixed if k in self.grid_values_]
        if bad:
            raise InputError(f"emulator: {', '.join(bad)} both fixed and free")
        mesh = np.meshgrid(*self.grid_values_.values(), indexing="ij")
        flat = np.stack([m.ravel() for m in mesh], axis=1)
        try:
            return [NoiseParams(**fixed, **dict(zip(self.grid_values_, map(float, row)))) for row in flat]
        except TypeError as exc:
            raise InputError(f"emulator: bad fixed parameter ({exc})") from None

    # ------------------------------------------------------------------ fitting

    def fit(self, stimuli, rollouts: pd.DataFrame | None = None) -> "Emulator":
        """Simulate the grid (or use given ``rollouts``) and fit the surfaces. Returns self."""
        check("n_samples", self.n_samples, POSITIVE_INT)
        check("seed", self.seed, SEED)
        if self.target_se is not None:
            check("target_se", self.target_se, POSITIVE_NUMBER)
        stimuli = as_stimulus_set(stimuli)
        self.grid_values_ = self._grid()
        points = self._points()
        if rollouts is None:
            rollouts = simulate(stimuli, points, n_samples=self.n_samples, seed=self.seed, queries=self.query,
                                workers=self.workers, progress=self.progress, early_stop=self.early_stop,
                                common_random_numbers=True, backend=self.backend, scheduler=self.scheduler,
                                cache=self.cache, target_se=self.target_se)
        summ = summarize(rollouts)
        self.stimulus_ids_ = [s.id for s in stimuli]
        queries = summ.groupby("stimulus_id", sort=False)["query"].first()
        self.queries_ = [str(queries[sid]) for sid in self.stimulus_ids_]
        n_pts = len(points)
        means = np.empty((n_pts, len(stimuli)))
        ses = np.empty_like(means)
        sds = np.full_like(means, np.nan)
        counts = np.zeros_like(means)
        index = {sid: i for i, sid in enumerate(self.stimulus_ids_)}
        keys = list(self.grid_values_)
        pos = {tuple(float(getattr(p, k)) for k in keys): j for j, p in enumerate(points)}
        summ = summ[summ["query"] == summ["stimulus_id"].map(dict(zip(self.stimulus_ids_, self.queries_)))]
        for row in summ.itertuples(index=False):
            j = pos[tuple(float(getattr(row, k)) for k in keys)]
            means[j, index[row.stimulus_id]] = row.mean
            ses[j, index[row.stimulus_id]] = row.se
            sds[j, index[row.stimulus_id]] = row.sd
            counts[j, index[row.stimulus_id]] = row.n_samples
        means = np.where(np.isnan(means), 0.0, means)
        self.grid_means_ = means
        self.grid_se_ = ses
        self.grid_sd_ = np.where(np.isnan(sds), 0.0, sds)  # spread across rollouts (continuous responses)
        self.grid_n_ = counts  # rollouts per grid point and stimulus (n_samples, or fewer with target_se)
        self.grid_points_ = np.array([[getattr(p, k) for k in keys] for p in points], dtype=float)
        self.samples_ = self._samples(rollouts) if self.keep_samples else None
        self._fit_surfaces()
        return self

    def _samples(self, rollouts: pd.DataFrame) -> np.ndarray:
        """Every rollout's value of each stimulus's own query as ``(n_stimuli, n_grid_points, n_samples)``."""
        own = dict(zip(self.stimulus_ids_, self.queries_))
        r = rollouts[rollouts["query"].astype(str) == rollouts["stimulus_id"].map(own)]
        return rollout_values(r, self.stimulus_ids_, self.grid_values_, int(self.n_samples))

    def _fit_surfaces(self) -> None:
        keys = list(self.grid_values_)
        self.knots_ = []
        basis_1d = []
        penalties = []
        for d, k in enumerate(keys):
            v = self.grid_values_[k]
            nb = self.n_basis or min(len(v), 8)
            nb = max(nb, 4)
            kn = _knots(float(v[0]), float(v[-1]), nb, values=v)
            self.knots_.append(kn)
            basis_1d.append(bspline_basis(torch.as_tensor(self.grid_points_[:, d], dtype=torch.float64),
                                          torch.as_tensor(kn, dtype=torch.float64)).numpy())
            dmat = np.diff(np.eye(nb), n=2, axis=0)
            penalties.append(dmat.T @ dmat)
        design = _row_kron(basis_1d)
        # the penalty of a tensor-product P-spline: sum over dimensions of I ⊗ … ⊗ D'D ⊗ … ⊗ I
        sizes = [b.shape[1] for b in basis_1d]
        pen = np.zeros((design.shape[1], design.shape[1]))
        for d in range(len(sizes)):
            mats = [np.eye(s) for s in sizes]
            mats[d] = penalties[d]
            full = mats[0]
            for m in mats[1:]:
                full = np.kron(full, m)
            pen += full
        lam = self.smoothing * len(design)
        lhs = design.T @ design + lam * pen + 1e-10 * np.eye(design.shape[1])
        self.coef_ = np.linalg.solve(lhs, design.T @ self.grid_means_).T  # (n_stim, n_basis)
        fitted = design @ self.coef_.T
        self.residual_sd_ = float(np.sqrt(np.mean((fitted - self.grid_means_) ** 2)))
        self._torch_cache: dict = {}
        self._sd_twin = None
        self._se_twin = None

    # ------------------------------------------------------------------ prediction

    def _tensors(self, dtype):
        key = dtype
        if key not in self._torch_cache:
            self._torch_cache[key] = (
                [tuple(p.to(dtype) for p in bspline_pieces(torch.as_tensor(k, dtype=torch.float64)))
                 for k in self.knots_],
                torch.as_tensor(self.coef_, dtype=dtype),
                torch.as_tensor([v[0] for v in self.grid_values_.values()], dtype=dtype),
                torch.as_tensor([v[-1] for v in self.grid_values_.values()], dtype=dtype),
            )
        return self._torch_cache[key]

    def predict(self, theta) -> torch.Tensor:
        """Predictions at parameter values ``theta``: shape ``(..., n_free)`` → ``(..., n_stimuli)``.

        Columns of ``theta`` follow :attr:`names_`. Differentiable in ``theta``.
        """
        self._check_fitted()
        basis, coef = self._basis(theta)
        return basis @ coef.T

    def _basis(self, theta) -> tuple[torch.Tensor, torch.Tensor]:
        """The tensor-product B-spline basis at ``theta`` (clamped to the grid) and the coefficients."""
        theta = torch.as_tensor(theta)
        if not theta.is_floating_point():
            theta = theta.to(torch.float64)
        if theta.shape[-1] != len(self.knots_):
            raise InputError(f"theta has {theta.shape[-1]} columns, the emulator has {len(self.knots_)} "
                             f"parameters ({', '.join(self.names_)})")
        pieces, coef, lo, hi = self._tensors(theta.dtype)
        x = torch.minimum(torch.maximum(theta, lo), hi)
        basis = None
        for d, (starts, poly) in enumerate(pieces):
            b = bspline_eval(x[..., d], starts, poly)
            basis = b if basis is None else (basis.unsqueeze(-1) * b.unsqueeze(-2)).flatten(-2)
        return basis, coef

    def predict_with_sd(self, theta, mc_se: bool = False):
        """:meth:`predict` and :meth:`predict_sd` together, the spline basis computed once.

        With ``mc_se=True`` also the emulated Monte Carlo standard error of the
        grid means, ``sd / √n`` with each pair's own rollout count ``n``
        (:attr:`grid_n_`), as a third tensor (:meth:`predict_mc_se`).
        """
        sd_twin = self._sd_surface()
        basis, coef = self._basis(theta)
        _, sd_coef, _, _ = sd_twin._tensors(basis.dtype)
        out = (basis @ coef.T, (basis @ sd_coef.T).clamp_min(sd_twin._floor))
        if not mc_se:
            return out
        _, se_coef, _, _ = self._mc_se_surface()._tensors(basis.dtype)
        return out + ((basis @ se_coef.T).clamp_min(0.0),)

    def predict_mc_se(self, theta) -> torch.Tensor:
        """The Monte Carlo standard error of the emulated mean at ``theta``: ``(..., n_free)`` → ``(..., n_stimuli)``.

        The surface through ``sd / √n`` of every (grid point, stimulus) pair,
        ``n`` its own rollout count: with ``target_se`` pairs that stopped
        early have fewer rollouts and a larger error than ``n_samples``
        would say. Clamped at 0.
        """
        return self._mc_se_surface().predict(theta).clamp_min(0.0)

    def counts_vary(self) -> bool:
        """True when some pair has fewer rollouts than ``n_samples`` (an adaptive emulator that stopped early)."""
        counts = getattr(self, "grid_n_", None)
        return counts is not None and bool(np.any(np.asarray(counts) < self.n_samples))

    def _mc_se_surface(self) -> "Emulator":
        """A twin emulator whose surfaces are ``grid_sd_ / √grid_n_`` (built on first use)."""
        self._check_fitted()
        twin = getattr(self, "_se_twin", None)
        if twin is None:
            if getattr(self, "grid_sd_", None) is None or getattr(self, "grid_n_", None) is None:
                raise InputError("this emulator has no spreads or rollout counts (saved by an older ipe); rebuild it")
            import copy

            twin = copy.copy(self)
            twin.grid_means_ = self.grid_sd_ / np.sqrt(np.maximum(self.grid_n_, 1.0))
            twin._fit_surfaces()
            self._se_twin = twin
        return twin

    def predict_frame(self, **params: float) -> pd.DataFrame:
        """Predictions at one parameter point as a table (stimulus_id, query, mean)."""
        self._check_fitted()
        missing = [k for k in self.names_ if k not in params]
        if missing:
            raise InputError(f"predict_frame needs {', '.join(missing)}")
        theta = torch.tensor([float(params[k]) for k in self.names_], dtype=torch.float64)
        mean = self.predict(theta).numpy()
        return pd.DataFrame({"stimulus_id": self.stimulus_ids_, "query": self.queries_, "mean": mean})

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise InputError("the emulator is not fitted yet: call fit(stimuli) first")

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path) -> Path:
        """Save the fitted emulator (grid means and surfaces) to one ``.npz`` file, atomically."""
        self._check_fitted()
        path = Path(path)
        meta = {
            "version": 1, "names": list(self.names_), "stimulus_ids": self.stimulus_ids_, "queries": self.queries_,
            "grid": {k: v.tolist() for k, v in self.grid_values_.items()}, "fixed": dict(self.fixed or {}),
            "n_samples": self.n_samples, "target_se": self.target_se, "seed": self.seed, "query": self.query,
            "n_basis": self.n_basis,
            "smoothing": self.smoothing,
        }
        import io

        buf = io.BytesIO()
        extra = {} if getattr(self, "grid_sd_", None) is None else {"grid_sd": self.grid_sd_}
        if getattr(self, "grid_n_", None) is not None:
            extra["grid_n"] = self.grid_n_
        if getattr(self, "samples_", None) is not None:
            extra["samples"] = self.samples_
        np.savez(buf, meta=np.array(json.dumps(meta)), grid_means=self.grid_means_, grid_se=self.grid_se_,
                 grid_points=self.grid_points_, **extra)
        return atomic_write(path, lambda fh: fh.write(buf.getvalue()), mode="wb")

    @classmethod
    def load(cls, path: str | Path) -> "Emulator":
        """Load an emulator written by :meth:`save`."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                means, ses, pts = z["grid_means"], z["grid_se"], z["grid_points"]
                sds = z["grid_sd"] if "grid_sd" in z.files else None
                counts = z["grid_n"] if "grid_n" in z.files else None
                samples = z["samples"] if "samples" in z.files else None
        except FileNotFoundError:
            raise InputError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise InputError(f"{path}: is a directory, expected an emulator file (.npz)") from None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            why = "empty file" if isinstance(exc, EOFError) else (
                "not a NumPy .npz archive" if "allow_pickle" in str(exc)
                else " ".join(str(exc).split())[:120])
            raise InputError(f"{path}: not an emulator file written by ipe ({why})") from None
        try:
            meta["grid"], meta["stimulus_ids"], meta["queries"]
        except (KeyError, TypeError):
            raise InputError(f"{path}: not an emulator file written by ipe (its metadata is incomplete)") from None
        emu = cls(grid=meta["grid"], fixed=meta["fixed"], n_samples=meta["n_samples"], seed=meta["seed"],
                  target_se=meta.get("target_se"), query=meta["query"], n_basis=meta["n_basis"],
                  smoothing=meta["smoothing"], keep_samples=samples is not None)
        emu.grid_values_ = {k: np.asarray(v, dtype=float) for k, v in meta["grid"].items()}
        emu.stimulus_ids_ = list(meta["stimulus_ids"])
        emu.queries_ = list(meta["queries"])
        emu.grid_means_, emu.grid_se_, emu.grid_points_ = means, ses, pts
        emu.grid_sd_ = sds
        emu.grid_n_ = counts
        emu.samples_ = samples
        emu._fit_surfaces()
        return emu

    def predict_sd(self, theta) -> torch.Tensor:
        """The spread (sd across rollouts) of the answer at ``theta``, emulated like the mean; ``(..., n_stimuli)``.

        Used by the ``position`` response scale (clicked landing x), whose
        likelihood needs the IPE's spread as well as its mean. Floored at 1 %
        of the typical spread on the grid.
        """
        twin = self._sd_surface()
        return twin.predict(theta).clamp_min(twin._floor)

    def _sd_surface(self) -> "Emulator":
        """A twin emulator whose surfaces are the spreads (built on first use)."""
        self._check_fitted()
        if getattr(self, "grid_sd_", None) is None:
            raise InputError("this emulator has no spreads (saved by an older ipe); rebuild it")
        twin = getattr(self, "_sd_twin", None)
        if twin is None:
            import copy

            twin = copy.copy(self)
            twin.grid_means_ = self.grid_sd_
            twin._fit_surfaces()
            twin._floor = max(1e-9, 0.01 * float(np.sqrt(np.mean(self.grid_sd_ ** 2))))
            self._sd_twin = twin
        return twin

    def matches(self, stimuli) -> bool:
        """True when the emulator was built for exactly these stimulus ids, in order."""
        return hasattr(self, "stimulus_ids_") and [s.id for s in as_stimulus_set(stimuli)] == self.stimulus_ids_


def rollout_values(r: pd.DataFrame, stimulus_ids: Sequence[str], grid_values: Mapping[str, np.ndarray],
                   n_samples: int | None = None, where: str = "emulator") -> np.ndarray:
    """The rollouts' values as ``(n_stimuli, n_grid_points, n_samples)``, grid points in C order over
    ``grid_values`` (NaN where a value is missing; ``n_samples`` ``None``: the largest sample index + 1)."""
    names = list(grid_values)
    shape = tuple(len(grid_values[n]) for n in names)
    pos = []
    for n in names:
        v = grid_values[n]
        col = r[n].to_numpy(float)
        k = np.clip(np.searchsorted(v, col), 0, len(v) - 1)
        if not np.allclose(v[k], col, rtol=0, atol=1e-12):
            raise InputError(f"{where}: rollouts hold {n} values off the grid")
        pos.append(k)
    stim = r["stimulus_id"].map({s: i for i, s in enumerate(stimulus_ids)}).to_numpy()
    sample = r["sample"].to_numpy(int)
    if n_samples is None:
        n_samples = int(sample.max()) + 1 if len(sample) else 0
    out = np.full((len(stimulus_ids), int(np.prod(shape)), n_samples), np.nan)
    out[stim, np.ravel_multi_index(tuple(pos), shape), sample] = r["value"].to_numpy(float)
    return out


def _row_kron(mats: list[np.ndarray]) -> np.ndarray:
    out = mats[0]
    for m in mats[1:]:
        out = (out[:, :, None] * m[:, None, :]).reshape(len(out), -1)
    return out


def mc_error(emulator: Emulator) -> float:
    """Typical Monte Carlo standard error of the grid means (for tolerance checks)."""
    se = emulator.grid_se_[np.isfinite(emulator.grid_se_)]
    return float(np.sqrt(np.mean(se ** 2))) if se.size else math.nan


class FixedPredictions:
    """An emulator-shaped wrapper for a model without free noise parameters.

    Feature models and the no-noise model predict one number per stimulus;
    wrapped in this class they go through the same response model as the IPE
    (:class:`ipe.inference.HierarchicalModel` with ``free=()``), so their LOO
    and WAIC are comparable with the IPE's.
    """

    names_: tuple[str, ...] = ()

    def __init__(self, stimulus_ids: Sequence[str], values: Sequence[float], name: str = "fixed"):
        v = np.asarray(values, dtype=float)
        if v.shape != (len(stimulus_ids),) or not np.all(np.isfinite(v)):
            raise InputError(f"{name}: need one finite prediction per stimulus")
        self.stimulus_ids_ = list(stimulus_ids)
        self.values_ = v
        self.name = name
        self.grid_values_: dict[str, np.ndarray] = {}

    def predict(self, theta) -> torch.Tensor:
        theta = torch.as_tensor(theta)
        vals = torch.as_tensor(self.values_, dtype=theta.dtype if theta.is_floating_point() else torch.float64)
        return vals.expand(theta.shape[:-1] + (len(self.values_),))

    def matches(self, stimuli) -> bool:
        return [s.id for s in as_stimulus_set(stimuli)] == self.stimulus_ids_


# --------------------------------------------------------------------------- the emulator store

#: Bump when what a saved emulator holds changes.
EMULATOR_STORE_FORMAT = 1


def emulator_key(emulator: Emulator, stimuli) -> str:
    """The SHA-256 (hex) naming an emulator built for ``stimuli`` with ``emulator``'s settings.

    Like a simulation-cache key (:mod:`ipe.cache`), it covers everything that
    decides the grid's Monte Carlo means: every stimulus as canonical JSON (in
    order), the grid, the fixed parameters, the rollouts per point, the seed,
    the query, early stopping and the physics version, the adaptive target
    and ``keep_samples`` (each only when set, so the keys of earlier emulators are unchanged); and the surface
    settings (``n_basis``, ``smoothing``). Workers, backend and progress do
    not change the result and are not in it.
    """
    import hashlib

    from ..cache import SimulationCache, _canonical, physics_version

    grid = {k: [repr(float(x)) for x in v] for k, v in emulator._grid().items()}
    material = {
        **({} if emulator.target_se is None else {"target_se": repr(float(emulator.target_se))}),
        **({"keep_samples": True} if getattr(emulator, "keep_samples", False) else {}),
        "format": EMULATOR_STORE_FORMAT, "physics": physics_version(),
        "stimuli": [SimulationCache.stimulus_text(s) for s in as_stimulus_set(stimuli)],
        "grid": grid, "fixed": {k: repr(float(v)) for k, v in sorted((emulator.fixed or {}).items())},
        "n_samples": int(emulator.n_samples), "seed": int(emulator.seed), "query": emulator.query,
        "early_stop": bool(emulator.early_stop), "n_basis": emulator.n_basis,
        "smoothing": repr(float(emulator.smoothing)),
    }
    return hashlib.sha256(_canonical(material).encode()).hexdigest()


def emulator_store_path(key: str, root=None) -> Path:
    """Where the emulator ``key`` lives: ``<cache root>/physics-<tag>/emulators/<key>.npz``."""
    from ..cache import default_cache_dir, physics_tag

    base = Path(root) if root is not None else default_cache_dir()
    return base / f"physics-{physics_tag()}" / "emulators" / f"{key}.npz"


def fit_or_load(emulator: Emulator, stimuli, store=True) -> tuple[Emulator, Path | None, bool]:
    """``emulator`` fitted to ``stimuli``, or the identical one saved by an earlier run: ``(emulator, path, reused)``.

    ``store``: ``True`` (the simulation cache's directory, ``$IPE_CACHE_DIR``
    or ``~/.cache/ipe/simulations``), a directory, or ``False`` (build, do not
    store). A freshly built emulator is saved the moment it is built, so a fit
    stopped during sampling, or run again, restarts in seconds. A stored file
    that does not load is rebuilt and replaced.
    """
    stimuli = as_stimulus_set(stimuli)
    if store is False or store is None:
        return emulator.fit(stimuli), None, False
    from ..cache import SimulationCache

    root = None if store is True else store.root if isinstance(store, SimulationCache) else Path(store)
    path = emulator_store_path(emulator_key(emulator, stimuli), root)
    if path.is_file():
        try:
            loaded = Emulator.load(path)
        except InputError:
            loaded = None
        if loaded is not None and loaded.matches(stimuli):
            loaded.set_params(workers=emulator.workers, progress=emulator.progress, backend=emulator.backend,
                              scheduler=emulator.scheduler, cache=emulator.cache, early_stop=emulator.early_stop)
            return loaded, path, True
    return fit_and_store(emulator, stimuli, path)


def fit_and_store(emulator, stimuli, path: Path):
    """Fit ``emulator`` (an :class:`Emulator` or a landing emulator) on ``stimuli`` and save it at ``path`` the
    moment it is built: ``(emulator, path, False)``, or ``(emulator, None, False)`` where the store cannot be
    written (a read-only cache must not cost the fit)."""
    emulator.fit(stimuli)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        emulator.save(path)
    except OSError:
        return emulator, None, False
    return emulator, path, False
