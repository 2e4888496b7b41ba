"""The BHT-scale sweep with every saving on, measured on a fixed fraction of the grid and projected.

Run from the repository root::

    nice -n 10 python benchmarks/bench_sweep_best.py           # about 6 CPU-minutes
    python benchmarks/bench_sweep_best.py --quick              # a smoke run (seconds)

The sweep is 60 towers (``generate_towers(60, seed=2013)``) × 48 samples ×
11 σ (0–0.5) × 16 φ (0–0.3) = 506,880 rollouts. What runs here, serially in
this one process (so its CPU seconds are the work's), all with the default
early stop (rest, plus answer-aware stopping) and the exact reuse of
rollouts that run the same physics:

* **row σ = 0**, all 16 φ: 46,080 table rows. With σ = 0 the push is the
  only noise and its only draw is a direction, so each (tower, φ) runs at
  most two distinct rollouts; timed with and without ``--target-se``;
* **the diagonal of the other rows**: σ_i with φ_(5i mod 16) for i = 1…10
  (the 10 σ > 0 points of ``bench_sweep.py``'s 1/16 fraction), 28,800 rows,
  fixed 48 samples and adaptive (``target_se`` 0.057, the largest se of a
  fixed 48-sample run: equal worst-case accuracy; ``bench_savings.py``).

``--row0-sharing``: only the σ = 0 row with ``--target-se``, timed with and
without the across-round sharing of rollouts that run the same physics
(``ipe.adaptive.SharedAcrossRounds``; "without" replaces its plan by the
identity, which is what ipe did before), in ``--repeats`` interleaved
rounds; the tables must be identical. Writes ``sweep_best_row0.json``.

Projection for the whole sweep: row σ = 0 as measured, plus 16 × the
diagonal (each σ > 0 row has 16 φ points, the diagonal holds one of each).
Two idle cores: CPU / 2 (the process pool scales 1.9–2.2× on this VM).
Writes ``benchmarks/results/sweep_best.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
SIGMAS = [round(float(v), 3) for v in np.linspace(0.0, 0.5, 11)]
PHIS = [round(float(v), 3) for v in np.linspace(0.0, 0.3, 16)]
TARGET_SE = 0.057


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, for smoke tests")
    ap.add_argument("--out", type=Path, default=None, help="JSON out (default benchmarks/results/sweep_best.json, "
                    "or sweep_best_row0.json with --row0-sharing)")
    ap.add_argument("--row0-sharing", action="store_true",
                    help="only the adaptive σ = 0 row, with and without sharing rollouts across rounds")
    ap.add_argument("--repeats", type=int, default=2, help="interleaved repeats for --row0-sharing (default 2)")
    args = ap.parse_args(argv)
    if args.out is None:
        args.out = ROOT / "results" / ("sweep_best_row0.json" if args.row0_sharing else "sweep_best.json")

    import ipe
    import ipe.runner as runner
    from ipe.noise import NoiseParams

    n_towers, n_samples = (3, 8) if args.quick else (60, 48)
    towers = ipe.generate_towers(n_towers, seed=2013)
    row0 = [NoiseParams(sigma=0.0, phi=f) for f in PHIS]
    diagonal = [NoiseParams(sigma=SIGMAS[i], phi=PHIS[(5 * i) % 16]) for i in range(1, 11)]
    if args.quick:
        row0, diagonal = row0[:3], diagonal[:2]

    physics = [0]
    real_rollout = runner.rollout

    def counting(*a, **k):
        physics[0] += 1
        return real_rollout(*a, **k)

    runner.rollout = counting

    def timed(points, target_se):
        physics[0] = 0
        t = time.process_time()
        df = ipe.simulate(towers, points, n_samples=n_samples, seed=0, target_se=target_se, progress=False)
        return {"cpu_s": round(time.process_time() - t, 2), "rows": len(df), "rollouts_simulated": physics[0],
                "steps": int(df["steps"].sum())}

    load0 = os.getloadavg()
    if args.row0_sharing:
        return _row0_sharing(args, towers, row0, n_samples, physics, load0)
    res = {"towers": n_towers, "samples": n_samples, "target_se": TARGET_SE}
    res["row0_fixed"] = timed(row0, None)
    res["row0_adaptive"] = timed(row0, TARGET_SE)
    res["diagonal_fixed"] = timed(diagonal, None)
    res["diagonal_adaptive"] = timed(diagonal, TARGET_SE)
    res["load_average"] = {"start": load0, "end": os.getloadavg()}
    scale = 16
    for kind in ("fixed", "adaptive"):
        cpu = res[f"row0_{kind}"]["cpu_s"] + scale * res[f"diagonal_{kind}"]["cpu_s"]
        res[f"projected_sweep_{kind}"] = {"cpu_s": round(cpu, 1), "two_idle_cores_min": round(cpu / 2 / 60, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))
    return 0


def _row0_sharing(args, towers, row0, n_samples, physics, load0) -> int:
    """The adaptive σ = 0 row with and without sharing rollouts across rounds, interleaved; tables must match."""
    import pandas as pd

    import ipe
    from ipe.adaptive import SharedAcrossRounds

    real_plan = SharedAcrossRounds.plan

    def run(share: bool):
        SharedAcrossRounds.plan = real_plan if share else (lambda self, ranges, collect, bar: (ranges, collect))
        physics[0] = 0
        t = time.process_time()
        try:
            df = ipe.simulate(towers, row0, n_samples=n_samples, seed=0, target_se=TARGET_SE, progress=False)
        finally:
            SharedAcrossRounds.plan = real_plan
        return df, {"cpu_s": round(time.process_time() - t, 2), "rows": len(df), "rollouts_simulated": physics[0]}

    runs: dict[str, list] = {"shared": [], "per_round": []}
    tables = {}
    for _ in range(args.repeats):
        for kind in ("per_round", "shared"):
            df, r = run(kind == "shared")
            runs[kind].append(r)
            tables[kind] = df
    pd.testing.assert_frame_equal(tables["shared"], tables["per_round"])
    res = {"towers": len(towers), "points": len(row0), "samples": n_samples, "target_se": TARGET_SE,
           "runs": runs, "tables_identical": True, "load_average": {"start": load0, "end": os.getloadavg()},
           "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    for kind, rs in runs.items():
        res[f"{kind}_cpu_s_median"] = float(np.median([r["cpu_s"] for r in rs]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(res, indent=2) + "\n")
    os.replace(tmp, args.out)
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
