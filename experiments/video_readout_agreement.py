"""Does the video readout recover the simulator's own judgments from its ground-truth MP4s?

Generates towers, renders the no-noise rollout of each as an MP4 (flat
colours, fixed camera) at each size, reads every video back with
:func:`ipe.video.readout.readout`, and compares with the no-noise model's
judgments (:meth:`ipe.IPE.ground_truth`):

* ``fell``: whether any block fell (the BHT yes/no judgment), agreement per stimulus;
* ``count``: the number of blocks that fell, exact agreement and within ±1.

    python experiments/video_readout_agreement.py --n 200 --sizes 64 256 --out runs/readout

Writes ``agreement.csv`` (one row per size) and ``per_stimulus.csv`` to ``--out``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd


def run(n: int = 200, sizes=(64, 256), seed: int = 2026, fps: float = 30.0, out: str | Path = "runs/readout",
        progress: bool | None = None, reuse: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    import ipe
    from ipe.fileio import write_csv
    from ipe.stimuli.towers import generate_towers
    from ipe.video.readout import readout
    from ipe.video.frames import render_videos

    out = Path(out)
    stimuli = generate_towers(n, seed=seed)
    queries = ["fall", "count_fallen"]
    truth = ipe.IPE.ground_truth(progress=False).predict(stimuli, queries=queries)
    truth = truth.pivot(index="stimulus_id", columns="query", values="mean")
    summary_rows, per = [], []
    for size in sizes:
        d = out / f"px{size}"
        t0 = time.perf_counter()
        if not (reuse and (d / "colours.json").exists() and (d / "gt").is_dir()):
            render_videos(stimuli, d, size=size, fps=fps, cond_frames=4, progress=progress)
        t1 = time.perf_counter()
        summ, videos = readout(d / "gt", stimuli, colours=d / "colours.json", queries=queries, progress=progress)
        t2 = time.perf_counter()
        got = summ.pivot(index="stimulus_id", columns="query", values="mean").reindex(truth.index)
        qual = summ.groupby("stimulus_id")["quality"].first().reindex(truth.index)
        fell_sim = truth["count_fallen"] > 0
        fell_vid = got["count_fallen"] > 0
        diff = got["count_fallen"] - truth["count_fallen"]
        summary_rows.append({
            "size": size, "n_stimuli": len(truth), "n_falling": int(fell_sim.sum()),
            "fell_agreement": float((fell_sim == fell_vid).mean()),
            "count_exact": float((diff == 0).mean()), "count_within_1": float((diff.abs() <= 1).mean()),
            "count_mean_abs_error": float(diff.abs().mean()), "min_quality": float(qual.min()),
            "mean_quality": float(qual.mean()), "n_unreadable": int((videos["status"] != "ok").sum()),
            "render_s": t1 - t0, "readout_s": t2 - t1})
        per.append(pd.DataFrame({"size": size, "stimulus_id": truth.index, "count_sim": truth["count_fallen"].values,
                                 "count_video": got["count_fallen"].values, "quality": qual.values}))
    table = pd.DataFrame(summary_rows)
    per_stim = pd.concat(per, ignore_index=True)
    write_csv(out / "agreement.csv", table)
    write_csv(out / "per_stimulus.csv", per_stim)
    return table, per_stim


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--out", default="runs/readout")
    ap.add_argument("--reuse", action="store_true", help="read renders already in --out instead of rendering again")
    ap.add_argument("--tiny", action="store_true", help="a seconds-long smoke run: 4 towers at 64 px")
    args = ap.parse_args()
    if args.tiny:
        args.n, args.sizes = 4, [64]
    table, _ = run(args.n, args.sizes, args.seed, args.fps, args.out, reuse=args.reuse)
    with pd.option_context("display.width", 200):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    ok = bool(np.all(table["fell_agreement"] >= 0.99))
    print(f"\nfell agreement >= 99% at every size: {ok}")
    if args.tiny and not ok:
        raise SystemExit("the readout disagrees with the simulator on the tiny set")


if __name__ == "__main__":
    main()
