"""What common random numbers and adaptive sample counts save on the BHT sweep, at equal accuracy.

Run from the repository root::

    nice -n 10 python benchmarks/bench_savings.py              # 30 towers × 6 points × 48 samples (a few CPU-minutes)
    python benchmarks/bench_savings.py --quick                 # a smoke run (seconds)

On a sample of the σ × φ sweep (``generate_towers(n, seed=2013)``, query
``fall``, 48 samples as in the sweep) it measures:

* **Adaptive sample counts** (``target_se``). A pair (stimulus, point) that
  stops at ``n`` samples holds exactly the first ``n`` rollouts of the fixed
  run (``tests/test_adaptive.py`` checks that), so the adaptive run is read
  off the fixed run with :func:`ipe.adaptive.next_count`, round by round,
  without running anything twice; one adaptive run is also timed for real.
  At a target equal to the **largest** se of the fixed run every pair ends at
  least as accurate as the worst pair of the fixed run (equal worst-case
  accuracy); rollouts, physics steps and CPU time saved are reported for that
  and for targets 0.05 and 0.03.
* **Common random numbers** (``common_random_numbers=True``: the same
  seeds at every point). The judgment at one point is exactly as noisy as
  without (CRN saves nothing there). What it changes is the difference
  between two neighbouring points of the grid (Δσ = 0.05 or Δφ = 0.02, the
  sweep's steps), which decides the shape of the score surface and which
  point ranks best: per stimulus, the variance of that difference with
  independent seeds, ``(var_a + var_b) / n``, against the variance of the
  paired differences with CRN, ``var(x_a − x_b) / n``. Their ratio is the
  factor by which independent seeds would need more samples for the same
  accuracy of the differences.

Writes ``benchmarks/results/savings.json``.
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
sys.path.insert(0, str(ROOT.parent))

POINTS = ((0.0, 0.0), (0.1, 0.04), (0.2, 0.1), (0.25, 0.1), (0.2, 0.12), (0.5, 0.3))
NEIGHBOURS = (((0.2, 0.1), (0.25, 0.1)), ((0.2, 0.1), (0.2, 0.12)))


def _per_pair(table):
    """``{(sigma, phi, stimulus_id): (values (n,), steps (n,))}`` in sample order."""
    out = {}
    for key, g in table.groupby(["sigma", "phi", "stimulus_id"], sort=False):
        out[key] = (g["value"].to_numpy(float), g["steps"].to_numpy(np.int64))
    return out


def adaptive_counts(pairs: dict, target: float, min_samples: int, max_samples: int) -> dict:
    """The count each pair would stop at, read off a fixed run (same rounds as ``simulate_adaptive``)."""
    from ipe.adaptive import next_count

    out = {}
    for key, (v, _) in pairs.items():
        n, goal = 0, min(min_samples, max_samples)
        while goal > n:
            n = goal
            goal = next_count(v[:n, None], target, min_samples, max_samples)
        out[key] = n
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--towers", type=int, default=None)
    ap.add_argument("--samples", type=int, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "savings.json")
    args = ap.parse_args(argv)
    os.environ.setdefault("IPE_NO_PROGRESS", "1")
    from ipe.adaptive import DEFAULT_MIN_SAMPLES, simulate_adaptive
    from ipe.montecarlo import simulate, summarize
    from ipe.noise import NoiseParams
    from ipe.stimuli import generate_towers

    n_towers = args.towers or (3 if args.quick else 30)
    n = args.samples or (8 if args.quick else 48)
    min_samples = min(DEFAULT_MIN_SAMPLES, max(2, n // 3))
    stim = generate_towers(n_towers, seed=2013)
    points = [NoiseParams(sigma=s, phi=f) for s, f in POINTS]
    res = {"towers": n_towers, "samples": n, "min_samples": min_samples, "points": POINTS,
           "loadavg_start": os.getloadavg(), "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}

    t0 = time.process_time()
    fixed = simulate(stim, points, n_samples=n, seed=0)
    cpu_fixed = time.process_time() - t0
    pairs = _per_pair(fixed)
    se_fixed = summarize(fixed)["se"].to_numpy()
    total_rollouts = len(pairs) * n
    total_steps = int(sum(st.sum() for _, st in pairs.values()))
    res["fixed"] = {"rollouts": total_rollouts, "steps": total_steps, "cpu_s": cpu_fixed,
                    "max_se": float(np.nanmax(se_fixed)), "median_se": float(np.nanmedian(se_fixed))}
    rows = []
    targets = [("largest se of the fixed run", float(np.nanmax(se_fixed))), ("0.05", 0.05), ("0.03", 0.03)]
    for label, target in targets:
        counts = adaptive_counts(pairs, target, min_samples, n)
        rollouts = sum(counts.values())
        steps = int(sum(pairs[k][1][:c].sum() for k, c in counts.items()))
        met = sum(1 for k, c in counts.items() if c == n or np.std(pairs[k][0][:c], ddof=1) / np.sqrt(c) <= target)
        per_point = {f"{s:g}/{f:g}": float(np.mean([c for (ss, ff, _), c in counts.items() if (ss, ff) == (s, f)]))
                     for s, f in POINTS}
        rows.append({"target": label, "target_se": target, "rollouts": rollouts, "steps": steps,
                     "rollouts_saved": 1 - rollouts / total_rollouts, "steps_saved": 1 - steps / total_steps,
                     "pairs_meeting_target_or_cap": met, "pairs": len(counts), "mean_samples_per_point": per_point})
    res["adaptive"] = rows
    # one real adaptive run at the first target, timed, and checked against the read-off counts
    t0 = time.process_time()

    real = simulate_adaptive(stim, points, target_se=targets[0][1], max_samples=n, min_samples=min_samples, seed=0)
    cpu_real = time.process_time() - t0
    real_counts = {k: len(v) for k, (v, _) in _per_pair(real).items()}
    res["adaptive_run"] = {"target_se": targets[0][1], "cpu_s": cpu_real, "rollouts": sum(real_counts.values()),
                           "cpu_saved": 1 - cpu_real / cpu_fixed,
                           "counts_match_read_off": real_counts == adaptive_counts(pairs, targets[0][1], min_samples, n)}

    # common random numbers: neighbouring points, same seeds at both
    crn_points = sorted({p for pair in NEIGHBOURS for p in pair})
    crn = _per_pair(simulate(stim, [NoiseParams(sigma=s, phi=f) for s, f in crn_points], n_samples=n, seed=0,
                             common_random_numbers=True))
    crn_rows = []
    for a, b in NEIGHBOURS:
        var_ind_all, var_crn_all = [], []
        for s in stim:
            xa, xb = pairs[(*a, s.id)][0], pairs[(*b, s.id)][0]
            ya, yb = crn[(*a, s.id)][0], crn[(*b, s.id)][0]
            var_ind = (np.var(xa, ddof=1) + np.var(xb, ddof=1)) / n
            var_crn = np.var(ya - yb, ddof=1) / n
            var_ind_all.append(var_ind)
            var_crn_all.append(var_crn)
        var_ind_all, var_crn_all = np.array(var_ind_all), np.array(var_crn_all)
        crn_rows.append({"a": a, "b": b, "mean_var_independent": float(var_ind_all.mean()),
                         "mean_var_crn": float(var_crn_all.mean()),
                         "sample_factor": float(var_ind_all.sum() / max(var_crn_all.sum(), 1e-300)),
                         "stimuli_with_zero_crn_variance": int((var_crn_all == 0).sum())})
    res["crn"] = crn_rows
    res["loadavg_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=1, default=float), encoding="utf-8")
    os.replace(tmp, args.out)

    print(f"{n_towers} towers × {len(POINTS)} points × {n} samples: {total_rollouts} rollouts, {total_steps} steps, "
          f"{cpu_fixed:.1f} CPU-s; largest se {res['fixed']['max_se']:.4f}, median {res['fixed']['median_se']:.4f}")
    print("| adaptive target se | rollouts | saved | physics steps saved | pairs meeting it (or the cap) |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['target']} ({r['target_se']:.4f}) | {r['rollouts']} | {100 * r['rollouts_saved']:.0f} % | "
              f"{100 * r['steps_saved']:.0f} % | {r['pairs_meeting_target_or_cap']}/{r['pairs']} |")
    ar = res["adaptive_run"]
    print(f"real adaptive run at {ar['target_se']:.4f}: {ar['cpu_s']:.1f} CPU-s ({100 * ar['cpu_saved']:.0f} % saved), "
          f"counts match the read-off: {ar['counts_match_read_off']}")
    print("| neighbours | var of the difference, independent | with CRN | samples factor |")
    print("|---|---:|---:|---:|")
    for r in crn_rows:
        print(f"| σ/φ {r['a'][0]:g}/{r['a'][1]:g} vs {r['b'][0]:g}/{r['b'][1]:g} | {r['mean_var_independent']:.2e} | "
              f"{r['mean_var_crn']:.2e} | {r['sample_factor']:.1f}× |")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
