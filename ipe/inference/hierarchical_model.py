"""The hierarchical Bayesian IPE: fit σ, φ (and μ) to human judgments with Pyro and NUTS.

Model (for each free noise parameter θ with range [lo, hi])::

    θ_group            ~ Uniform(lo, hi)                       group value
    τ_θ                ~ HalfNormal(0.5)                        spread of participants (logit scale)
    z_θ,j              ~ Normal(0, 1)                           participant j
    θ_j = lo + (hi − lo) · sigmoid(logit((θ_group − lo)/(hi − lo)) + τ_θ · z_θ,j)

so ``θ_group`` is the median participant. Participant j's expected answer to
stimulus i is the IPE's Monte Carlo mean at θ_j, read from the
:class:`~ipe.inference.emulator.Emulator` (smooth and differentiable), scaled
to [0, 1] (``q_ij``; counts are divided by the scale's range). The response
model follows the scale (:class:`ipe.humans.ResponseScale`):

**Judgments rest on a few simulations** (``sims``; Battaglia et al. 2013
estimated 3–7). A judgment is then the mean of κ rollouts, not the IPE's
Monte Carlo mean: it scatters around q_ij with variance ``v_ij / κ``, where
``v_ij`` is the variance of one rollout's answer at θ_j (the emulated
spread, :meth:`Emulator.predict_sd`, on the scale of q). That scatter is
largest for stimuli the IPE is unsure about and vanishes for clear ones, and
the likelihood carries it: with ``sims="fit"`` (the default) κ is estimated,
``κ ~ LogNormal(log 5, 0.75)``; a number fixes it; ``None`` drops the term
(and the rating link is then the ordinal logistic of earlier versions).
Ignoring it biases the fit: on 30 synthetic participants × 60 towers made
with σ = φ = 0.2 and 3–7 rollouts per judgment, the homoscedastic model put
σ at 0.16 [0.13, 0.20] and φ at 0.22 [0.20, 0.24] (both intervals missing
the truth).

**The emulator is a Monte Carlo estimate too**, from n rollouts per grid
point with common random numbers, so its error for stimulus i is nearly the
same offset at every parameter value and for every participant. With
``emulator_error=True`` (the default, when ``sims`` is set) the model
carries it: ``q_ij ← q_ij + e_i · sd_ij / √n``, ``e_i ~ N(0, 1)`` per
stimulus. An adaptive emulator (``target_se``) gives each (grid point,
stimulus) pair its own n; the term then reads ``sd / √n`` from the
emulator's surface through every pair's own value
(:meth:`Emulator.predict_mc_se`). Treating the emulator as exact makes the posterior too narrow: the
same offsets shift every fit the same way.

``rating`` (e.g. 1–7), ordinal probit whose noise grows with the sampling
variance::

    η_ij = β · q_ij + b_j,    s_ij = sqrt(1 + β² · v_ij / κ)
    P(y = k) = Φ((c_k − η_ij)/s_ij) − Φ((c_{k−1} − η_ij)/s_ij)   (c_0 = −∞, c_K = +∞)
    β ~ HalfNormal(20), b_j = τ_b · w_j, τ_b ~ HalfNormal(1), cutpoints: c₁ ~ N(0, 10), gaps ~ HalfNormal(5)

``count`` (0–n) and ``probability`` (0–100), a censored, discretised normal
on the scale's integer levels::

    m_ij = low + (high − low) · (a + b · q_ij + b_j),   s_ij = (high − low) · sqrt(s₀² + b² · v_ij / κ)
    P(y = k) = Φ((k + ½ − m)/s) − Φ((k − ½ − m)/s), the end levels taking the tails
    a ~ N(0, 0.5), b ~ HalfNormal(2), s₀ ~ HalfNormal(0.3), b_j = τ_b · w_j, τ_b ~ HalfNormal(0.1)

``position`` (a clicked coordinate, e.g. where a ball lands: ``landing_x``),
the whole distribution of the IPE's simulated answers at θ_j, a kernel
density over the emulator's rollouts convolved with click noise τ
(:class:`~ipe.inference.landing_density.LandingDensity`: the densities at the
corners of the grid cell that holds θ_j, mixed with multilinear weights, so
a ball that goes either way round an obstacle stays two modes)::

    y − b_j ~ Σ_c w_c(θ_j) · (1/S) Σ_r Normal(x_icr, sqrt(h_ic² + τ²)),   τ ~ HalfNormal(0.1 · (high − low)),
    b_j = τ_b · w_j, τ_b ~ HalfNormal(0.05 · (high − low))

Each click is the answer of one noisy simulation, as the synthetic
participants of :func:`ipe.inference.landing.synthesize_landings` give
(``sims`` a whole number k: the mean of k simulations; ``"fit"`` and
``None`` read as one). The emulator must keep its rollouts
(``Emulator(keep_samples=True)``, which :func:`~ipe.inference.pipeline.fit_responses`
builds for a position scale, or a :class:`~ipe.inference.landing.LandingEmulator`);
its Monte Carlo error is measured after
the fit, not modelled (``HierarchicalFit.mc_sd_``). For data where only
per-stimulus means are known see :class:`ipe.inference.landing.LandingFit`.

The per-participant response bias b_j can be switched off
(``response_bias=False``). NUTS runs ``num_chains`` chains one after another
(each seeded from the user seed), so results do not depend on the machine's
process pool. The posterior is returned as an ArviZ ``InferenceData``
(built with ``arviz.from_dict``) with ``log_likelihood`` (for LOO/WAIC),
``posterior_predictive`` and ``observed_data`` groups.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ..errors import InputError
from ..humans import RANGES
from .emulator import Emulator
from .landing_density import LandingDensity


def prior_ranges(free: Sequence[str], ranges: Mapping[str, tuple[float, float]] | None,
                 emulator=None) -> dict[str, tuple[float, float]]:
    """Prior ranges: given ones, else the emulator grid's range (else :data:`ipe.humans.RANGES`).

    A prior reaching beyond the grid would let the posterior spill into the
    region where the emulator is held flat (it clamps to its grid), so a given
    range must lie inside the grid's.
    """
    base = RANGES
    grid = getattr(emulator, "grid_values_", None) or {}
    out = {}
    for name in free:
        default = (float(np.min(grid[name])), float(np.max(grid[name]))) if name in grid else \
            base.get(name, (None, None))
        lo, hi = (ranges or {}).get(name, default)
        if lo is None or not (math.isfinite(lo) and math.isfinite(hi)) or not lo < hi:
            raise InputError(f"parameter {name!r}: range must be two finite numbers lo < hi")
        if name in grid and (lo < default[0] - 1e-12 or hi > default[1] + 1e-12):
            raise InputError(f"parameter {name!r}: prior range {lo:g}:{hi:g} goes beyond the emulator's grid "
                             f"({default[0]:g} to {default[1]:g}), where the emulator is held flat; widen the grid "
                             "or narrow the range")
        out[name] = (float(lo), float(hi))
    return out


@dataclass(frozen=True)
class TrialData:
    """The response table as tensors: who answered which stimulus what, on which scale."""

    participant: torch.Tensor  # (T,) long
    stimulus: torch.Tensor  # (T,) long
    y: torch.Tensor  # (T,) float
    participants: list[str]
    stimulus_ids: list[str]
    kind: str
    low: float
    high: float


def prepare_trials(responses: pd.DataFrame, emulator: Emulator, scale) -> TrialData:
    """The checked response table as :class:`TrialData`, stimuli indexed in the emulator's order."""
    ids = emulator.stimulus_ids_
    index = {sid: i for i, sid in enumerate(ids)}
    unknown = sorted(set(responses["stimulus_id"]) - set(index))
    if unknown:
        raise InputError(f"responses: {len(unknown)} stimulus id(s) the emulator was not built for, e.g. "
                         f"{', '.join(map(repr, unknown[:3]))}")
    if responses.empty:
        raise InputError("responses: the table is empty")
    parts = sorted(map(str, responses["participant"].unique()))
    pidx = {p: j for j, p in enumerate(parts)}
    return TrialData(
        participant=torch.tensor([pidx[str(p)] for p in responses["participant"]], dtype=torch.long),
        stimulus=torch.tensor([index[s] for s in responses["stimulus_id"]], dtype=torch.long),
        y=torch.tensor(responses["response"].to_numpy(dtype=float), dtype=torch.float64),
        participants=parts, stimulus_ids=list(ids), kind=scale.kind, low=float(scale.low), high=float(scale.high),
    )


LINKS = ("linear", "power")
#: Offset that keeps the power link's slope finite at q = 0.
POWER_LINK_EPS = 0.02


def power_link(q: torch.Tensor, gamma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(g(q), g'(q))`` for ``g(q) = ((q + ε)^γ − ε^γ) / ((1 + ε)^γ − ε^γ)``, ``ε`` = :data:`POWER_LINK_EPS`.

    ``g`` maps [0, 1] onto [0, 1], increasing; γ = 1 is the identity, γ < 1
    compresses the top of the scale (Stevens' power law for magnitudes).
    ``q`` is clamped to [0, 1] first (emulator offsets can step outside it).
    """
    eps = POWER_LINK_EPS
    q = q.clamp(0.0, 1.0)
    norm = (1.0 + eps) ** gamma - eps ** gamma
    return ((q + eps) ** gamma - eps ** gamma) / norm, gamma * (q + eps) ** (gamma - 1.0) / norm


class HierarchicalModel:
    """The Pyro model and its likelihood, for one data set and one emulator."""

    def __init__(self, data: TrialData, emulator: Emulator, free: Sequence[str], ranges: dict[str, tuple[float, float]],
                 response_bias: bool = True, sims: float | str | None = "fit", emulator_error: bool = True,
                 link: str = "linear", hierarchical: bool = True, seed: int = 0):
        self.hierarchical = bool(hierarchical)
        if link != "linear" and data.kind not in ("count", "probability"):
            raise InputError(f"the {link} link is for count and probability scales; a {data.kind} scale's "
                             "cutpoints already map the IPE onto it")
        self.link = link
        missing = [f for f in free if f not in emulator.names_]  # an emulator with no names: fixed predictions
        if missing:
            raise InputError(f"the emulator does not vary {', '.join(missing)} (it varies {', '.join(emulator.names_)})")
        self.data = data
        self.emulator = emulator
        self.free = tuple(free)
        self.ranges = ranges
        self.response_bias = response_bias
        self.sims = sims if sims is None or sims == "fit" else float(sims)
        if self.sims is not None and data.kind != "position" and getattr(emulator, "grid_sd_", None) is None:
            raise InputError("this emulator has no spreads (saved by an older ipe): rebuild it, or fit with sims=None")
        # The emulator is a Monte Carlo estimate from n rollouts per grid point, with common random numbers: its
        # error is an offset per stimulus, about sd/√n, shared by every participant. Modelled, not ignored.
        n_emu = getattr(emulator, "n_samples", None)
        self.emulator_error = bool(emulator_error and self.sims is not None and data.kind != "position"
                                   and isinstance(n_emu, (int, np.integer)) and n_emu > 0)
        self._emu_scale = 1.0 / math.sqrt(n_emu) if self.emulator_error else 0.0
        # An adaptive emulator (target_se) stopped some pairs early: their error is sd/√n with their own n, read
        # from the emulator's surface through sd/√n instead of scaling the spread by the cap's 1/√n.
        counts_vary = getattr(emulator, "counts_vary", None)
        self._pair_se = bool(self.emulator_error and counts_vary is not None and counts_vary())
        self.n_participants = len(data.participants)
        self.n_levels = int(round(data.high - data.low)) + 1
        # emulator columns in the emulator's own order; non-free ones held at their grid minimum
        self._fixed_cols = {n: float(emulator.grid_values_[n][0]) for n in emulator.names_ if n not in self.free}
        self.density = self._position_density(seed) if data.kind == "position" else None
        self.likelihood = "kde" if self.density is not None else None

    def _position_density(self, seed: int) -> LandingDensity:
        """The kernel density of every stimulus's simulated answers (one group per stimulus, index = stimulus)."""
        if getattr(self.emulator, "samples_", None) is None:
            raise InputError("emulator: keeps no rollouts, and a position scale is fitted on the whole simulated "
                             "distribution (an emulator saved by an older ipe, or built for another scale): rebuild "
                             "it with keep_samples=True, or let ipe fit build it")
        k = 1 if self.sims is None or self.sims == "fit" else self.sims
        if k != int(k):
            raise InputError(f"sims: a position click is the mean of a whole number of simulations, got {k:g}")
        self.sims = float(k)  # what the density reads ("fit" and None mean one simulation): params.json says so
        return LandingDensity(self.emulator, [(i, 1) for i in range(len(self.data.stimulus_ids))], int(k), seed)

    # -- parameters → participant values
    def participant_values(self, group: dict[str, torch.Tensor], tau: dict[str, torch.Tensor],
                           z: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {}
        for n in self.free:
            lo, hi = self.ranges[n]
            frac = ((group[n] - lo) / (hi - lo)).clamp(1e-6, 1 - 1e-6)
            u = torch.logit(frac).unsqueeze(-1) + tau[n].unsqueeze(-1) * z[n]
            out[n] = lo + (hi - lo) * torch.sigmoid(u)
        return out

    def _columns(self, values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every emulator parameter per participant, in the emulator's order: the free ones' values, the others
        held at their grid minimum."""
        shape = (self.n_participants,)
        return {n: values[n] if n in values else torch.full(shape, self._fixed_cols[n], dtype=torch.float64)
                for n in self.emulator.names_}

    def expected(self, values: dict[str, torch.Tensor]) -> torch.Tensor:
        """q: the model's expected answer scaled to [0, 1], shape (participants, stimuli) (not for a position
        scale, whose likelihood reads the density of the answers, :meth:`_position_corners`)."""
        cols = list(self._columns(values).values())
        shape = (self.n_participants,)
        theta = torch.stack(cols, dim=-1) if cols else torch.zeros(shape + (0,), dtype=torch.float64)
        need_sd = self.sims is not None
        joint = getattr(self.emulator, "predict_with_sd", None) if need_sd else None
        if joint is not None and self._pair_se:
            pred, sd, self._mc_se = joint(theta, mc_se=True)
        elif joint is not None:
            pred, sd = joint(theta)
        else:
            pred = self.emulator.predict(theta)
            sd = self.emulator.predict_sd(theta) if need_sd else None
        if self.sims is not None:  # one rollout's spread, on the scale of q
            self._spread = sd / (self.data.high - self.data.low) if self.data.kind == "count" else sd
        if self.data.kind == "count":
            pred = pred / (self.data.high - self.data.low)
        return pred.clamp(0.0, 1.0)

    def _with_emulator_error(self, q: torch.Tensor, s: dict[str, torch.Tensor]) -> torch.Tensor:
        """q plus the emulator's Monte Carlo error of each stimulus, ``e_i · sd_ij / √n``, ``e_i ~ N(0, 1)``
        (``n`` each pair's own rollout count when an adaptive emulator stopped some early)."""
        if not self.emulator_error:
            return q
        d = self.data
        if self._pair_se:
            se = self._mc_se / (d.high - d.low) if d.kind == "count" else self._mc_se  # on the scale of q
            return q + s["e_emu"][d.stimulus] * se[d.participant, d.stimulus]
        return q + s["e_emu"][d.stimulus] * self._spread[d.participant, d.stimulus] * self._emu_scale

    def _sampling_var(self, s: dict[str, torch.Tensor], gain: torch.Tensor) -> torch.Tensor | float:
        """Variance that judging from κ simulations adds to the latent response: ``gain² · sd_ij² / κ``."""
        if self.sims is None:
            return 0.0
        d = self.data
        kappa = s["k_sims"] if self.sims == "fit" else self.sims
        return (gain * self._spread[d.participant, d.stimulus]) ** 2 / kappa

    def _linked(self, q: torch.Tensor, s: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(g(q), g'(q))``: the response link of count and probability scales (identity for ``linear``)."""
        if self.link == "linear":
            return q, torch.ones_like(q)
        return power_link(q, s["link_gamma"])

    # -- likelihood
    def _complete(self, s: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Without the hierarchy, every participant sits at the group value: τ = 0, z = 0."""
        if self.hierarchical:
            return s
        s = dict(s)
        for n in self.free:
            s.setdefault(f"tau_{n}", torch.zeros((), dtype=torch.float64))
            s.setdefault(f"z_{n}", torch.zeros(self.n_participants, dtype=torch.float64))
        return s

    def _participants(self, s: dict[str, torch.Tensor]):
        """``(s, values, bias)``: the completed sample values, each participant's noise values and each trial's
        response bias."""
        s = self._complete(s)
        values = self.participant_values({n: s[n] for n in self.free}, {n: s[f"tau_{n}"] for n in self.free},
                                         {n: s[f"z_{n}"] for n in self.free})
        bias = (s["tau_bias"] * s["z_bias"])[self.data.participant] if self.response_bias else 0.0
        return s, values, bias

    def _trial_means(self, s: dict[str, torch.Tensor]):
        """``(s, q, bias)``: the completed sample values, each trial's emulated answer and its participant's bias."""
        d = self.data
        s, values, bias = self._participants(s)
        return s, self._with_emulator_error(self.expected(values)[d.participant, d.stimulus], s), bias

    def _position_corners(self, s: dict[str, torch.Tensor]):
        """``(s, idx, w, bias)``: each trial's grid corners and weights at its participant's θ_j, and bias."""
        d = self.data
        s, values, bias = self._participants(s)
        idx, w = self.density.corners(self._columns(values))  # (participants, 2^d)
        return s, idx[d.participant], w[d.participant], bias

    def trial_log_lik(self, s: dict[str, torch.Tensor], counts: torch.Tensor | None = None) -> torch.Tensor:
        """Log likelihood of every trial given one set of sampled values → (T,).

        ``counts`` (position scale only): the emulator's rollouts counted so
        many times, ``(B, rows)`` (a bootstrap of them) → ``(B, T)``."""
        d = self.data
        if d.kind == "position":
            s, idx, w, bias = self._position_corners(s)
            ll = self.density.loglik_at(idx, w, s["motor_sd"], d.stimulus, d.y - bias, counts)
            return ll if counts is not None else ll[0]
        s, q, bias = self._trial_means(s)
        if d.kind == "rating":
            eta = s["beta"] * q + bias
            cut = self._cutpoints(s)
            k = (d.y - d.low).long()
            upper = torch.cat([cut, torch.tensor([math.inf], dtype=cut.dtype)])
            lower = torch.cat([torch.tensor([-math.inf], dtype=cut.dtype), cut])
            if self.sims is None:  # ordinal logistic
                p_hi = torch.sigmoid(upper[k] - eta)
                p_lo = torch.sigmoid(lower[k] - eta)
            else:  # ordinal probit whose noise grows with the IPE's spread
                scale = torch.sqrt(1.0 + self._sampling_var(s, s["beta"]))
                # finite stand-ins for ±inf at the end levels, so no 0 · inf reaches the gradient
                up = torch.cat([cut, cut[..., -1:] + 1.0])[k]
                low = torch.cat([cut[..., :1] - 1.0, cut])[k]
                top = k == self.n_levels - 1
                p_hi = torch.where(top, torch.ones_like(eta), torch.special.ndtr((up - eta) / scale))
                p_lo = torch.where(k == 0, torch.zeros_like(eta), torch.special.ndtr((low - eta) / scale))
            return torch.log((p_hi - p_lo).clamp_min(1e-12))
        width = d.high - d.low
        g, slope = self._linked(q, s)
        m = d.low + width * (s["a"] + s["b"] * g + bias)
        sd = width * torch.sqrt(s["s0"] ** 2 + self._sampling_var(s, s["b"] * slope))
        hi = torch.where(d.y >= d.high, torch.tensor(math.inf, dtype=m.dtype), (d.y + 0.5 - m) / sd)
        lo = torch.where(d.y <= d.low, torch.tensor(-math.inf, dtype=m.dtype), (d.y - 0.5 - m) / sd)
        return torch.log((torch.special.ndtr(hi) - torch.special.ndtr(lo)).clamp_min(1e-12))

    def _cutpoints(self, s):
        gaps = s["cut_gaps"]
        first = s["cut_first"].unsqueeze(-1)
        return torch.cat([first, first + torch.cumsum(gaps, dim=-1)], dim=-1)

    def sample_responses(self, s: dict[str, torch.Tensor], gen: torch.Generator) -> torch.Tensor:
        """One posterior-predictive draw of every trial's response → (T,)."""
        d = self.data
        if d.kind == "position":
            s, idx, w, bias = self._position_corners(s)
            return self.density.sample_at(idx, w, s["motor_sd"], d.stimulus, gen) + bias
        s, q, bias = self._trial_means(s)
        if d.kind == "rating":
            eta = s["beta"] * q + bias
            cut = self._cutpoints(s)
            if self.sims is None:
                u = torch.rand(eta.shape, generator=gen, dtype=torch.float64)
                latent = eta + torch.log(u) - torch.log1p(-u)  # logistic noise
            else:
                scale = torch.sqrt(1.0 + self._sampling_var(s, s["beta"]))
                latent = eta + scale * torch.randn(eta.shape, generator=gen, dtype=torch.float64)
            return d.low + (latent.unsqueeze(-1) > cut).sum(-1).to(torch.float64)
        width = d.high - d.low
        g, slope = self._linked(q, s)
        m = d.low + width * (s["a"] + s["b"] * g + bias)
        sd = width * torch.sqrt(s["s0"] ** 2 + self._sampling_var(s, s["b"] * slope))
        noise = torch.randn(m.shape, generator=gen, dtype=torch.float64) * sd
        return torch.round(m + noise).clamp(d.low, d.high)

    def global_sites(self) -> tuple[str, ...]:
        """The sample sites shared by every trial (group values, spreads, response map): NUTS adapts a dense mass
        matrix over them (they trade off against each other, e.g. σ against the slope b), a diagonal one over the
        per-participant and per-stimulus effects."""
        names = list(self.free)
        if self.hierarchical:
            names += [f"tau_{n}" for n in self.free]
        if self.response_bias:
            names.append("tau_bias")
        if self.sims == "fit" and self.data.kind != "position":
            names.append("k_sims")
        kind = self.data.kind
        names += (["beta", "cut_first", "cut_gaps"] if kind == "rating" else ["motor_sd"] if kind == "position"
                  else ["a", "b", "s0"] + (["link_gamma"] if self.link == "power" else []))
        return tuple(names)

    # -- the Pyro model
    def model(self):
        import pyro  # imported when a model is sampled: `import ipe.inference` stays light
        import pyro.distributions as dist

        d = self.data
        P = self.n_participants
        s: dict[str, torch.Tensor] = {}
        f64 = dict(dtype=torch.float64)
        for n in self.free:
            lo, hi = self.ranges[n]
            s[n] = pyro.sample(n, dist.Uniform(torch.tensor(lo, **f64), torch.tensor(hi, **f64)))
            if self.hierarchical:  # non-centred: participant j at logit⁻¹(logit(group) + τ · z_j), z_j ~ N(0, 1)
                s[f"tau_{n}"] = pyro.sample(f"tau_{n}", dist.HalfNormal(torch.tensor(0.5, **f64)))
                s[f"z_{n}"] = pyro.sample(f"z_{n}", dist.Normal(torch.zeros(P, **f64), 1.0).to_event(1))
        if self.response_bias:
            scale = 1.0 if d.kind == "rating" else 0.05 * (d.high - d.low) if d.kind == "position" else 0.1
            s["tau_bias"] = pyro.sample("tau_bias", dist.HalfNormal(torch.tensor(scale, **f64)))
            s["z_bias"] = pyro.sample("z_bias", dist.Normal(torch.zeros(P, **f64), 1.0).to_event(1))
        if self.emulator_error:
            S = len(d.stimulus_ids)
            s["e_emu"] = pyro.sample("e_emu", dist.Normal(torch.zeros(S, **f64), 1.0).to_event(1))
        if self.sims == "fit" and d.kind != "position":
            s["k_sims"] = pyro.sample("k_sims", dist.LogNormal(torch.tensor(math.log(5.0), **f64), 0.75))
        if d.kind == "rating":
            s["beta"] = pyro.sample("beta", dist.HalfNormal(torch.tensor(20.0, **f64)))
            s["cut_first"] = pyro.sample("cut_first", dist.Normal(torch.tensor(0.0, **f64), 10.0))
            s["cut_gaps"] = pyro.sample("cut_gaps", dist.HalfNormal(torch.full((self.n_levels - 2,), 5.0, **f64))
                                        .to_event(1))
        elif d.kind == "position":
            s["motor_sd"] = pyro.sample("motor_sd", dist.HalfNormal(torch.tensor(0.1 * (d.high - d.low), **f64)))
        else:
            s["a"] = pyro.sample("a", dist.Normal(torch.tensor(0.0, **f64), 0.5))
            s["b"] = pyro.sample("b", dist.HalfNormal(torch.tensor(2.0, **f64)))
            s["s0"] = pyro.sample("s0", dist.HalfNormal(torch.tensor(0.3, **f64)))
            if self.link == "power":
                s["link_gamma"] = pyro.sample("link_gamma", dist.LogNormal(torch.tensor(0.0, **f64), 1.0))
        pyro.factor("y", self.trial_log_lik(s).sum())
