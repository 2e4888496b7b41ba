"""The fidelity frontier: what each solver setting costs against how far its judgments move from a converged solver.

Run from the repository root::

    python benchmarks/bench_fidelity.py --quick                 # a smoke run (seconds)
    nice -n 10 python benchmarks/bench_fidelity.py --set towers --towers 60 --samples 48
    nice -n 10 python benchmarks/bench_fidelity.py --set plinko --towers 20 --samples 24
    nice -n 10 python benchmarks/bench_fidelity.py --set jenga --samples 12   # needs ../shared/datasets/mental_jenga

For one stimulus set it runs the same noisy rollouts (same seeds: a sample's
seed depends on the stimulus, the noise point and the sample index, never on
the solver) under a grid of solver settings — ``substeps`` × ``iterations``
× ``collision_slop``, set on copies of the stimuli through each scene's
``simulation`` — and under a converged **reference** (1/960 s steps: a
1/60 s frame in 16 substeps; 60 iterations; the set's own slop). For each
setting it reports

* **cost**: CPU-seconds per rollout (``time.process_time`` of one serial
  process, everything included) and physics steps per rollout, both also as
  a multiple of the set's default settings, timed in the same run;
* **agreement** with the reference, stimulus by stimulus: the judgment
  (the stimulus's own query, averaged over the samples) differs by
  ``|Δ|``; the Monte Carlo error of one such estimate is
  ``se = sqrt((se_ref² + se_cfg²) / 2)``; the script counts the stimuli with
  ``|Δ| ≤ 2 se`` and reports the largest ``|Δ| / se`` and Pearson's ``r``
  between the settings' and the reference's judgments;
* whether the setting **passes**: ``|Δ| ≤ 2 se`` on every stimulus and
  ``r ≥ 0.995``; and whether it is on the **frontier** (no other setting is
  both cheaper and closer, by the mean ``|Δ|``).

Sets:

``towers``
    BHT towers (``generate_towers(n, seed=2013)``, 10 blocks, query
    ``fall``) at σ = φ = 0.2. Default solver: 4 substeps, 30 iterations,
    slop 0.002 × the block's short side.
``plinko``
    Plinko worlds (``generate_plinko(n, seed=2016)``, query ``landing_x``,
    in px) with launch-position and collision-angle noise 0.2. Same default
    solver as the towers.
``jenga``
    Mental Jenga experiment 2 (the 42 published towers, query ``off_table``)
    with ``removal_impulse = 3.3`` (the fitted group value). The importer's
    Box2D stand-in settings are its default: 2 substeps, 15 iterations,
    slop 0.005 m. Skipped (exit 0, nothing written) when the dataset is not
    at ``../shared/datasets/mental_jenga`` or ``$IPE_MENTAL_JENGA``.

Pymunk's **sleeping** is not measured: ipe never enables it
(``ipe.world`` builds every space without a sleep threshold and no scene
field sets one), so measuring it needs a change to ``ipe/world.py``.

Writes ``benchmarks/results/fidelity_<set>.json`` (git-ignored), with a row
per setting, after every setting (an interrupted run keeps what it measured).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
sys.path.insert(0, str(REPO))

REFERENCE = {"substeps": 16, "iterations": 60, "slop": 1.0}
R_MIN = 0.995


def _grid(name: str, quick: bool) -> tuple[dict, list[dict]]:
    """``(default, settings)`` for one set; ``slop`` is a multiple of the set's default slop."""
    if name == "jenga":
        default = {"substeps": 2, "iterations": 15, "slop": 1.0}
        if quick:
            return default, [default, {"substeps": 1, "iterations": 8, "slop": 1.0}]
        sub, its = (1, 2, 4), (8, 15, 30)
        extra = [{"substeps": 2, "iterations": 15, "slop": 0.2}, {"substeps": 4, "iterations": 15, "slop": 0.2}]
    else:
        default = {"substeps": 4, "iterations": 30, "slop": 1.0}
        if quick:
            return default, [default, {"substeps": 2, "iterations": 10, "slop": 1.0}]
        if name == "plinko":
            sub, its = (1, 2, 4, 8), (10, 30)
            extra = [{"substeps": 4, "iterations": 30, "slop": 5.0}]
        else:
            sub, its = (1, 2, 4, 8), (10, 20, 30)
            extra = [{"substeps": 4, "iterations": 30, "slop": 0.25}, {"substeps": 4, "iterations": 30, "slop": 5.0},
                     {"substeps": 2, "iterations": 20, "slop": 5.0}, {"substeps": 4, "iterations": 10, "slop": 5.0}]
    grid = [{"substeps": s, "iterations": i, "slop": 1.0} for s in sub for i in its
            if (s, i) != (default["substeps"], default["iterations"])]
    # the dearest settings last, so that an interrupted run keeps the informative ones
    grid.sort(key=lambda c: c["substeps"] * (10 + c["iterations"]))
    cheap = [c for c in grid if c["substeps"] <= default["substeps"]]
    return default, [default] + cheap + extra + [c for c in grid if c not in cheap]


def _stimuli(name: str, n: int, quick: bool):
    """``(stimuli, noise point)`` for one set, or ``None`` when its data is not here."""
    from ipe.noise import NoiseParams

    if name == "towers":
        from ipe.stimuli import generate_towers

        return generate_towers(n, seed=2013), NoiseParams(sigma=0.2, phi=0.2)
    if name == "plinko":
        from ipe.stimuli.plinko import generate_plinko

        return generate_plinko(n, seed=2016), NoiseParams(launch_position=0.2, collision_angle=0.2)
    if name == "jenga":
        from ipe.datasets.mental_jenga import default_root, load_stimuli

        root = Path(os.environ.get("IPE_MENTAL_JENGA") or default_root())
        if not (root / "data" / "exp2").is_dir():
            return None
        stim = load_stimuli(root, 2)
        if quick or n < len(stim):
            from ipe.checks import StimulusSet

            stim = StimulusSet(tuple(stim)[:n], name=stim.name, metadata=stim.metadata)
        return stim, NoiseParams(removal_impulse=3.3)
    raise SystemExit(f"unknown set {name!r}")


def with_solver(stimuli, substeps: int, iterations: int, slop: float):
    """Copies of ``stimuli`` whose scenes step with these settings (``slop`` × each scene's default slop)."""
    from ipe.checks import StimulusSet
    from ipe.world import SolverSettings

    out = []
    for s in stimuli:
        sim = s.scene.simulation
        base = SolverSettings.for_scene(s.scene).collision_slop
        sim = dataclasses.replace(sim, substeps=int(substeps), iterations=int(iterations),
                                  collision_slop=float(base * slop))
        out.append(dataclasses.replace(s, scene=dataclasses.replace(s.scene, simulation=sim)))
    return StimulusSet(tuple(out), name=stimuli.name, metadata=stimuli.metadata)


def _label(cfg: dict) -> str:
    return f"{cfg['substeps']}×{cfg['iterations']}, slop ×{cfg['slop']:g}"


def run_setting(stimuli, point, cfg: dict, samples: int, seed: int) -> dict:
    from ipe.montecarlo import simulate, summarize

    stim = with_solver(stimuli, cfg["substeps"], cfg["iterations"], cfg["slop"])
    t0, w0 = time.process_time(), time.perf_counter()
    roll = simulate(stim, point, n_samples=samples, seed=seed, progress=False)
    cpu, wall = time.process_time() - t0, time.perf_counter() - w0
    summ = summarize(roll)
    n_roll = len(stim) * samples
    steps = roll.groupby(["stimulus_id", "sample"], sort=False)["steps"].first().to_numpy()
    return {**cfg, "label": _label(cfg), "rollouts": n_roll, "cpu_s": cpu, "wall_s": wall,
            "cpu_ms_per_rollout": 1000 * cpu / n_roll, "steps_per_rollout": float(steps.mean()),
            "mean": summ["mean"].tolist(), "se": summ["se"].tolist(), "stimulus_id": summ["stimulus_id"].tolist()}


def compare(row: dict, ref: dict) -> dict:
    """Agreement of one setting's judgments with the reference's (see the module docstring)."""
    a, b = np.asarray(row["mean"], float), np.asarray(ref["mean"], float)
    sa, sb = np.asarray(row["se"], float), np.asarray(ref["se"], float)
    ok = ~(np.isnan(a) | np.isnan(b))
    a, b, sa, sb = a[ok], b[ok], np.nan_to_num(sa[ok]), np.nan_to_num(sb[ok])
    d = np.abs(a - b)
    se = np.sqrt((sa ** 2 + sb ** 2) / 2)
    within = d <= 2 * se + 1e-12
    ratio = np.where(se > 0, d / np.where(se > 0, se, 1), np.where(d > 0, np.inf, 0.0))
    r = float(np.corrcoef(a, b)[0, 1]) if len(a) > 1 and a.std() > 0 and b.std() > 0 else (1.0 if np.array_equal(a, b) else math.nan)
    return {"r": r, "mean_abs_diff": float(d.mean()), "max_abs_diff": float(d.max()),
            "within_2se": int(within.sum()), "n_stimuli": int(len(d)), "worst_diff_over_se": float(ratio.max()),
            "passes": bool(within.all() and r >= R_MIN)}


def frontier(rows: list[dict]) -> None:
    """Mark rows no other row beats on both cost and mean |Δ| (ties kept)."""
    for r in rows:
        r["on_frontier"] = not any(
            o is not r and o["cpu_ms_per_rollout"] <= r["cpu_ms_per_rollout"] and o["mean_abs_diff"] <= r["mean_abs_diff"]
            and (o["cpu_ms_per_rollout"] < r["cpu_ms_per_rollout"] or o["mean_abs_diff"] < r["mean_abs_diff"])
            for o in rows)


def table(res: dict) -> str:
    lines = ["| substeps × iterations, slop | CPU-ms/rollout | × default cost | steps/rollout | r | mean abs. Δ |"
             " max |Δ|/se | |Δ| ≤ 2 se | passes | frontier |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in sorted(res["settings"], key=lambda r: r["cpu_ms_per_rollout"]):
        mark = " (default)" if r["is_default"] else ""
        lines.append(f"| {r['label']}{mark} | {r['cpu_ms_per_rollout']:.2f} | {r['cost_vs_default']:.2f} | "
                     f"{r['steps_per_rollout']:.0f} | {r['r']:.4f} | {r['mean_abs_diff']:.4f} | "
                     f"{r['worst_diff_over_se']:.2f} | {r['within_2se']}/{r['n_stimuli']} | "
                     f"{'yes' if r['passes'] else 'no'} | {'yes' if r['on_frontier'] else ''} |")
    ref = res["reference"]
    lines.append(f"| reference {ref['label']} | {ref['cpu_ms_per_rollout']:.2f} | {ref['cost_vs_default']:.2f} | "
                 f"{ref['steps_per_rollout']:.0f} | 1 | 0 | 0 | all | — | — |")
    return "\n".join(lines)


def _machine() -> dict:
    import pymunk

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"python": platform.python_version(), "pymunk": pymunk.version, "numpy": np.__version__,
            "cpus": os.cpu_count(), "platform": platform.platform(), "loadavg": load}


def _write(path: Path, res: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(res, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", dest="set_name", choices=("towers", "plinko", "jenga"), default="towers")
    ap.add_argument("--quick", action="store_true", help="tiny sizes and two settings, for smoke tests")
    ap.add_argument("--towers", type=int, default=None, help="stimuli (default: 60 towers, 20 Plinko, 42 Jenga)")
    ap.add_argument("--samples", type=int, default=None, help="samples per stimulus (default 48)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="JSON out (default benchmarks/results/fidelity_<set>.json)")
    args = ap.parse_args(argv)
    os.environ.setdefault("IPE_NO_PROGRESS", "1")

    name = args.set_name
    n = args.towers or (3 if args.quick else {"towers": 60, "plinko": 20, "jenga": 42}[name])
    samples = args.samples or (4 if args.quick else 48)
    got = _stimuli(name, n, args.quick)
    if got is None:
        print(f"{name}: the Mental Jenga dataset is not here (../shared/datasets/mental_jenga); skipped")
        return 0
    stimuli, point = got
    default, settings = _grid(name, args.quick)
    out = args.out or ROOT / "results" / f"fidelity_{name}.json"
    res = {"set": name, "stimuli": len(stimuli), "samples": samples, "seed": args.seed,
           "noise": {k: v for k, v in point.as_dict().items() if v}, "machine": _machine(),
           "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
           "reference": None, "settings": [], "complete": False}
    print(f"{name}: {len(stimuli)} stimuli × {samples} samples, noise {res['noise']}, load {res['machine']['loadavg']}")
    ref_cfg = dict(REFERENCE)
    if args.quick:
        ref_cfg = {"substeps": 8, "iterations": 30, "slop": 1.0}
    ref = run_setting(stimuli, point, ref_cfg, samples, args.seed)
    res["reference"] = ref
    print(f"  reference {ref['label']}: {ref['cpu_ms_per_rollout']:.2f} CPU-ms/rollout", flush=True)
    for cfg in settings:
        row = run_setting(stimuli, point, cfg, samples, args.seed)
        row.update(compare(row, ref), is_default=cfg == default)
        res["settings"].append(row)
        print(f"  {row['label']}: {row['cpu_ms_per_rollout']:.2f} CPU-ms/rollout, r {row['r']:.4f}, "
              f"mean |Δ| {row['mean_abs_diff']:.4f}, {row['within_2se']}/{row['n_stimuli']} within 2 se", flush=True)
        _write(out, res)
    base = next(r for r in res["settings"] if r["is_default"])
    for r in res["settings"] + [ref]:
        r["cost_vs_default"] = r["cpu_ms_per_rollout"] / base["cpu_ms_per_rollout"]
        r["steps_vs_default"] = r["steps_per_rollout"] / base["steps_per_rollout"]
    frontier(res["settings"])
    res["complete"] = True
    res["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    res["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    _write(out, res)
    print(table(res))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
