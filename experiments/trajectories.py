"""Trajectories: where will the ball land? Landing predictions on Plinko worlds, with fans and distributions.

Smith & Vul (2013, "Sources of uncertainty in intuitive physics", *Topics
in Cognitive Science*) modelled people's predictions of where a moving ball
would go as noisy simulation with **perceptual** noise (where the ball
starts) and **dynamics** noise (a random turn at each bounce), and found
that both are needed to fit people: the predicted endpoints spread out as
noise grows, and they spread out more for paths with more bounces (longer
paths), because dynamics noise accumulates at every collision. Later Plinko
studies (Gerstenberg, Siegel & Tenenbaum 2018/2021) used the same
noisy-simulation account for where a ball dropped into a box of obstacles
lands. No human landing data ship with ipe, so this script measures the
model side of those claims on generated worlds; the published comparisons
with people are not reproduced.

For ``--worlds`` Plinko worlds (``ipe.stimuli.generate_plinko``: a 600 px
box, three obstacles, a ball at rest in one of three holes) it runs

* a **noise sweep**: for each motion-noise source — ``launch_position``
  (perceptual: where the ball starts, in ball diameters), ``collision_angle``
  (dynamics: a turn in radians each time the ball leaves a shape; Smith &
  Vul's collision noise) and both together — at each level in ``--levels``,
  ``--samples`` rollouts of ``landing_x`` of the ball on the ground, with
  common random numbers across levels (``ipe.simulate(...,
  common_random_numbers=True)``), and per world and level the landing sd,
  the mean, and the distance of the mean from the noise-free landing;
* **fans**: for the first ``--fans`` worlds, ``ipe.trajectories.record_paths``
  at the middle level of both sources: the noisy paths, the noise-free path
  on top, and the landing density below (``fans/<id>.png``), plus one
  overview figure ``fans.png``.

It writes ``sweep.csv`` (world × source × level), ``landing_summary.csv``
(the fans' ``ipe.trajectories.landing_summary``), ``spread.png`` (landing
sd against noise level per source; sd against the noise-free time to land),
``fans.png``, ``fans/*.png``, and ``results.csv`` / ``results.md`` /
``summary.json`` into ``experiments/results/trajectories/``.

Measured (full size, seed 2013: 12 worlds, levels 0.05/0.1/0.2/0.4, 40
rollouts per cell, 5 760 sweep rollouts plus 164 recorded ones; 239 s with
2 workers on a shared 2-core machine): with both sources the mean landing
sd grows from 28 px at level 0.05 to 48, 94 and 119 px (a ball is 50 px
wide); every one of the 12 worlds lands wider at 0.4 than at 0.05 (12/12);
Spearman rho between level and sd 0.64 over world × level. Perception
alone (launch position 0.4) gives 95 px, dynamics alone (collision angle
0.4 rad) 70 px. The link between path length and spread is weak here:
Spearman rho between the noise-free time to land and the sd at level 0.2 is
0.21 over 12 worlds (an obstacle that splits the paths two ways matters more
than the number of bounces).

Run::

    python experiments/trajectories.py          # full size, a few CPU-minutes
    python experiments/trajectories.py --tiny   # seconds
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

import ipe  # noqa: E402
from ipe.fileio import write_csv  # noqa: E402
from ipe.render import save_figure  # noqa: E402
from ipe.stimuli.plinko import generate_plinko  # noqa: E402
from ipe.trajectories import landing_summary, plot_fan, plot_landings, record_paths, trajectory_figure  # noqa: E402

NAME = "trajectories"
FULL = dict(worlds=12, samples=40, levels=(0.05, 0.1, 0.2, 0.4), fans=4, fan_samples=40)
TINY = dict(worlds=2, samples=5, levels=(0.05, 0.4), fans=1, fan_samples=5)
SOURCES = ("launch_position", "collision_angle", "both")


def noise(source: str, level: float) -> ipe.NoiseParams:
    """The motion noise of one sweep cell: one source at ``level``, or both at ``level``."""
    if source == "both":
        return ipe.NoiseParams(launch_position=level, collision_angle=level)
    return ipe.NoiseParams(**{source: level})


def sweep(worlds, levels, n_samples: int, seed: int, workers: int) -> pd.DataFrame:
    """One row per world × source × level: ``n_landed, sd, mean, no_noise, shift, p_far``.

    ``shift`` is |mean − noise-free landing| (px); ``p_far`` the fraction of
    landings more than one ball diameter (50 px) from the noise-free one.
    """
    points = [noise(src, lv) for src in SOURCES for lv in levels]
    labels = [(src, lv) for src in SOURCES for lv in levels]
    roll = ipe.simulate(worlds, points, n_samples=n_samples, seed=seed, workers=workers,
                        common_random_numbers=True, progress=C.progress())
    keycols = ["launch_position", "collision_angle"]
    rows = []
    by_id = {w.id: w for w in worlds}
    for (sid, lp, ca), g in roll.groupby(["stimulus_id", *keycols], sort=False):
        src_level = [lab for lab, p in zip(labels, points)
                     if math.isclose(p.launch_position, lp) and math.isclose(p.collision_angle, ca)]
        (src, lv), = src_level
        v = g["value"].to_numpy(float)
        ok = v[np.isfinite(v)]
        nf = float(by_id[sid].metadata["landing_x_no_noise"])
        rows.append({"stimulus_id": sid, "source": src, "level": lv, "n": len(v), "n_landed": len(ok),
                     "no_noise": nf, "time_to_land_no_noise": float(by_id[sid].metadata["time_to_land_no_noise"]),
                     "mean": float(ok.mean()) if len(ok) else math.nan,
                     "sd": float(ok.std(ddof=1)) if len(ok) > 1 else math.nan,
                     "shift": abs(float(ok.mean()) - nf) if len(ok) else math.nan,
                     "p_far": float(np.mean(np.abs(ok - nf) > 50.0)) if len(ok) else math.nan})
    return pd.DataFrame(rows).sort_values(["source", "stimulus_id", "level"], ignore_index=True)


def spearman(x, y) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN with fewer than 3 finite pairs."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    return C.pearson(pd.Series(x[ok]).rank().to_numpy(), pd.Series(y[ok]).rank().to_numpy())


def main(argv=None) -> int:
    ap = C.parser(__doc__, NAME)
    ap.add_argument("--worlds", type=int, help="Plinko worlds")
    ap.add_argument("--samples", type=int, help="rollouts per world, source and level")
    ap.add_argument("--levels", type=str, help="comma-separated noise levels, e.g. 0.05,0.1,0.2,0.4")
    ap.add_argument("--fans", type=int, help="worlds drawn as trajectory fans")
    args = ap.parse_args(argv)
    cfg = C.sizes(args, TINY, FULL, ("worlds", "samples", "fans"))
    if args.levels:
        cfg["levels"] = tuple(float(v) for v in args.levels.split(","))
    levels = tuple(sorted(cfg["levels"]))
    if len(levels) < 2 or levels[0] <= 0:
        ap.error("--levels: at least two positive levels")
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    worlds = generate_plinko(cfg["worlds"], seed=args.seed)

    table = sweep(worlds, levels, cfg["samples"], args.seed, args.workers)
    write_csv(out / "sweep.csv", table)

    # Fans at the middle level of both sources.
    mid = levels[len(levels) // 2]
    fan_worlds = list(worlds)[: cfg["fans"]]
    paths, landings = record_paths(fan_worlds, noise("both", mid), n_samples=cfg["fan_samples"], seed=args.seed,
                                   progress=C.progress())
    summ = landing_summary(landings)
    write_csv(out / "landing_summary.csv", summ)
    (out / "fans").mkdir(exist_ok=True)
    for w in fan_worlds:
        fig = trajectory_figure(w, paths, landings)
        save_figure(fig, out / "fans" / f"{w.id}.png", dpi=90)
        plt.close(fig)
    fig, axes = plt.subplots(2, len(fan_worlds), figsize=(3.6 * len(fan_worlds), 5.2), squeeze=False,
                             gridspec_kw={"height_ratios": [4, 1]})
    for k, w in enumerate(fan_worlds):
        plot_fan(axes[0, k], w, paths)
        axes[0, k].set_title(w.id, fontsize=9)
        plot_landings(axes[1, k], w, landings, xlim=axes[0, k].get_xlim())
    fig.suptitle(f"launch position {mid:g} + collision angle {mid:g}:\n{cfg['fan_samples']} noisy paths, "
                 "noise-free path on top", fontsize=9)
    fig.tight_layout()
    save_figure(fig, out / "fans.png", dpi=100)
    plt.close(fig)

    # Numbers.
    per = table.groupby(["source", "level"])[["sd", "shift", "p_far"]].mean().reset_index()
    both = table[table["source"] == "both"]
    lo, hi = levels[0], levels[-1]
    wide = both.pivot(index="stimulus_id", columns="level", values="sd")
    frac_wider = float(np.mean(wide[hi] > wide[lo]))
    rho_level = spearman(both["level"], both["sd"])
    at_mid = both[both["level"] == mid]
    rho_time = spearman(at_mid["time_to_land_no_noise"], at_mid["sd"])

    def mean_sd(src, lv):
        return float(per.loc[(per["source"] == src) & (per["level"] == lv), "sd"].iloc[0])

    res = {"worlds": len(worlds), "levels": list(levels), "mid": mid, "frac_worlds_wider": frac_wider,
           "spearman_level_sd": rho_level, "spearman_time_sd": rho_time,
           "mean_sd": {f"{s}@{lv:g}": mean_sd(s, lv) for s in SOURCES for lv in levels},
           "fan_landing_sd": summ["sd"].tolist()}
    claims = pd.DataFrame([
        {"claim": f"mean landing sd (px), both sources, level {lo:g}", "paper": "narrow at low noise",
         "ours": mean_sd("both", lo)},
        {"claim": f"mean landing sd (px), both sources, level {hi:g}", "paper": "wider at high noise",
         "ours": mean_sd("both", hi)},
        {"claim": f"fraction of worlds whose landing sd is larger at {hi:g} than at {lo:g}",
         "paper": "more noise, wider distributions (Smith & Vul 2013)", "ours": frac_wider},
        {"claim": "Spearman rho, noise level vs landing sd (world × level, both sources)", "paper": "positive",
         "ours": rho_level},
        {"claim": f"mean landing sd (px), perception only (launch_position {hi:g})", "paper": "",
         "ours": mean_sd("launch_position", hi)},
        {"claim": f"mean landing sd (px), dynamics only (collision_angle {hi:g} rad)", "paper": "",
         "ours": mean_sd("collision_angle", hi)},
        {"claim": f"Spearman rho, noise-free time to land vs landing sd (level {mid:g})",
         "paper": "positive: dynamics noise accumulates over bounces (Smith & Vul 2013)", "ours": rho_time},
    ])

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 3.8))
    for src in SOURCES:
        p = per[per["source"] == src]
        ax.plot(p["level"], p["sd"], "o-", label=src.replace("_", " "))
    for sid, g in both.groupby("stimulus_id"):
        ax.plot(g["level"], g["sd"], color="0.8", lw=0.6, zorder=0)
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(levels)
    ax.set_xticklabels([f"{lv:g}" for lv in levels])
    ax.set_xlabel("noise level (ball diameters / rad)")
    ax.set_ylabel("landing sd (px)")
    ax.set_title("mean over worlds (grey: each world, both sources)", fontsize=9)
    ax.legend(fontsize=8, frameon=False)
    bx.scatter(at_mid["time_to_land_no_noise"], at_mid["sd"], s=18)
    bx.set_xlabel("noise-free time to land (s)")
    bx.set_ylabel(f"landing sd (px) at level {mid:g}")
    bx.set_title(f"Spearman rho = {rho_time:.2f}", fontsize=9)
    fig.tight_layout()
    save_figure(fig, out / "spread.png", dpi=110)
    plt.close(fig)

    notes = ["Papers: Smith & Vul (2013): noisy simulation with perceptual and collision (dynamics) noise fits "
             "people's predictions of a ball's path; uncertainty grows with noise and with bounces. "
             "Gerstenberg et al. (2018, 2021): the same account for Plinko. Only the model's side is measured "
             "here (no human landing data ship with ipe): the 'paper' column states the qualitative pattern.",
             f"Sizes: {cfg}. Total {time.time() - t0:.0f} s."]
    C.write_results(out, NAME, "Trajectories: landing predictions on Plinko worlds", claims,
                    details={**res, "config": {**cfg, "levels": list(levels)}}, notes=notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
