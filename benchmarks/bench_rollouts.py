"""Rollouts per second: ipe against a plain pymunk loop, on the demo towers (or the noisy BHT set).

Run from the repository root::

    python benchmarks/bench_rollouts.py            # full run (about 2 minutes)
    python benchmarks/bench_rollouts.py --quick    # a smoke run (seconds)
    python benchmarks/bench_rollouts.py --bht      # 60 BHT towers at σ = φ = 0.2, 48 samples (issue 23's set)

``--bht`` times, on the same noisy rollouts (the scene and push of every
sample as ipe draws them), a plain pymunk loop that applies the push
itself, ipe at full horizon, ipe stopping at rest only, and ipe with
answer-aware stopping too (the default); in CPU seconds, the samples split
into interleaved rounds; judgments (blocks fallen) compared rollout by
rollout. Writes ``benchmarks/results/rollouts_bht.json``.

What is timed (all noise-free, same scenes, same 1/240 s step, same 2 s horizon):

* **plain loop** — a plain pymunk script: build the space with pymunk calls,
  ``space.step(dt)`` for the whole horizon, read the positions, count fallen
  blocks. Same solver settings as ipe (``iterations``, ``collision_slop``,
  ``collision_bias``), so the physics is the same.
* **ipe, full horizon** — ``ipe.simulate(..., early_stop=False)`` on one
  worker: the same physics, plus everything ipe does around it (seeding,
  noise sources, queries, the tidy table).
* **ipe, early stop** — the default: stop once the scene is at rest.
* **ipe, early stop, 2 workers** — the local process pool.

Rounds are interleaved (plain, full, early, plain, …) and the median round is
reported, so a slow moment of the machine hits every variant alike. The
script also checks that every variant gives the same judgments (blocks fallen
per tower) as the plain loop, and writes ``benchmarks/results/rollouts.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pymunk

import ipe
from ipe.noise import NoiseParams
from ipe.queries import fall_threshold
from ipe.scene import Ball, Block, StaticSegment, world_vertices
from ipe.world import SolverSettings

ROOT = Path(__file__).resolve().parent


def plain_space(scene, st) -> tuple[pymunk.Space, list[pymunk.Body]]:
    """A pymunk space built from ``scene`` as a user would, with ipe's solver settings ``st``; and its bodies."""
    space = pymunk.Space()
    space.gravity = scene.gravity
    space.iterations = st.iterations
    space.collision_slop = st.collision_slop
    space.collision_bias = st.collision_bias
    for s in scene.statics:
        if isinstance(s, StaticSegment):
            shape = pymunk.Segment(space.static_body, s.a, s.b, s.radius)
        else:
            shape = pymunk.Poly(space.static_body, world_vertices(s))
        shape.friction, shape.elasticity = s.friction, s.elasticity
        space.add(shape)
    bodies = []
    for b in scene.bodies:
        m = b.effective_mass
        if isinstance(b, Block):
            body = pymunk.Body(m, pymunk.moment_for_box(m, (b.width, b.height)))
            shape = pymunk.Poly.create_box(body, (b.width, b.height))
        else:
            assert isinstance(b, Ball)
            body = pymunk.Body(m, pymunk.moment_for_circle(m, 0, b.radius))
            shape = pymunk.Circle(body, b.radius)
        body.position, body.angle = b.position, b.angle
        body.velocity, body.angular_velocity = b.velocity, b.angular_velocity
        shape.friction, shape.elasticity = b.friction, b.elasticity
        space.add(body, shape)
        bodies.append(body)
    return space, bodies


def plain_loop(scene) -> np.ndarray:
    """A plain pymunk rollout, written as a user would, with ipe's solver settings."""
    st = SolverSettings.for_scene(scene)
    space, bodies = plain_space(scene, st)
    for _ in range(st.n_steps):
        space.step(st.dt)
    return np.array([(b.position.x, b.position.y, b.angle) for b in bodies])


def plain_fallen(scene, final) -> int:
    y0 = np.array([b.position[1] for b in scene.bodies])
    return int(np.sum(y0 - final[:, 1] > fall_threshold(scene)))


def time_plain(stimuli, reps: int) -> tuple[float, list[int]]:
    t = time.perf_counter()
    for _ in range(reps):
        counts = [plain_fallen(s.scene, plain_loop(s.scene)) for s in stimuli]
    return time.perf_counter() - t, counts


def time_ipe(stimuli, reps: int, early_stop: bool, workers: int = 1, params=NoiseParams()):
    t = time.perf_counter()
    df = ipe.simulate(stimuli, params, n_samples=reps, seed=0, queries="count_fallen", workers=workers,
                      early_stop=early_stop, progress=False)
    return time.perf_counter() - t, df


def per_stimulus(df) -> list[int]:
    return [int(v) for v in df.groupby("stimulus_id", sort=False)["value"].first()]


def plain_noisy(scene, schedule) -> np.ndarray:
    """The plain loop on a noisy scene, with the force-noise push applied by tilting gravity for its steps."""
    st = SolverSettings.for_scene(scene)
    space, bodies = plain_space(scene, st)
    start = end = 0
    tilted = scene.gravity
    if schedule.gravity_until is not None:
        t_end, tilted = schedule.gravity_until
        start = int(np.ceil(schedule.gravity_from / st.dt - 1e-9))
        end = min(st.n_steps, int(np.ceil(t_end / st.dt - 1e-9)))
    for k in range(st.n_steps):
        space.gravity = tilted if start <= k < end else scene.gravity
        space.step(st.dt)
    return np.array([(b.position.x, b.position.y, b.angle) for b in bodies])


def bht_main(args) -> int:
    """60 BHT towers at σ = φ = 0.2: plain loop, ipe full horizon, rest-only stop, answer-aware stop."""
    import ipe.runner as runner
    from ipe.stimuli.towers import generate_towers

    towers = generate_towers(args.towers, seed=2013)
    params = NoiseParams(sigma=0.2, phi=0.2)
    from ipe.queries import parse_query

    q = [parse_query("count_fallen")]
    real_final = runner.final_condition

    def run_ipe(samples, early, answer_aware=True):
        runner.final_condition = real_final if answer_aware else (lambda queries, stim: None)
        try:
            t = time.process_time()
            out = [runner.run_sample(st, params, 0, s, q, early_stop=early) for st in towers for s in samples]
            return time.process_time() - t, [v[0][0] for v in out], [v[1].steps for v in out]
        finally:
            runner.final_condition = real_final

    def run_plain(samples):
        prepared = [(st, *runner.prepare_sample(st, params, 0, s, q, early_stop=False)) for st in towers for s in samples]
        t = time.process_time()
        counts = [float(plain_fallen(sc, plain_noisy(sc, sch))) for st, sc, sch in prepared]
        return time.process_time() - t, counts

    run_ipe([0], True)  # warm-up
    totals = {"plain": 0.0, "full": 0.0, "rest": 0.0, "answer": 0.0}
    values = {k: [] for k in totals}
    steps = {"rest": [], "answer": []}
    for r in range(args.rounds or 3):
        samples = list(range(r, args.samples, args.rounds or 3))
        tp, cp = run_plain(samples)
        tf, vf, _ = run_ipe(samples, False)
        tr, vr, sr = run_ipe(samples, True, answer_aware=False)
        ta, va, sa = run_ipe(samples, True)
        for k, t, v in (("plain", tp, cp), ("full", tf, vf), ("rest", tr, vr), ("answer", ta, va)):
            totals[k] += t
            values[k] += v
        steps["rest"] += sr
        steps["answer"] += sa
    n = len(values["plain"])
    identical = all(values[k] == values["plain"] for k in ("full", "rest", "answer"))
    rate = {k: n / t for k, t in totals.items()}
    res = {"towers": args.towers, "samples": args.samples, "rollouts": n, "params": params.as_dict(),
           "cpu_s": {k: round(t, 2) for k, t in totals.items()},
           "rollouts_per_cpu_s": {k: round(v, 1) for k, v in rate.items()},
           "ratio_vs_plain": {k: round(v / rate["plain"], 3) for k, v in rate.items()},
           "mean_steps": {"full": 480, "rest": float(np.mean(steps["rest"])), "answer": float(np.mean(steps["answer"]))},
           "stopped_by_answer": int(sum(a < r for a, r in zip(steps["answer"], steps["rest"]))),
           "judgments_identical_rollout_by_rollout": bool(identical),
           "load_average": os.getloadavg()}
    out = args.out if args.out != ROOT / "results" / "rollouts.json" else ROOT / "results" / "rollouts_bht.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"BHT towers: {args.towers} towers × {args.samples} samples at σ = φ = 0.2 ({n} rollouts, CPU seconds)")
    print("| variant | rollouts/CPU-s | × plain loop | mean steps |")
    print("|---|---:|---:|---:|")
    names = {"plain": "plain pymunk loop, full horizon", "full": "ipe, full horizon",
             "rest": "ipe, stop at rest only", "answer": "ipe, answer-aware stop too (default)"}
    for k in ("plain", "full", "rest", "answer"):
        ms = res["mean_steps"].get(k, 480)
        print(f"| {names[k]} | {rate[k]:.0f} | {rate[k] / rate['plain']:.2f} | {ms:.0f} |")
    print(f"rollouts the answer-aware test stopped before rest: {res['stopped_by_answer']} of {n}")
    print(f"judgments identical rollout by rollout: {identical}; load average {res['load_average']}")
    return 0 if identical else 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few seconds, for smoke tests")
    ap.add_argument("--bht", action="store_true", help="60 BHT towers at σ = φ = 0.2 instead of the demo towers")
    ap.add_argument("--towers", type=int, default=60, help="--bht: towers")
    ap.add_argument("--samples", type=int, default=48, help="--bht: samples per tower")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--reps", type=int, default=None, help="rollouts per stimulus per round")
    ap.add_argument("--scaling-samples", type=int, default=None, help="samples per stimulus for the 1 vs 2 workers run")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "rollouts.json")
    args = ap.parse_args(argv)
    if args.bht:
        if args.quick:
            args.towers, args.samples = min(args.towers, 3), min(args.samples, 2)
        return bht_main(args)
    rounds = args.rounds or (1 if args.quick else 7)
    reps = args.reps or (1 if args.quick else 10)
    scaling = args.scaling_samples or (4 if args.quick else 100)

    stimuli = ipe.load_demo()
    n = len(stimuli)
    time_ipe(stimuli, 1, early_stop=True)  # warm-up: imports, caches
    time_plain(stimuli, 1)
    t_plain, t_full, t_early = [], [], []
    judg_ok = True
    for _ in range(rounds):
        tp, counts = time_plain(stimuli, reps)
        tf, df_full = time_ipe(stimuli, reps, early_stop=False)
        te, df_early = time_ipe(stimuli, reps, early_stop=True)
        t_plain.append(tp)
        t_full.append(tf)
        t_early.append(te)
        judg_ok &= per_stimulus(df_full) == counts and per_stimulus(df_early) == counts
        judg_ok &= bool((df_early["value"].to_numpy() == df_full["value"].to_numpy()).all())
    rollouts = n * reps
    med = statistics.median
    plain_rps = rollouts / med(t_plain)
    full_rps = rollouts / med(t_full)
    early_rps = rollouts / med(t_early)
    steps_early = df_early.groupby("stimulus_id", sort=False)["steps"].first().tolist()

    # Scaling: the same early-stopping run on 1 and on 2 worker processes (pool start-up included).
    noisy = NoiseParams(sigma=0.2, phi=0.05)
    s1, df1 = time_ipe(stimuli, scaling, early_stop=True, workers=1, params=noisy)
    s2, df2 = time_ipe(stimuli, scaling, early_stop=True, workers=2, params=noisy)
    same_12 = df1.equals(df2)
    z1, dz1 = time_ipe(stimuli, scaling, early_stop=True, workers=1)
    z2, dz2 = time_ipe(stimuli, scaling, early_stop=True, workers=2)
    same_z = dz1.equals(dz2)

    res = {
        "machine": {"python": platform.python_version(), "pymunk": pymunk.version, "cpus": os.cpu_count(),
                    "platform": platform.platform()},
        "stimuli": n, "rounds": rounds, "rollouts_per_round": rollouts,
        "plain_rollouts_per_s": round(plain_rps, 1),
        "ipe_full_horizon_rollouts_per_s": round(full_rps, 1),
        "ipe_early_stop_rollouts_per_s": round(early_rps, 1),
        "ratio_full_horizon_vs_plain": round(full_rps / plain_rps, 3),
        "ratio_early_stop_vs_plain": round(early_rps / plain_rps, 3),
        "judgments_identical_to_plain": bool(judg_ok),
        "steps_early_stop_per_stimulus": steps_early,
        "steps_full_horizon": int(df_full["steps"].iloc[0]),
        "scaling_noisy": {"params": noisy.as_dict(), "rollouts": n * scaling,
                          "workers1_s": round(s1, 3), "workers2_s": round(s2, 3),
                          "speedup": round(s1 / s2, 3), "identical": bool(same_12)},
        "scaling_no_noise": {"rollouts": n * scaling, "workers1_s": round(z1, 3), "workers2_s": round(z2, 3),
                             "speedup": round(z1 / z2, 3), "identical": bool(same_z)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"demo towers: {n} stimuli, {rounds} rounds of {rollouts} rollouts (median round)")
    print("| variant | rollouts/s (1 core) | × plain loop |")
    print("|---|---:|---:|")
    print(f"| plain pymunk loop, full horizon | {plain_rps:.0f} | 1.00 |")
    print(f"| ipe, full horizon (same physics settings) | {full_rps:.0f} | {full_rps / plain_rps:.2f} |")
    print(f"| ipe, early stop (default) | {early_rps:.0f} | {early_rps / plain_rps:.2f} |")
    print(f"judgments identical to the plain loop: {judg_ok}")
    print(f"early-stop steps per tower (of {res['steps_full_horizon']}): {steps_early}")
    print("| run | 1 worker (s) | 2 workers (s) | speed-up | identical |")
    print("|---|---:|---:|---:|---|")
    for name, key in (("noisy σ=0.2 φ=0.05", "scaling_noisy"), ("no noise", "scaling_no_noise")):
        r = res[key]
        print(f"| {name}, {r['rollouts']} rollouts | {r['workers1_s']:.2f} | {r['workers2_s']:.2f} | "
              f"{r['speedup']:.2f} | {r['identical']} |")
    print(f"results: {args.out}")
    return 0 if judg_ok and same_12 and same_z else 1


if __name__ == "__main__":
    sys.exit(main())
