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
stimulus. Treating the emulator as exact makes the posterior too narrow: the
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
Gaussian around the IPE's mean ``m_ij`` with the IPE's own spread ``s_ij``
(the sd across rollouts, :meth:`Emulator.predict_sd`) plus click noise τ::

    y ~ Normal(m_ij + b_j, sqrt(s_ij² + τ²)),   τ ~ HalfNormal(0.1 · (high − low)),
    b_j = τ_b · w_j, τ_b ~ HalfNormal(0.05 · (high − low))

(the answer of one noisy simulation, as the synthetic participants of
:func:`ipe.inference.landing.synthesize_landings` give). For data where only
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
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ..errors import InputError
from ..estimator import ParamsMixin
from ..fileio import write_csv, write_json
from .emulator import Emulator

DEFAULT_RANGES = {"sigma": (0.0, 1.0), "phi": (0.0, 1.0), "mu": (0.0, 1.0)}


def _ranges(free: Sequence[str], ranges: Mapping[str, tuple[float, float]] | None,
            emulator=None) -> dict[str, tuple[float, float]]:
    """Prior ranges: given ones, else the emulator grid's range (else :data:`ipe.humans.RANGES`).

    A prior reaching beyond the grid would let the posterior spill into the
    region where the emulator is held flat (it clamps to its grid), so a given
    range must lie inside the grid's.
    """
    try:
        from ..humans import RANGES as base
    except ImportError:  # pragma: no cover
        base = DEFAULT_RANGES
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
class _Data:
    participant: torch.Tensor  # (T,) long
    stimulus: torch.Tensor  # (T,) long
    y: torch.Tensor  # (T,) float
    participants: list[str]
    stimulus_ids: list[str]
    kind: str
    low: float
    high: float


def _prepare(responses: pd.DataFrame, emulator: Emulator, scale) -> _Data:
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
    return _Data(
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

    def __init__(self, data: _Data, emulator: Emulator, free: Sequence[str], ranges: dict[str, tuple[float, float]],
                 response_bias: bool = True, sims: float | str | None = "fit", emulator_error: bool = True,
                 link: str = "linear", hierarchical: bool = True):
        self.hierarchical = bool(hierarchical)
        if link not in LINKS:
            raise InputError(f"link must be one of {', '.join(LINKS)}, got {link!r}")
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
        self.sims = _check_sims(sims)
        if self.sims is not None and data.kind != "position" and getattr(emulator, "grid_sd_", None) is None:
            raise InputError("this emulator has no spreads (saved by an older ipe): rebuild it, or fit with sims=None")
        # The emulator is a Monte Carlo estimate from n rollouts per grid point, with common random numbers: its
        # error is an offset per stimulus, about sd/√n, shared by every participant. Modelled, not ignored.
        n_emu = getattr(emulator, "n_samples", None)
        self.emulator_error = bool(emulator_error and self.sims is not None and data.kind != "position"
                                   and isinstance(n_emu, (int, np.integer)) and n_emu > 0)
        self._emu_scale = 1.0 / math.sqrt(n_emu) if self.emulator_error else 0.0
        self.n_participants = len(data.participants)
        self.n_levels = int(round(data.high - data.low)) + 1
        # emulator columns in the emulator's own order; non-free ones held at their grid minimum
        self._fixed_cols = {n: float(emulator.grid_values_[n][0]) for n in emulator.names_ if n not in self.free}

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

    def expected(self, values: dict[str, torch.Tensor]) -> torch.Tensor:
        """q: the model's expected answer scaled to [0, 1], shape (participants, stimuli)."""
        shape = (self.n_participants,)
        cols = []
        for n in self.emulator.names_:
            cols.append(values[n] if n in values else torch.full(shape, self._fixed_cols[n], dtype=torch.float64))
        theta = torch.stack(cols, dim=-1) if cols else torch.zeros(shape + (0,), dtype=torch.float64)
        need_sd = self.data.kind == "position" or self.sims is not None
        joint = getattr(self.emulator, "predict_with_sd", None) if need_sd else None
        if joint is not None:
            pred, sd = joint(theta)
        else:
            pred = self.emulator.predict(theta)
            sd = self.emulator.predict_sd(theta) if need_sd else None
        if self.data.kind == "position":  # raw coordinates; the spread comes from predict_sd
            self._spread = sd
            return pred
        if self.sims is not None:  # one rollout's spread, on the scale of q
            self._spread = sd / (self.data.high - self.data.low) if self.data.kind == "count" else sd
        if self.data.kind == "count":
            pred = pred / (self.data.high - self.data.low)
        return pred.clamp(0.0, 1.0)

    def _with_emulator_error(self, q: torch.Tensor, s: dict[str, torch.Tensor]) -> torch.Tensor:
        """q plus the emulator's Monte Carlo error of each stimulus, ``e_i · sd_ij / √n``, ``e_i ~ N(0, 1)``."""
        if not self.emulator_error:
            return q
        d = self.data
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

    def trial_log_lik(self, s: dict[str, torch.Tensor]) -> torch.Tensor:
        """Log likelihood of every trial given one set of sampled values → (T,)."""
        d = self.data
        s = self._complete(s)
        values = self.participant_values({n: s[n] for n in self.free}, {n: s[f"tau_{n}"] for n in self.free},
                                         {n: s[f"z_{n}"] for n in self.free})
        q = self._with_emulator_error(self.expected(values)[d.participant, d.stimulus], s)
        bias = (s["tau_bias"] * s["z_bias"])[d.participant] if self.response_bias else 0.0
        if d.kind == "position":
            sd = torch.sqrt(self._spread[d.participant, d.stimulus] ** 2 + s["motor_sd"] ** 2)
            return -0.5 * ((d.y - q - bias) / sd) ** 2 - torch.log(sd) - 0.5 * math.log(2 * math.pi)
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
        s = self._complete(s)
        values = self.participant_values({n: s[n] for n in self.free}, {n: s[f"tau_{n}"] for n in self.free},
                                         {n: s[f"z_{n}"] for n in self.free})
        q = self._with_emulator_error(self.expected(values)[d.participant, d.stimulus], s)
        bias = (s["tau_bias"] * s["z_bias"])[d.participant] if self.response_bias else 0.0
        if d.kind == "position":
            sd = torch.sqrt(self._spread[d.participant, d.stimulus] ** 2 + s["motor_sd"] ** 2)
            return q + bias + sd * torch.randn(q.shape, generator=gen, dtype=torch.float64)
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
        import pyro
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


def _best_start(model, candidates: int) -> dict[str, torch.Tensor] | None:
    """The most probable of ``candidates`` random starting points (Pyro's ``init_to_uniform``), or None for one.

    NUTS started far out in the noise range (σ, φ near 1, where every tower
    falls and the predictions carry no information) can stay there: a
    second, poor mode. Starting each chain from the best of a few random
    points avoids it at the cost of a few density evaluations.
    """
    if candidates <= 1:
        return None
    from pyro.infer.mcmc.util import initialize_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        params, potential, _, _ = initialize_model(model, num_chains=candidates)
        energies = [float(potential({k: v[i] for k, v in params.items()})) for i in range(candidates)]
    energies = [e if math.isfinite(e) else math.inf for e in energies]
    best = int(np.argmin(energies))
    return {k: v[best] for k, v in params.items()}


def _constrained(model, unconstrained: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Constrained values of a point given in Pyro's unconstrained space (for ``init_to_value``)."""
    from pyro.infer.mcmc.util import initialize_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, _, transforms, _ = initialize_model(model)
    return {k: (transforms[k].inv(v) if k in transforms else v) for k, v in unconstrained.items()}


class FitStopped(RuntimeError):
    """``max_time`` ran out before the first draw: there is no posterior to save."""


def _check_sims(sims):
    """``sims``: ``"fit"`` (estimate κ), a number ≥ 1 (fixed κ) or ``None`` (no sampling variance)."""
    if sims is None or sims == "fit":
        return sims
    if isinstance(sims, bool) or not isinstance(sims, (int, float)) or not math.isfinite(sims) or sims < 1:
        raise InputError(f"sims must be 'fit', a number >= 1 or None, got {sims!r}")
    return float(sims)


def _seed_for(seed: int, *key: int) -> int:
    return int(np.random.SeedSequence(int(seed), spawn_key=tuple(key)).generate_state(1)[0])


#: Chains shorter than this run without the JIT: tracing costs seconds that a short chain never wins back.
JIT_MIN_STEPS = 50
#: Fewer participants than this and ``hierarchy="auto"`` fits the group-level model (see HierarchicalFit).
MIN_PARTICIPANTS = 3
METHODS = ("nuts", "svi")
INTERVAL = "90% equal-tailed interval (5% and 95% posterior quantiles)"
"""The one kind of interval every fit output reports (printed tables, params.json, diagnostics.csv)."""


def _check_hierarchy(value):
    if value in ("auto", True, False):
        return value
    raise InputError(f"hierarchy must be 'auto', True or False, got {value!r}")


class HierarchicalFit(ParamsMixin):
    """Fit the hierarchical IPE to a tidy response table (scikit-learn style).

    Parameters
    ----------
    free:
        The free noise parameters (among ``sigma``, ``phi``, ``mu``).
    ranges:
        ``{name: (lo, hi)}`` prior ranges; default: the emulator grid's range
        for each parameter (a given range must lie inside it: outside, the
        emulator is held flat).
    scale:
        The response scale: a :class:`ipe.humans.ResponseScale` or its text, e.g. ``"rating:1-7"``
        (required; ``ipe.humans.scale_for_stimuli(stimuli)`` gives a stimulus set's default).
    num_warmup, num_samples, num_chains:
        NUTS settings; chains run one after another. With ``method="svi"``,
        ``num_samples × num_chains`` draws come from the fitted guide.
    seed:
        Seeds every chain and the posterior-predictive draws.
    response_bias:
        Per-participant response bias.
    jit:
        Compile the potential energy with the PyTorch JIT (faster per step; chains of fewer than
        :data:`JIT_MIN_STEPS` steps skip it, as tracing would cost more than it saves).
    sims:
        How many simulations a judgment rests on: ``"fit"`` (estimate κ),
        a number ≥ 1 (fixed κ), or ``None`` (no sampling variance; see the
        module docstring).
    emulator_error:
        Model the emulator's Monte Carlo error as a per-stimulus offset
        ``e_i · sd_ij / √n`` (``n`` rollouts per grid point); needs ``sims``.
    link:
        Count and probability scales: ``"linear"`` (the mean answer is
        ``a + b·q``) or ``"power"`` (``a + b·g(q)``, ``g`` a power law with
        a fitted exponent γ, :func:`power_link`: people's counts may grow
        more slowly than the simulated ones).
    method:
        ``"nuts"`` (default) or ``"svi"``: a quick approximate posterior from
        an AutoNormal guide (no convergence diagnostics; see
        ``docs/svi-vs-nuts.md``).
    hierarchy:
        ``"auto"`` (default): participant effects (non-centred) when there
        are at least :data:`MIN_PARTICIPANTS` participants, else the
        group-level model (one value per parameter for everyone, no
        per-participant bias) with a warning; ``True``/``False`` force it.
    init:
        ``"svi"`` (default): each chain starts from its own draw of a quick
        AutoNormal fit (``svi_steps`` Adam steps); ``"random"``: from the most
        probable of ``init_candidates`` random points.
    init_candidates:
        With ``init="random"``, each chain starts from the most probable of
        this many random points (1: one random point, Pyro's default).
    svi_steps:
        Adam steps of the AutoNormal fit (the NUTS start, or ``method="svi"``).
    dense_mass:
        Adapt a dense mass matrix over the parameters every trial shares
        (:meth:`HierarchicalModel.global_sites`), a diagonal one over the
        rest; ``False`` (default): diagonal throughout.
    max_time:
        Seconds after which sampling stops and the fit keeps the draws it has
        (``stopped_early_``; the verdict says so). ``None``: no limit.
    progress:
        ``None``: a bar in a terminal; ``True``: also plain lines every few
        seconds when stderr is not a terminal; ``False``: silent
        (:mod:`ipe.progress`).

    Notes
    -----
    Fitted attributes: ``idata_`` (ArviZ InferenceData), ``params_``
    (``{name: {mean, sd, q05, q95}}``), ``summary_`` (diagnostics table with
    mean, sd, the :data:`INTERVAL`, R-hat and ESS), ``verdict_`` (the
    convergence :class:`~ipe.inference.diagnostics.Verdict`), ``k_sims_``
    (κ's ``{mean, sd, q05, q95}`` when it is fitted), ``link_gamma_`` (γ's,
    with ``link="power"``), ``participants_`` (posterior means of each
    participant's values), ``ppc_`` (observed vs posterior-predictive
    stimulus means), ``hierarchical_`` (whether participant effects were
    fitted), ``stopped_early_``, ``model_`` (the :class:`HierarchicalModel`).
    After fitting, a failed convergence check issues a
    :class:`~ipe.inference.diagnostics.ConvergenceWarning` and a posterior
    at the grid's edge an :class:`~ipe.inference.diagnostics.EdgeWarning`.
    """

    def __init__(self, free: Sequence[str] = ("sigma", "phi"), ranges: Mapping[str, tuple[float, float]] | None = None,
                 scale=None, num_warmup: int = 300, num_samples: int = 300, num_chains: int = 2, seed: int = 0,
                 response_bias: bool = True, target_accept: float = 0.85, max_tree_depth: int = 8,
                 jit: bool = True, progress: bool | None = None, sims: float | str | None = "fit",
                 emulator_error: bool = True, init_candidates: int = 20, link: str = "linear",
                 method: str = "nuts", hierarchy="auto", init: str = "svi", svi_steps: int = 500,
                 max_time: float | None = None, dense_mass: bool = False):
        self.free = free
        self.dense_mass = dense_mass
        self.ranges = ranges
        self.scale = scale
        self.num_warmup = num_warmup
        self.num_samples = num_samples
        self.num_chains = num_chains
        self.seed = seed
        self.response_bias = response_bias
        self.target_accept = target_accept
        self.max_tree_depth = max_tree_depth
        self.jit = jit
        self.progress = progress
        self.sims = sims
        self.emulator_error = emulator_error
        self.init_candidates = init_candidates
        self.link = link
        self.method = method
        self.hierarchy = hierarchy
        self.init = init
        self.svi_steps = svi_steps
        self.max_time = max_time

    def _check_options(self) -> None:
        for n in ("num_warmup", "num_samples", "num_chains", "init_candidates", "svi_steps"):
            v = getattr(self, n)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InputError(f"{n} must be a positive integer, got {v!r}")
        if self.method not in METHODS:
            raise InputError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.init not in ("svi", "random"):
            raise InputError(f"init must be 'svi' or 'random', got {self.init!r}")
        _check_hierarchy(self.hierarchy)
        t = self.max_time
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not t > 0
                              or not math.isfinite(t)):
            raise InputError(f"max_time must be a positive number of seconds or None, got {t!r}")

    def fit(self, responses: pd.DataFrame, emulator: Emulator) -> "HierarchicalFit":
        import pyro

        from ..progress import progress_bar
        from . import diagnostics
        from .sampling import one_torch_thread, run_nuts_chain, run_svi

        started = time.monotonic()
        free = tuple(self.free)
        self._check_options()
        deadline = started + self.max_time if self.max_time is not None else None
        scale = self.scale
        if scale is None:
            raise InputError("fit: a response scale is needed, e.g. HierarchicalFit(scale='rating:1-7') or "
                             "scale=ipe.humans.scale_for_stimuli(stimuli)")
        if isinstance(scale, str):
            from ..humans import ResponseScale

            scale = ResponseScale.parse(scale)
        data = _prepare(responses, emulator, scale)
        ranges = _ranges(free, self.ranges, emulator)
        n_people = len(data.participants)
        hierarchical = self.hierarchy if isinstance(self.hierarchy, bool) else n_people >= MIN_PARTICIPANTS
        self.notes_ = []
        if not free:
            hierarchical = True  # no noise parameters: only the response bias is per participant
        elif self.hierarchy == "auto" and not hierarchical:
            self.notes_.append(
                f"{n_people} participant{'s' if n_people != 1 else ''} barely identif{'y' if n_people != 1 else 'ies'}"
                f" the hierarchy (a spread across participants needs at least {MIN_PARTICIPANTS}, better 10 or "
                "more): fitting the group-level model instead (one value of each parameter for everyone, no "
                "per-participant bias); hierarchy=True forces participant effects")
            warnings.warn(self.notes_[-1], UserWarning, stacklevel=2)
        bias = self.response_bias and (hierarchical or not free)
        model = HierarchicalModel(data, emulator, free, ranges, bias, self.sims, self.emulator_error,
                                  self.link, hierarchical=hierarchical)
        self.model_ = model
        self.emulator_ = emulator
        self.hierarchical_ = hierarchical
        show = self.progress
        chains: list[dict[str, np.ndarray]] = []
        diverging, depths = [], []
        stopped = False
        steps = self.num_chains * (self.num_warmup + self.num_samples) if self.method == "nuts" else 0
        bar = progress_bar(self.svi_steps + steps, show, desc="fit", unit="step")
        threads = one_torch_thread()
        threads.__enter__()
        try:
            if self.method == "svi":
                pyro.set_rng_seed(_seed_for(self.seed, 3) % (2 ** 32))
                bar.set_description("SVI (AutoNormal)")
                svi = run_svi(model.model, steps=self.svi_steps, bar=bar, deadline=deadline)
                stopped = svi.stopped
                self.svi_losses_ = svi.losses
                draws = svi.draw(self.num_samples * self.num_chains)
                chains = [draws]
                diverging = [np.zeros(len(next(iter(draws.values()))), dtype=bool)]
            else:
                starts: list = [None] * self.num_chains
                if self.init == "svi":
                    pyro.set_rng_seed(_seed_for(self.seed, 3) % (2 ** 32))
                    bar.set_description("start (SVI)")
                    svi = run_svi(model.model, steps=self.svi_steps, bar=bar, deadline=deadline)
                    self.svi_losses_ = svi.losses
                    for c in range(self.num_chains):
                        pyro.set_rng_seed(_seed_for(self.seed, 4, c) % (2 ** 32))
                        starts[c] = svi.one_draw()
                else:
                    bar.update(self.svi_steps)
                for c in range(self.num_chains):
                    pyro.clear_param_store()
                    pyro.set_rng_seed(_seed_for(self.seed, 1, c) % (2 ** 32))
                    if self.init == "random":
                        best = _best_start(model.model, self.init_candidates)
                        starts[c] = _constrained(model.model, best) if best is not None else None
                    bar.set_description(f"NUTS chain {c + 1}/{self.num_chains}")
                    res = run_nuts_chain(model.model, starts[c], self.num_warmup, self.num_samples,
                                         target_accept=self.target_accept, max_tree_depth=self.max_tree_depth,
                                         jit=self.jit and self.num_warmup + self.num_samples >= JIT_MIN_STEPS,
                                         bar=bar, deadline=deadline,
                                         label=f"chain {c + 1}/{self.num_chains}",
                                         full_mass=[model.global_sites()] if self.dense_mass else False)
                    if res.n_draws:
                        chains.append(res.samples)
                        diverging.append(res.diverging)
                        depths.append(res.tree_depth)
                    if res.stopped:
                        stopped = True
                        break
        finally:
            bar.close()
            threads.__exit__(None, None, None)
        self.stopped_early_ = stopped
        self.elapsed_ = time.monotonic() - started
        if not chains:
            self.verdict_ = diagnostics.check_convergence(pd.DataFrame(columns=["parameter"]), 0, 0, np.zeros(0),
                                                          stopped_early=stopped, method=self.method)
            raise FitStopped(f"stopped by max_time={self.max_time:g} s before the first draw "
                             f"(after {self.elapsed_:.0f} s): nothing to save but the emulator")
        n = min(len(d) for d in diverging)  # a stopped chain is cut to the shortest
        chains = [{k: v[:n] for k, v in ch.items()} for ch in chains]
        with one_torch_thread():
            self._build_outputs(chains, np.stack([d[:n] for d in diverging]), responses)
        tree = np.concatenate([t[:n] for t in depths]) if depths else None
        verdict = diagnostics.check_convergence(
            self.diagnostics_table_, len(chains), n, np.stack([d[:n] for d in diverging]), tree,
            self.max_tree_depth, hierarchical=hierarchical, free=free, stopped_early=stopped, method=self.method)
        grid = {k: (float(np.min(v)), float(np.max(v))) for k, v in getattr(emulator, "grid_values_", {}).items()}
        verdict.edges = diagnostics.edge_problems({k: self.idata_.posterior[k].values for k in free}, grid)
        self.verdict_ = verdict
        diagnostics.warn(verdict)
        return self

    # ------------------------------------------------------------------ outputs
    def _draws(self, posterior: dict[str, np.ndarray]):
        """Iterate over (chain, draw, {name: tensor})."""
        n_chain, n_draw = next(iter(posterior.values())).shape[:2]
        for c in range(n_chain):
            for i in range(n_draw):
                yield c, i, {k: torch.as_tensor(v[c, i]) for k, v in posterior.items()}

    def _build_outputs(self, chains: list[dict[str, np.ndarray]], diverging: np.ndarray,
                       responses: pd.DataFrame) -> None:
        import arviz as az

        model = self.model_
        data = model.data
        posterior = {k: np.stack([ch[k] for ch in chains]) for k in chains[0]}
        n_chain, n_draw = next(iter(posterior.values())).shape[:2]
        T = len(data.y)
        loglik = np.empty((n_chain, n_draw, T))
        ppc = np.empty((n_chain, n_draw, T))
        theta = {n: np.empty((n_chain, n_draw, model.n_participants)) for n in model.free}
        gen = torch.Generator().manual_seed(_seed_for(self.seed, 2) % (2 ** 63))
        with torch.no_grad():
            for c, i, s in self._draws(posterior):
                loglik[c, i] = model.trial_log_lik(s).numpy()
                ppc[c, i] = model.sample_responses(s, gen).numpy()
                s = model._complete(s)
                vals = model.participant_values({n: s[n] for n in model.free}, {n: s[f"tau_{n}"] for n in model.free},
                                                {n: s[f"z_{n}"] for n in model.free})
                for n in model.free:
                    theta[n][c, i] = vals[n].numpy()
        post = dict(posterior)
        for n in model.free:
            post[f"{n}_participant"] = theta[n]
        coords = {"participant": data.participants, "trial": np.arange(T), "stimulus": data.stimulus_ids}
        dims = {f"z_{n}": ["participant"] for n in model.free if model.hierarchical}
        dims.update({f"{n}_participant": ["participant"] for n in model.free})
        if model.response_bias:
            dims["z_bias"] = ["participant"]
        if model.emulator_error:
            dims["e_emu"] = ["stimulus"]
        dims.update(y=["trial"])
        self.idata_ = az.from_dict(
            posterior=post, log_likelihood={"y": loglik}, posterior_predictive={"y": ppc},
            observed_data={"y": data.y.numpy()}, sample_stats={"diverging": diverging},
            coords=coords, dims=dims,
        )
        self.params_ = {}
        for n in model.free:
            v = posterior[n].ravel()
            self.params_[n] = {"mean": float(v.mean()), "sd": float(v.std(ddof=1)),
                               "q05": float(np.quantile(v, 0.05)), "q95": float(np.quantile(v, 0.95))}
        for name in ("k_sims", "link_gamma"):
            if name in posterior:
                v = posterior[name].ravel()
                setattr(self, f"{name}_", {"mean": float(v.mean()), "sd": float(v.std(ddof=1)),
                                           "q05": float(np.quantile(v, 0.05)), "q95": float(np.quantile(v, 0.95))})
        # one table for every sampled quantity (vector ones element by element): mean, sd, the one interval
        # kind (INTERVAL), MCSE, bulk and tail ESS, R-hat; summary_ is its scalar rows
        self.diagnostics_table_ = _summary_table(self.idata_, list(posterior), diagnostics=self.method == "nuts")
        scalars = {n for n in posterior if posterior[n].ndim == 2}
        self.summary_ = self.diagnostics_table_[self.diagnostics_table_["parameter"].isin(scalars)] \
            .reset_index(drop=True)
        self.n_divergent_ = int(diverging.sum())
        self.participants_ = pd.DataFrame({"participant": data.participants,
                                           **{n: theta[n].mean(axis=(0, 1)) for n in model.free},
                                           **{f"{n}_sd": theta[n].std(axis=(0, 1)) for n in model.free}})
        # posterior-predictive check on stimulus means
        frame = pd.DataFrame({"stimulus_id": [data.stimulus_ids[i] for i in data.stimulus.numpy()],
                              "observed": data.y.numpy()})
        rep_means = []
        for sid, idx in frame.groupby("stimulus_id", sort=False).indices.items():
            rm = ppc[:, :, idx].mean(axis=2).ravel()
            rep_means.append({"stimulus_id": sid, "n": len(idx), "observed_mean": frame["observed"].iloc[idx].mean(),
                              "predicted_mean": rm.mean(), "predicted_q05": np.quantile(rm, 0.05),
                              "predicted_q95": np.quantile(rm, 0.95)})
        ppc_df = pd.DataFrame(rep_means)
        ppc_df["inside_90"] = (ppc_df["observed_mean"] >= ppc_df["predicted_q05"]) & (
            ppc_df["observed_mean"] <= ppc_df["predicted_q95"])
        self.ppc_ = ppc_df

    def criteria(self) -> dict[str, float]:
        """LOO and WAIC (ELPD scale, higher is better) from the pointwise log likelihood."""
        import arviz as az

        self._check_fitted()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loo = az.loo(self.idata_)
            waic = az.waic(self.idata_)
        return {"elpd_loo": float(loo.elpd_loo), "se_loo": float(loo.se), "p_loo": float(loo.p_loo),
                "elpd_waic": float(waic.elpd_waic), "se_waic": float(waic.se), "p_waic": float(waic.p_waic)}

    def _check_fitted(self) -> None:
        if not hasattr(self, "idata_"):
            raise InputError("the model is not fitted yet: call fit(responses, emulator) first")

    def save(self, out_dir: str | Path, figures: bool = True) -> dict[str, Path]:
        """Write params.json, posterior.nc, diagnostics.csv, participants.csv, ppc.csv and figures."""
        self._check_fitted()
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        scale = self.model_.data
        verdict = self.verdict_.as_dict() if getattr(self, "verdict_", None) is not None else {}
        params = {
            **self.params_,
            "_meta": {"free": list(self.model_.free), "ranges": {k: list(v) for k, v in self.model_.ranges.items()},
                      "scale": f"{scale.kind}:{scale.low:g}-{scale.high:g}",
                      "n_participants": len(scale.participants), "n_trials": int(len(scale.y)),
                      "num_chains": self.num_chains, "num_samples": self.num_samples, "num_warmup": self.num_warmup,
                      "seed": self.seed, "response_bias": self.model_.response_bias, "n_divergent": self.n_divergent_,
                      "sims": self.model_.sims, "k_sims": getattr(self, "k_sims_", None),
                      "emulator_error": self.model_.emulator_error, "link": self.model_.link,
                      "link_gamma": getattr(self, "link_gamma_", None),
                      # R-hat needs two chains: with one it is NaN, written as null
                      "max_r_hat": _finite_or_none(self.diagnostics_table_["r_hat"].max()),
                      "min_ess_bulk": _finite_or_none(self.diagnostics_table_["ess_bulk"].min()),
                      "interval": INTERVAL, "method": self.method,
                      "hierarchical": bool(getattr(self, "hierarchical_", True)),
                      "stopped_early": bool(getattr(self, "stopped_early_", False)),
                      "notes": list(getattr(self, "notes_", [])),
                      "converged": verdict.get("converged"), "convergence": verdict},
        }
        paths = {"params": write_json(out / "params.json", params)}
        paths["convergence"] = write_json(out / "convergence.json", verdict)
        if isinstance(self.emulator_, Emulator):
            paths["emulator"] = self.emulator_.save(out / "emulator.npz")

        tmp = out / ".posterior.nc.tmp"
        self.idata_.to_netcdf(str(tmp))
        tmp.replace(out / "posterior.nc")
        paths["posterior"] = out / "posterior.nc"
        paths["diagnostics"] = write_csv(out / "diagnostics.csv", self.diagnostics_table_)
        paths["participants"] = write_csv(out / "participants.csv", self.participants_)
        paths["ppc"] = write_csv(out / "ppc.csv", self.ppc_)
        if figures:
            from .figures import plot_fit

            paths.update(plot_fit(self, out))
        return paths


def _summary_table(idata, names: list[str], diagnostics: bool = True) -> pd.DataFrame:
    """mean, sd, q5%, q95% (:data:`INTERVAL`), MCSE, bulk/tail ESS and R-hat of ``names``, one row per element
    (without ``diagnostics``, e.g. for SVI draws, those columns are NaN)."""
    import arviz as az

    if diagnostics:
        import logging

        log = logging.getLogger("arviz")
        level = log.level
        log.setLevel(logging.ERROR)  # "Shape validation failed" for one chain: the verdict says it instead
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                diag = az.summary(idata, var_names=names, kind="diagnostics")
        finally:
            log.setLevel(level)
        diag = diag.reset_index().rename(columns={"index": "parameter"})
    else:
        diag = pd.DataFrame(columns=["parameter", "mcse_mean", "mcse_sd", "ess_bulk", "ess_tail", "r_hat"])
    post = idata.posterior
    rows = []
    for n in names:
        v = np.asarray(post[n].values, dtype=float)
        flat = v.reshape(v.shape[0] * v.shape[1], -1)
        labels = [n] if v.ndim == 2 else [f"{n}[{c}]" for c in np.asarray(post[n][post[n].dims[2]].values)]
        for k, label in enumerate(labels):
            x = flat[:, k]
            rows.append({"parameter": label, "mean": x.mean(), "sd": x.std(ddof=1) if len(x) > 1 else math.nan,
                         "q5%": np.quantile(x, 0.05), "q95%": np.quantile(x, 0.95)})
    stats = pd.DataFrame(rows)
    if len(stats) == len(diag) and list(stats["parameter"]) == list(diag["parameter"]):
        return pd.concat([stats, diag.drop(columns="parameter")], axis=1)
    return stats.merge(diag, on="parameter", how="left")


def _finite_or_none(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def load_fit(out_dir: str | Path) -> HierarchicalFit:
    """Reload what :meth:`HierarchicalFit.save` wrote (posterior, parameters, emulator) for reuse.

    The result answers ``params_``, ``idata_``, ``emulator_``, ``criteria()``,
    ``free``, ``scale`` and ``response_bias``; it cannot be re-sampled.
    """
    import arviz as az

    from ..fileio import read_json
    from ..humans import ResponseScale

    out = Path(out_dir)
    for name in ("params.json", "posterior.nc", "emulator.npz"):
        if not (out / name).exists():
            raise InputError(f"{out}: no {name} (is this the --out directory of `ipe fit`?)")
    data = read_json(out / "params.json")
    meta = data.get("_meta", {}) if isinstance(data, dict) else {}
    try:
        fit = HierarchicalFit(free=tuple(meta["free"]), ranges={k: tuple(v) for k, v in meta["ranges"].items()},
                              scale=ResponseScale.parse(meta["scale"]), num_chains=meta["num_chains"],
                              num_samples=meta["num_samples"], num_warmup=meta["num_warmup"], seed=meta["seed"],
                              response_bias=meta.get("response_bias", True), sims=meta.get("sims"),
                              emulator_error=meta.get("emulator_error", False), link=meta.get("link", "linear"))
    except (KeyError, TypeError, AttributeError):
        raise InputError(f"{out / 'params.json'}: missing or malformed _meta") from None
    fit.params_ = {k: v for k, v in data.items() if not k.startswith("_")}
    fit.idata_ = az.from_netcdf(out / "posterior.nc")
    fit.emulator_ = Emulator.load(out / "emulator.npz")
    return fit


def _noise_fields() -> tuple[str, ...]:
    import dataclasses

    from ..noise import NoiseParams

    return tuple(f.name for f in dataclasses.fields(NoiseParams))


def load_params(path: str | Path) -> dict[str, float]:
    """Posterior means of the group parameters from the ``params.json`` of any fit command.

    ``ipe fit`` (:meth:`HierarchicalFit.save`) writes ``{name: {mean, sd, q05,
    q95}, "_meta": …}``; ``ipe fit-landing`` writes ``{"params": {name: mean},
    "free": [names], …}``, whose noise parameters are the ``free`` ones (its
    other entries, such as the click noise ``motor_sd``, describe the
    response model, not the simulator).
    """
    from ..fileio import read_json

    data = read_json(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object of parameters")
    if isinstance(data.get("params"), dict) and isinstance(data.get("free"), list):  # a fit-landing params.json
        means, free = data["params"], data["free"]
        out = {}
        for name in free:
            if not isinstance(name, str) or name not in _noise_fields():
                raise InputError(f"{path}: free: unknown parameter {name!r}")
            v = means.get(name)
            if isinstance(v, dict):
                v = v.get("mean")
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise InputError(f"{path}: params: {name}: expected a finite number")
            out[name] = float(v)
        if not out:
            raise InputError(f"{path}: no parameters found")
        return out
    out = {}
    for name, v in data.items():
        if name.startswith("_"):
            continue
        if name not in _noise_fields():
            raise InputError(f"{path}: unknown parameter {name!r}")
        if not isinstance(v, dict) or not isinstance(v.get("mean"), (int, float)) or not math.isfinite(v["mean"]):
            raise InputError(f"{path}: {name}: expected an object with a finite 'mean'")
        out[name] = float(v["mean"])
    if not out:
        raise InputError(f"{path}: no parameters found")
    return out


def load_population(params_path: str | Path) -> pd.DataFrame:
    """The fitted participants' noise values, from ``participants.csv`` beside ``params.json``.

    One row per participant, one column per free parameter (posterior means of
    that participant's value). :func:`ipe.montecarlo.predict_population` averages
    the simulator over these rows: the fitted population's mean judgment, which
    is what a mean over the same people estimates. With a nonlinear simulator
    that differs from the judgment at the group value when participants differ.
    """
    from ..fileio import read_csv

    params_path = Path(params_path)
    fitted = load_params(params_path)
    path = params_path.parent / "participants.csv"
    if not path.exists():
        raise InputError(f"{path}: no such file (the population comes from the participants.csv that `ipe fit` "
                         "writes beside params.json)")
    table = read_csv(path)
    missing = [n for n in fitted if n not in table.columns]
    if missing:
        raise InputError(f"{path}: no column {missing[0]!r} (fitted parameters: {', '.join(fitted)})")
    if table.empty:
        raise InputError(f"{path}: no participants")
    values = table[list(fitted)].apply(pd.to_numeric, errors="coerce")
    bad = ~np.isfinite(values.to_numpy(dtype=float)) | (values.to_numpy(dtype=float) < 0)
    if bad.any():
        row, col = (int(i[0]) for i in np.nonzero(bad))
        raise InputError(f"{path}: row {row + 1}: {list(fitted)[col]} must be a finite number >= 0")
    out = values.astype(float)
    if "participant" in table.columns:
        out.insert(0, "participant", table["participant"].to_numpy())
    return out.reset_index(drop=True)
