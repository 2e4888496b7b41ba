"""A Physion-style probe study: does a model's frozen representation carry "will it fall"?

For each of ipe's three models — the slot predictor (``slots``), the SimVP-style
frame predictor (``video``) and the PhysNet-style CNN (``cnn``, trained on the
answer itself: an upper reference) — an L2 logistic readout
(:func:`ipe.video.probe.probe_study`) is fitted on the frozen features of
``--probe-train`` balanced towers (``--probe-train-seed``) and scored on
``--probe-test`` held-out balanced towers (``--probe-test-seed``) against the
no-noise outcome. The models are trained here with the settings below (their
training towers use ``--train-seed``, apart from both probe sets), or loaded
with ``--slots/--video/--cnn WEIGHTS``. Writes ``probe.csv`` (one row per
model) and prints it.

    python experiments/video_probe.py --out runs/probe
    python experiments/video_probe.py --slots slots.pt --kinds slots --out runs/probe   # one model only
    python experiments/video_probe.py --tiny --out /tmp/probe     # a smoke test (seconds)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/probe"), help="Output folder (probe.csv).")
    ap.add_argument("--probe-train", type=int, default=200)
    ap.add_argument("--probe-test", type=int, default=200)
    ap.add_argument("--probe-train-seed", type=int, default=3003)
    ap.add_argument("--probe-test-seed", type=int, default=2002)
    ap.add_argument("--train-seed", type=int, default=1001, help="Seed of the models' training towers.")
    ap.add_argument("--seed", type=int, default=0, help="Seed of the models' initialisation and shuffling.")
    ap.add_argument("--slots", type=Path, help="Weights of a trained slot model (else trained here).")
    ap.add_argument("--video", type=Path, help="Weights of a trained SimVP model (else trained here).")
    ap.add_argument("--cnn", type=Path, help="Weights of a trained CNN (else trained here).")
    ap.add_argument("--slots-train", type=int, default=120)
    ap.add_argument("--slots-epochs", type=int, default=8)
    ap.add_argument("--slots-samples", type=int, default=3, help="Noisy rollouts per training tower (slots).")
    ap.add_argument("--slots-hidden", type=int, default=64)
    ap.add_argument("--video-train", type=int, default=100)
    ap.add_argument("--video-epochs", type=int, default=3)
    ap.add_argument("--cnn-train", type=int, default=1000)
    ap.add_argument("--cnn-epochs", type=int, default=6)
    ap.add_argument("--kinds", default="slots,video,cnn",
                    help="Which models to probe, comma-separated (default all three).")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tiny", action="store_true", help="Tiny models and probe sets (a smoke test).")
    args = ap.parse_args(argv)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    bad = sorted(set(kinds) - {"slots", "video", "cnn"})
    if bad or not kinds:
        ap.error(f"--kinds {args.kinds}: expected some of slots, video, cnn")
    if args.tiny:
        args.probe_train, args.probe_test = 8, 8
        args.slots_train, args.slots_epochs, args.video_train, args.video_epochs = 2, 1, 2, 1
        args.slots_samples, args.slots_hidden = 1, 16
        args.cnn_train, args.cnn_epochs = 4, 1

    import pandas as pd
    import torch

    from ipe.fileio import write_csv
    from ipe.stimuli.towers import generate_towers
    from ipe.video.models import CNNConfig, VideoConfig, disjoint_check, load_model, train_cnn, train_video_model
    from ipe.video.probe import probe_study
    from ipe.video.slots import SlotConfig, model_config, train_slot_model

    torch.set_num_threads(args.threads)
    ptrain = generate_towers(args.probe_train, seed=args.probe_train_seed, balanced=True)
    ptest = generate_towers(args.probe_test, seed=args.probe_test_seed, balanced=True)
    disjoint_check(ptrain, ptest)
    rows = []

    def run(kind, weights, train):
        t0 = time.perf_counter()
        if weights is not None:
            k, model, data = load_model(weights)
            if k != kind:
                raise SystemExit(f"--{kind} {weights}: a {k} model")
            config, how = data["config"], f"loaded {weights}"
        else:
            model, config, how = train()
        t1 = time.perf_counter()
        res = probe_study(kind, model, ptrain, ptest, config)
        rows.append({**res, "model": how, "train_seconds": round(t1 - t0, 1),
                     "probe_seconds": round(time.perf_counter() - t1, 1)})
        print(f"{kind}: test accuracy {res['test_accuracy']:.3f}, AUC {res['test_auc']:.3f} "
              f"(majority {res['majority_baseline']:.3f})", file=sys.stderr, flush=True)

    def slots():
        cfg = SlotConfig(n_train=args.slots_train, epochs=args.slots_epochs, samples=args.slots_samples,
                         hidden=args.slots_hidden, seed=args.seed, train_seed=args.train_seed)
        m, _ = train_slot_model(cfg, threads=args.threads, progress=False)
        return m, model_config(m, cfg), f"slots: {cfg.n_train} towers x {cfg.samples} rollouts, {cfg.epochs} epochs"

    def video():
        cfg = VideoConfig(n_train=args.video_train, epochs=args.video_epochs, seed=args.seed,
                          train_seed=args.train_seed)
        m, _ = train_video_model(cfg, threads=args.threads, progress=False)
        config = {k: getattr(cfg, k) for k in ("size", "cond_frames", "n_future", "hidden", "translator",
                                                 "n_blocks", "cond_fps", "future_fps")}
        return m, config, f"video (SimVP): {cfg.n_train} towers, {cfg.epochs} epochs"

    def cnn():
        cfg = CNNConfig(n_train=args.cnn_train, n_test=0, epochs=args.cnn_epochs, seed=args.seed,
                        train_seed=args.train_seed)
        m, _ = train_cnn(cfg, threads=args.threads, progress=False)
        return m, None, f"cnn: {cfg.n_train} towers, {cfg.epochs} epochs"

    for kind, weights, train in (("slots", args.slots, slots), ("video", args.video, video), ("cnn", args.cnn, cnn)):
        if kind in kinds:
            run(kind, weights, train)
    table = pd.DataFrame(rows)[["kind", "model", "n_features", "n_train", "n_test", "train_accuracy", "test_accuracy",
                                "test_auc", "majority_baseline", "train_seconds", "probe_seconds"]]
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "probe.csv", table)
    print(table.round(3).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
