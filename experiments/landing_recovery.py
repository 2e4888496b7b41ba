"""Parameter recovery for clicked landing x: do fits find the launch and collision noise that made the data?

Synthetic participants (``ipe.inference.landing.synthesize_landings``) judge
Plinko worlds (``ipe stimuli plinko``) by one noisy simulation each, at a
known launch-position noise and collision-angle noise, and click with
Gaussian motor noise. The landing emulator is built on a grid over both
parameters, and the landing-x likelihood (``LandingFit``'s default, the KDE
over the simulated landings; the dated table in docs/trajectories.md was
measured with the earlier Gaussian one) is fitted with NUTS twice:
to the trial-level clicks and to the per-stimulus means only. The script
reports, for each fit, the posterior mean and the 90 % interval of each
parameter and whether the true value lies inside. ``--emulator-bootstrap B``
pools each fit over B bootstrap replicates of the emulator.

Usage::

    python experiments/landing_recovery.py                 # the full run (several minutes on one core)
    python experiments/landing_recovery.py --tiny          # seconds, for the tests

Writes ``results/landing_recovery/recovery.csv`` and ``recovery.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ipe.fileio import write_csv, write_json
from ipe.inference.landing import (LandingEmulator, LandingFit, landing_fit_or_load, stimulus_means,
                                   synthesize_landings)
from ipe.noise import NoiseParams
from ipe.stimuli.plinko import generate_plinko

HERE = Path(__file__).resolve().parent


def run(n_stimuli: int, n_participants: int, emulator_samples: int, grid_points: int, warmup: int, draws: int,
        chains: int, seed: int, true_launch: float, true_collision: float, motor_sd: float,
        workers: int = 1, emulator_bootstrap: int = 0) -> pd.DataFrame:
    """One recovery study; returns one row per (fit, parameter)."""
    stimuli = generate_plinko(n_stimuli, seed=seed)
    truth = NoiseParams(launch_position=true_launch, collision_angle=true_collision)
    responses = synthesize_landings(stimuli, n_participants, truth, motor_sd=motor_sd, seed=seed + 1,
                                    workers=workers)
    grid = {n: list(np.round(np.linspace(0.0, 0.6, grid_points), 6)) for n in ("launch_position", "collision_angle")}
    t0 = time.time()
    emu, _, _ = landing_fit_or_load(LandingEmulator(grid=grid, n_samples=emulator_samples, seed=seed + 2,
                                                    workers=workers), stimuli)
    t_emu = time.time() - t0
    rows = []
    true = {"launch_position": true_launch, "collision_angle": true_collision, "motor_sd": motor_sd}
    for kind, data, means in (("trials", responses, False), ("means", stimulus_means(responses), True)):
        t0 = time.time()
        fit = LandingFit(free=("launch_position", "collision_angle"), num_warmup=warmup, num_samples=draws,
                         num_chains=chains, seed=seed + 3, emulator_bootstrap=emulator_bootstrap).fit(data, emu,
                                                                                                   means=means)
        for r in fit.summary_.itertuples():
            rows.append({"data": kind, "parameter": r.parameter, "true": true[r.parameter], "mean": r.mean,
                         "q05": r.q05, "q95": r.q95, "inside_90": bool(r.q05 <= true[r.parameter] <= r.q95),
                         "r_hat": r.r_hat, "ess_bulk": r.ess_bulk, "divergences": fit.n_divergent_,
                         "mc_sd": fit.mc_sd_.get(r.parameter, float("nan")),
                         "between_share": fit.mc_between_.get(r.parameter, float("nan")),
                         "converged": fit.verdict_.converged,
                         "fit_s": round(time.time() - t0, 1), "emulator_s": round(t_emu, 1),
                         "n_stimuli": n_stimuli, "n_participants": n_participants, "n_trials": len(responses)})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="tiny sizes (seconds), for the tests")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "landing_recovery")
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--launch", type=float, default=0.25, help="true launch_position (ball diameters)")
    ap.add_argument("--collision", type=float, default=0.2, help="true collision_angle (rad)")
    ap.add_argument("--motor-sd", type=float, default=8.0, help="true click noise (px)")
    ap.add_argument("--emulator-bootstrap", type=int, default=0,
                    help="pool each fit over this many bootstrap replicates of the emulator (its intervals carry the "
                         "emulator's Monte Carlo error; LandingFit(emulator_bootstrap=); 0: off)")
    a = ap.parse_args(argv)
    if a.emulator_bootstrap < 0:
        ap.error("--emulator-bootstrap must be a non-negative integer")
    if a.tiny:
        sizes = dict(n_stimuli=2, n_participants=6, emulator_samples=6, grid_points=3, warmup=30, draws=30, chains=1)
    else:
        sizes = dict(n_stimuli=8, n_participants=30, emulator_samples=40, grid_points=6, warmup=300, draws=300,
                     chains=2)
    table = run(seed=a.seed, true_launch=a.launch, true_collision=a.collision, motor_sd=a.motor_sd,
                workers=a.workers, emulator_bootstrap=a.emulator_bootstrap, **sizes)
    a.out.mkdir(parents=True, exist_ok=True)
    write_csv(a.out / "recovery.csv", table)
    records = [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()}
               for r in table.to_dict(orient="records")]
    write_json(a.out / "recovery.json", {"sizes": sizes, "seed": a.seed, "rows": records})
    cols = ["data", "parameter", "true", "mean", "q05", "q95", "inside_90", "r_hat", "divergences", "mc_sd"]
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"emulator {table['emulator_s'].iloc[0]} s; wrote {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
