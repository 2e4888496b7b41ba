"""A sweep's judgments against the same sweep at the converged reference solver, on a seeded sample of its points.

Run from the repository root, after the sweep (``ipe sweep … --out SWEEP.csv``)::

    nice -n 10 python benchmarks/bench_sweep_fidelity.py --sweep /tmp/sweep/sweep_adaptive.csv \
        --include sigma=0.2,phi=0.2 --draw 3        # 4 corners + σ = φ = 0.2 + 3 drawn; ~14 CPU-minutes
    python benchmarks/bench_sweep_fidelity.py --quick          # a smoke run (seconds): makes its own tiny sweep

The issue's acceptance: "every per-point judgment stays within Monte Carlo
error of the same sweep at the reference solver, checked on a sample of
points". The script reads the sweep's summary CSV (one row per point ×
stimulus: ``mean``, ``sd``, ``n_valid``, …), chooses points — every
**corner** of the grid (for BHT's σ × φ: σ = 0 and 0.5 with φ = 0 and 0.3)
any ``--include`` points, and ``--draw`` more drawn without replacement from
the rest (named stream ``bench.sweep_fidelity:points``, ``--draw-seed``) — and reruns each chosen
point on the same stimuli, with the same seed, at ``--samples`` (48) and the
converged **reference** solver of ``bench_fidelity.py`` (1/960 s steps, 60
iterations, set on copies of the stimuli through each scene's
``simulation``). Sample ``k`` of a point draws the same noise whatever the
solver, and an adaptive sweep's pair that stopped at ``n`` samples holds
exactly the first ``n`` of them.

It also reruns each chosen point at the **sweep's own (default) solver**
with the same 48 samples: their first ``n`` must reproduce the CSV's mean
exactly (``reproduces_sweep``; a different seed, stimulus file or grid
rounding would show here), and they give the default solver against the
reference at equal sample counts, rollout by rollout.

Per (point, stimulus): ``Δ`` = sweep − reference and the pooled two-sample
``z`` (``bench_fidelity.pooled_z``: the Monte Carlo error of the difference
of two independent estimates). Per point: Pearson ``r`` over stimuli, mean
``|Δ|``, largest ``|z|``, the count of ``|z| > 2``, and the frontier's rule
``|Δ| ≤ 2·sqrt((se_sweep² + se_ref²)/2)``. Over all chosen points together
(``bench_fidelity.whole_set_test``): ``Σ z²`` and the count of ``|z| > 2``
against their distribution under Monte Carlo error alone (two-sample
bootstrap from each pair's pooled rollout values; the sweep's rollouts are
the first ``n`` of the rerun at its solver); the sweep is **within Monte
Carlo error** of the reference on the sample when ``Σ z²``'s p-value is
≥ 0.05. The same test is also reported without the no-noise point (where a
judgment has no Monte Carlo error at all, so any solver difference counts)
and for the default solver at 48 samples against the reference.

Writes ``benchmarks/results/sweep_fidelity.json`` (git-ignored) after every
point, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

from ipe.noise import ForceNoise  # noqa: E402
from bench_fidelity import REFERENCE, _machine, _write, pooled_z, whole_set_test, with_solver  # noqa: E402

DEFAULT_SWEEP = Path("/tmp/sweep/sweep_adaptive.csv")
NEEDED = ("stimulus_id", "query", "mean", "sd", "n_valid", "n_samples")


def _bad(message: str) -> SystemExit:
    """Bad input: one line on stderr, exit status 2."""
    print(message, file=sys.stderr)
    return SystemExit(2)


def load_sweep(path: Path):
    """The sweep's summary table, its parameter columns and the varying ones; exits 2 with one line if unusable."""
    import pandas as pd

    from ipe.noise import NoiseParams
    from ipe.sweep import varying_parameters

    if not path.is_file():
        raise _bad(f"--sweep {path}: no such file (run the sweep first, or give --quick)")
    table = pd.read_csv(path, dtype={"stimulus_id": str})
    missing = [c for c in NEEDED if c not in table.columns]
    params = [c for c in NoiseParams.names() if c in table.columns]
    if missing or not params:
        raise _bad(f"--sweep {path}: not a sweep summary (lacks {', '.join(missing) or 'noise columns'})")
    if table.duplicated(params + ["stimulus_id", "query"]).any():
        raise _bad(f"--sweep {path}: a (point, stimulus, query) appears twice")
    return table, params, varying_parameters(table)


def parse_include(text: str, vary: list[str]) -> dict:
    """``"sigma=0.2,phi=0.2"`` as ``{name: value}`` over the sweep's varying parameters; exits 2 if malformed."""
    try:
        got = {k.strip(): float(v) for k, v in (part.split("=") for part in text.split(","))}
    except ValueError:
        raise _bad(f"--include {text!r}: expected NAME=VALUE,NAME=VALUE, e.g. sigma=0.2,phi=0.2") from None
    if set(got) != set(vary):
        raise _bad(f"--include {text!r}: give a value for each of {', '.join(vary)}")
    return got


def choose_points(table, params: list[str], vary: list[str], draw: int, seed: int, include=()) -> list[dict]:
    """The grid's corners (min and max of every varying parameter), the ``include`` points, and ``draw`` more of
    its points, drawn without replacement from the rest (seeded)."""
    from ipe.seeding import stream_rng

    points = table[params].drop_duplicates().to_dict("records")
    lo = {p: table[p].min() for p in vary}
    hi = {p: table[p].max() for p in vary}
    corners = []
    for combo in itertools.product(*[(lo[p], hi[p]) for p in vary]):
        want = dict(zip(vary, combo))
        hit = [pt for pt in points if all(pt[p] == want[p] for p in vary)]
        if hit and hit[0] not in corners:
            corners.append(hit[0])
    named = []
    for want in include:
        hit = [pt for pt in points if all(math.isclose(pt[p], want[p], rel_tol=1e-9, abs_tol=1e-12) for p in vary)]
        if not hit:
            raise _bad(f"--include {', '.join(f'{k}={v:g}' for k, v in want.items())}: no such point in the sweep")
        if hit[0] not in named:
            named.append(hit[0])
    corners = [pt for pt in corners if pt not in named]
    rest = [pt for pt in points if pt not in corners and pt not in named]
    k = min(draw, len(rest))
    idx = sorted(stream_rng(seed, "bench.sweep_fidelity:points").choice(len(rest), size=k, replace=False).tolist())
    return named + corners + [rest[i] for i in idx]  # the named points first: an interrupted run has them


def noise_point(values: dict):
    """``NoiseParams`` of a CSV row, its values rounded as ``ipe.sweep.grid`` rounds them (same seeds)."""
    from ipe.noise import NoiseParams

    return NoiseParams(**{k: float(f"{float(v):.12g}") + 0.0 for k, v in values.items()})


def run_point(stimuli, point, queries, samples: int, seed: int, workers: int) -> tuple[dict, float]:
    """Per stimulus (mean, sd, n_valid, values of all samples) of one point, and the CPU seconds it took."""
    from ipe.montecarlo import simulate, summarize

    t0 = time.process_time()
    roll = simulate(stimuli, point, n_samples=samples, seed=seed, queries=queries, progress=False, workers=workers)
    cpu = time.process_time() - t0
    summ = summarize(roll).set_index("stimulus_id")
    vals = {sid: g["value"].to_numpy(float) for sid, g in roll.groupby("stimulus_id", sort=False)}
    return {sid: {"mean": float(summ.at[sid, "mean"]), "sd": float(summ.at[sid, "sd"]),
                  "n_valid": int(summ.at[sid, "n_valid"]), "values": vals[sid]} for sid in summ.index}, cpu


def _first_n_mean(values: np.ndarray, n: int) -> float:
    v = values[:n]
    v = v[~np.isnan(v)]
    return float(v.mean()) if v.size else math.nan


def point_stats(ids, sweep_rows, ref: dict, default: dict) -> dict:
    """Agreement of one point's sweep judgments (and the default rerun's) with the reference's."""
    m1 = np.array([sweep_rows[i]["mean"] for i in ids], float)
    s1 = np.array([sweep_rows[i]["sd"] for i in ids], float)
    n1 = np.array([sweep_rows[i]["n_valid"] for i in ids], float)
    m2 = np.array([ref[i]["mean"] for i in ids], float)
    s2 = np.array([ref[i]["sd"] for i in ids], float)
    n2 = np.array([ref[i]["n_valid"] for i in ids], float)
    z = pooled_z(m1, s1, n1, m2, s2, n2)
    se1, se2 = np.nan_to_num(s1 / np.sqrt(n1)), np.nan_to_num(s2 / np.sqrt(n2))
    d = m1 - m2
    frontier_rule = np.abs(d) <= 2 * np.sqrt((se1 ** 2 + se2 ** 2) / 2) + 1e-12
    out = {"stimuli": len(ids), "mean_sweep_samples": float(np.mean([sweep_rows[i]["n_samples"] for i in ids])),
           "r": _pearson(m1, m2), "mean_abs_diff": float(np.mean(np.abs(d))), "max_abs_diff": float(np.max(np.abs(d))),
           "max_abs_z": float(np.max(np.abs(z))), "count_abs_z_over_2": int(np.sum(np.abs(z) > 2)),
           "sum_z2": float(np.sum(z ** 2)), "within_2se_frontier_rule": int(frontier_rule.sum()),
           "z": z.tolist(), "diff": d.tolist()}
    rep = [abs(_first_n_mean(default[i]["values"], int(sweep_rows[i]["n_samples"])) - sweep_rows[i]["mean"])
           <= 1e-12 or (math.isnan(sweep_rows[i]["mean"]) and math.isnan(default[i]["mean"])) for i in ids]
    dm = np.array([default[i]["mean"] for i in ids], float)
    ds = np.array([default[i]["sd"] for i in ids], float)
    dn = np.array([default[i]["n_valid"] for i in ids], float)
    zd = pooled_z(dm, ds, dn, m2, s2, n2)
    va = np.concatenate([default[i]["values"] for i in ids])
    vb = np.concatenate([ref[i]["values"] for i in ids])
    out["default48"] = {"reproduces_sweep": int(sum(rep)), "r": _pearson(dm, m2),
                        "mean_abs_diff": float(np.mean(np.abs(dm - m2))), "max_abs_z": float(np.max(np.abs(zd))),
                        "count_abs_z_over_2": int(np.sum(np.abs(zd) > 2)), "sum_z2": float(np.sum(zd ** 2)),
                        "rollouts_differing": int(np.sum(~((va == vb) | (np.isnan(va) & np.isnan(vb))))),
                        "rollouts": int(va.size)}
    return out


def _whole_sets(res: dict, pool: dict) -> None:
    """The whole-set tests over every point done: sweep, sweep without the no-noise point, default at 48."""
    res["whole_set"] = whole_set_test(pool["sweep"], pool["ref"])
    res["whole_set_default48"] = whole_set_test(pool["default"], pool["ref"])
    res["reproduces_sweep"] = all(p["default48"]["reproduces_sweep"] == p["stimuli"] for p in res["points"])
    noisy = _noisy_rows(res["points"])
    res.pop("whole_set_with_noise", None)
    if 0 < len(noisy) < len(pool["sweep"]):  # without the no-noise point: no Monte Carlo error there at all
        res["whole_set_with_noise"] = whole_set_test([pool["sweep"][j] for j in noisy], [pool["ref"][j] for j in noisy])
    cont = _noisy_rows(res["points"], lambda p: not p.get("push_only", False))
    res.pop("whole_set_continuous_noise", None)
    if 0 < len(cont) < len(pool["sweep"]):  # points whose every rollout draws its own noise (σ > 0)
        res["whole_set_continuous_noise"] = whole_set_test([pool["sweep"][j] for j in cont],
                                                           [pool["ref"][j] for j in cont])
        res["whole_set_default48_continuous_noise"] = whole_set_test([pool["default"][j] for j in cont],
                                                                     [pool["ref"][j] for j in cont])
    res["points_done"] = len(res["points"])


def markdown(res: dict) -> str:
    """The results as a Markdown table (one row per point, then the whole-set rows), for the README."""
    lines = ["| σ, φ | mean sweep samples | r | mean \\|Δ\\| | \\|z\\| > 2 | Σz² (alone: mean) | p | "
             "default at 48: r | rollouts answering differently | Σz² (alone) | p |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for p in res["points"]:
        d = p["default48"]
        lines.append(f"| {', '.join(f'{v:g}' for v in p['point'].values())} | {p['mean_sweep_samples']:.1f} | "
                     f"{p['r']:.4f} | {p['mean_abs_diff']:.3f} | {p['count_abs_z_over_2']}/{p['stimuli']} | "
                     f"{p['sum_z2']:.1f} ({p['sum_z2_null_mean']:.1f}) | {_p(p['p_sum_z2'])} | {d['r']:.4f} | "
                     f"{d['rollouts_differing']}/{d['rollouts']} | {d['sum_z2']:.1f} ({d['sum_z2_null_mean']:.1f}) | "
                     f"{_p(d['p_sum_z2'])} |")
    for key, dkey, what in (("whole_set", "whole_set_default48", "**all points**"),
                            ("whole_set_with_noise", None, "**all but σ = φ = 0**"),
                            ("whole_set_continuous_noise", "whole_set_default48_continuous_noise", "**points with σ > 0**")):
        if key in res:
            w, d = res[key], res.get(dkey or "", None)
            tail = f" {d['chi2']:.1f} ({d['chi2_expected']:.1f}) | {_p(d['chi2_p'])} |" if d else " | |"
            lines.append(f"| {what} | | | | {w['count_over_2']}/{w['pairs']} (alone: ≤ {w['count_over_2_null_95']:.0f} "
                         f"at 95 %) | {w['chi2']:.1f} ({w['chi2_expected']:.1f}) | {_p(w['chi2_p'])} | | |" + tail)
    return "\n".join(lines)


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _noisy_rows(points: list[dict], keep=lambda p: any(p["point"].values())) -> list[int]:
    """Indices (into the pooled per-stimulus lists) of the stimuli at points ``keep`` takes (default: some noise)."""
    out, j = [], 0
    for p in points:
        if keep(p):
            out += list(range(j, j + p["stimuli"]))
        j += p["stimuli"]
    return out


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    ok = ~(np.isnan(a) | np.isnan(b))
    a, b = a[ok], b[ok]
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return 1.0 if np.array_equal(a, b) else math.nan
    return float(np.corrcoef(a, b)[0, 1])


def _quick_sweep(tmp: Path) -> tuple[Path, Path]:
    """A tiny adaptive sweep (3 towers, 2 × 2 grid, up to 8 samples) written as ``ipe sweep`` writes it."""
    from ipe.fileio import write_csv
    from ipe.montecarlo import simulate, summarize
    from ipe.scenefile import save_stimuli
    from ipe.stimuli import generate_towers
    from ipe.sweep import grid

    towers = generate_towers(3, seed=2013)
    stim_path = tmp / "towers.json"
    save_stimuli(towers, stim_path)
    table = simulate(towers, grid(sigma="0,0.3", phi="0,0.2"), n_samples=8, seed=0, target_se=0.2, progress=False)
    sweep = tmp / "sweep.csv"
    write_csv(sweep, summarize(table))
    return sweep, stim_path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sweep", type=Path, default=DEFAULT_SWEEP, help=f"the sweep's summary CSV (default {DEFAULT_SWEEP})")
    ap.add_argument("--stimuli", type=Path, default=None,
                    help="the sweep's stimulus file (default: towers.json beside the CSV, else "
                         "generate_towers(60, seed=2013))")
    ap.add_argument("--seed", type=int, default=0, help="the sweep's --seed (default 0)")
    ap.add_argument("--samples", type=int, default=48, help="samples per stimulus of the reruns (default 48)")
    ap.add_argument("--draw", type=int, default=4, help="points drawn besides the corners (default 4)")
    ap.add_argument("--include", action="append", default=[], metavar="NAME=V,NAME=V",
                    help="a point to check besides the corners and the drawn ones (repeatable), e.g. sigma=0.2,phi=0.2")
    ap.add_argument("--draw-seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="make a tiny sweep and check it (smoke test; seconds)")
    ap.add_argument("--table", type=Path, default=None, metavar="JSON",
                    help="print the Markdown table of a results file (of a finished or interrupted run) and exit")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "sweep_fidelity.json")
    args = ap.parse_args(argv)
    os.environ.setdefault("IPE_NO_PROGRESS", "1")
    if args.table is not None:
        print(markdown(json.loads(args.table.read_text(encoding="utf-8"))))
        return 0

    from ipe.scenefile import load_stimuli

    tmpdir = None
    ref_cfg = dict(REFERENCE)
    if args.quick:
        tmpdir = tempfile.TemporaryDirectory()
        args.sweep, args.stimuli = _quick_sweep(Path(tmpdir.name))
        args.samples, args.draw = 8, 1
        ref_cfg = {"substeps": 8, "iterations": 30, "slop": 1.0}  # as bench_fidelity --quick: cheap
    table, params, vary = load_sweep(args.sweep)
    if args.stimuli is None and (args.sweep.parent / "towers.json").is_file():
        args.stimuli = args.sweep.parent / "towers.json"
    if args.stimuli is not None:
        stimuli = load_stimuli(args.stimuli)
        source = str(args.stimuli)
    else:
        from ipe.stimuli import generate_towers

        stimuli, source = generate_towers(60, seed=2013), "generate_towers(60, seed=2013)"
    ids = [s.id for s in stimuli]
    swept = set(table["stimulus_id"])
    if not set(ids) <= swept or len(swept) != len(ids):
        raise _bad(f"--stimuli {source}: its stimulus ids are not the sweep's")
    queries = sorted(set(table["query"]))
    own = all(s.query.key == q for s in stimuli for q in queries) and len(queries) == 1
    qs = None if own else queries
    ref_stimuli = with_solver(stimuli, ref_cfg["substeps"], ref_cfg["iterations"], ref_cfg["slop"])

    chosen = choose_points(table, params, vary, args.draw, args.draw_seed,
                           [parse_include(t, vary) for t in args.include])
    res = {"sweep": str(args.sweep), "stimuli": source, "n_stimuli": len(ids), "queries": queries,
           "seed": args.seed, "samples": args.samples, "reference": ref_cfg, "draw": args.draw,
           "draw_seed": args.draw_seed, "machine": _machine(),
           "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "points": [], "complete": False}
    print(f"{len(chosen)} points of {len(table[params].drop_duplicates())} × {len(ids)} stimuli × {args.samples} "
          f"samples at the reference {ref_cfg}; load {res['machine']['loadavg']}", flush=True)
    pool: dict[str, list] = {"sweep": [], "ref": [], "default": []}
    for values in chosen:
        point = noise_point(values)
        rows = table
        for p in params:
            rows = rows[rows[p] == values[p]]
        sweep_rows = {r["stimulus_id"]: r for r in rows.to_dict("records")}
        ref, ref_cpu = run_point(ref_stimuli, point, qs, args.samples, args.seed, args.workers)
        default, def_cpu = run_point(stimuli, point, qs, args.samples, args.seed, args.workers)
        st = point_stats(ids, sweep_rows, ref, default)
        # the sweep's own rollouts: the first n of the rerun at its solver (checked: they give the CSV's mean)
        swept = [default[i]["values"][:int(sweep_rows[i]["n_samples"])] for i in ids]
        refs = [ref[i]["values"] for i in ids]
        w = whole_set_test(swept, refs)
        st["p_sum_z2"], st["sum_z2_null_mean"] = w["chi2_p"], w["chi2_expected"]
        pool["sweep"] += swept
        pool["ref"] += refs
        pool["default"] += [default[i]["values"] for i in ids]
        wd = whole_set_test([default[i]["values"] for i in ids], refs)
        st["default48"]["p_sum_z2"], st["default48"]["sum_z2_null_mean"] = wd["chi2_p"], wd["chi2_expected"]
        st.update({"point": {p: float(values[p]) for p in vary}, "ref_cpu_s": ref_cpu, "default_cpu_s": def_cpu,
                   # the push alone (or nothing): at most two distinct rollouts per tower, next to no Monte Carlo error
                   "push_only": all(isinstance(src, ForceNoise) for src in point.sources())})
        res["points"].append(st)
        label = ", ".join(f"{p} {values[p]:g}" for p in vary)
        d48 = st["default48"]
        extra = (f"; default at {args.samples}: reproduces the sweep on {d48['reproduces_sweep']}/{len(ids)}, "
                 f"r {d48['r']:.4f}, |z| > 2 on {d48['count_abs_z_over_2']}, Σz² {d48['sum_z2']:.1f} "
                 f"(alone {d48['sum_z2_null_mean']:.1f}, p {d48['p_sum_z2']:.3f}), "
                 f"{d48['rollouts_differing']}/{d48['rollouts']} rollouts differ")
        print(f"  {label}: r {st['r']:.4f}, mean |Δ| {st['mean_abs_diff']:.4f}, max |z| {st['max_abs_z']:.2f}, "
              f"|z| > 2 on {st['count_abs_z_over_2']}/{len(ids)}, Σz² {st['sum_z2']:.1f} (alone {st['sum_z2_null_mean']:.1f}, "
              f"p {st['p_sum_z2']:.3f}), mean sweep samples "
              f"{st['mean_sweep_samples']:.1f}; reference {ref_cpu:.1f} CPU-s{extra}", flush=True)
        _whole_sets(res, pool)  # over the points done so far: an interrupted run keeps its verdict
        _write(args.out, res)
    res["complete"] = True
    res["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    res["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    _write(args.out, res)
    for key, what in (("whole_set", "sweep"), ("whole_set_with_noise", "sweep without the no-noise point"),
                      ("whole_set_default48", f"default solver at {args.samples}")):
        if key in res:
            w = res[key]
            print(f"whole set, {what} against the reference: Σz² {w['chi2']:.1f} over {w['pairs']} pairs "
                  f"({w['pairs_that_can_differ']} can differ; Monte Carlo error alone: mean {w['chi2_expected']:.1f}, "
                  f"95 % {w['chi2_null_95']:.1f}; p {w['chi2_p']:.3f}, χ² approx. {w['chi2_p_asymptotic']:.3f}); "
                  f"|z| > 2 on {w['count_over_2']} (alone: mean {w['count_over_2_expected']:.1f}, 95 % "
                  f"{w['count_over_2_null_95']:.0f}; p {w['count_p']:.3f}) → "
                  f"{'within' if w['within_mc_error'] else 'NOT within'} Monte Carlo error")
    if "reproduces_sweep" in res:
        print(f"default rerun reproduces the sweep's means exactly: {res['reproduces_sweep']}")
    print(f"wrote {args.out}")
    if tmpdir is not None:
        tmpdir.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
