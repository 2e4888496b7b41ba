"""Parameter recovery: synthesize people with known σ and φ, fit the hierarchical IPE, compare.

The acceptance study of issue 3::

    python experiments/parameter_recovery.py                      # one data set: 30 participants × 60 towers
    python experiments/parameter_recovery.py --datasets 20 --jobs 2 --warmup 100 --draws 100
                                                                  # coverage of the 90% intervals over 20 data sets

Towers: 60 BHT towers (``generate_towers(60, seed=...)``). Synthetic
participants: :func:`ipe.humans.synthesize` with group σ = φ = 0.2, each
participant's σ, φ drawn around the group values, 3–7 rollouts per judgment,
1–7 ratings. The emulator is built once for the towers (common random
numbers, the default grid) and reused for every data set. Results go to
``experiments/results/parameter_recovery/`` (a JSON summary and a CSV of
every data set's intervals, rewritten after each data set). ``--jobs N``
fits N data sets at once, each in its own process with one torch thread;
every data set depends only on its index, so the table does not depend on
``--jobs``. On 2 cores, two at a time, one data set takes 4–5 minutes at
100 + 100 draws (20 data sets: 46 minutes plus the emulator); the measured
coverage is in ``docs/fitting.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import pandas as pd

import ipe
from ipe.fileio import write_csv, write_json
from ipe.humans import ResponseScale, synthesize
from ipe.inference import DEFAULT_GRID, Emulator, HierarchicalFit

HERE = Path(__file__).resolve().parent


def one_dataset(job, emulator=None) -> list[dict]:
    """Synthesize data set ``d`` and fit it: two rows (σ, φ). Depends only on ``d`` and the arguments."""
    d, emu_path, args = job
    if emulator is None:  # in a worker process
        import torch

        torch.set_num_threads(1)
        emulator = Emulator.load(emu_path)
    t1 = time.time()
    towers = ipe.generate_towers(args.towers, seed=args.seed)
    scale = ResponseScale.parse("rating:1-7")
    truth = {"sigma": args.sigma, "phi": args.phi}
    workers = args.workers if args.jobs == 1 else 1
    responses, _ = synthesize(towers, args.participants, sigma=args.sigma, phi=args.phi, scale=scale,
                              seed=args.seed + 1000 + d, workers=workers)
    fit = HierarchicalFit(free=("sigma", "phi"), scale=scale, num_warmup=args.warmup, num_samples=args.draws,
                          num_chains=args.chains, max_tree_depth=args.max_tree_depth, svi_steps=args.svi_steps,
                          seed=d).fit(responses, emulator)
    if d == 0:
        fit.save(args.out / "fit_0")
    rows = []
    for name, true in truth.items():
        p = fit.params_[name]
        rows.append({"dataset": d, "parameter": name, "true": true, **p,
                     "covered": p["q05"] <= true <= p["q95"], "abs_error": abs(p["mean"] - true),
                     "k_sims": getattr(fit, "k_sims_", {}).get("mean", float("nan")),
                     "max_r_hat": float(fit.summary_["r_hat"].max()), "divergences": fit.n_divergent_,
                     "converged": fit.verdict_.converged,
                     "seconds": time.time() - t1})
    print(f"data set {d}: " + "; ".join(
        f"{r['parameter']} {r['mean']:.3f} [{r['q05']:.3f}, {r['q95']:.3f}]{'' if r['covered'] else ' MISSED'}"
        for r in rows) + f"; κ {rows[0]['k_sims']:.2f} ({time.time() - t1:.0f} s)", flush=True)
    return rows


def _report(rows: list[dict], out: Path) -> None:
    write_csv(out / "datasets.csv", pd.DataFrame(rows).sort_values(["dataset", "parameter"]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", type=int, default=1)
    ap.add_argument("--participants", type=int, default=30)
    ap.add_argument("--towers", type=int, default=60)
    ap.add_argument("--sigma", type=float, default=0.2)
    ap.add_argument("--phi", type=float, default=0.2)
    ap.add_argument("--emulator-samples", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--draws", type=int, default=300)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--max-tree-depth", type=int, default=8, help="NUTS tree depth (lower: faster; the suite runs 4)")
    ap.add_argument("--svi-steps", type=int, default=500, help="Adam steps of the SVI start of each chain")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--jobs", type=int, default=1,
                    help="data sets fitted at once, each in its own process with one torch thread")
    ap.add_argument("--seed", type=int, default=2013)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "parameter_recovery")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    towers = ipe.generate_towers(args.towers, seed=args.seed)
    emu_path = args.out / f"emulator_{args.towers}_{args.seed}_{args.emulator_samples}.npz"
    if emu_path.exists():
        emulator = Emulator.load(emu_path)
    else:
        grid = {k: DEFAULT_GRID[k] for k in ("sigma", "phi")}
        emulator = Emulator(grid=grid, n_samples=args.emulator_samples, seed=args.seed, workers=args.workers,
                            progress=True).fit(towers)
        emulator.save(emu_path)
    t_emu = time.time() - t0
    print(f"emulator: {t_emu:.0f} s (residual sd {emulator.residual_sd_:.3f})", flush=True)
    truth = {"sigma": args.sigma, "phi": args.phi}
    jobs = [(d, emu_path, args) for d in range(args.datasets)]
    rows = []
    if args.jobs > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        # fresh interpreters (no forked torch state), one torch thread each
        with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn")) as pool:
            for d_rows in pool.map(one_dataset, jobs):
                rows += d_rows
                _report(rows, args.out)
    else:
        for job in jobs:
            rows += one_dataset(job, emulator)
            _report(rows, args.out)
    table = pd.DataFrame(rows).sort_values(["dataset", "parameter"])
    summary = {
        "participants": args.participants, "towers": args.towers, "truth": truth, "datasets": args.datasets,
        "coverage_90": float(table["covered"].mean()),
        "coverage_by_parameter": table.groupby("parameter")["covered"].mean().to_dict(),
        "mean_abs_error": table.groupby("parameter")["abs_error"].mean().to_dict(),
        "mean_k_sims": float(table["k_sims"].mean()),
        "nuts": {"chains": args.chains, "warmup": args.warmup, "draws": args.draws},
        "first_dataset": {r["parameter"]: {k: r[k] for k in ("mean", "sd", "q05", "q95", "covered")}
                          for r in rows[:2]},
        "seconds_emulator": t_emu, "seconds_total": time.time() - t0,
    }
    write_json(args.out / f"summary_{args.datasets}.json", summary)
    print(json.dumps(summary, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
