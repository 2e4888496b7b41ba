"""The density of a clicked position under the IPE: a kernel density over simulated landings, and its Monte Carlo error.

An emulator that keeps every rollout's value (:class:`~ipe.inference.landing.LandingEmulator`, or
:class:`~ipe.inference.emulator.Emulator` built with ``keep_samples=True``) holds, per stimulus and grid point of
the free noise parameters θ, the landings ``x_icr`` of its rollouts (common random numbers across the grid).
:class:`LandingDensity` turns them into the likelihood of one click ``y`` on stimulus i::

    p(y | θ, τ) = Σ_c w_c(θ) · (1/S) Σ_r Normal(y; x_icr, sqrt(h_ic² + τ²))

the landings at the corners c of the grid cell that holds θ, mixed with the multilinear weights ``w_c(θ)`` (the
density is interpolated, never the positions: between two modes it stays two modes), each landing a Gaussian kernel
of bandwidth ``h`` (:func:`kde_bandwidth`, centres variance-corrected: :func:`variance_corrected`) convolved with the
click noise τ. With ``k`` simulations behind each judgment the x's are means of ``k`` landings; a mean of ``n``
clicks reads bootstrap means of ``n`` landings (:data:`BOOTSTRAP_MEANS`, seeded).

θ may be one value for every observation (``ipe fit-landing``) or one per participant (``ipe fit``, hierarchical):
:meth:`LandingDensity.corners` takes tensors of any shape.

The emulator's own Monte Carlo error: :func:`emulator_mc_sd` measures how far another set of rollouts per grid point
would tilt the log-likelihood across a posterior's width (bootstrap over the rollouts, the same ones at every grid
point); :func:`emulator_mc_problem` turns more than :data:`MAX_MC_SD` nats into a failed convergence check.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping

import numpy as np
import torch

from ..errors import InputError
from ..seeding import stream_rng

BOOTSTRAP_MEANS = 200
"""Bootstrap means of n landings per stimulus and grid point behind the likelihood of a mean of n clicks."""
#: Bootstrap resamples of the emulator's rollouts behind :func:`emulator_mc_sd`.
MC_CHECK_BOOTSTRAP = 100
#: Nats: the largest Monte Carlo sd of the log-likelihood ratio across a posterior's width that a fit accepts.
MAX_MC_SD = 1.0
#: Nats: above this the Monte Carlo error is not a wobble of many rollouts but a few rollouts carrying some click
#: alone (the message says so: the 1/√rollouts guess of the rollouts needed is then rough).
RARE_MC_SD = 10.0


def kde_bandwidth(x: np.ndarray, floor: float) -> float:
    """A kernel bandwidth for the landings ``x`` by leave-one-out likelihood (robust to several modes).

    Candidates run from ``floor`` to Silverman's rule of thumb (log-spaced);
    the one that maximises the leave-one-out log density of the landings is
    taken. Ties at identical landings go to the smallest; fewer than three
    landings or no spread give ``floor``.
    """
    x = x[np.isfinite(x)]
    if len(x) < 3 or float(np.ptp(x)) <= floor:
        return floor
    sd = float(np.std(x, ddof=1))
    top = max(1.06 * sd * len(x) ** (-0.2), floor * 1.0001)
    hs = np.geomspace(floor, top, 24)
    d2 = (x[:, None] - x[None, :]) ** 2
    np.fill_diagonal(d2, np.inf)
    best, best_h = -np.inf, floor
    for h in hs:
        dens = np.exp(-0.5 * d2 / h**2).sum(axis=1) / ((len(x) - 1) * h * math.sqrt(2 * math.pi))
        score = float(np.sum(np.log(np.maximum(dens, 1e-300))))
        if score > best + 1e-9:
            best, best_h = score, float(h)
    return best_h


def variance_corrected(x: np.ndarray, h: float) -> np.ndarray:
    """Kernel centres whose Gaussian KDE of bandwidth ``h`` has the variance of ``x`` itself (Jones 1991).

    A kernel density adds ``h²`` to the variance of its sample; left in, a
    fit reads that extra spread as less noise. The centres are pulled
    towards their mean by ``sqrt(1 − h² / var(x))`` (all onto the mean when
    ``h² ≥ var(x)``), which keeps the mean and the variance and barely moves
    well-separated modes (there ``h`` is small beside the spread).
    """
    m = float(np.mean(x))
    v = float(np.var(x))
    if v <= 0:
        return x
    return m + (x - m) * math.sqrt(max(0.0, 1.0 - h * h / v))


class LandingDensity:
    """Per group (stimulus, n clicks per value) and grid point: kernel centres and kernel variance.

    ``source`` is a fitted emulator that keeps its rollouts: ``samples_``
    (``(n_stimuli, n_grid_points, n_samples)``, grid points in C order over
    ``grid_values_``), ``stimulus_ids_`` and ``grid_values_``. ``groups``
    lists the ``(stimulus index, n)`` pairs the observations belong to, ``k``
    the simulations averaged per judgment.
    """

    def __init__(self, source, groups: list[tuple[int, int]], k: int, seed: int):
        samples = source.samples_
        finite = samples[np.isfinite(samples)]
        spread = float(np.nanmean(np.nanstd(samples, axis=2))) if finite.size else 0.0
        span = float(np.ptp(finite)) if finite.size else 1.0
        # the narrowest kernel: a thousandth of the landings' span (a noise-free grid point has no spread)
        self.floor = max(1e-3 * span, 1e-3 * spread, 1e-9)
        n_g = samples.shape[1]
        # kernel rows per grid point: the most rollouts any pair has (an adaptive emulator stops some pairs early;
        # theirs are drawn again up to this many)
        width = max(int(np.isfinite(samples).sum(axis=2).max()), 1) if samples.size else 1
        self.rows = max(width, BOOTSTRAP_MEANS if any(n > 1 for _, n in groups) else width)
        centres = np.zeros((len(groups), n_g, self.rows))
        var = np.zeros((len(groups), n_g))
        for gi, (stim, n) in enumerate(groups):
            for g in range(n_g):
                x = samples[stim, g]
                x = x[np.isfinite(x)]
                rng = stream_rng(seed, "landing.kde", stim, g, n)
                if not len(x):
                    raise InputError(f"stimulus {source.stimulus_ids_[stim]!r}: no landing at grid point {g}")
                base = x if k == 1 else rng.choice(x, size=(len(x), k)).mean(axis=1)
                h = kde_bandwidth(base, self.floor)
                base = variance_corrected(base, h)
                if n == 1:
                    c = rng.choice(base, size=self.rows) if len(base) != self.rows else base
                    centres[gi, g] = c
                    var[gi, g] = h * h
                else:
                    b = rng.choice(base, size=(self.rows, n)).mean(axis=1)
                    hb = kde_bandwidth(b, self.floor / math.sqrt(n))
                    centres[gi, g] = variance_corrected(b, hb)
                    var[gi, g] = hb * hb + h * h / n
        self.centres = torch.as_tensor(centres, dtype=torch.float64)
        self.var = torch.as_tensor(var, dtype=torch.float64)
        self.n = torch.as_tensor([float(n) for _, n in groups], dtype=torch.float64)
        # the grid, for the multilinear weights
        self.names = list(source.grid_values_)
        self.values = [torch.as_tensor(source.grid_values_[n], dtype=torch.float64) for n in self.names]
        self.shape = [len(v) for v in self.values]
        strides, acc = [], 1
        for m in reversed(self.shape):
            strides.append(acc)
            acc *= m
        self.strides = list(reversed(strides))

    def corners(self, theta: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat grid indices of the cell that holds ``theta`` and their multilinear weights, ``(..., 2^d)`` each.

        Every ``theta[name]`` has the same shape (a scalar: one θ; ``(P,)``:
        one per participant); values outside the grid are clamped to it.
        """
        idx = [torch.zeros((), dtype=torch.long)]
        w = [torch.ones((), dtype=torch.float64)]
        for name, v, stride in zip(self.names, self.values, self.strides):
            t = theta[name].clamp(v[0], v[-1])
            found = torch.searchsorted(v, t.detach().reshape(-1), right=True).reshape(t.shape)
            lo = torch.clamp(found - 1, 0, len(v) - 2)
            frac = (t - v[lo]) / (v[lo + 1] - v[lo])
            idx = [i + lo * stride for i in idx] + [i + (lo + 1) * stride for i in idx]
            w = [x * (1 - frac) for x in w] + [x * frac for x in w]
        return torch.stack(idx, dim=-1), torch.stack(w, dim=-1)

    def loglik(self, theta: Mapping[str, torch.Tensor], tau: torch.Tensor, group: torch.Tensor,
               y: torch.Tensor) -> torch.Tensor:
        """Log density of each observation ``y``: its group's mixture at ``theta`` with click noise ``tau``."""
        return self.loglik_resampled(theta, tau, group, y, None)[0]

    def loglik_resampled(self, theta: Mapping[str, torch.Tensor], tau: torch.Tensor, group: torch.Tensor,
                         y: torch.Tensor, counts: torch.Tensor | None) -> torch.Tensor:
        """:meth:`loglik` with the kernel rows counted ``counts`` times (``(B, rows)``, a bootstrap of the
        rollouts, the same rows at every grid point) → ``(B, observations)``; ``None``: each row once."""
        idx, w = self.corners(theta)
        return self.loglik_at(idx, w, tau, group, y, counts)

    def loglik_at(self, idx: torch.Tensor, w: torch.Tensor, tau: torch.Tensor, group: torch.Tensor,
                  y: torch.Tensor, counts: torch.Tensor | None = None) -> torch.Tensor:
        """Log density of each observation at the corners ``idx`` with weights ``w`` (``(2^d,)`` shared by every
        observation, or ``(observations, 2^d)`` each its own) → ``(B, observations)`` (``B`` = 1 without
        ``counts``)."""
        cols = idx if idx.dim() > 1 else idx.expand(len(group), -1)
        c = self.centres[group[:, None], cols]  # (obs, corners, rows)
        sd = torch.sqrt(self.var[group[:, None], cols] + tau**2 / self.n[group][:, None])  # (obs, corners)
        sd = sd[..., None]
        lp = -0.5 * ((y[:, None, None] - c) / sd) ** 2 - torch.log(sd) - 0.5 * math.log(2 * math.pi)
        if counts is None:
            per_corner = (torch.logsumexp(lp, dim=2) - math.log(c.shape[2]))[None]
        else:
            per_corner = torch.logsumexp(lp[None] + torch.log(counts)[:, None, None, :], dim=3) - math.log(c.shape[2])
        return torch.logsumexp(per_corner + torch.log(w.clamp_min(1e-300)), dim=2)

    def sample_at(self, idx: torch.Tensor, w: torch.Tensor, tau: torch.Tensor, group: torch.Tensor,
                  gen: torch.Generator) -> torch.Tensor:
        """One draw per observation from its mixture (a corner by its weight, a kernel row uniformly, then the
        kernel and the click noise); ``idx`` and ``w`` as for :meth:`loglik_at`."""
        cols = idx if idx.dim() > 1 else idx.expand(len(group), -1)
        weights = (w if w.dim() > 1 else w.expand(len(group), -1)).clamp_min(0.0)
        corner = torch.multinomial(weights, 1, generator=gen)[:, 0]
        point = cols.gather(1, corner[:, None])[:, 0]
        row = torch.randint(self.centres.shape[2], (len(group),), generator=gen)
        centre = self.centres[group, point, row]
        sd = torch.sqrt(self.var[group, point] + tau**2 / self.n[group])
        return centre + sd * torch.randn(centre.shape, generator=gen, dtype=torch.float64)


def bootstrap_counts(rows: int, size: int, seed: int, stream: str) -> torch.Tensor:
    """``(size, rows)``: how often each of ``rows`` rollouts is drawn in ``size`` seeded bootstrap resamples."""
    rng = stream_rng(seed, stream)
    return torch.as_tensor(rng.multinomial(rows, np.full(rows, 1.0 / rows), size=size), dtype=torch.float64)


def emulator_mc_sd(total_loglik: Callable[[dict, torch.Tensor], torch.Tensor], centre: Mapping[str, float],
                   sd: Mapping[str, float], ranges: Mapping[str, tuple[float, float]],
                   counts: torch.Tensor) -> dict[str, float]:
    """The emulator's Monte Carlo error where a posterior sits: ``{parameter: sd}`` in nats.

    For each parameter of ``sd``, the log-likelihood ratio between
    ``centre`` ± one posterior sd (the others at ``centre``, clamped to
    ``ranges``) is recomputed on the bootstrap resamples ``counts`` of the
    rollouts (:func:`bootstrap_counts`); ``total_loglik(values, counts_chunk)``
    gives the summed log-likelihood per resample. Its sd is how far another
    set of rollouts would tilt the likelihood across the posterior's width.
    """
    out = {}
    with torch.no_grad():
        for n, step in sd.items():
            lo, hi = ranges[n]
            step = float(step) if math.isfinite(float(step)) else 0.0
            ends = []
            for t in (max(lo, centre[n] - step), min(hi, centre[n] + step)):
                values = {**centre, n: t}
                ends.append(torch.cat([total_loglik(values, counts[i:i + 10]) for i in range(0, len(counts), 10)]))
            out[n] = float(torch.std(ends[1] - ends[0])) if step > 0 else 0.0
    return out


def emulator_mc_problem(verdict, mc_sd: Mapping[str, float], n_samples: int, more: str) -> None:
    """Fail ``verdict`` (a :class:`~ipe.inference.diagnostics.Verdict`) when the worst of ``mc_sd`` is above
    :data:`MAX_MC_SD`, with advice naming the rollouts per grid point that would do (``more``: the option that
    sets them, and any other remedy)."""
    worst = max(mc_sd.items(), key=lambda kv: kv[1], default=None)
    if worst is None or worst[1] <= MAX_MC_SD:
        return
    need = int(math.ceil(n_samples * (worst[1] / MAX_MC_SD) ** 2 / 10.0) * 10)
    rare = ("; an error this large means some answer is explained by only one or a few rollouts (an outcome the "
            "emulator rarely draws), so the rollouts needed are a rough guess" if worst[1] > RARE_MC_SD else "")
    verdict.problems.append({
        "check": "emulator_mc", "parameter": worst[0], "value": worst[1], "threshold": MAX_MC_SD,
        "message": f"emulator Monte Carlo error: another set of {n_samples} rollouts per grid point "
                   f"would tilt the log-likelihood across the posterior of {worst[0]} by ±{worst[1]:.1f} "
                   f"nats (more than {MAX_MC_SD:g}): its interval is not to be trusted" + rare})
    verdict.advice.append(more.format(need=need))
    verdict.converged = False


__all__ = ["BOOTSTRAP_MEANS", "MAX_MC_SD", "MC_CHECK_BOOTSTRAP", "LandingDensity", "bootstrap_counts",
           "emulator_mc_problem", "emulator_mc_sd", "kde_bandwidth", "variance_corrected"]
