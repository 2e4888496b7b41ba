"""Does the slot model simulate? Its judgments on held-out towers against the no-noise simulation and the IPE.

The slot predictor (``ipe.video.slots``) is trained here (or loaded with
``--slots WEIGHTS``), then rolls out ``--samples`` continuations of each of
``--n-test`` held-out balanced towers (``--test-seed``; the training towers use
``--train-seed`` and are checked to be disjoint). Each continuation is judged
from the slots' poses with the IPE's fall threshold
(:func:`ipe.video.slots.judge_continuations`: no pixels, no readout). The
judgments are compared with

* the **no-noise simulation** (one pymunk rollout per tower): agreement of
  each continuation's "falls" with the outcome (mean over continuations and
  towers), accuracy of the majority vote (P(falls) ≥ 0.5), AUC of P(falls),
  the mean number of blocks that fall (model and simulation), Pearson r of the
  expected count;
* the **IPE** at ``--ipe-sigma``, ``--ipe-phi`` (``--ipe-samples`` rollouts per
  tower): Pearson r of P(falls) and of the expected count across towers;

and how graded the judgments are: the share of towers with 0 < P(falls) < 1.
Writes ``towers.csv`` (one row per tower) and ``summary.csv`` to ``--out`` and
prints the summary.

    python experiments/video_slots_eval.py --out runs/slots_eval
    python experiments/video_slots_eval.py --slots slots.pt --out runs/slots_eval
    python experiments/video_slots_eval.py --tiny --out /tmp/slots_eval     # a smoke test (seconds)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _r(a, b) -> float:
    import numpy as np

    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _auc(score, label) -> float:
    import numpy as np

    from ipe.video.probe import _auc as auc

    label = np.asarray(label, bool)
    return auc(np.asarray(score, float), label) if 0 < label.sum() < len(label) else float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/slots_eval"), help="Output folder.")
    ap.add_argument("--slots", type=Path, help="Weights of a trained slot model (else trained here).")
    ap.add_argument("--n-test", type=int, default=40, help="Held-out towers (even: half fall).")
    ap.add_argument("--test-seed", type=int, default=2002)
    ap.add_argument("--samples", type=int, default=8, help="Continuations per tower.")
    ap.add_argument("--seed", type=int, default=0, help="Seed of training (init, shuffling) and of the draws.")
    ap.add_argument("--ipe-sigma", type=float, default=0.2)
    ap.add_argument("--ipe-phi", type=float, default=0.2)
    ap.add_argument("--ipe-samples", type=int, default=32)
    ap.add_argument("--ipe-seed", type=int, default=0)
    ap.add_argument("--n-train", type=int, default=None)
    ap.add_argument("--train-seed", type=int, default=1001)
    ap.add_argument("--train-samples", type=int, default=None, help="Rollouts per training tower.")
    ap.add_argument("--train-sigma", type=float, default=None)
    ap.add_argument("--train-phi", type=float, default=None)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--hidden", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=None, help="Message rounds.")
    ap.add_argument("--noise-pos", type=float, default=None)
    ap.add_argument("--noise-vel", type=float, default=None)
    ap.add_argument("--save", type=Path, help="Save the weights trained here.")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tiny", action="store_true", help="Tiny model and test set (a smoke test).")
    args = ap.parse_args(argv)
    if args.tiny:
        args.n_test, args.samples, args.ipe_samples = 2, 2, 2
        args.n_train, args.epochs, args.hidden, args.train_samples = 2, 1, 8, 1

    from dataclasses import replace

    import numpy as np
    import pandas as pd
    import torch

    import ipe
    from ipe.fileio import write_csv
    from ipe.stimuli.towers import generate_towers
    from ipe.video.models import disjoint_check, load_model, save_model
    from ipe.video.slots import SlotConfig, judge_continuations, model_config, train_slot_model

    torch.set_num_threads(args.threads)
    test = generate_towers(args.n_test, seed=args.test_seed, balanced=True)
    t0 = time.perf_counter()
    c0 = time.process_time()
    if args.slots is not None:
        kind, model, data = load_model(args.slots)
        if kind != "slots":
            raise SystemExit(f"--slots {args.slots}: a {kind} model")
        cfg, log, fps = None, data.get("log", {}), float(data["config"].get("fps", 30.0))
        train_seed = int(log.get("config", {}).get("train_seed", args.train_seed))
        n_train = int(log.get("config", {}).get("n_train", 0))
        how = f"loaded {args.slots}"
    else:
        given = {"n_train": args.n_train, "samples": args.train_samples, "sigma": args.train_sigma,
                 "phi": args.train_phi, "epochs": args.epochs, "hidden": args.hidden, "rounds": args.rounds,
                 "noise_pos": args.noise_pos, "noise_vel": args.noise_vel}
        cfg = replace(SlotConfig(seed=args.seed, train_seed=args.train_seed),
                      **{k: v for k, v in given.items() if v is not None})
        model, log = train_slot_model(cfg, threads=args.threads, progress=False)
        fps, train_seed, n_train = cfg.fps, cfg.train_seed, cfg.n_train
        how = "trained here"
        if args.save:
            save_model(model, args.save, "slots", model_config(model, cfg), log)
    train_wall, train_cpu = time.perf_counter() - t0, time.process_time() - c0
    if n_train:
        disjoint_check(generate_towers(n_train, seed=train_seed, balanced=True), test)

    t1, c1 = time.perf_counter(), time.process_time()
    judged = judge_continuations(model, test, samples=args.samples, seed=args.seed, fps=fps, progress=False)
    roll_wall, roll_cpu = time.perf_counter() - t1, time.process_time() - c1
    slot = judged.groupby("stimulus_id", sort=False).agg(p_falls=("falls", "mean"), count=("count_fallen", "mean"))

    truth = ipe.simulate(test, ipe.NoiseParams(), n_samples=1, queries="count_fallen", progress=False)
    truth = truth.groupby("stimulus_id", sort=False)["value"].first()
    noisy = ipe.simulate(test, ipe.NoiseParams(sigma=args.ipe_sigma, phi=args.ipe_phi), n_samples=args.ipe_samples,
                         seed=args.ipe_seed, queries="count_fallen", progress=False)
    ipe_p = noisy.assign(f=noisy["value"] > 0).groupby("stimulus_id", sort=False)["f"].mean()
    ipe_c = noisy.groupby("stimulus_id", sort=False)["value"].mean()

    ids = [s.id for s in test]
    towers = pd.DataFrame({"stimulus_id": ids, "no_noise_count": truth[ids].to_numpy(),
                           "slots_p_falls": slot.loc[ids, "p_falls"].to_numpy(),
                           "slots_count": slot.loc[ids, "count"].to_numpy(),
                           "ipe_p_falls": ipe_p[ids].to_numpy(), "ipe_count": ipe_c[ids].to_numpy()})
    falls = (towers["no_noise_count"] > 0).to_numpy()
    p = towers["slots_p_falls"].to_numpy()
    fallen_truth = towers.loc[falls, "no_noise_count"]
    summary = {
        "model": how, "n_test": len(ids), "samples": args.samples,
        "agreement": float(np.where(falls, p, 1 - p).mean()),
        "majority_accuracy": float(((p >= 0.5) == falls).mean()),
        "auc_no_noise": _auc(p, falls),
        "p_falls_stable": float(p[~falls].mean()), "p_falls_falling": float(p[falls].mean()),
        "count_mean": float(towers["slots_count"].mean()),
        "no_noise_count_mean": float(towers["no_noise_count"].mean()),
        "count_mean_falling": float(towers.loc[falls, "slots_count"].mean()),
        "no_noise_count_mean_falling": float(fallen_truth.mean()),
        "r_count_no_noise": _r(towers["slots_count"], towers["no_noise_count"]),
        "r_p_falls_ipe": _r(towers["slots_p_falls"], towers["ipe_p_falls"]),
        "r_count_ipe": _r(towers["slots_count"], towers["ipe_count"]),
        "ipe_agreement": float(np.where(falls, towers["ipe_p_falls"], 1 - towers["ipe_p_falls"]).mean()),
        "graded_share": float(((p > 0) & (p < 1)).mean()),
        "ipe_graded_share": float(((towers["ipe_p_falls"] > 0) & (towers["ipe_p_falls"] < 1)).mean()),
        "train_seconds": round(train_wall, 1), "train_cpu_seconds": round(train_cpu, 1),
        "rollout_seconds": round(roll_wall, 1), "rollout_cpu_seconds": round(roll_cpu, 1),
        "n_parameters": int(sum(q.numel() for q in model.parameters())),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "towers.csv", towers)
    write_csv(args.out / "summary.csv", pd.DataFrame([summary]))
    for k, v in summary.items():
        print(f"{k:28s} {v:.3f}" if isinstance(v, float) else f"{k:28s} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
