"""Physics-IQ-style scores: a generated continuation's motion against the simulator's own rendered continuation.

Physics-IQ (Motamed et al., 2025) scores a video model by where and when
things move, not by what the pixels look like. Per frame, a **motion mask**
marks the pixels that differ from the previous frame by more than
``threshold`` (largest channel difference, 0–255). For a generated video
``G`` and the reference ``R`` (here: the no-noise rollout rendered by
:func:`ipe.video.frames.render_videos`, the ``gt/`` videos):

``spatial_iou``
    IoU of the *where* masks: pixels that moved in any frame;
``spatiotemporal_iou``
    IoU of the masks frame by frame, averaged over the frames where either moved;
``weighted_spatial_iou``
    Σ min(m_G, m_R) / Σ max(m_G, m_R) over pixels, with m the number of frames a pixel moved:
    *how much* it moved, not only whether;
``mse``
    mean squared pixel difference between the two videos (0–255 scale), frame by frame then averaged.

Videos of different lengths are compared on their common number of frames;
a generated video of another size is resized to the reference's first
(nearest neighbour), so a mask is compared pixel for pixel. The scores of a
perfect continuation are 1, 1, 1 and 0.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..fileio import optional_import
from ..scenefile import as_stimulus_set
from .frames import _tqdm
from .readout import VideoError, list_videos, match_stimulus, read_video

DEFAULT_THRESHOLD = 30.0
SCORE_COLUMNS = ["stimulus_id", "video", "reference", "n_frames", "spatial_iou", "spatiotemporal_iou",
                 "weighted_spatial_iou", "mse", "status", "note"]


def motion_masks(frames: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """``(F - 1, H, W)`` booleans: pixels whose largest channel changed by more than ``threshold`` since the frame before."""
    f = frames.astype(np.int16)
    return (np.abs(np.diff(f, axis=0)).max(-1) > threshold)


def _resize(frames: np.ndarray, h: int, w: int) -> np.ndarray:
    if frames.shape[1:3] == (h, w):
        return frames
    rows = np.minimum((np.arange(h) + 0.5) * frames.shape[1] / h, frames.shape[1] - 1).astype(int)
    cols = np.minimum((np.arange(w) + 0.5) * frames.shape[2] / w, frames.shape[2] - 1).astype(int)
    return frames[:, rows][:, :, cols]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def physics_iq_scores(generated: np.ndarray, reference: np.ndarray, threshold: float = DEFAULT_THRESHOLD
                      ) -> dict[str, float]:
    """The four scores of one generated video against its reference (both ``(F, H, W, 3)`` uint8)."""
    if generated.ndim != 4 or reference.ndim != 4:
        raise InputError("physics_iq_scores: expected frames of shape (F, H, W, 3)")
    F = min(len(generated), len(reference))
    if F < 2:
        raise InputError("physics_iq_scores: need at least two frames in both videos")
    g = _resize(generated[:F], reference.shape[1], reference.shape[2])
    r = reference[:F]
    mg, mr = motion_masks(g, threshold), motion_masks(r, threshold)
    spatial = _iou(mg.any(0), mr.any(0))
    both = np.logical_or(mg, mr).reshape(len(mg), -1).any(1)
    st = float(np.mean([_iou(mg[t], mr[t]) for t in np.nonzero(both)[0]])) if both.any() else 1.0
    cg, cr = mg.sum(0).astype(float), mr.sum(0).astype(float)
    den = np.maximum(cg, cr).sum()
    weighted = 1.0 if den == 0 else float(np.minimum(cg, cr).sum() / den)
    mse = float(((g.astype(float) - r.astype(float)) ** 2).mean())
    return {"n_frames": F, "spatial_iou": spatial, "spatiotemporal_iou": st, "weighted_spatial_iou": weighted,
            "mse": mse}


def score_videos(videos, reference_dir: str | Path, stimuli, threshold: float = DEFAULT_THRESHOLD,
                 progress: bool | None = None) -> pd.DataFrame:
    """Score every video (a folder or files; names carry stimulus ids) against ``reference_dir/<id>.mp4``.

    One row per video (:data:`SCORE_COLUMNS`); a video that cannot be read,
    or has no reference, is a flagged row (``status``), never an error.
    """

    stimuli = as_stimulus_set(stimuli)
    ids = list(stimuli.ids)
    files = list_videos(videos) if isinstance(videos, (str, Path)) else [Path(v) for v in videos]
    if not files:
        raise InputError(f"{videos}: no video files found")
    ref_dir = Path(reference_dir)
    if not ref_dir.is_dir():
        raise InputError(f"--reference {ref_dir}: no such directory")
    optional_import("imageio_ffmpeg", "reading video")  # else every video would be flagged unreadable
    refs: dict[str, np.ndarray] = {}
    rows = []
    for path in _tqdm(files, progress, "Physics-IQ scores"):
        sid, _ = match_stimulus(path.name, ids)
        base = {"stimulus_id": sid, "video": str(path), "reference": "", "n_frames": 0,
                **{k: math.nan for k in ("spatial_iou", "spatiotemporal_iou", "weighted_spatial_iou", "mse")}}
        if sid is None:
            rows.append({**base, "status": "unknown_stimulus", "note": "file name carries no known stimulus id"})
            continue
        rp = ref_dir / f"{sid}.mp4"
        base["reference"] = str(rp)
        try:
            if sid not in refs:
                refs[sid] = read_video(rp) if rp.is_file() else None
            if refs[sid] is None:
                rows.append({**base, "status": "no_reference", "note": f"no {rp.name} in {ref_dir}"})
                continue
            frames = read_video(path)
            sc = physics_iq_scores(frames, refs[sid], threshold)
        except (VideoError, InputError) as exc:
            rows.append({**base, "status": "unreadable", "note": str(exc)})
            continue
        rows.append({**base, **sc, "status": "ok", "note": ""})
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)
