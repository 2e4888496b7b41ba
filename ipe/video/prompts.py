"""Conditioning inputs for image-to-video and video-to-video generators, and reading their continuations back.

:func:`write_prompts` writes, for every stimulus and every frame size::

    DIR/prompts.csv                                  the manifest: one row per (stimulus, size, sample)
    DIR/<W>x<H>/colours.json                         colours and the camera of that size (for the readout)
    DIR/<W>x<H>/first/<id>.png                       the first frame
    DIR/<W>x<H>/cond/<id>.mp4                        the first --cond-frames frames (video-to-video), if > 1
    DIR/<W>x<H>/continuations/<id>__s<k>.mp4         where continuation k is expected (not written)

A frame of another aspect than the stimulus's square camera shows a wider
(or taller) window of the same scene around the same centre, at the same
scale as the square frame that fits inside it (:func:`ipe.video.robust.fit_camera`):
the ground runs on, nothing is stretched, and the readout maps it back.

The manifest's columns are :data:`MANIFEST_COLUMNS`. ``prompt`` is a text
prompt that describes the scene and asks for a continuation without saying
what will happen. :func:`read_manifest` reads it back exactly (identifiers
as text, nothing stripped), and :func:`import_continuations` reads each
continuation with the robust readout, paired with its stimulus and sample
by the manifest rather than by its file name. A continuation that is not
there becomes a ``missing`` row of the per-video table.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..fileio import write_csv
from ..scene import Ball, Stimulus
from ..scenefile import as_stimulus_set
from ..validation import POSITIVE_INT, check
from .frames import (Camera, _tqdm, body_colours, colours_entry, draw_frame, frame_times, steps_per_frame,
                     video_trajectory, write_colours, write_mp4, write_png)
from .readout import (LOW_QUALITY, VIDEO_COLUMNS, VideoError, _queries_for, judge_frames, load_colours, read_video,
                      summarize_videos)
from .robust import fit_camera

PROMPTS_FORMAT = "ipe-video-prompts"
#: Frame sizes common image-to-video generators take (width × height).
GENERATOR_SIZES = ("1280x720", "1024x576", "848x480", "720x480", "512x512")
MANIFEST_COLUMNS = ["format", "stimulus_id", "sample", "size", "width", "height", "fps", "n_frames", "cond_frames",
                    "first_frame", "cond", "colours", "continuation", "prompt"]
_SIZE = re.compile(r"([1-9][0-9]{1,4})x([1-9][0-9]{1,4})")


def parse_size(text: str) -> tuple[int, int]:
    """``"1280x720"`` → ``(1280, 720)``; both even and at least 16."""
    m = _SIZE.fullmatch(str(text))
    if not m:
        raise InputError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 1280x720")
    w, h = int(m.group(1)), int(m.group(2))
    if w < 16 or h < 16 or w % 2 or h % 2:
        raise InputError(f"--size {text}: width and height must be even and at least 16")
    return w, h


def _describe_colours(n: int) -> str:
    return "a different flat colour" if n > 1 else "a flat colour"


def text_prompt(stim: Stimulus) -> str:
    """A text prompt for ``stim``: the scene and the request, not the outcome."""

    bodies = stim.scene.bodies
    n = len(bodies)
    balls = sum(isinstance(b, Ball) for b in bodies)
    kind = "balls" if balls == n else ("blocks" if balls == 0 else "blocks and balls")
    horizon = stim.scene.simulation.horizon
    return (f"A flat, side-on view of {n} rigid {kind}, each in {_describe_colours(n)}, resting where they are "
            f"shown on a grey ground against a plain white background. Orthographic view, fixed camera, no "
            f"motion blur. Continue this video for {horizon:g} seconds under normal Earth gravity, as it would "
            f"happen in the real world. Keep every object's shape, size and colour, keep the ground and the "
            f"camera still, and do not add or remove objects.")


def _frames_for(stim: Stimulus, camera, n: int, fps: float) -> np.ndarray:

    cols = body_colours(stim)
    if n <= 1:
        states = np.array([[b.position[0], b.position[1], b.angle] for b in stim.scene.bodies])
        return draw_frame(stim, states, np.ones(len(states), dtype=bool), camera, cols)[None]
    states, visible = video_trajectory(stim, fps)
    k = min(n, len(states))
    return np.stack([draw_frame(stim, states[f], visible[f], camera, cols) for f in range(k)])


def write_prompts(stimuli, out_dir: str | Path, sizes=GENERATOR_SIZES, cond_frames: int = 1, samples: int = 1,
                  fps: float = 30.0, progress: bool | None = None) -> pd.DataFrame:
    """Write first frames, conditioning clips, ``colours.json`` and the manifest (see the module); returns it."""

    stimuli = as_stimulus_set(stimuli)
    dims = [parse_size(s) if isinstance(s, str) else (int(s[0]), int(s[1])) for s in sizes]
    if not dims:
        raise InputError("give at least one --size")
    if len(set(dims)) != len(dims):
        raise InputError("--size: a size is given twice")
    check("--cond-frames", cond_frames, POSITIVE_INT)
    check("--samples", samples, POSITIVE_INT)
    for s in stimuli:
        steps_per_frame(s, fps)
    out = Path(out_dir)
    rows = []
    for w, h in dims:
        size = f"{w}x{h}"
        entries = {}
        for s in _tqdm(list(stimuli), progress, f"prompts {size}"):
            base = Camera.for_stimulus(s, min(w, h))
            cam = fit_camera(base, w, h)
            frames = _frames_for(s, cam, cond_frames, fps)
            n_frames = len(frame_times(s, fps))
            entries[s.id] = colours_entry(s, cam, n_frames)
            first = write_png(out / size / "first" / f"{s.id}.png", frames[0])
            cond = ""
            if cond_frames > 1:
                cond = str(write_mp4(out / size / "cond" / f"{s.id}.mp4", frames, fps).relative_to(out))
            prompt = text_prompt(s)
            for k in range(samples):
                rows.append({"format": PROMPTS_FORMAT, "stimulus_id": s.id, "sample": k, "size": size, "width": w,
                             "height": h, "fps": float(fps), "n_frames": n_frames, "cond_frames": int(cond_frames),
                             "first_frame": str(first.relative_to(out)), "cond": cond,
                             "colours": f"{size}/colours.json",
                             "continuation": f"{size}/continuations/{s.id}__s{k:03d}.mp4", "prompt": prompt})
        write_colours(out / size / "colours.json", entries, fps, min(w, h), cond_frames)
    manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    write_csv(out / "prompts.csv", manifest)
    return manifest


def is_manifest(path: str | Path) -> bool:
    """Whether ``path`` is a prompts manifest, or a folder holding one."""
    p = Path(path)
    if p.is_dir():
        return (p / "prompts.csv").is_file()
    if not p.is_file():
        return False
    try:
        with open(p, encoding="utf-8") as fh:
            head = fh.readline()
    except (OSError, UnicodeDecodeError):
        return False
    return head.strip().split(",")[:2] == ["format", "stimulus_id"]


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read a prompts manifest back exactly as :func:`write_prompts` wrote it (a folder means its ``prompts.csv``)."""
    p = Path(path)
    if p.is_dir():
        p = p / "prompts.csv"
    if not p.is_file():
        raise InputError(f"{p}: no such file (expected a prompts manifest written by `ipe video prompts`)")
    try:  # every field as text, nothing read as missing: identifiers come back exactly
        df = pd.read_csv(p, dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise InputError(f"{p}: not a readable CSV ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})"
                         ) from None
    if not isinstance(df.index, pd.RangeIndex):
        raise InputError(f"{p}: some rows have more fields than the header")
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"{p}: not an ipe prompts manifest (missing column(s) {', '.join(missing)})")
    if len(df) and not (df["format"] == PROMPTS_FORMAT).all():
        raise InputError(f"{p}: not an ipe prompts manifest (format must be {PROMPTS_FORMAT!r})")
    for c in ("sample", "width", "height", "n_frames", "cond_frames"):
        v = pd.to_numeric(df[c], errors="coerce")
        bad = v.isna() | (v < 0) | (v != np.floor(v))
        if bad.any():
            i = int(np.nonzero(bad.to_numpy())[0][0])
            raise InputError(f"{p}: row {i + 2}: {c} must be a whole number >= 0, got {df[c].iloc[i]!r}")
        df[c] = v.astype(int)
    df["fps"] = pd.to_numeric(df["fps"], errors="coerce")
    if df["fps"].isna().any() or (df["fps"] <= 0).any():
        raise InputError(f"{p}: fps must be a number > 0")
    dup = df.duplicated(["stimulus_id", "size", "sample"])
    if dup.any():
        i = int(np.nonzero(dup.to_numpy())[0][0])
        raise InputError(f"{p}: row {i + 2}: stimulus {df['stimulus_id'].iloc[i]!r} size {df['size'].iloc[i]} "
                         f"sample {df['sample'].iloc[i]} appears twice")
    for col in ("first_frame", "cond", "colours", "continuation"):
        for i, v in enumerate(df[col]):
            if v and (Path(v).is_absolute() or ".." in Path(v).parts):
                raise InputError(f"{p}: row {i + 2}: {col} {v!r} must be a path inside the manifest's folder")
    return df[MANIFEST_COLUMNS].reset_index(drop=True)


def import_continuations(manifest: str | Path, stimuli, queries=None, progress: bool | None = None
                         ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read every continuation the manifest lists; returns ``(summary, per_video)`` as :func:`readout` does.

    Each row's video is ``<manifest folder>/<continuation>`` and is judged
    against its own stimulus, with its size's ``colours.json`` and sample
    index; rows whose stimulus is not in ``stimuli`` are an error, rows whose
    video is not there are ``missing``.
    """

    mpath = Path(manifest)
    root = mpath if mpath.is_dir() else mpath.parent
    df = read_manifest(mpath)
    stimuli = as_stimulus_set(stimuli)
    by_id = {s.id: s for s in stimuli}
    unknown = sorted(set(df["stimulus_id"]) - set(by_id))
    if unknown:
        raise InputError(f"{mpath}: stimulus {unknown[0]!r} is not in the stimulus set ({len(unknown)} unknown)")
    colour_files: dict[str, dict] = {}
    rows = []
    for r in _tqdm(list(df.itertuples(index=False)), progress, "reading continuations"):
        stim = by_id[r.stimulus_id]
        path = root / r.continuation
        base = {"video": str(path), "stimulus_id": r.stimulus_id, "sample": int(r.sample), "method": "",
                "quality": math.nan, "n_frames": 0}
        qs = _queries_for(stim, queries)
        if not path.is_file():
            rows.append({**base, "status": "missing", "query": "", "value": math.nan,
                         "note": "no continuation at the path the manifest gives"})
            continue
        if r.colours not in colour_files:
            colour_files[r.colours] = load_colours(root / r.colours)
        entry = colour_files[r.colours]["stimuli"].get(r.stimulus_id)
        if entry is None:
            raise InputError(f"{root / r.colours}: no entry for stimulus {r.stimulus_id!r}")
        cam = Camera.from_dict(entry["camera"])
        cols = {bid: c for c, bid in entry["colours"].items()}
        try:
            frames = read_video(path)
        except VideoError as exc:
            rows.append({**base, "status": "unreadable", "query": "", "value": math.nan, "note": str(exc)})
            continue
        if len(frames) < 2:
            rows.append({**base, "status": "unreadable", "query": "", "value": math.nan, "n_frames": len(frames),
                         "note": "fewer than two frames"})
            continue
        j = judge_frames(frames, stim, cam, qs, cols, fps=float(r.fps))

        status = "unreadable" if j.unreadable else ("ok" if j.quality >= LOW_QUALITY else "low_quality")
        for q, v in zip(qs, j.values):
            rows.append({**base, "status": status, "method": j.method, "quality": j.quality, "n_frames": j.n_frames,
                         "query": q.key, "value": v, "note": "; ".join(j.notes or [])})
    per_video = pd.DataFrame(rows, columns=VIDEO_COLUMNS)
    return summarize_videos(per_video, stimuli), per_video
