"""Plinko with the published noise family: recover the collision-speed noise, and check ipe against a rebuild.

Three parts, on generated Plinko worlds (``ipe stimuli plinko``), every
world with the ball in each of its three holes:

1. **Engine check.** ipe's landing distributions against a plain-pymunk
   rebuild of the published Plinko engine written from its description
   (:func:`rebuild_landing`, below: pymunk's default solver, a ball dropped
   from rest, drop noise, collision noise on ball–obstacle contacts only —
   velocity rotated by a normal angle, speed scaled by a normal factor
   truncated at 0 — and the ball's x when it first touches the ground, or
   at the horizon). The two share no noise code and no random numbers, so
   the comparison is between distributions: per stimulus, the difference of
   the mean landings and the two-sample Kolmogorov–Smirnov distance, against
   what two independent ipe samples of the same size give.
2. **Parameter recovery.** Synthetic people judge each stimulus by one
   noisy simulation at known ``collision_speed_loss`` (mean speed factor
   ``1 − loss``) and ``collision_speed_sd``, with drop and collision-angle
   noise fixed, and click with 8 px Gaussian noise. The landing emulator
   covers a grid over the two speed parameters; :class:`LandingFit` with the
   KDE likelihood (the whole landing distribution) fits the trial-level
   clicks and the per-stimulus means. Reported: posterior mean, 90 %
   interval, whether it holds the truth, R-hat. ``--emulator-bootstrap B``
   pools each fit over B bootstrap replicates of the emulator
   (``LandingFit(emulator_bootstrap=B)``), so that its intervals carry the
   emulator's Monte Carlo error (``between_share``: the emulator's part of
   each interval's variance).
3. **Unknown n.** The per-stimulus means are fitted again with the number
   of clicks per mean set to a quarter, half, the default
   (:data:`ipe.inference.landing.DEFAULT_N`), and twice the true n: how
   much the speed parameters and the click noise τ move.
4. **The emulator's Monte Carlo error** (``--profile-sets K``): the clicks'
   log-likelihood along ``collision_speed_sd`` (loss and click noise at the
   truth) from K disjoint sets of the emulator's rollouts per grid point,
   and from all of them: where each set puts the peak. ``--profile-only``
   skips the fits (the emulator comes from the store when it was built
   before).
5. **With participants** (``--hierarchical``): the same clicks fitted by
   ``ipe fit``'s hierarchical model (:class:`~ipe.inference.HierarchicalFit`
   on the position scale: each synthetic person's own speed noise around the
   group value, a response bias each, the same kernel-density likelihood on
   the same emulator's rollouts). The people share one noise setting, so the
   participant spreads should come out small and the group values hold the
   truth; ``mc_sd`` is the fit's emulator check. ``--skip-compare
   --skip-recovery --hierarchical`` runs it alone.

Usage::

    python experiments/plinko.py            # the full run (about 15 minutes on one loaded core)
    python experiments/plinko.py --tiny     # seconds, for the tests

Writes ``results/plinko/``: ``compare.csv`` (part 1, one row per
stimulus), ``recovery.csv`` (part 2, with ``mc_sd``: the emulator's Monte Carlo
error across each posterior, :attr:`LandingFit.mc_sd_`), ``n_sensitivity.csv`` (part 3),
``profile.csv`` (part 4), ``hierarchical.csv`` (part 5),
``results.csv``/``results.md``/``summary.json`` (the claims), and
``landings.png`` (ipe's and the rebuild's landings on six stimuli).
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import parser, progress, sizes, write_results  # noqa: E402

from ipe.fileio import write_csv  # noqa: E402
from ipe.inference.landing import (DEFAULT_N, LandingEmulator, LandingFit, landing_fit_or_load,  # noqa: E402
                                   stimulus_means, synthesize_landings)
from ipe.montecarlo import simulate  # noqa: E402
from ipe.noise import NoiseParams  # noqa: E402
from ipe.checks import StimulusSet  # noqa: E402
from ipe.scene import Ball, Stimulus, world_vertices  # noqa: E402
from ipe.stimuli.plinko import generate_plinko, plinko_scene  # noqa: E402

TRUTH = dict(drop_angle=0.05, collision_angle=0.15, collision_speed_loss=0.44, collision_speed_sd=0.25)
"""The synthetic people's noise: the published model's mean speed factor ≈ 0.56 (loss 0.44)."""
FREE = ("collision_speed_loss", "collision_speed_sd")
GRIDS = {"collision_speed_loss": (0.0, 0.6), "collision_speed_sd": (0.0, 0.4)}
MOTOR_SD = 8.0

TINY = dict(n_worlds=1, n_participants=4, emulator_samples=4, grid_points=3, warmup=10, draws=10, chains=1,
            compare_samples=4, n_factors=(None,))
FULL = dict(n_worlds=4, n_participants=30, emulator_samples=40, grid_points=5, warmup=300, draws=300, chains=2,
            compare_samples=100, n_factors=(0.25, 0.5, None, 2.0))


def all_holes(worlds: StimulusSet) -> StimulusSet:
    """Every world with the ball in each of its three holes (ids ``<world>_h<hole>``)."""
    out = []
    for w in worlds:
        obstacles = [s for s in w.scene.statics if s.label == "obstacle"]
        for hole in range(3):
            out.append(Stimulus(f"{w.id}_h{hole}", plinko_scene(obstacles, hole), w.query,
                                metadata={"world": w.id, "hole": hole}))
    return StimulusSet(tuple(out), name="plinko_all_holes")


# --------------------------------------------------------------------------- the rebuild


def rebuild_landing(stim: Stimulus, noise: dict, rng: np.random.Generator) -> float:
    """One rollout of the published engine, rebuilt in plain pymunk from its description; returns landing x.

    The ball falls from rest under gravity; pymunk's default solver
    (10 iterations, slop 0.1, bias ``(1 - 0.1) ** 60``) steps by the scene's
    physics step. Drop noise turns the ball's velocity by ``N(0,
    drop_angle)`` once it has moved one diameter from where it started.
    Every time the ball separates from an obstacle its velocity is turned by
    ``N(0, collision_angle)`` and its speed multiplied by a factor drawn
    from ``Normal(1 − collision_speed_loss, collision_speed_sd)`` truncated
    at 0 (``scipy.stats.truncnorm``). Walls, lid and ground carry no noise.
    The answer is the ball's x when it first touches the ground, or its x
    at the horizon.
    """
    import pymunk
    from scipy.stats import truncnorm

    scene = stim.scene
    space = pymunk.Space()
    space.gravity = scene.gravity
    OBSTACLE, GROUND, OTHER, BALL = 1, 2, 3, 4
    for s in scene.statics:
        shape = pymunk.Poly(space.static_body, [tuple(v) for v in world_vertices(s)])
        shape.friction, shape.elasticity = s.friction, s.elasticity
        shape.collision_type = OBSTACLE if s.label == "obstacle" else GROUND if s.id == "ground" else OTHER
        space.add(shape)
    b: Ball = scene.bodies[0]
    body = pymunk.Body(1.0, pymunk.moment_for_circle(1.0, 0, b.radius))
    body.position = b.position
    circle = pymunk.Circle(body, b.radius)
    circle.friction, circle.elasticity, circle.collision_type = b.friction, b.elasticity, BALL
    space.add(body, circle)
    state = {"kick": False, "landed": None, "dropped": False}

    def separate(arbiter, space_, data):
        state["kick"] = True

    def begin(arbiter, space_, data):
        if state["landed"] is None:
            state["landed"] = float(body.position.x)

    space.on_collision(BALL, OBSTACLE, separate=separate)
    space.on_collision(BALL, GROUND, begin=begin)
    dt = scene.simulation.dt
    start = np.array(b.position)
    sd = noise["collision_speed_sd"]
    mean = 1.0 - noise["collision_speed_loss"]

    def turn(angle: float, factor: float = 1.0) -> None:
        v = body.velocity.rotated(angle) * factor
        body.velocity = v

    for _ in range(scene.simulation.n_steps):
        if not state["dropped"] and np.hypot(*(np.array(body.position) - start)) >= 2 * b.radius:
            state["dropped"] = True
            turn(rng.normal(0.0, noise["drop_angle"]) if noise["drop_angle"] else 0.0)
        if state["kick"]:
            state["kick"] = False
            factor = mean if sd == 0 else float(truncnorm.rvs(-mean / sd, np.inf, loc=mean, scale=sd,
                                                              random_state=rng))
            turn(rng.normal(0.0, noise["collision_angle"]) if noise["collision_angle"] else 0.0, max(factor, 0.0))
        space.step(dt)
        if state["landed"] is not None:
            return state["landed"]
    return float(body.position.x)


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The two-sample Kolmogorov–Smirnov statistic (largest gap between the two empirical CDFs)."""
    from scipy.stats import ks_2samp

    return float(ks_2samp(a, b).statistic)


def compare_engines(stimuli: StimulusSet, n: int, seed: int, workers: int) -> pd.DataFrame:
    """Part 1: per stimulus, ipe's landings against the rebuild's, no noise and at the synthetic people's noise."""
    params = NoiseParams(**TRUTH)
    ipe_a = simulate(stimuli, params, n_samples=n, seed=seed, workers=workers, progress=progress())
    ipe_b = simulate(stimuli, params, n_samples=n, seed=seed + 1, workers=workers, progress=progress())
    ipe_0 = simulate(stimuli, NoiseParams(), n_samples=1, seed=seed, workers=workers, progress=False)
    zero = {k: 0.0 for k in TRUTH}
    rows = []
    for i, s in enumerate(stimuli):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(31, i)))
        rebuilt = np.array([rebuild_landing(s, TRUTH, rng) for _ in range(n)])
        a = ipe_a.loc[ipe_a["stimulus_id"] == s.id, "value"].to_numpy(float)
        b = ipe_b.loc[ipe_b["stimulus_id"] == s.id, "value"].to_numpy(float)
        free_ipe = float(ipe_0.loc[ipe_0["stimulus_id"] == s.id, "value"].iloc[0])
        free_rebuilt = rebuild_landing(s, zero, rng)
        rows.append({"stimulus_id": s.id, "no_noise_ipe": free_ipe, "no_noise_rebuild": free_rebuilt,
                     "no_noise_diff": abs(free_ipe - free_rebuilt),
                     "mean_ipe": a.mean(), "mean_rebuild": rebuilt.mean(), "sd_ipe": a.std(ddof=1),
                     "sd_rebuild": rebuilt.std(ddof=1), "ks_ipe_rebuild": ks_distance(a, rebuilt),
                     "ks_ipe_ipe": ks_distance(a, b), "nan": int(np.isnan(a).sum() + np.isnan(rebuilt).sum()),
                     "ipe": a.tolist(), "rebuild": rebuilt.tolist()})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- recovery


def recover(stimuli: StimulusSet, cfg: dict, seed: int, workers: int, fits: bool = True):
    """Parts 2 and 3: fit the collision-speed noise to synthetic clicks and means; vary the assumed n.

    Returns ``(recovery, n_sensitivity, timing, clicks, emulator)``; ``fits=False`` only makes the clicks and
    the emulator (for part 4)."""
    truth = NoiseParams(**TRUTH)
    clicks = synthesize_landings(stimuli, cfg["n_participants"], truth, motor_sd=MOTOR_SD, seed=seed + 1,
                                 workers=workers, progress=progress())
    grid = {n: list(np.round(np.linspace(*GRIDS[n], cfg["grid_points"]), 6)) for n in FREE}
    fixed = {k: v for k, v in TRUTH.items() if k not in FREE}
    t0 = time.time()
    emu, _, reused = landing_fit_or_load(LandingEmulator(grid=grid, fixed=fixed, n_samples=cfg["emulator_samples"],
                                                         seed=seed + 2, workers=workers, progress=progress()),
                                         stimuli)
    timing = {"emulator_s": round(time.time() - t0, 1), "emulator_reused": reused,
              "emulator_rollouts": int(len(stimuli) * cfg["grid_points"] ** 2 * cfg["emulator_samples"])}
    true = {**TRUTH, "motor_sd": MOTOR_SD}
    means = stimulus_means(clicks)
    n_true = int(means["n"].iloc[0])

    def fit(data, is_means, n_assumed=None):
        t = time.time()
        f = LandingFit(free=FREE, num_warmup=cfg["warmup"], num_samples=cfg["draws"], num_chains=cfg["chains"],
                       seed=seed + 3, emulator_bootstrap=cfg.get("emulator_bootstrap", 0))
        if n_assumed is not None:
            f.default_n = n_assumed
            data = data.drop(columns="n")
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # problems are reported in the table
            f.fit(data, emu, means=is_means)
        return f, round(time.time() - t, 1)

    rows = []
    for kind, data, is_means in (("trials", clicks, False), ("means", means, True)) if fits else ():
        f, secs = fit(data, is_means)
        for r in f.summary_.itertuples():
            rows.append({"data": kind, "parameter": r.parameter, "true": true[r.parameter], "mean": r.mean,
                         "q05": r.q05, "q95": r.q95, "inside_90": bool(r.q05 <= true[r.parameter] <= r.q95),
                         "r_hat": r.r_hat, "ess_bulk": r.ess_bulk, "divergences": f.n_divergent_,
                         "mc_sd": f.mc_sd_.get(r.parameter, math.nan),
                         "between_share": f.mc_between_.get(r.parameter, math.nan),
                         "pool_se": f.pool_se_.get(r.parameter, math.nan), "converged": f.verdict_.converged,
                         "fit_s": secs})
    sens = []
    for factor in cfg["n_factors"]:
        n_assumed = DEFAULT_N if factor is None else max(1, int(round(factor * n_true)))
        f, secs = fit(means, True, n_assumed)
        for r in f.summary_.itertuples():
            sens.append({"n_true": n_true, "n_assumed": n_assumed, "default": factor is None,
                         "parameter": r.parameter, "true": true[r.parameter], "mean": r.mean, "q05": r.q05,
                         "q95": r.q95, "inside_90": bool(r.q05 <= true[r.parameter] <= r.q95), "r_hat": r.r_hat})
    timing["n_trials"] = len(clicks)
    return pd.DataFrame(rows), pd.DataFrame(sens), timing, clicks, emu


def hierarchical_fit(clicks: pd.DataFrame, emu: LandingEmulator, stimuli: StimulusSet, cfg: dict,
                     seed: int) -> pd.DataFrame:
    """Part 5: the clicks fitted by ``ipe fit``'s hierarchical model on the landing emulator's rollouts (the
    position scale's kernel density at each person's own values); one row per group value, the participant
    spreads and the click noise."""
    import warnings

    from ipe.humans import scale_for_stimuli
    from ipe.inference import HierarchicalFit

    t = time.time()
    fit = HierarchicalFit(free=FREE, scale=scale_for_stimuli(stimuli), num_warmup=cfg["warmup"],
                          num_samples=cfg["draws"], num_chains=cfg["chains"], seed=seed + 5, progress=progress())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # problems are reported in the table
        fit.fit(clicks, emu)
    secs = round(time.time() - t, 1)
    table = fit.summary_.set_index("parameter")
    true = {**TRUTH, "motor_sd": MOTOR_SD, **{f"tau_{n}": 0.0 for n in FREE}, "tau_bias": 0.0}
    rows = []
    for name in [*FREE, *(f"tau_{n}" for n in FREE), "tau_bias", "motor_sd"]:
        if name not in table.index:
            continue
        r = table.loc[name]
        rows.append({"parameter": name, "true": true[name], "mean": r["mean"], "q05": r["q5%"], "q95": r["q95%"],
                     "inside_90": bool(r["q5%"] <= true[name] <= r["q95%"]), "r_hat": r["r_hat"],
                     "ess_bulk": r["ess_bulk"], "divergences": fit.n_divergent_,
                     "mc_sd": fit.mc_sd_.get(name, math.nan), "converged": fit.verdict_.converged, "fit_s": secs})
    return pd.DataFrame(rows)


PROFILE_SD = tuple(np.round(np.arange(0.0, 0.4001, 0.025), 4))
"""Where part 4 reads the likelihood along ``collision_speed_sd``."""


def likelihood_profile(clicks: pd.DataFrame, emu: LandingEmulator, sets: int, seed: int) -> pd.DataFrame:
    """Part 4: the clicks' KDE log-likelihood along ``collision_speed_sd`` (loss and click noise at the truth),
    read from ``sets`` disjoint sets of the emulator's rollouts per grid point and from all of them together.

    It shows how much the Monte Carlo of ``S / sets`` rollouts per point moves the likelihood, against the
    clicks' own evidence. One row per (rollout set, sd): the log-likelihood and its drop from the set's peak.
    """
    import torch
    from types import SimpleNamespace

    from ipe.inference.landing_density import LandingDensity

    n_s = emu.samples_.shape[2]
    per = n_s // sets
    index = {sid: i for i, sid in enumerate(emu.stimulus_ids_)}
    stim = [index[s] for s in clicks["stimulus_id"]]
    y = torch.tensor(clicks["response"].to_numpy(float), dtype=torch.float64)
    group = torch.tensor(stim, dtype=torch.long)
    rows = []
    for k in range(sets + 1):
        lo, hi = (k * per, (k + 1) * per) if k < sets else (0, n_s)
        part = SimpleNamespace(samples_=emu.samples_[:, :, lo:hi], stimulus_ids_=emu.stimulus_ids_,
                               grid_values_=emu.grid_values_)
        mix = LandingDensity(part, [(i, 1) for i in range(len(emu.stimulus_ids_))], 1, seed)
        ll = []
        for t in PROFILE_SD:
            theta = {"collision_speed_loss": torch.tensor(TRUTH["collision_speed_loss"], dtype=torch.float64),
                     "collision_speed_sd": torch.tensor(t, dtype=torch.float64)}
            ll.append(float(mix.loglik(theta, torch.tensor(MOTOR_SD, dtype=torch.float64), group, y).sum()))
        top = max(ll)
        rows += [{"rollouts": f"{lo}-{hi - 1}", "n_rollouts": hi - lo, "collision_speed_sd": t, "loglik": v,
                  "below_peak": top - v, "peak": PROFILE_SD[int(np.argmax(ll))]} for t, v in zip(PROFILE_SD, ll)]
    return pd.DataFrame(rows)


def figure(compare: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ipe.render import save_figure

    rows = compare.head(6)
    fig, axes = plt.subplots(2, 3, figsize=(10, 5), squeeze=False)
    for ax, r in zip(axes.ravel(), rows.itertuples()):
        bins = np.linspace(0, 600, 41)
        ax.hist(r.ipe, bins=bins, alpha=0.5, label="ipe", color="#1f77b4")
        ax.hist(r.rebuild, bins=bins, alpha=0.5, label="rebuild", color="#d62728")
        ax.axvline(r.no_noise_ipe, color="k", linewidth=1)
        ax.set_title(f"{r.stimulus_id}  KS {r.ks_ipe_rebuild:.2f}", fontsize=8)
        ax.set_yticks([])
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(rows):]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("landing x (px): ipe vs a plain-pymunk rebuild of the published engine", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    ap = parser(__doc__, "plinko")
    ap.set_defaults(seed=21)
    ap.add_argument("--emulator-samples", type=int, default=None, help="rollouts per stimulus and grid point")
    ap.add_argument("--emulator-bootstrap", type=int, default=0,
                    help="parts 2 and 3: pool each fit over this many bootstrap replicates of the emulator, so its "
                         "intervals carry the emulator's Monte Carlo error (LandingFit(emulator_bootstrap=); 0: off)")
    ap.add_argument("--skip-compare", action="store_true", help="leave out part 1 (the engine check)")
    ap.add_argument("--skip-n", action="store_true", help="leave out part 3 (unknown n)")
    ap.add_argument("--profile-sets", type=int, default=0,
                    help="part 4: the clicks' likelihood along collision_speed_sd from this many disjoint sets of "
                         "the emulator's rollouts per point (0: leave it out)")
    ap.add_argument("--profile-only", action="store_true", help="part 4 without the fits of parts 2 and 3")
    ap.add_argument("--skip-recovery", action="store_true",
                    help="leave out the fits of parts 2 and 3 (e.g. part 5 alone: --skip-compare --skip-recovery "
                         "--hierarchical)")
    ap.add_argument("--hierarchical", action="store_true",
                    help="part 5: fit the clicks with ipe fit's hierarchical model as well")
    ap.add_argument("--warmup", type=int, default=None, help="parts 2 and 3: NUTS warm-up steps per chain")
    ap.add_argument("--draws", type=int, default=None, help="parts 2 and 3: NUTS draws per chain")
    ap.add_argument("--chains", type=int, default=None, help="parts 2 and 3: NUTS chains (per replicate)")
    a = ap.parse_args(argv)
    skip_fits = a.profile_only or a.skip_recovery
    cfg = sizes(a, TINY, FULL, ("emulator_samples", "warmup", "draws", "chains"))
    if a.skip_n:
        cfg["n_factors"] = ()
    if a.emulator_bootstrap < 0:
        ap.error("--emulator-bootstrap must be a non-negative integer")
    cfg["emulator_bootstrap"] = a.emulator_bootstrap
    out: Path = a.out
    out.mkdir(parents=True, exist_ok=True)
    stimuli = all_holes(generate_plinko(cfg["n_worlds"], seed=a.seed))
    t0 = time.time()
    if a.skip_compare:
        compare = pd.DataFrame({"no_noise_diff": [math.nan], "ks_ipe_rebuild": [math.nan], "ks_ipe_ipe": [math.nan],
                                "nan": [0]})
    else:
        compare = compare_engines(stimuli, cfg["compare_samples"], a.seed, a.workers)
        write_csv(out / "compare.csv", compare.drop(columns=["ipe", "rebuild"]))
        figure(compare, out / "landings.png")
    t_compare = round(time.time() - t0, 1)
    recovery, sens, timing, clicks, emu = recover(stimuli, cfg, a.seed, a.workers, fits=not skip_fits)
    if a.profile_sets:
        profile = likelihood_profile(clicks, emu, a.profile_sets, a.seed)
        write_csv(out / "profile.csv", profile)
        peaks = profile.groupby("rollouts", sort=False)[["n_rollouts", "peak"]].first()
        print("part 4: peak of the clicks' likelihood along collision_speed_sd (truth 0.25), per rollout set:\n"
              + peaks.to_string())
    if a.hierarchical:
        hier = hierarchical_fit(clicks, emu, stimuli, cfg, a.seed)
        write_csv(out / "hierarchical.csv", hier)
        print("part 5: ipe fit's hierarchical model on the clicks:\n" + hier.to_string(index=False))
    if skip_fits:
        return 0
    write_csv(out / "recovery.csv", recovery)
    write_csv(out / "n_sensitivity.csv", sens)
    speed = recovery[recovery["parameter"].isin(FREE)]
    claims = pd.DataFrame([
        {"claim": "no-noise landing, ipe vs rebuild: median |difference| (px)", "paper": math.nan,
         "ours": float(compare["no_noise_diff"].median())},
        {"claim": "noisy landings: median KS distance ipe vs rebuild", "paper": math.nan,
         "ours": float(compare["ks_ipe_rebuild"].median())},
        {"claim": "noisy landings: median KS distance ipe vs ipe (another seed)", "paper": math.nan,
         "ours": float(compare["ks_ipe_ipe"].median())},
        {"claim": "NaN landings (ipe and rebuild)", "paper": 0, "ours": int(compare["nan"].sum())},
        {"claim": "collision-speed parameters whose 90% interval holds the truth (trials)", "paper": 2,
         "ours": int(speed.loc[speed["data"] == "trials", "inside_90"].sum())},
        {"claim": "collision-speed parameters whose 90% interval holds the truth (means)", "paper": 2,
         "ours": int(speed.loc[speed["data"] == "means", "inside_90"].sum())},
    ])
    details = {"sizes": cfg, "seed": a.seed, "truth": TRUTH, "motor_sd": MOTOR_SD, "compare_s": t_compare, **timing,
               "recovery": recovery.to_dict(orient="records"), "n_sensitivity": sens.to_dict(orient="records")}
    write_results(out, "plinko", "Plinko: the published noise family in ipe", claims, details,
                  notes=["recovery (90 % intervals):\n\n" + recovery.to_string(index=False),
                         "unknown n:\n\n" + sens.to_string(index=False)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
