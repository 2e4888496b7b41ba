"""How fast could the BHT-scale sweep be? Upper bounds from the engine itself, measured on a sample of it.

Run from the repository root::

    python benchmarks/bench_ceiling.py            # 20 towers × 3 noise points × 12 samples (about a minute)
    python benchmarks/bench_ceiling.py --quick    # a smoke run (seconds)

The sweep of ``bench_sweep.py`` (60 towers × 48 samples × 11 σ × 16 φ =
506,880 rollouts) has to run at 845 rollouts per CPU-second to finish in
five minutes on two cores. This script measures, on noisy rollouts of the
same towers (σ/φ = 0.2/0.1, 0.05/0, 0.4/0.25, ipe's default solver settings
and early stop), where a rollout's time goes and what the best conceivable
rollout rate would be:

* **ipe** — rollouts per CPU-second, everything included (seeding, noise,
  overlap resolution, building the space, stepping, rest checks, queries).
* **stepping only** — the same rollouts counting only the time spent
  stepping the physics (``fast_steps`` of ``ipe._fast_step`` as ``ipe.world`` calls it, which is chipmunk's
  ``cpSpaceStep`` in a loop): the rate if everything ipe does around the
  physics cost nothing.
* **stepping only, stopped when the answer is settled** — also drop every
  step after the rollout's answer (blocks fallen) took its final value,
  read every 8 steps: what an oracle that knew when to stop would save. No
  real stopping rule can know this; it is a bound, not a proposal.

Each rate is turned into the time the whole sweep would take on two cores.
Writes ``benchmarks/results/ceiling.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
SWEEP_ROLLOUTS = 60 * 48 * 11 * 16
POINTS = ((0.2, 0.1), (0.05, 0.0), (0.4, 0.25))
RECORD_EVERY = 8


def _settled_step(counts: np.ndarray, times: np.ndarray, dt: float) -> int:
    """The first recorded step from which the answer never changes again."""
    changed = np.nonzero(counts != counts[-1])[0]
    k = int(changed[-1]) + 1 if len(changed) else 0
    return int(round(times[k] / dt))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, for smoke tests")
    ap.add_argument("--towers", type=int, default=None, help="towers (default 20)")
    ap.add_argument("--samples", type=int, default=None, help="samples per tower and point (default 12)")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "ceiling.json")
    args = ap.parse_args(argv)

    import ipe.world as world
    from ipe.montecarlo import run_sample
    from ipe.noise import NoiseParams
    from ipe.queries import fall_threshold
    from ipe.stimuli.towers import generate_towers

    n_towers = args.towers or (3 if args.quick else 20)
    n_samples = args.samples or (2 if args.quick else 12)
    stimuli = generate_towers(n_towers, seed=2013, n_blocks=10)
    points = [NoiseParams(sigma=s, phi=f) for s, f in POINTS]

    # 1. Where the time goes: the same rollouts as ipe.simulate runs them, with the stepping timed apart.
    stepping = [0.0]
    real_fast_steps = world.fast_steps

    def timed_fast_steps(*a, **k):
        t = time.process_time()
        real_fast_steps(*a, **k)
        stepping[0] += time.process_time() - t

    n = 0
    steps_run = 0
    world.fast_steps = timed_fast_steps
    try:
        t0 = time.process_time()
        for p in points:
            for st in stimuli:
                for s in range(n_samples):
                    _, res = run_sample(st, p, 0, s, [st.query])
                    steps_run += res.steps
                    n += 1
        total = time.process_time() - t0
    finally:
        world.fast_steps = real_fast_steps

    # 2. When the answer settles: the same rollouts again, recording the poses every 8 steps.
    settled = 0
    for p in points:
        for st in stimuli:
            y0 = np.array([b.position[1] for b in st.scene.bodies])
            thr = fall_threshold(st.scene)
            for s in range(n_samples):
                _, r = run_sample(st, p, 0, s, [st.query], record_every=RECORD_EVERY)
                counts = np.sum(y0[None, :] - r.trajectory[:, :, 1] > thr, axis=1)
                settled += min(_settled_step(counts, r.times, st.scene.simulation.dt), r.steps)

    rate_ipe = n / total
    rate_steps = n / stepping[0]
    rate_oracle = rate_steps * steps_run / max(settled, 1)

    def minutes(rate: float) -> float:
        return SWEEP_ROLLOUTS / rate / 2 / 60

    res = {
        "rollouts": n, "towers": n_towers, "samples": n_samples, "points": [list(p) for p in POINTS],
        "mean_steps_run": round(steps_run / n, 1), "mean_steps_until_answer_settles": round(settled / n, 1),
        "stepping_share": round(stepping[0] / total, 3),
        "rollouts_per_cpu_s": {"ipe": round(rate_ipe, 1), "stepping_only": round(rate_steps, 1),
                               "stepping_only_oracle_stop": round(rate_oracle, 1), "needed_for_5_min": 845.0},
        "sweep_minutes_on_2_cores": {"ipe": round(minutes(rate_ipe), 1),
                                     "stepping_only": round(minutes(rate_steps), 1),
                                     "stepping_only_oracle_stop": round(minutes(rate_oracle), 1)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")

    print(f"{n} noisy rollouts ({n_towers} towers × {len(points)} points × {n_samples} samples), one process")
    print(f"steps per rollout: {steps_run / n:.0f} run (early stop), the answer settled by step {settled / n:.0f}")
    print(f"stepping the physics: {100 * stepping[0] / total:.0f} % of the time")
    print("| bound | rollouts/CPU-s | whole sweep on 2 cores (min) |")
    print("|---|---:|---:|")
    for label, key in (("ipe, as it runs", "ipe"), ("stepping only (no ipe overhead)", "stepping_only"),
                       ("stepping only, oracle stop at the settled answer", "stepping_only_oracle_stop")):
        print(f"| {label} | {res['rollouts_per_cpu_s'][key]:.0f} | {res['sweep_minutes_on_2_cores'][key]:.1f} |")
    print("| needed for 5 minutes | 845 | 5.0 |")
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
