"""``ipe video``: read judgments out of videos, train and run the torch baselines, import judgments."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import InputError
from ..validation import POSITIVE_NUMBER, check
from .app import group
from .common import ProgressOption, check_not_input, check_out, note, output_dir

video_app = group("video", "Video models: readout of any video, torch baselines, judgments made elsewhere.")


def _write_readout(summary, per_video, out: Path, videos_out: Optional[Path]) -> None:
    from ..fileio import write_csv

    vpath = videos_out or out.with_name(out.stem + "_videos.csv")
    bad = per_video.drop_duplicates("video")
    counts = bad["status"].value_counts().to_dict()
    flagged = {k: v for k, v in counts.items() if k != "ok"}
    for _, row in bad[bad["status"].isin(["unreadable", "unknown_stimulus"])].head(5).iterrows():
        why = " ".join(str(row["note"]).split("=== stderr ===")[0].split())  # not ffmpeg's banner
        note(f"flagged: {row['video']}: {row['status']}: {why[:160] + ('…' if len(why) > 160 else '')}")
    extra = ", ".join(f"{v} {k}" for k, v in sorted(flagged.items()))
    if summary.empty:
        write_csv(vpath, per_video)
        raise InputError(f"no usable video among {len(bad)} ({extra or 'none found'}); nothing written to {out}, "
                         f"the per-video table {vpath} says why")
    write_csv(out, summary)
    write_csv(vpath, per_video)
    note(f"read {len(bad)} videos of {summary['stimulus_id'].nunique()} stimuli"
         f"{' (' + extra + ')' if extra else ''}; wrote {out} and {vpath}")


@video_app.command("readout")
def readout_cmd(
    videos: Annotated[Path, typer.Argument(help="Folder of videos (or one video); file names carry stimulus ids.")],
    stimuli: Annotated[Path, typer.Option("--stimuli", "-s", help="Stimulus-set JSON file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Judgments CSV (the columns of `ipe predict`).")],
    colours: Annotated[Optional[Path], typer.Option(
        "--colours", help="colours.json (default: in the folder or its parents; else recomputed).")] = None,
    query: Annotated[Optional[list[str]], typer.Option(
        "--query", "-q", help="Query to answer (repeatable); default: each stimulus's own.")] = None,
    tolerance: Annotated[float, typer.Option("--tolerance", min=1.0, help="Colour tolerance (RGB distance).")] = 90.0,
    min_quality: Annotated[float, typer.Option(
        "--min-quality", min=0.0, max=1.0, help="Leave videos of lower quality out of the judgments.")] = 0.0,
    fps: Annotated[Optional[float], typer.Option("--fps", help="Frame rate (default: from colours.json).")] = None,
    videos_out: Annotated[Optional[Path], typer.Option(
        "--videos-out", help="Per-video table (default: <out>_videos.csv).")] = None,
    progress: ProgressOption = None,
) -> None:
    """Judge every video by colour segmentation and tracking; write per-stimulus judgments."""
    from ..scenefile import load_stimuli
    from ..video.readout import readout

    check_out(out)
    if videos_out is None:  # the default per-video table may not land on an input either
        check_not_input(out.with_name(out.stem + "_videos.csv"), "--videos-out (default)",
                        [("VIDEOS", videos), ("--stimuli", stimuli)] + ([("--colours", colours)] if colours else []))
    if fps is not None:
        check("--fps", fps, POSITIVE_NUMBER)
    stim = load_stimuli(stimuli)
    summary, per_video = readout(videos, stim, colours=colours, queries=query or None, tolerance=tolerance,
                                 min_quality=min_quality, fps=fps, progress=progress)
    _write_readout(summary, per_video, out, videos_out)


@video_app.command("train")
def train_cmd(
    kind: Annotated[str, typer.Argument(help="cnn (first frame → falls, count), video (SimVP-style predictor) or "
                                             "slots (object-centric stochastic predictor).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Weights file (.pt); a .json log is written beside it.")],
    n_train: Annotated[Optional[int], typer.Option("--n-train", min=1, help="Training towers.")] = None,
    n_test: Annotated[Optional[int], typer.Option("--n-test", min=0, help="Held-out test towers (cnn).")] = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", min=1, help="Training epochs.")] = None,
    size: Annotated[int, typer.Option("--size", min=16, help="Image size (pixels, a multiple of 16).")] = 64,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of initialisation and shuffling.")] = 0,
    train_seed: Annotated[int, typer.Option("--train-seed", min=0, help="Seed of the training towers.")] = 1001,
    test_seed: Annotated[int, typer.Option("--test-seed", min=0, help="Seed of the test towers.")] = 2002,
    threads: Annotated[int, typer.Option("--threads", min=1, help="Torch CPU threads.")] = 2,
    samples: Annotated[Optional[int], typer.Option(
        "--samples", min=1, help="Noisy rollouts per training tower (slots).")] = None,
    hidden: Annotated[Optional[int], typer.Option("--hidden", min=4, help="Hidden units per layer (slots).")] = None,
    early_stop: Annotated[bool, typer.Option(
        "--early-stop/--no-early-stop", help="Stop a training rollout once the scene is at rest (its last state "
                                             "is kept); --no-early-stop runs pymunk to the horizon.")] = True,
    progress: ProgressOption = None,
) -> None:
    """Train a baseline on generated towers (kept apart from the test towers) and save its weights."""
    from dataclasses import replace

    from ..video.models import CNNConfig, VideoConfig, save_model, train_cnn, train_video_model

    check_out(out)
    if out.suffix.lower() == ".json":
        raise InputError(f"--out {out}: the weights need a name of their own (e.g. .pt); the .json log is "
                         "written beside them")
    if size % 16:
        raise InputError(f"--size {size}: must be a multiple of 16")
    if train_seed == test_seed:
        raise InputError("--train-seed and --test-seed must differ (training towers are kept apart from test towers)")
    for opt, v in (("--samples", samples), ("--hidden", hidden)):
        if v is not None and kind != "slots":
            raise InputError(f"{opt} applies to slots")
    if kind == "cnn":
        for opt, v in (("--n-train", n_train), ("--n-test", n_test)):
            if v is not None and v % 2:
                raise InputError(f"{opt} {v}: must be even (the towers are half stable, half falling)")
        cfg = CNNConfig(seed=seed, train_seed=train_seed, test_seed=test_seed, size=size)
        cfg = replace(cfg, **{k: v for k, v in (("n_train", n_train), ("n_test", n_test), ("epochs", epochs))
                              if v is not None})
        model, log = train_cnn(cfg, threads=threads, progress=progress)
        config = {"size": cfg.size, "width": cfg.width, "max_count": model.max_count}
        save_model(model, out, "cnn", config, log)
        if "test_accuracy" in log:
            print(f"held-out accuracy (falls/stands) {log['test_accuracy']:.3f} on {log['n_test']} towers "
                  f"(majority class {log['test_majority_baseline']:.3f}); count exact {log['test_count_accuracy']:.3f}")
    elif kind == "video":
        if n_test is not None:
            raise InputError("--n-test applies to cnn; the video model is scored by `ipe video generate --readout`")
        cfg = VideoConfig(seed=seed, train_seed=train_seed, size=size, early_stop=early_stop)
        cfg = replace(cfg, **{k: v for k, v in (("n_train", n_train), ("epochs", epochs)) if v is not None})
        model, log = train_video_model(cfg, threads=threads, progress=progress)
        config = {"size": cfg.size, "cond_frames": cfg.cond_frames, "n_future": cfg.n_future, "hidden": cfg.hidden,
                  "translator": cfg.translator, "n_blocks": cfg.n_blocks, "cond_fps": cfg.cond_fps,
                  "future_fps": cfg.future_fps}
        save_model(model, out, "video", config, log)
    elif kind == "slots":
        from ..video.slots import SlotConfig, model_config, train_slot_model

        if n_test is not None:
            raise InputError("--n-test applies to cnn; the slot model is scored by `ipe video generate` and its readout")
        cfg = SlotConfig(seed=seed, train_seed=train_seed, early_stop=early_stop)
        given = (("n_train", n_train), ("epochs", epochs), ("samples", samples), ("hidden", hidden))
        cfg = replace(cfg, **{k: v for k, v in given if v is not None})
        model, log = train_slot_model(cfg, threads=threads, progress=progress)
        save_model(model, out, "slots", model_config(model, cfg), log)
    else:
        raise InputError(f"unknown baseline {kind!r}; expected cnn, video or slots")
    note(f"{log['n_parameters']} parameters, {log['train_seconds']:.0f} s; final training loss "
         f"{log['train_loss'][-1]:.4f}; wrote {out} and {out.with_suffix('.json')}")


@video_app.command("generate")
def generate_cmd(
    weights: Annotated[Path, typer.Argument(help="Weights saved by `ipe video train`.")],
    stimuli: Annotated[Path, typer.Option("--stimuli", "-s", help="Stimulus-set JSON file.")],
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Output folder (not with --prompts, whose manifest says where each video goes).")] = None,
    renders: Annotated[Optional[Path], typer.Option(
        "--renders", help="Folder of `ipe render --video`: use its cond/ clips (video) or first/ PNGs (cnn).")] = None,
    readout_flag: Annotated[bool, typer.Option(
        "--readout/--no-readout", help="Also read the generated videos out into <out>/judgments.csv.")] = True,
    samples: Annotated[Optional[int], typer.Option(
        "--samples", min=1, help="Continuations per stimulus (slots; default 8).")] = None,
    seed: Annotated[Optional[int], typer.Option(
        "--seed", min=0, help="Seed of the continuations' draws (slots; default 0).")] = None,
    size: Annotated[Optional[int], typer.Option(
        "--size", min=16, help="Frame size of the videos (slots; even; default 64).")] = None,
    prompts: Annotated[Optional[Path], typer.Option(
        "--prompts", help="A prompts.csv of `ipe video prompts`: write each continuation at its row's path (slots).")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="With --prompts: replace continuations already "
                                                                "there.")] = False,
    early_stop: Annotated[bool, typer.Option(
        "--early-stop/--no-early-stop", help="Stop the rollout behind a drawn conditioning clip once the scene is "
                                             "at rest; --no-early-stop runs pymunk to the horizon (the slot model "
                                             "and the CNN never simulate).")] = True,
    threads: Annotated[int, typer.Option("--threads", min=1, help="Torch CPU threads.")] = 2,
    progress: ProgressOption = None,
) -> None:
    """Run a trained model: the video and slot models write MP4s (and their readout); the CNN writes judgments."""
    import numpy as np
    import torch

    from ..fileio import write_csv
    from ..scenefile import load_stimuli
    from ..video.models import cnn_judgments, generate_videos, load_model

    if prompts is not None:
        if samples is not None or size is not None:
            raise InputError("--samples and --size come from the prompts manifest with --prompts; leave them out")
        _generate_for_prompts(weights, stimuli, prompts, out, seed or 0, overwrite, threads, progress)
        return
    if overwrite:
        raise InputError("--overwrite applies to --prompts")
    if out is None:
        raise InputError("--out is required (or --prompts MANIFEST)")
    if size is not None and size % 2:
        raise InputError(f"--size {size}: must be even")
    with output_dir(out):
        torch.set_num_threads(threads)
        kind, model, data = load_model(weights)
        stim = load_stimuli(stimuli)
        if kind != "slots":
            given = [o for o, v in (("--samples", samples), ("--seed", seed), ("--size", size)) if v is not None]
            if given:
                raise InputError(f"{', '.join(given)}: for the slot model; {weights} is a {kind} model")
        if kind == "slots":
            from ..video.slots import generate_slot_videos

            if renders is not None:
                raise InputError("--renders: the slot model starts from the stimuli themselves; leave --renders out")
            samples, seed, size = samples or 8, seed or 0, size or 64
            made = generate_slot_videos(model, data["config"], stim, out, samples=samples, size=size, seed=seed,
                                        progress=progress)
            write_csv(out / "generated.csv", made)
            note(f"generated {len(made)} continuations ({samples} per stimulus) in {out}")
            if readout_flag:
                from ..video.readout import readout

                summary, per_video = readout(out, stim, colours=out / "colours.json", progress=progress)
                _write_readout(summary, per_video, out / "judgments.csv", None)
            return
        if kind == "cnn":
            frames = None
            if renders is not None:
                from PIL import Image

                frames = []
                for s in stim:
                    p = renders / "first" / f"{s.id}.png"
                    if not p.is_file():
                        raise InputError(f"--renders {renders}: no first frame {p.name} for stimulus {s.id!r}")
                    try:
                        frames.append(np.asarray(Image.open(p).convert("RGB")))
                    except Exception:  # noqa: BLE001 - a broken PNG is bad input
                        raise InputError(f"{p}: not a readable image") from None
            table = cnn_judgments(model, stim, frames)
            path = write_csv(out / "judgments.csv", table)
            note(f"wrote CNN judgments of {len(table)} stimuli to {path}")
            return
        if not early_stop:
            data["config"] = {**data["config"], "early_stop": False}
        cond_dir = renders / "cond" if renders is not None else None
        if cond_dir is not None and not cond_dir.is_dir():
            raise InputError(f"--renders {renders}: no cond/ folder of conditioning clips")
        made = generate_videos(model, data["config"], stim, out, cond_dir=cond_dir, progress=progress)
        write_csv(out / "generated.csv", made)
        bad = made[made["status"] != "ok"]
        for _, row in bad.head(5).iterrows():
            note(f"flagged: {row['stimulus_id']}: {row['status']}: {row['note']}")
        note(f"generated {int((made['status'] == 'ok').sum())} videos in {out}")
        if readout_flag and (made["status"] == "ok").any():
            from ..video.readout import readout

            summary, per_video = readout(out, stim, colours=out / "colours.json", progress=progress)
            _write_readout(summary, per_video, out / "judgments.csv", None)


def _generate_for_prompts(weights: Path, stimuli: Path, prompts: Path, out: Optional[Path], seed: int,
                          overwrite: bool, threads: int, progress) -> None:
    import torch

    from ..scenefile import load_stimuli
    from ..video.models import load_model
    from ..video.prompts import read_manifest
    from ..video.slots import generate_for_manifest

    if out is not None:
        raise InputError("--out: with --prompts each continuation goes where the manifest says; leave --out out")
    torch.set_num_threads(threads)
    kind, model, data = load_model(weights)
    if kind != "slots":
        raise InputError(f"--prompts: {weights} is a {kind} model; only the slot model writes continuations for "
                         "a prompts manifest")
    read_manifest(prompts)
    made = generate_for_manifest(model, data["config"], prompts, load_stimuli(stimuli), seed=seed,
                                 overwrite=overwrite, progress=progress)
    root = prompts if prompts.is_dir() else prompts.parent
    note(f"wrote {len(made)} continuations of {made['stimulus_id'].nunique()} stimuli under {root}; next: "
         f"`ipe video import {prompts} --stimuli {stimuli} --out JUDGMENTS.csv`")


@video_app.command("physics-iq")
def physics_iq_cmd(
    videos: Annotated[Path, typer.Argument(help="Folder of generated videos (or one video); names carry stimulus ids.")],
    stimuli: Annotated[Path, typer.Option("--stimuli", "-s", help="Stimulus-set JSON file.")],
    reference: Annotated[Path, typer.Option(
        "--reference", help="Folder of the simulator's own renders, <id>.mp4 (the gt/ folder of "
                            "`ipe render --video`).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Scores CSV: one row per video.")],
    threshold: Annotated[float, typer.Option("--threshold", min=1.0, max=255.0,
                                             help="Motion threshold (largest channel change, 0-255).")] = 30.0,
    progress: ProgressOption = None,
) -> None:
    """Physics-IQ-style motion-mask scores (spatial IoU, spatiotemporal IoU, weighted spatial IoU, MSE)."""
    from ..fileio import write_csv
    from ..scenefile import load_stimuli
    from ..video.physics_iq import score_videos

    check_out(out)
    table = score_videos(videos, reference, load_stimuli(stimuli), threshold=threshold, progress=progress)
    ok = table[table["status"] == "ok"]
    if ok.empty:
        write_csv(out, table)
        raise InputError(f"no video could be scored ({', '.join(sorted(set(table['status'])))}); see {out}")
    write_csv(out, table)
    means = ", ".join(f"{c} {ok[c].mean():.3f}" for c in ("spatial_iou", "spatiotemporal_iou", "weighted_spatial_iou",
                                                          "mse"))
    note(f"scored {len(ok)} of {len(table)} videos: mean {means}; wrote {out}")


@video_app.command("prompts")
def prompts_cmd(
    stimuli: Annotated[Path, typer.Argument(help="Stimulus-set JSON file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (prompts.csv, one folder per size).")],
    size: Annotated[Optional[list[str]], typer.Option(
        "--size", help="Frame size WIDTHxHEIGHT (repeatable; default: 1280x720 1024x576 848x480 720x480 "
                       "512x512).")] = None,
    cond_frames: Annotated[int, typer.Option("--cond-frames", min=1, help="Frames of the conditioning clip "
                                                                          "(1: a first frame only).")] = 1,
    samples: Annotated[int, typer.Option("--samples", min=1, help="Continuations to ask for per stimulus.")] = 1,
    fps: Annotated[float, typer.Option("--fps", help="Frame rate of the clips and of the continuations.")] = 30.0,
    progress: ProgressOption = None,
) -> None:
    """Write conditioning inputs for image/video-to-video generators: first frames, a text prompt, a manifest."""
    from ..scenefile import load_stimuli
    from ..video.prompts import GENERATOR_SIZES, parse_size, write_prompts

    sizes = [parse_size(x) for x in (size or GENERATOR_SIZES)]
    check("--fps", fps, POSITIVE_NUMBER)
    stim = load_stimuli(stimuli)
    with output_dir(out):
        manifest = write_prompts(stim, out, sizes=sizes, cond_frames=cond_frames, samples=samples, fps=fps,
                                 progress=progress)
    note(f"wrote prompts for {manifest['stimulus_id'].nunique()} stimuli at {len(sizes)} sizes "
         f"({len(manifest)} continuations to generate) and {out / 'prompts.csv'}; put each continuation at its "
         "'continuation' path, then run `ipe video import " + str(out / "prompts.csv") + " --stimuli ...`")


@video_app.command("import")
def import_cmd(
    source: Annotated[Path, typer.Argument(help="A judgments CSV (stimulus_id, model, sample, judgment), a "
                                                "prompts.csv of `ipe video prompts` (or its folder) with the "
                                                "continuations in place, or a folder of generated videos.")],
    stimuli: Annotated[Path, typer.Option("--stimuli", "-s", help="Stimulus-set JSON file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Judgments CSV (the columns of `ipe predict`).")],
    model: Annotated[Optional[str], typer.Option("--model", help="Which model's rows, when the CSV has several.")] = None,
    colours: Annotated[Optional[Path], typer.Option("--colours", help="colours.json for a folder of videos.")] = None,
    progress: ProgressOption = None,
) -> None:
    """Import judgments made elsewhere into the table every comparison reads."""
    from ..fileio import write_csv
    from ..scenefile import load_stimuli

    check_out(out)
    stim = load_stimuli(stimuli)
    from ..video.prompts import import_continuations, is_manifest

    if is_manifest(source):
        summary, per_video = import_continuations(source, stim, progress=progress)
        _write_readout(summary, per_video, out, None)
        return
    if source.is_dir():
        from ..video.readout import readout

        summary, per_video = readout(source, stim, colours=colours, progress=progress)
        _write_readout(summary, per_video, out, None)
        return
    from ..video.external import import_judgments

    table = import_judgments(source, stim, model=model)
    write_csv(out, table)
    note(f"imported judgments of {len(table)} stimuli to {out}")
