"""Dask LocalCluster against the local process pool, interleaved rounds, on a slice of the BHT-scale sweep.

Run from the repository root::

    python benchmarks/bench_dask.py             # 3 rounds of 2,880 rollouts per backend (a few minutes)
    python benchmarks/bench_dask.py --quick     # a smoke run

Each round runs the same work — 60 BHT towers × 48 samples at one noisy
point, the size of one (σ, φ) cell of the sweep — first on a process pool of
``--workers`` processes (pool start-up included, as in every ``ipe`` run)
and then on a LocalCluster of as many single-threaded worker processes that
stays up between rounds. The cluster's start-up is timed separately, so the
overhead can be projected onto a run of any length:

    overhead(T) = median(t_dask / t_process) − 1 + start-up / T

Also reported: CPU seconds of the whole process tree for both (the Dask
scheduler, nannies and workers included) and a plain pymunk loop on the same
towers, for scale. Both backends must return identical tables. Writes
``benchmarks/results/dask.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def tree_cpu() -> float:
    """CPU seconds of this process, its live descendants and its reaped children."""
    import psutil

    me = psutil.Process()
    total = 0.0
    for p in [me] + me.children(recursive=True):
        try:
            c = p.cpu_times()
            total += c.user + c.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return total + r.ru_utime + r.ru_stime


def timed(fn):
    c0, t0 = tree_cpu(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, tree_cpu() - c0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "dask.json")
    args = ap.parse_args(argv)

    import dask
    import distributed

    import ipe
    from ipe.montecarlo import LOCAL_CLUSTER_CONFIG
    from ipe.noise import NoiseParams
    from ipe.stimuli.towers import generate_towers
    from ipe.rollout import plain_rollout

    n_towers, n_samples = (6, 20) if args.quick else (60, 48)
    rounds = args.rounds or (1 if args.quick else 3)
    stimuli = generate_towers(n_towers, seed=2013, n_blocks=10)
    point = NoiseParams(sigma=0.2, phi=0.1)
    load0 = os.getloadavg()

    t = time.process_time()
    for s in stimuli:
        plain_rollout(s.scene)
    plain = len(stimuli) / (time.process_time() - t)

    def process():
        return ipe.simulate(stimuli, point, n_samples=n_samples, seed=0, workers=args.workers, backend="process",
                            progress=False)

    def start():
        with dask.config.set(LOCAL_CLUSTER_CONFIG):
            cl = distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                          dashboard_address=":0", silence_logs=logging.ERROR)
            return cl, distributed.Client(cl, set_as_default=False)

    (cluster, client), t_start, c_start = timed(start)
    rows = []
    try:
        for _ in range(rounds):
            tp, wp, cp = timed(process)
            td, wd, cd = timed(lambda: ipe.simulate(stimuli, point, n_samples=n_samples, seed=0, backend="dask",
                                                    scheduler=client, progress=False))
            rows.append({"process_wall_s": round(wp, 2), "process_cpu_s": round(cp, 2), "dask_wall_s": round(wd, 2),
                         "dask_cpu_s": round(cd, 2), "ratio": round(wd / wp, 4), "identical": bool(td.equals(tp))})
    finally:
        client.close()
        cluster.close()
    ratio = statistics.median(r["ratio"] for r in rows)
    rollouts = n_towers * n_samples
    t_proc = statistics.median(r["process_wall_s"] for r in rows)
    full_process_s = t_proc * 506_880 / rollouts  # the whole sweep on this pool at this load
    res = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                    "distributed": distributed.__version__},
        "workers": args.workers, "rollouts_per_round": rollouts, "rounds": rows,
        "plain_rollouts_per_cpu_s": round(plain, 1),
        "median_wall_ratio_dask_vs_process": round(ratio, 4),
        "median_cpu_ratio_dask_vs_process": round(statistics.median(r["dask_cpu_s"] / r["process_cpu_s"]
                                                                    for r in rows), 4),
        "cluster_startup_wall_s": round(t_start, 2), "cluster_startup_cpu_s": round(c_start, 2),
        "overhead_one_round_with_startup": round(ratio - 1 + t_start / t_proc, 4),
        "overhead_full_sweep_projected": round(ratio - 1 + t_start / full_process_s, 4),
        "identical": all(r["identical"] for r in rows),
        "load_average_before_after": [round(v, 2) for v in load0 + os.getloadavg()],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"{rollouts} rollouts per round, {args.workers} workers, {rounds} interleaved rounds")
    print("| round | process pool (s) | Dask LocalCluster (s) | ratio | CPU process / Dask (s) | identical |")
    print("|---|---:|---:|---:|---:|---|")
    for i, r in enumerate(rows, 1):
        print(f"| {i} | {r['process_wall_s']:.1f} | {r['dask_wall_s']:.1f} | {r['ratio']:.3f} | "
              f"{r['process_cpu_s']:.1f} / {r['dask_cpu_s']:.1f} | {r['identical']} |")
    print(f"cluster start-up: {t_start:.1f} s wall, {c_start:.1f} s CPU")
    print(f"Dask overhead: {100 * (ratio - 1):+.1f}% per run (median); with start-up, one round "
          f"{100 * res['overhead_one_round_with_startup']:+.1f}%, the whole 506,880-rollout sweep "
          f"{100 * res['overhead_full_sweep_projected']:+.1f}%")
    print(f"load average before/after: {res['load_average_before_after']}")
    print(f"results: {args.out}")
    return 0 if res["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
