"""``ipe fit``: the hierarchical IPE fitted to human responses with NUTS."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import InputError
from ..validation import POSITIVE_NUMBER, check
from .app import app
from .backend import BackendOption, CacheDirOption, CacheOption, SchedulerOption, cache_note, run_options
from .common import NoEarlyStopOption, ProgressOption, WorkersOption, note, output_dir
from .noise import NOISE_RULE


def parse_grid(specs: list[str] | None, free: list[str]) -> dict[str, list[float]] | None:
    """``["sigma=0,0.1,0.3", ...]`` → ``{"sigma": [0, 0.1, 0.3]}``; ``None`` when not given."""
    if not specs:
        return None
    from ..inference.emulator import DEFAULT_GRID
    from ..sweep import parse_values

    grid: dict[str, list[float]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        if not sep or not values.strip():
            raise InputError(f"--grid {spec!r}: expected NAME=V1,V2,... (e.g. sigma=0,0.1,0.2,0.4)")
        if name not in free:
            raise InputError(f"--grid {spec!r}: {name!r} is not a free parameter ({', '.join(free)})")
        grid[name] = parse_values(values, f"--grid {name}")
        if len(grid[name]) < 2:
            raise InputError(f"--grid {spec!r}: the emulator needs at least 2 values per parameter")
    for name in free:
        grid.setdefault(name, list(DEFAULT_GRID[name]))
    return grid


def parse_ranges(specs: list[str] | None, free: list[str] | None = None) -> dict[str, tuple[float, float]] | None:
    """``["sigma=0:0.8"]`` → ``{"sigma": (0.0, 0.8)}``; with ``free``, every name must be a free parameter."""
    if not specs:
        return None
    out = {}
    for spec in specs:
        name, sep, rng = spec.partition("=")
        lo, sep2, hi = rng.partition(":")
        try:
            if not sep or not sep2:
                raise ValueError
            out[name.strip()] = (float(lo), float(hi))
        except ValueError:
            raise InputError(f"--range {spec!r}: expected NAME=LO:HI (e.g. sigma=0:1)") from None
        a, b = out[name.strip()]
        if not (math.isfinite(a) and math.isfinite(b) and 0 <= a < b):
            raise InputError(f"--range {spec!r}: expected finite LO < HI with LO >= 0")
        if free is not None and name.strip() not in free:
            raise InputError(f"--range {spec!r}: {name.strip()!r} is not a free parameter ({', '.join(free)})")
    return out


def check_link(link: str, scale) -> None:
    """``--link``: one of the links, and only a count or probability scale takes a non-linear one."""
    from ..inference.hierarchical_model import LINKS

    if link not in LINKS:
        raise InputError(f"--link {link!r}: expected one of {', '.join(LINKS)}")
    if link != "linear" and scale.kind not in ("count", "probability"):
        raise InputError(f"--link {link}: only for count and probability scales, not {scale.kind}")


def parse_sims(text: str):
    """``--sims``: ``fit``, ``none`` or a number ≥ 1."""
    t = text.strip().lower()
    if t in ("fit", "none"):
        return None if t == "none" else "fit"
    try:
        v = float(t)
    except ValueError:
        v = math.nan
    if not (math.isfinite(v) and v >= 1):
        raise InputError(f"--sims {text!r}: expected fit, none or a number >= 1")
    return v


def parse_free(text: str) -> list[str]:
    from ..inference.emulator import PARAM_NAMES

    free = [f.strip() for f in text.split(",") if f.strip()]
    bad = [f for f in free if f not in PARAM_NAMES]
    if not free or bad:
        raise InputError(f"--free {text!r}: expected a comma-separated subset of {', '.join(PARAM_NAMES)}")
    if len(set(free)) != len(free):
        raise InputError(f"--free {text!r}: a parameter is named twice")
    return free


def parse_max_time(text: str | None) -> float | None:
    """``--max-time``: seconds, or a number with s, m or h (``90``, ``90s``, ``10m``, ``1.5h``)."""
    if text is None:
        return None
    t = text.strip().lower()
    mult = {"s": 1.0, "m": 60.0, "h": 3600.0}.get(t[-1:], None)
    try:
        v = float(t[:-1] if mult else t) * (mult or 1.0)
    except ValueError:
        v = math.nan
    if not (math.isfinite(v) and v > 0):
        raise InputError(f"--max-time {text!r}: expected a positive duration, e.g. 600, 90s, 10m or 1.5h")
    return v


def parse_hierarchy(text: str):
    """``--hierarchy``: auto, on or off."""
    t = text.strip().lower()
    if t not in ("auto", "on", "off"):
        raise InputError(f"--hierarchy {text!r}: expected auto, on or off")
    return "auto" if t == "auto" else t == "on"


def parse_method(text: str) -> str:
    from ..inference.hierarchical import METHODS

    t = text.strip().lower()
    if t not in METHODS:
        raise InputError(f"--method {text!r}: expected one of {', '.join(METHODS)}")
    return t


MaxTimeOption = Annotated[Optional[str], typer.Option(
    "--max-time", help="Stop sampling after this long (seconds, or e.g. 90s, 10m, 1.5h), keep the draws so far, "
                       "save them and say so.")]
MethodOption = Annotated[str, typer.Option(
    "--method", help="nuts (default: full posterior, convergence checked) or svi (quick approximate posterior "
                     "from an AutoNormal guide).")]
HierarchyOption = Annotated[str, typer.Option(
    "--hierarchy", help="Participant effects: auto (on with 3 or more participants, else a group-level fit, "
                        "said so), on or off.")]


def report_mc_sd(mc_sd: dict, pooled: bool = False) -> None:
    """The emulator's Monte Carlo error across each posterior, on stderr (``pooled``: the bar applies only to
    fits not pooled over bootstrap replicates)."""
    from ..inference.landing_density import MAX_MC_SD

    note("emulator Monte Carlo error across each posterior (sd of the log-likelihood ratio, nats; at most "
         f"{MAX_MC_SD:g}" + (" without --emulator-bootstrap" if pooled else "") + "): "
         + ", ".join(f"{k} {v:.2f}" for k, v in mc_sd.items()))


def report_verdict(verdict) -> None:
    """Print the convergence verdict (loud when the fit has not converged) on stderr."""
    text = verdict.message()
    if text:
        bar = "!" * 72
        note(f"{bar}\n{text}\n{bar}")
    else:
        note(f"converged: R-hat <= 1.01 (max {verdict.max_r_hat:.3f}), bulk ESS >= 400 (min "
             f"{verdict.min_ess_bulk:.0f}), tail ESS >= 400 (min {verdict.min_ess_tail:.0f}), no divergences, "
             "tree depth not saturated")


@app.command("fit")
def fit(
    responses: Annotated[Path, typer.Argument(help="Tidy response table (.csv or .parquet): participant, "
                                                   "stimulus_id, response.")],
    stimuli: Annotated[Path, typer.Option("--stimuli", "-s", help="Stimulus-set JSON file the responses refer to.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for params.json, posterior.nc, "
                                                          "diagnostics, checks and figures.")],
    free: Annotated[Optional[str], typer.Option(
        "--free", help="Free noise parameters, comma-separated (sigma, phi, mu, friction, removal_impulse, or "
                       "motion noise). Default: sigma,phi; for clicked positions drop_angle,collision_angle "
                       "(balls released at rest) or launch_angle,collision_angle (balls that start moving).")] = None,
    scale: Annotated[Optional[str], typer.Option(
        "--scale", help="Response scale, e.g. rating:1-7, count:0-10, probability:0-100 "
                        "(default: from the stimuli's query).")] = None,
    grid: Annotated[Optional[list[str]], typer.Option(
        "--grid", help="Emulator grid for one parameter, NAME=V1,V2,... or NAME=START:STOP:N "
                       "(repeatable).")] = None,
    ranges: Annotated[Optional[list[str]], typer.Option(
        "--range", help="Prior range for one parameter, NAME=LO:HI (repeatable; default and limit: the emulator "
                        "grid's range).")] = None,
    fixed_mu: Annotated[float, typer.Option("--mu", help="μ when it is not free.")] = 0.0,
    emulator_samples: Annotated[int, typer.Option("--emulator-samples", min=1,
                                                  help="Rollouts per stimulus and grid point (with --emulator-se: "
                                                       "at most).")] = 40,
    emulator_se: Annotated[Optional[float], typer.Option(
        "--emulator-se", help="Adaptive emulator: each stimulus and grid point runs rollouts in rounds until the "
                              "standard error of its mean is at most this (in the query's units), "
                              "--emulator-samples at most.")] = None,
    emulator: Annotated[Optional[Path], typer.Option(
        "--emulator", help="Reuse an emulator.npz written by an earlier fit on the same stimuli.")] = None,
    warmup: Annotated[int, typer.Option("--warmup", min=1, help="NUTS warm-up steps per chain.")] = 300,
    draws: Annotated[int, typer.Option("--draws", min=1, help="NUTS draws per chain.")] = 300,
    chains: Annotated[int, typer.Option("--chains", min=1, help="Chains (up to --workers at once).")] = 2,
    no_bias: Annotated[bool, typer.Option("--no-bias", help="No per-participant response bias.")] = False,
    sims: Annotated[str, typer.Option(
        "--sims", help="Simulations a judgment rests on: 'fit' (estimate κ), a number ≥ 1, or 'none' (no "
                       "sampling variance; ordinal logistic link for ratings).")] = "fit",
    no_emulator_error: Annotated[bool, typer.Option(
        "--no-emulator-error", help="Treat the emulator as exact (default: its Monte Carlo error is a "
                                    "per-stimulus offset in the model).")] = False,
    link: Annotated[str, typer.Option(
        "--link", help="Count and probability scales: 'linear' (mean answer a + b·q) or 'power' (a + b·g(q), "
                       "g a power law with a fitted exponent γ).")] = "linear",
    method: MethodOption = "nuts",
    hierarchy: HierarchyOption = "auto",
    max_time: MaxTimeOption = None,
    jspsych: Annotated[bool, typer.Option("--jspsych", help="RESPONSES is a jsPsych CSV export.")] = False,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed (simulations and NUTS).")] = 0,
    workers: WorkersOption = 1,
    no_early_stop: NoEarlyStopOption = False,
    progress: ProgressOption = None,
    backend: BackendOption = None,
    scheduler: SchedulerOption = None,
    cache: CacheOption = False,
    cache_dir: CacheDirOption = None,
) -> None:
    """Fit σ, φ (and μ) to human responses: hierarchical Bayes with NUTS, convergence checked."""
    args = dict(locals())  # the options, by name, for _fit
    with output_dir(out):
        _fit(**args)


def _fit(responses, stimuli, out, free, scale, grid, ranges, fixed_mu, emulator_samples, emulator_se, emulator,
         warmup, draws,
         chains, no_bias, sims, no_emulator_error, link, method, hierarchy, max_time, jspsych, seed, workers,
         no_early_stop, progress, backend, scheduler, cache, cache_dir) -> None:
    from ..humans import ResponseScale, scale_for_stimuli
    from ..inference import Emulator
    from ..inference.pipeline import default_free
    from ..scenefile import load_stimuli

    run_opts = run_options(workers, backend, scheduler, cache, cache_dir)
    free_list = parse_free(free) if free is not None else None
    settings = dict(sims=parse_sims(sims), method=parse_method(method), hierarchy=parse_hierarchy(hierarchy),
                    max_time=parse_max_time(max_time))
    fixed_mu = check("--mu", fixed_mu, NOISE_RULE)
    if emulator_se is not None:
        check("--emulator-se", emulator_se, POSITIVE_NUMBER)
    stim = load_stimuli(stimuli)
    sc = ResponseScale.parse(scale) if scale else scale_for_stimuli(stim)
    check_link(link, sc)
    if free_list is None:  # the scale's default: motion noise for clicked positions
        free_list = list(default_free(sc, stim))
    settings.update(grid=parse_grid(grid, free_list), ranges=parse_ranges(ranges, free_list))
    emu = None if emulator is None else Emulator.load(emulator)
    on_emulator = _emulator_notes(emulator, emulator_samples if emulator_se is None else
                                  f"up to {emulator_samples}", run_opts, settings["method"], chains, warmup, draws, sc)
    result = _run_fit(
        emulator, responses, stim, free_list, sc, fixed={"mu": fixed_mu} if "mu" not in free_list else None,
        emulator=emu, emulator_samples=emulator_samples, emulator_se=emulator_se,
        emulator_store=cache_dir if cache_dir is not None else True,
        seed=seed, progress=progress if progress is not None else True,  # a bar in a terminal, plain lines elsewhere
        out=out, jspsych=jspsych, where=str(responses), stimuli_label=f"--stimuli {stimuli}", on_emulator=on_emulator,
        report=note, num_warmup=warmup, num_samples=draws, num_chains=chains, response_bias=not no_bias,
        emulator_error=not no_emulator_error, link=link, early_stop=not no_early_stop, **settings, **run_opts)
    _print_fit(result, max_time)
    print(f"\nwrote params.json, posterior.nc, diagnostics.csv, convergence.json and the rest to {out}")


def _emulator_notes(emulator, emulator_samples: int | str, run_opts: dict, method: str, chains: int, warmup: int,
                    draws: int, scale):
    """The ``on_emulator`` callback of :func:`ipe.inference.fit_responses`: what was built or reused, and what
    is sampled next, on stderr."""

    def on_emulator(e, path, reused):
        n_pts = len(getattr(e, "grid_points_", [])) or 1
        where = f" (stored as {path})" if path is not None and not reused else ""
        if reused:
            note(f"emulator: reused {path} ({len(e.stimulus_ids_)} stimuli × {n_pts} grid points)")
        elif emulator is None:
            note(f"emulator: built, {len(e.stimulus_ids_)} stimuli × {n_pts} grid points × {emulator_samples} "
                 f"rollouts{where}")
            cache_note(run_opts)
        note(f"{method.upper()}: "
             + (f"{chains} chain(s) × ({warmup} warm-up + {draws} draws)" if method == "nuts" else
                f"AutoNormal guide, {draws * chains} draws") + f", scale {scale}")

    return on_emulator


def _run_fit(emulator_path, *args, **kwargs):
    """:func:`ipe.inference.fit_responses`, its warnings (other than the convergence verdict) on stderr; a fit
    stopped before sampling exits with status 1, an emulator file's problem names ``--emulator``."""
    import warnings

    from ..inference import fit_responses
    from ..inference.diagnostics import ConvergenceWarning, EdgeWarning
    from ..inference.hierarchical import FitStopped

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = fit_responses(*args, **kwargs)
        except FitStopped as exc:
            note(f"{exc}; rerun to sample (the emulator is stored and reused: it restarts in seconds)")
            raise typer.Exit(1) from None
        except InputError as exc:
            if emulator_path is not None and str(exc).startswith("emulator:"):
                raise InputError(f"--emulator {emulator_path}: {str(exc).split(': ', 1)[1]}") from None
            raise
    for w in caught:  # the verdict is printed below; other warnings (e.g. the group-level fallback) here
        if issubclass(w.category, UserWarning) and not issubclass(w.category, (ConvergenceWarning, EdgeWarning)):
            note(f"warning: {w.message}")
    return result


def _print_fit(result, max_time: str | None) -> None:
    """The posterior summary, κ and γ when fitted, LOO/WAIC and the posterior-predictive check, the verdict."""
    from ..inference.posterior import INTERVAL

    est = result.estimator
    shown = result.summary()
    cols = [c for c in ("parameter", "mean", "sd", "q5%", "q95%", "ess_bulk", "ess_tail", "r_hat") if c in shown]
    print(shown[cols].to_string(index=False))
    print(f"(q5%, q95%: the {INTERVAL}; every interval ipe prints or saves is of this kind)")
    if getattr(est, "k_sims_", None):
        k = est.k_sims_
        print(f"\nsimulations per judgment κ = {k['mean']:.2f} [{k['q05']:.2f}, {k['q95']:.2f}] (90% equal-tailed)")
    if getattr(est, "mc_sd_", None):
        report_mc_sd(est.mc_sd_)
    if getattr(est, "link_gamma_", None):
        g = est.link_gamma_
        print(f"power link γ = {g['mean']:.3f} [{g['q05']:.3f}, {g['q95']:.3f}] (90% equal-tailed)")
    crit = est.criteria()
    print(f"\nLOO elpd = {crit['elpd_loo']:.1f} (se {crit['se_loo']:.1f}); WAIC elpd = {crit['elpd_waic']:.1f}; "
          f"divergences: {est.n_divergent_}; posterior-predictive 90% intervals hold "
          f"{est.ppc_['inside_90'].mean():.0%} of stimulus means")
    if est.stopped_early_:
        note(f"stopped by --max-time {max_time} after {est.idata_.posterior.sizes['draw']} draws per chain; "
             "what was drawn is saved")
    report_verdict(est.verdict_)
