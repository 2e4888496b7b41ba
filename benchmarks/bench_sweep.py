"""The BHT-scale sweep: 60 towers × 48 samples × 11 σ × 16 φ = 506,880 rollouts, against a plain pymunk loop.

Run from the repository root::

    python benchmarks/bench_sweep.py              # 1/16 of the grid (31,680 rollouts) and projections
    python benchmarks/bench_sweep.py --full       # the whole sweep (about half an hour of CPU)
    python benchmarks/bench_sweep.py --quick      # a smoke run (seconds)

What is measured, in one run (so ratios hold whatever the machine):

* **plain pymunk loop** — :func:`ipe.rollout.plain_rollout` on the same towers,
  noise-free, full horizon: the yardstick, in rollouts per CPU-second.
* **ipe, 1 vs 2 workers** — the process pool on a slice of the sweep.
* **the sweep** (all 11 σ with one φ each — σ_i with φ_(5i mod 16) — which
  is 1/16 of the grid, or the whole grid with ``--full``) on the process
  pool and on a Dask LocalCluster of the same size, cluster start-up
  included: wall time, CPU time of the whole process tree, peak resident
  memory of the process tree (sampled every 0.2 s), and whether both tables
  are identical. The Dask overhead is ``t_dask / t_process − 1``.
* **projections** for the whole sweep: measured wall × 16, and the CPU time
  × 16 / workers (what two idle cores would take).

The machine's load average is recorded before and after: on a shared
machine the wall times are inflated, the CPU times much less so.
Writes ``benchmarks/results/sweep.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
SIGMAS = [round(float(v), 3) for v in np.linspace(0.0, 0.5, 11)]  # perceptual σ, block short sides
PHIS = [round(float(v), 3) for v in np.linspace(0.0, 0.3, 16)]  # force φ, fraction of weight


class TreeMonitor:
    """Peak resident memory of this process and all its descendants, sampled in a thread."""

    def __init__(self, interval: float = 0.2):
        import psutil

        self._psutil = psutil
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        me = self._psutil.Process()
        total = 0
        for p in [me] + me.children(recursive=True):
            try:
                total += p.memory_info().rss
            except (self._psutil.NoSuchProcess, self._psutil.AccessDenied):
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self.interval)

    def __enter__(self) -> "TreeMonitor":
        self.cpu0 = _cpu()
        self.t0 = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.t0
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())
        self.cpu = _cpu() - self.cpu0


def _cpu() -> float:
    """CPU seconds of this process and of every reaped descendant."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def plain_rate(stimuli, rounds: int) -> float:
    """Rollouts per CPU-second of the plain pymunk loop (median of rounds)."""
    from ipe.rollout import plain_rollout

    rates = []
    for _ in range(rounds):
        t = time.process_time()
        for s in stimuli:
            plain_rollout(s.scene)
        rates.append(len(stimuli) / (time.process_time() - t))
    return statistics.median(rates)


def _cluster_startup(workers: int) -> float:
    """Seconds to start and stop a LocalCluster of ``workers`` processes with a client."""
    import logging

    import distributed

    t = time.perf_counter()
    cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       dashboard_address=":0", silence_logs=logging.ERROR)
    client = distributed.Client(cluster, set_as_default=False)
    client.close()
    cluster.close()
    return time.perf_counter() - t


def run(stimuli, points, n_samples: int, workers: int, backend: str, cache=None):
    import ipe

    with TreeMonitor() as mon:
        table = ipe.simulate(stimuli, points, n_samples=n_samples, seed=0, workers=workers, backend=backend,
                             progress=None, cache=cache)
    return table, {"wall_s": round(mon.wall, 2), "cpu_s": round(mon.cpu, 2),
                   "peak_rss_mb": round(mon.peak / 1e6, 1), "rollouts": len(table)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, for smoke tests")
    ap.add_argument("--full", action="store_true", help="run the whole 11 × 16 grid, not 1/16 of it")
    ap.add_argument("--towers", type=int, default=None, help="towers (default 60)")
    ap.add_argument("--samples", type=int, default=None, help="samples per tower and point (default 48)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-dask", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "sweep.json")
    args = ap.parse_args(argv)

    import pymunk

    from ipe.noise import NoiseParams
    from ipe.stimuli.towers import generate_towers

    n_towers = args.towers or (4 if args.quick else 60)
    n_samples = args.samples or (3 if args.quick else 48)
    full_rollouts = 60 * 48 * len(SIGMAS) * len(PHIS)
    load0 = os.getloadavg()
    stimuli = generate_towers(n_towers, seed=2013, n_blocks=10)
    if args.full:
        points = [NoiseParams(sigma=s, phi=f) for s in SIGMAS for f in PHIS]
    else:
        points = [NoiseParams(sigma=s, phi=PHIS[(5 * i) % len(PHIS)]) for i, s in enumerate(SIGMAS)]
    if args.quick:
        points = points[::5]
    fraction = len(points) * n_towers * n_samples / full_rollouts

    res: dict = {"machine": {"python": platform.python_version(), "pymunk": pymunk.version,
                             "cpus": os.cpu_count(), "platform": platform.platform()},
                 "towers": n_towers, "samples": n_samples, "points": len(points), "workers": args.workers,
                 "grid": {"sigma": SIGMAS, "phi": PHIS}, "fraction_of_full_sweep": round(fraction, 5)}

    # 1. the yardstick
    plain = plain_rate(stimuli, 1 if args.quick else 3)
    res["plain_rollouts_per_cpu_s"] = round(plain, 1)

    # 2. one vs two workers on a slice (two noisy points)
    slice_pts = [points[len(points) // 2], points[-1]]
    slice_n = max(1, n_samples // 3)
    t1, m1 = run(stimuli, slice_pts, slice_n, 1, "serial")
    t2, m2 = run(stimuli, slice_pts, slice_n, args.workers, "process")
    res["scaling"] = {"rollouts": m1["rollouts"], "workers1": m1, f"workers{args.workers}": m2,
                      "speedup": round(m1["wall_s"] / m2["wall_s"], 3), "identical": bool(t1.equals(t2)),
                      "ipe_rollouts_per_cpu_s": round(m1["rollouts"] / m1["cpu_s"], 1),
                      "ipe_vs_plain_per_core": round(m1["rollouts"] / m1["cpu_s"] / plain, 3)}

    # 3. the sweep on the process pool and on Dask, each writing a fresh cache; then a cache hit
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="ipe-bench-cache-"))
    tp, mp_ = run(stimuli, points, n_samples, args.workers, "process", cache=tmp / "process")
    res["sweep_process"] = mp_
    mp_["rollouts_per_cpu_s"] = round(mp_["rollouts"] / mp_["cpu_s"], 1)
    mp_["vs_plain_per_core"] = round(mp_["rollouts_per_cpu_s"] / plain, 3)
    mp_["table_mb"] = round(tp.memory_usage(deep=True).sum() / 1e6, 1)
    if not args.skip_dask:
        td, md = run(stimuli, points, n_samples, args.workers, "dask", cache=tmp / "dask")
        res["sweep_dask"] = md
        res["dask_overhead"] = round(md["wall_s"] / mp_["wall_s"] - 1, 4)
        res["dask_identical_to_process"] = bool(td.equals(tp))
        res["dask_cluster_startup_s"] = round(_cluster_startup(args.workers), 2)
        res["dask_overhead_without_startup"] = round(
            (md["wall_s"] - res["dask_cluster_startup_s"]) / mp_["wall_s"] - 1, 4)
    th, mh = run(stimuli, points, n_samples, args.workers, "process", cache=tmp / "process")
    res["sweep_cache_hit"] = mh
    res["cache_hit_speedup"] = round(mp_["wall_s"] / mh["wall_s"], 1)
    res["cache_hit_identical"] = bool(th.equals(tp))
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)

    # 4. projections for the whole sweep
    scale = 1 / fraction
    res["projection_full_sweep"] = {
        "rollouts": full_rollouts,
        "wall_s_at_measured_load": round(mp_["wall_s"] * scale, 1),
        "wall_s_two_idle_cores": round(mp_["cpu_s"] * scale / args.workers, 1),
        "table_mb": round(mp_["table_mb"] * scale, 1),
    }
    res["load_average_before_after"] = [round(v, 2) for v in load0] + [round(v, 2) for v in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")

    print(f"{n_towers} towers × {n_samples} samples × {len(points)} points = {mp_['rollouts']} rollouts "
          f"({fraction:.4g} of the 506,880-rollout sweep), {args.workers} workers")
    print(f"plain pymunk loop: {plain:.0f} rollouts/CPU-s; ipe on the sweep: {mp_['rollouts_per_cpu_s']:.0f} "
          f"rollouts/CPU-s ({mp_['vs_plain_per_core']:.2f}× plain)")
    s = res["scaling"]
    print(f"1 vs {args.workers} workers, {s['rollouts']} rollouts: {s['workers1']['wall_s']:.1f} s vs "
          f"{s[f'workers{args.workers}']['wall_s']:.1f} s (×{s['speedup']:.2f}), identical: {s['identical']}")
    print(f"sweep, process pool: {mp_['wall_s']:.1f} s wall, {mp_['cpu_s']:.1f} s CPU, "
          f"peak RSS {mp_['peak_rss_mb']:.0f} MB")
    if "sweep_dask" in res:
        md = res["sweep_dask"]
        print(f"sweep, Dask LocalCluster: {md['wall_s']:.1f} s wall, {md['cpu_s']:.1f} s CPU, peak RSS "
              f"{md['peak_rss_mb']:.0f} MB; overhead {100 * res['dask_overhead']:+.1f}%, identical: "
              f"{res['dask_identical_to_process']} (cluster start-up {res['dask_cluster_startup_s']:.1f} s; "
              f"without it {100 * res['dask_overhead_without_startup']:+.1f}%)")
    mh = res["sweep_cache_hit"]
    print(f"sweep again from the cache: {mh['wall_s']:.2f} s (×{res['cache_hit_speedup']:.0f} faster), identical: "
          f"{res['cache_hit_identical']}")
    pr = res["projection_full_sweep"]
    print(f"whole sweep projected: {pr['wall_s_at_measured_load']:.0f} s at this load, "
          f"{pr['wall_s_two_idle_cores']:.0f} s on {args.workers} idle cores; table {pr['table_mb']:.0f} MB")
    print(f"load average before/after: {res['load_average_before_after']}")
    print(f"results: {args.out}")
    ok = s["identical"] and res.get("dask_identical_to_process", True) and res["cache_hit_identical"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
