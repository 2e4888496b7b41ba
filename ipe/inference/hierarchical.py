"""The hierarchical IPE estimator: :class:`HierarchicalFit` samples the model's posterior with Pyro (NUTS or SVI).

The model itself (priors, participant effects, the response model of each
scale) is :class:`~ipe.inference.hierarchical_model.HierarchicalModel`; what
the draws say (ArviZ posterior, summaries, the posterior-predictive check) is
:mod:`ipe.inference.posterior`; the files a fit writes and reads are
:mod:`ipe.inference.fitfiles`. This module drives the samplers
(:mod:`ipe.inference.sampling`): NUTS runs ``num_chains`` chains, up to
``workers`` at once in forked processes, each seeded from the user seed
through named streams (:mod:`ipe.seeding`), so results do not depend on the
number of workers or the machine's process pool;
after sampling, the convergence verdict (:mod:`ipe.inference.diagnostics`)
warns loudly when a fit has not converged.
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ..errors import InputError
from ..estimator import ParamsMixin
from ..fileio import read_json
from ..humans import ResponseScale
from ..progress import progress_bar
from ..seeding import stream_int
from ..validation import BOOL, POSITIVE_INT, SECONDS, Number, OneOf, Optional, fail
from . import diagnostics
from .emulator import Emulator
from .fitfiles import write_fit
from .hierarchical_model import LINKS, HierarchicalModel, prepare_trials, prior_ranges
from .landing_density import MC_CHECK_BOOTSTRAP, bootstrap_counts, emulator_mc_problem, emulator_mc_sd
from .posterior import summarize_draws
from .sampling import one_torch_thread, run_chains, run_nuts_chain, run_svi, seed_pyro


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



#: Chains shorter than this run without the JIT: tracing costs seconds that a short chain never wins back.
JIT_MIN_STEPS = 50
#: SVI fits shorter than this run without the JIT (tracing the ELBO costs 1–2 s; a compiled step is ~2x faster).
SVI_JIT_MIN_STEPS = 200
#: Fewer participants than this and ``hierarchy="auto"`` fits the group-level model (see HierarchicalFit).
MIN_PARTICIPANTS = 3
METHODS = ("nuts", "svi")
# Seed streams (ipe.seeding; their legacy integer keys keep every fit bit for bit): "fit.svi" seeds the AutoNormal
# fit (the NUTS start, or method="svi"), "fit.svi_start" (chain c) each chain's start drawn from it,
# "fit.nuts_chain" (chain c) each NUTS chain, "fit.ppc" the posterior-predictive draws (ipe.inference.posterior).

#: The declared rule of each option of :class:`HierarchicalFit`, checked when :meth:`~HierarchicalFit.fit` starts
#: (and by :func:`~ipe.inference.pipeline.fit_responses` before it builds the emulator).
OPTION_RULES = {
    "num_warmup": POSITIVE_INT, "num_samples": POSITIVE_INT, "num_chains": POSITIVE_INT,
    "init_candidates": POSITIVE_INT, "workers": POSITIVE_INT, "svi_steps": POSITIVE_INT,
    "max_tree_depth": POSITIVE_INT,
    "target_accept": Number(0.0, 1.0, closed="neither"),
    "method": OneOf(*METHODS, description="one of " + ", ".join(METHODS)),
    "init": OneOf("svi", "random", description="'svi' or 'random'"),
    "hierarchy": OneOf("auto", True, False, description="'auto', True or False"),
    "link": OneOf(*LINKS, description="one of " + ", ".join(LINKS)),
    "max_time": Optional(SECONDS),
    "response_bias": BOOL, "emulator_error": BOOL, "dense_mass": BOOL,
}
#: ``sims``: ``"fit"`` (estimate κ), a fixed κ >= 1, or None (no sampling variance).
SIMS = Number(1.0)
SIMS_WORDS = "'fit', a number >= 1 or None"


def resolve_scale(scale):
    """The response scale of a fit: a :class:`ipe.humans.ResponseScale` (or its text); required."""
    if scale is None:
        raise InputError("fit: a response scale is needed, e.g. HierarchicalFit(scale='rating:1-7') or "
                         "scale=ipe.humans.scale_for_stimuli(stimuli)")
    if isinstance(scale, str):
        scale = ResponseScale.parse(scale)
    return scale


def hierarchy_note(n_people: int) -> str:
    """Why ``hierarchy="auto"`` fell back to the group-level model for ``n_people`` participants."""
    return (f"{n_people} participant{'s' if n_people != 1 else ''} barely identif{'y' if n_people != 1 else 'ies'}"
            f" the hierarchy (a spread across participants needs at least {MIN_PARTICIPANTS}, better 10 or "
            "more): fitting the group-level model instead (one value of each parameter for everyone, no "
            "per-participant bias); hierarchy=True forces participant effects")


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
        NUTS settings. With ``method="svi"``, ``num_samples × num_chains``
        draws come from the fitted guide.
    workers:
        NUTS chains run up to this many at once, each in its own forked
        process with one torch thread (:func:`~ipe.inference.sampling.run_chains`;
        one after another where ``fork`` is not available). Each chain is
        seeded from its own stream, so the draws are the same for any
        ``workers``.
    seed:
        Seeds every chain and the posterior-predictive draws.
    response_bias:
        Per-participant response bias.
    jit:
        Compile the potential energy with the PyTorch JIT (faster per step; chains of fewer than
        :data:`JIT_MIN_STEPS` steps skip it, as tracing would cost more than it saves), and the
        SVI loss when it runs :data:`SVI_JIT_MIN_STEPS` steps or more.
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
        AutoNormal fit (``svi_steps`` Adam steps), with the guide's scales as
        its starting (diagonal) inverse mass matrix; ``"random"``: from the most
        probable of ``init_candidates`` random points.
    init_candidates:
        With ``init="random"``, each chain starts from the most probable of
        this many random points (1: one random point, Pyro's default).
    svi_steps:
        Adam steps of the AutoNormal fit (the NUTS start, or ``method="svi"``).
    dense_mass:
        ``True`` (default): adapt a dense mass matrix over the parameters
        every trial shares (:meth:`HierarchicalModel.global_sites`: they
        trade off, e.g. a rating scale's slope β against its cutpoints), a
        diagonal one over the rest; ``False``: diagonal throughout (what
        ipe did before 2026-12-07: on the course-lab fit 45 of 50 draws hit the
        maximum depth).
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
    mean, sd, the :data:`~ipe.inference.posterior.INTERVAL`, R-hat and ESS), ``verdict_`` (the
    convergence :class:`~ipe.inference.diagnostics.Verdict`), ``k_sims_``
    (κ's ``{mean, sd, q05, q95}`` when it is fitted), ``link_gamma_`` (γ's,
    with ``link="power"``), ``participants_`` (posterior means of each
    participant's values), ``ppc_`` (observed vs posterior-predictive
    stimulus means), ``hierarchical_`` (whether participant effects were
    fitted), ``stopped_early_``, ``model_`` (the :class:`HierarchicalModel`),
    ``mc_sd_`` (``position`` scale: ``{parameter: nats}``, how far another
    set of the emulator's rollouts would tilt the log-likelihood across each
    group value's posterior, :func:`~ipe.inference.landing_density.emulator_mc_sd`;
    above :data:`~ipe.inference.landing_density.MAX_MC_SD` the verdict
    fails and asks for more ``emulator_samples``; empty for other scales).
    After fitting, a failed convergence check issues a
    :class:`~ipe.inference.diagnostics.ConvergenceWarning` and a posterior
    at the grid's edge an :class:`~ipe.inference.diagnostics.EdgeWarning`.
    """

    option_rules = OPTION_RULES

    def __init__(self, free: Sequence[str] = ("sigma", "phi"), ranges: Mapping[str, tuple[float, float]] | None = None,
                 scale=None, num_warmup: int = 300, num_samples: int = 300, num_chains: int = 2, seed: int = 0,
                 response_bias: bool = True, target_accept: float = 0.85, max_tree_depth: int = 8,
                 jit: bool = True, progress: bool | None = None, sims: float | str | None = "fit",
                 emulator_error: bool = True, init_candidates: int = 20, link: str = "linear",
                 method: str = "nuts", hierarchy="auto", init: str = "svi", svi_steps: int = 500,
                 max_time: float | None = None, dense_mass: bool = True, workers: int = 1):
        self.free = free
        self.workers = workers
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

    def check_options(self) -> None:
        """Check every option against its declared rule (:data:`OPTION_RULES`; ``sims``: :data:`SIMS_WORDS`)."""
        super().check_options()
        sims = self.sims
        if not (sims is None or (isinstance(sims, str) and sims == "fit") or SIMS.accepts(sims)):
            raise fail("sims", SIMS_WORDS, sims)

    def fit(self, responses: pd.DataFrame, emulator: Emulator) -> "HierarchicalFit":
        """Sample the posterior of the model of ``responses`` (a checked tidy table) on ``emulator``; self."""
        started = time.monotonic()
        free = tuple(self.free)
        self.check_options()
        deadline = started + self.max_time if self.max_time is not None else None
        data = prepare_trials(responses, emulator, resolve_scale(self.scale))
        ranges = prior_ranges(free, self.ranges, emulator)
        hierarchical, note = self._hierarchy(len(data.participants), free)
        self.notes_ = []
        if note:
            self.notes_.append(note)
            warnings.warn(note, UserWarning, stacklevel=2)
        bias = self.response_bias and (hierarchical or not free)
        model = HierarchicalModel(data, emulator, free, ranges, bias, self.sims, self.emulator_error,
                                  self.link, hierarchical=hierarchical, seed=self.seed)
        self.model_ = model
        self.emulator_ = emulator
        self.hierarchical_ = hierarchical
        chains, diverging, depths, stopped = self._sample(model, deadline)
        self.stopped_early_ = stopped
        self.elapsed_ = time.monotonic() - started
        if not chains:
            self.verdict_ = diagnostics.check_convergence(pd.DataFrame(columns=["parameter"]), 0, 0, np.zeros(0),
                                                          stopped_early=stopped, method=self.method)
            raise FitStopped(f"stopped by max_time={self.max_time:g} s before the first draw "
                             f"(after {self.elapsed_:.0f} s): nothing to save but the emulator")
        n = min(len(d) for d in diverging)  # a stopped chain is cut to the shortest
        chains = [{k: v[:n] for k, v in ch.items()} for ch in chains]
        diverging = np.stack([d[:n] for d in diverging])
        with one_torch_thread():
            self._keep(summarize_draws(model, chains, diverging, self.seed, diagnostics=self.method == "nuts"))
            self.mc_sd_ = self._mc_check(model)
        tree = np.concatenate([t[:n] for t in depths]) if depths else None
        self.verdict_ = self._verdict(len(chains), n, diverging, tree, stopped, emulator)
        diagnostics.warn(self.verdict_)
        return self

    # ------------------------------------------------------------------ the steps of fit()
    def _hierarchy(self, n_people: int, free: tuple[str, ...]) -> tuple[bool, str | None]:
        """Whether to fit participant effects, and the note saying why not when ``hierarchy="auto"`` drops them."""
        if not free:
            return True, None  # no noise parameters: only the response bias is per participant
        if isinstance(self.hierarchy, bool):
            return self.hierarchy, None
        if n_people >= MIN_PARTICIPANTS:
            return True, None
        return False, hierarchy_note(n_people)

    def _sample(self, model: HierarchicalModel, deadline: float | None):
        """``(chains, diverging, tree depths, stopped)``: the draws of SVI or of the NUTS chains, with progress."""
        steps = self.num_chains * (self.num_warmup + self.num_samples) if self.method == "nuts" else 0
        bar = progress_bar(self.svi_steps + steps, self.progress, desc="fit", unit="step")
        with one_torch_thread():
            try:
                if self.method == "svi":
                    return self._sample_svi(model, bar, deadline)
                return self._sample_nuts(model, bar, deadline)
            finally:
                bar.close()

    def _sample_svi(self, model: HierarchicalModel, bar, deadline: float | None):
        """``num_samples × num_chains`` draws from an AutoNormal guide (``method="svi"``), as one chain."""
        seed_pyro(stream_int(self.seed, "fit.svi"))
        bar.set_description("SVI (AutoNormal)")
        svi = run_svi(model.model, steps=self.svi_steps, bar=bar, deadline=deadline, jit=self._svi_jit())
        self.svi_losses_ = svi.losses
        draws = svi.draw(self.num_samples * self.num_chains)
        return [draws], [np.zeros(len(next(iter(draws.values()))), dtype=bool)], [], svi.stopped

    def _svi_jit(self) -> bool:
        return bool(self.jit and self.svi_steps >= SVI_JIT_MIN_STEPS)

    def _svi_starts(self, model: HierarchicalModel, bar, deadline: float | None) -> list:
        """Each chain's start: its own draw of a quick AutoNormal fit (``init="svi"``), else None for now.

        With ``init="svi"`` the guide's scales also make each chain's starting
        mass matrix (:func:`~ipe.inference.sampling.initial_metric`)."""
        self._svi_scales = None
        if self.init != "svi":
            bar.update(self.svi_steps)
            return [None] * self.num_chains
        seed_pyro(stream_int(self.seed, "fit.svi"))
        bar.set_description("start (SVI)")
        svi = run_svi(model.model, steps=self.svi_steps, bar=bar, deadline=deadline, jit=self._svi_jit())
        self.svi_losses_ = svi.losses
        self._svi_scales = svi.scales()
        starts = []
        for c in range(self.num_chains):
            seed_pyro(stream_int(self.seed, "fit.svi_start", c))
            starts.append(svi.one_draw())
        return starts

    def _sample_nuts(self, model: HierarchicalModel, bar, deadline: float | None):
        """The NUTS chains, each seeded from its own stream, up to ``workers`` at once; stops at the deadline."""
        starts = self._svi_starts(model, bar, deadline)
        jit = self.jit and self.num_warmup + self.num_samples >= JIT_MIN_STEPS
        full_mass = [model.global_sites()] if self.dense_mass else False

        def chain(c: int):
            def job(chain_bar):
                seed_pyro(stream_int(self.seed, "fit.nuts_chain", c), clear=True)
                start = starts[c]
                if self.init == "random":
                    best = _best_start(model.model, self.init_candidates)
                    start = _constrained(model.model, best) if best is not None else None
                return run_nuts_chain(model.model, start, self.num_warmup, self.num_samples,
                                      target_accept=self.target_accept, max_tree_depth=self.max_tree_depth,
                                      jit=jit, bar=chain_bar, deadline=deadline,
                                      label=f"chain {c + 1}/{self.num_chains}", full_mass=full_mass,
                                      init_scales=self._svi_scales)
            return job

        results = run_chains([chain(c) for c in range(self.num_chains)], self.workers, bar)
        kept = [r for r in results if r.n_draws]
        stopped = any(r.stopped for r in results) or len(results) < self.num_chains
        return ([r.samples for r in kept], [r.diverging for r in kept], [r.tree_depth for r in kept], stopped)

    def _keep(self, post) -> None:
        """Keep the posterior's outputs as the fitted attributes (:class:`~ipe.inference.posterior.PosteriorSummary`)."""
        self.idata_ = post.idata
        self.params_ = post.params
        for name, value in post.extras.items():
            setattr(self, f"{name}_", value)
        self.diagnostics_table_ = post.diagnostics_table
        self.summary_ = post.summary
        self.n_divergent_ = post.n_divergent
        self.participants_ = post.participants
        self.ppc_ = post.ppc

    def _mc_check(self, model: HierarchicalModel) -> dict[str, float]:
        """The emulator's Monte Carlo error across each group value's posterior (position scale; else empty):
        every other sampled quantity at its posterior mean, :data:`MC_CHECK_BOOTSTRAP` bootstrap resamples of
        the rollouts (stream ``fit.mc_check``)."""
        if model.density is None or not model.free:
            return {}
        post = self.idata_.posterior
        f64 = dict(dtype=torch.float64)
        means = {k: torch.as_tensor(np.asarray(post[k].values, dtype=float).mean(axis=(0, 1)), **f64)
                 for k in post.data_vars if not k.endswith("_participant")}
        counts = bootstrap_counts(model.density.centres.shape[2], MC_CHECK_BOOTSTRAP, self.seed, "fit.mc_check")

        def total(values, chunk):
            return model.trial_log_lik({**means, **{n: torch.tensor(v, **f64) for n, v in values.items()}},
                                       chunk).sum(dim=1)
        return emulator_mc_sd(total, {n: self.params_[n]["mean"] for n in model.free},
                              {n: self.params_[n]["sd"] for n in model.free}, model.ranges, counts)

    def _verdict(self, n_chains: int, n_draws: int, diverging: np.ndarray, tree: np.ndarray | None,
                 stopped: bool, emulator) -> diagnostics.Verdict:
        """The convergence verdict, with the free parameters whose posterior piles up at the grid's edge."""
        free = tuple(self.model_.free)
        verdict = diagnostics.check_convergence(
            self.diagnostics_table_, n_chains, n_draws, diverging, tree, self.max_tree_depth,
            hierarchical=self.hierarchical_, free=free, stopped_early=stopped, method=self.method)
        grid = {k: (float(np.min(v)), float(np.max(v))) for k, v in getattr(emulator, "grid_values_", {}).items()}
        verdict.edges = diagnostics.edge_problems({k: self.idata_.posterior[k].values for k in free}, grid)
        emulator_mc_problem(verdict, self.mc_sd_, int(getattr(emulator, "n_samples", 0) or 0),
                            "give the emulator more rollouts per grid point (--emulator-samples {need} or more)")
        return verdict

    # ------------------------------------------------------------------ fitted results
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
        """Write params.json, posterior.nc, diagnostics.csv, participants.csv, ppc.csv and figures
        (:func:`ipe.inference.fitfiles.write_fit`)."""
        self._check_fitted()
        return write_fit(self, out_dir, figures=figures)


def load_fit(out_dir: str | Path) -> HierarchicalFit:
    """Reload what :meth:`HierarchicalFit.save` wrote (posterior, parameters, emulator) for reuse.

    The result answers ``params_``, ``idata_``, ``emulator_``, ``criteria()``,
    ``free``, ``scale`` and ``response_bias``; it cannot be re-sampled.
    """
    import arviz as az

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


__all__ = ["FitStopped", "HierarchicalFit", "JIT_MIN_STEPS", "METHODS", "MIN_PARTICIPANTS", "OPTION_RULES",
           "load_fit"]
