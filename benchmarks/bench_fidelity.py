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
  both cheaper and closer, by the mean ``|Δ|``);
* a **whole-set test** that respects the number of stimuli compared
  (:func:`whole_set_test`): each stimulus's pooled two-sample ``z``, and
  ``Σ z²`` and the count of ``|z| > 2`` against their distribution under
  Monte Carlo error alone (a seeded two-sample bootstrap); the setting is
  **within Monte Carlo error** when ``Σ z²``'s p-value is ≥ 0.05. Also the
  number of rollouts (same seeds) whose answer differs from the reference's.

``--settings 4x30,8x20`` runs only the named settings (and the default)
against the reference, for a check of one setting without the whole grid;
``--reference 32x60`` takes another reference (is 16 × 60 itself
converged?) and ``--point sigma=0,phi=0.3`` another noise point.

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


def parse_settings(text: str, default: dict) -> list[dict]:
    """``"4x30,8x20@0.25"`` as setting dicts, the default first (added when not named)."""
    out = [dict(default)]
    for part in text.split(","):
        part = part.strip()
        try:
            solver, _, slop = part.partition("@")
            sub, its = solver.lower().split("x")
            cfg = {"substeps": int(sub), "iterations": int(its), "slop": float(slop) if slop else 1.0}
        except ValueError:
            print(f"--settings: {part!r} is not SUBSTEPSxITERATIONS[@SLOP], e.g. 8x20", file=sys.stderr)
            raise SystemExit(2) from None
        if cfg["substeps"] < 1 or cfg["iterations"] < 1 or not cfg["slop"] > 0:
            print(f"--settings: {part!r}: substeps and iterations must be ≥ 1, slop > 0", file=sys.stderr)
            raise SystemExit(2)
        if cfg not in out:
            out.append(cfg)
    return out


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
    values = roll["value"].to_numpy(dtype=float)
    return {**cfg, "label": _label(cfg), "rollouts": n_roll, "cpu_s": cpu, "wall_s": wall,
            "cpu_ms_per_rollout": 1000 * cpu / n_roll, "steps_per_rollout": float(steps.mean()),
            "mean": summ["mean"].tolist(), "se": summ["se"].tolist(), "stimulus_id": summ["stimulus_id"].tolist(),
            "values": [None if math.isnan(v) else v for v in values.tolist()]}


def pooled_z(m1, s1, n1, m2, s2, n2) -> np.ndarray:
    """Two-sample z of ``m1 − m2``, as if the two were independent Monte Carlo estimates of one mean.

    ``s`` is each estimate's sample sd (ddof 1) and ``n`` its count of
    values. The variance is that of the two samples pooled (their spread
    and the gap between their means: for 0/1 answers the classic pooled
    two-proportion test), so a pair where one side has ``se = 0`` is still
    tested. Where both samples hold one and the same value, ``z = 0``.
    """
    m1, s1, n1, m2, s2, n2 = (np.asarray(x, float) for x in (m1, s1, n1, m2, s2, n2))
    d = m1 - m2
    ss = (np.maximum(n1 - 1, 0) * np.nan_to_num(s1) ** 2 + np.maximum(n2 - 1, 0) * np.nan_to_num(s2) ** 2
          + n1 * n2 / (n1 + n2) * d ** 2)
    sp2 = ss / np.maximum(n1 + n2 - 1, 1)
    se = np.sqrt(sp2 * (1 / n1 + 1 / n2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(se > 1e-12, d / np.where(se > 1e-12, se, 1.0), 0.0)


NULL_DRAWS = 2000  # bootstrap draws of the whole-set statistics under "Monte Carlo error alone"


def _stats(v: np.ndarray) -> tuple[float, float, int]:
    v = v[~np.isnan(v)]
    return (float(v.mean()) if v.size else math.nan, float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size))


def whole_set_test(a_values, b_values, seed: int = 0, draws: int = NULL_DRAWS) -> dict:
    """Are the differences between two sets of judgments, taken together, more than Monte Carlo error gives?

    ``a_values[i]`` and ``b_values[i]`` are the rollout values of judgment
    ``i`` on the two sides (NaN = undefined, left out). Each pair gets
    :func:`pooled_z`. Two whole-set statistics respect the number of
    comparisons: ``count`` of pairs with ``|z| > 2`` and ``chi2 = Σ z²``.
    Their distribution under Monte Carlo error alone — the two sides
    independent samples of one distribution — comes from the two-sample
    bootstrap: each pair's two samples are redrawn (with replacement, same
    sizes) from their pooled values and the statistics recomputed, so
    discrete answers, small counts and answers near 0 or 1 are handled as
    they are. The **primary** test is ``chi2`` (one-sided):
    ``within_mc_error`` when its p-value is ≥ 0.05. ``chi2_p_asymptotic`` is
    the χ² tail on the pairs that can differ, for comparison. Draws come
    from the named stream ``bench.fidelity:whole_set_null``.

    Same seeds on both sides make the two samples of a pair positively
    correlated, so the differences observed are smaller than two independent
    runs' would be even with no solver effect: the test asks whether the
    solver moves judgments by more than rerunning with other seeds would.
    """
    from scipy import stats

    from ipe.seeding import stream_rng

    rng = stream_rng(seed, "bench.fidelity:whole_set_null")
    z = np.zeros(len(a_values))
    null_count = np.zeros(draws)
    null_chi2 = np.zeros(draws)
    k = 0
    for i, (a, b) in enumerate(zip(a_values, b_values)):
        a, b = np.asarray(a, float), np.asarray(b, float)
        a, b = a[~np.isnan(a)], b[~np.isnan(b)]
        if not (a.size and b.size):
            continue
        z[i] = float(pooled_z(*_stats(a), *_stats(b)))
        pool = np.concatenate([a, b])
        if np.all(pool == pool[0]):
            continue  # one value on both sides: no Monte Carlo error, z = 0 in every draw
        k += 1
        draw = rng.choice(pool, size=(draws, pool.size), replace=True)
        da, db = draw[:, :a.size], draw[:, a.size:]
        sa = da.std(axis=1, ddof=1) if a.size > 1 else np.zeros(draws)
        sb = db.std(axis=1, ddof=1) if b.size > 1 else np.zeros(draws)
        zn = pooled_z(da.mean(axis=1), sa, a.size, db.mean(axis=1), sb, b.size)
        null_count += np.abs(zn) > 2
        null_chi2 += zn ** 2
    count, chi2 = int(np.sum(np.abs(z) > 2)), float(np.sum(z ** 2))
    p_chi2 = float((1 + np.sum(null_chi2 >= chi2 - 1e-9)) / (1 + draws))
    return {"pairs": int(len(z)), "pairs_that_can_differ": k, "count_over_2": count,
            "count_over_2_expected": float(null_count.mean()),
            "count_over_2_null_95": float(np.quantile(null_count, 0.95)),
            "count_p": float((1 + np.sum(null_count >= count)) / (1 + draws)),
            "chi2": chi2, "chi2_expected": float(null_chi2.mean()), "chi2_null_95": float(np.quantile(null_chi2, 0.95)),
            "chi2_p": p_chi2, "chi2_p_asymptotic": float(stats.chi2.sf(chi2, k)) if k else 1.0,
            "max_abs_z": float(np.max(np.abs(z))) if len(z) else 0.0, "draws": int(draws),
            "within_mc_error": p_chi2 >= 0.05}


def per_stimulus_values(row: dict) -> list[np.ndarray]:
    """A setting's rollout values split by stimulus (rows hold them stimulus by stimulus, ``samples`` each)."""
    v = np.asarray(row["values"], float)
    n = len(row["stimulus_id"])
    return list(v.reshape(n, -1))


def compare(row: dict, ref: dict) -> dict:
    """Agreement of one setting's judgments with the reference's (see the module docstring)."""
    out = _compare(row, ref)
    if "values" in row and "values" in ref:  # rows of this version of the script
        out["whole_set"] = whole_set_test(per_stimulus_values(row), per_stimulus_values(ref))
        va, vb = np.asarray(row["values"], float), np.asarray(ref["values"], float)
        out["rollouts_differing"] = int(np.sum(~((va == vb) | (np.isnan(va) & np.isnan(vb)))))
        out["rollouts_compared"] = int(va.size)
    return out


def _compare(row: dict, ref: dict) -> dict:
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
             " max |Δ|/se | |Δ| ≤ 2 se | passes | frontier | Σz² (null 95 %) | p | within MC error |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---|"]
    for r in sorted(res["settings"], key=lambda r: r["cpu_ms_per_rollout"]):
        mark = " (default)" if r["is_default"] else ""
        lines.append(f"| {r['label']}{mark} | {r['cpu_ms_per_rollout']:.2f} | {r['cost_vs_default']:.2f} | "
                     f"{r['steps_per_rollout']:.0f} | {r['r']:.4f} | {r['mean_abs_diff']:.4f} | "
                     f"{r['worst_diff_over_se']:.2f} | {r['within_2se']}/{r['n_stimuli']} | "
                     f"{'yes' if r['passes'] else 'no'} | {'yes' if r['on_frontier'] else ''} | "
                     + (f"{w['chi2']:.1f} ({w['chi2_null_95']:.1f}) | {w['chi2_p']:.3f} | "
                        f"{'yes' if w['within_mc_error'] else 'no'} |" if (w := r.get("whole_set")) else "— | — | — |"))
    ref = res["reference"]
    lines.append(f"| reference {ref['label']} | {ref['cpu_ms_per_rollout']:.2f} | {ref['cost_vs_default']:.2f} | "
                 f"{ref['steps_per_rollout']:.0f} | 1 | 0 | 0 | all | — | — | — | — | — |")
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
    ap.add_argument("--settings", default=None, metavar="SxI[@SLOP],...",
                    help="only these settings (and the default), e.g. 4x30,8x20 or 4x30@0.25 (slop × the default)")
    ap.add_argument("--reference", default=None, metavar="SxI",
                    help="another reference solver, e.g. 32x60 (to ask whether 16 × 60 itself is converged)")
    ap.add_argument("--point", default=None, metavar="NAME=V,...",
                    help="another noise point for the set, e.g. sigma=0,phi=0.3 (default: the set's own)")
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
    if args.point is not None:
        from ipe.noise import NoiseParams

        try:
            point = NoiseParams(**{k.strip(): float(v) for k, v in (p.split("=") for p in args.point.split(","))})
        except (ValueError, TypeError) as exc:
            print(f"--point {args.point!r}: expected NAME=VALUE,... of noise parameters ({exc})", file=sys.stderr)
            raise SystemExit(2) from None
    default, settings = _grid(name, args.quick)
    if args.settings is not None:
        settings = parse_settings(args.settings, default)
    out = args.out or ROOT / "results" / f"fidelity_{name}.json"
    res = {"set": name, "stimuli": len(stimuli), "samples": samples, "seed": args.seed,
           "noise": {k: v for k, v in point.as_dict().items() if v}, "machine": _machine(),
           "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
           "reference": None, "settings": [], "complete": False}
    print(f"{name}: {len(stimuli)} stimuli × {samples} samples, noise {res['noise']}, load {res['machine']['loadavg']}")
    ref_cfg = dict(REFERENCE)
    if args.quick:
        ref_cfg = {"substeps": 8, "iterations": 30, "slop": 1.0}
    if args.reference is not None:
        ref_cfg = parse_settings(args.reference, default)[-1]
    ref = run_setting(stimuli, point, ref_cfg, samples, args.seed)
    res["reference"] = ref
    print(f"  reference {ref['label']}: {ref['cpu_ms_per_rollout']:.2f} CPU-ms/rollout", flush=True)
    for cfg in settings:
        row = run_setting(stimuli, point, cfg, samples, args.seed)
        row.update(compare(row, ref), is_default=cfg == default)
        res["settings"].append(row)
        w = row["whole_set"]
        print(f"  {row['label']}: {row['cpu_ms_per_rollout']:.2f} CPU-ms/rollout, r {row['r']:.4f}, "
              f"mean |Δ| {row['mean_abs_diff']:.4f}, {row['within_2se']}/{row['n_stimuli']} within 2 se; "
              f"whole set: Σz² {w['chi2']:.1f} (null mean {w['chi2_expected']:.1f}, p {w['chi2_p']:.3f}), "
              f"|z| > 2 on {w['count_over_2']} (null mean {w['count_over_2_expected']:.1f}, p {w['count_p']:.3f}), "
              f"{row.get('rollouts_differing', '?')}/{row.get('rollouts_compared', '?')} rollouts answer differently",
              flush=True)
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
