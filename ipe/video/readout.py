"""Read the IPE's judgments out of any video of a stimulus.

The readout turns a video into body tracks and the tracks into the same
numbers the simulator's queries give (``fall``, ``count_fallen``,
``direction``, ``falls_left``, ``distance``, ``off_table``,
``body_falls``), by handing measured initial and final centres to
:func:`ipe.queries.evaluate`. So a video is judged by exactly the rules the
IPE's rollouts are judged by, in the simulator's units.

Steps, per video:

1. **Segmentation by colour.** Every pixel goes to the nearest of the
   reference colours in ``colours.json`` (white background, grey statics,
   one flat colour per body) if it lies within ``tolerance`` (Euclidean
   distance in RGB, 0–255) of it, else to nothing. Per body the largest
   connected region is kept, so stray pixels from compression and from
   blended edges (two colours mixed at a border can look like a third)
   do not move its centre. A body is *found* in a frame when that region
   has at least ``min_area`` of the pixels the body covers at its size.
2. **Tracking.** Centroids of found regions, frame by frame, turned into
   world coordinates by the camera recorded in ``colours.json``. A body's
   initial centre is its centre in the first frame, its final centre the one
   in the last frame where it was found. A body whose region touched the
   picture's border when it was last seen (before the last frame) has *left
   the frame*: it counts as accounted for afterwards, and if it left through
   a side or the bottom its final centre is put below the picture's bottom
   edge (it fell out of the scene: off the table, past the ground's end),
   at the x where it was last seen.
3. **Quality.** The share of (frame, body) pairs in which the body was
   found or had left the frame, over the bodies that should be visible
   (bodies removed by an intervention are not expected after their removal).
4. **Motion-mask fallback** (as Physics-IQ does). A body whose colour is not
   found in the first frame is located from the stimulus itself (its
   outline drawn by the camera), and judged by motion: the pixels that
   differ between the first and the last frame by more than
   ``motion_tolerance``. If most of its initial region changed, it is taken
   to have fallen, landing at the centre of the changed pixels outside all
   initial bodies (at least two fall thresholds below where it started);
   otherwise it stayed. Such videos are marked ``method = motion`` (or
   ``mixed``).

Several videos of one stimulus (samples of a stochastic model) are averaged:
the summary has the columns of ``ipe predict`` (``stimulus_id, query,
n_samples, mean, sd, se, n_valid``), so for ``fall``-type queries the mean
over videos is a probability.

Bad input never crashes the readout: an unreadable, empty or corrupt video,
or a file whose name carries no known stimulus id, becomes a flagged row of
the per-video table (``status`` ``unreadable`` or ``unknown_stimulus``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from ..fileio import optional_import, read_json
from ..queries import check_query, evaluate, parse_query
from ..report import LOW_QUALITY, judgment_says_falls
from ..scene import Stimulus
from ..scenefile import as_stimulus_set
from ..rollout import RolloutResult
from .frames import BACKGROUND, STATIC_COLOUR, Camera, _tqdm, body_colours, draw_frame, hex_to_rgb
from .robust import subpixel_centre, track_robust

DEFAULT_TOLERANCE = 90.0
DEFAULT_MOTION_TOLERANCE = 60.0
DEFAULT_MIN_AREA = 0.2
READOUT_QUERIES = ("fall", "count_fallen", "direction", "falls_left", "distance", "off_table", "body_falls")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif")
VIDEO_COLUMNS = ["video", "stimulus_id", "sample", "status", "method", "quality", "n_frames", "query", "value",
                 "note"]
SUMMARY_COLUMNS = ["stimulus_id", "query", "n_samples", "mean", "sd", "se", "n_valid", "p_falls", "quality"]


class VideoError(Exception):
    """A video that cannot be read (empty, corrupt, wrong shape)."""


# --------------------------------------------------------------------------- colours.json


def load_colours(path: str | Path) -> dict:
    """Read and check a ``colours.json`` written by :func:`ipe.video.frames.write_colours`."""
    data = read_json(path)
    if not isinstance(data, dict) or data.get("format") != "ipe-video-colours" or not isinstance(
            data.get("stimuli"), dict):
        raise InputError(f"{path}: not an ipe colours.json (expected format 'ipe-video-colours')")
    for sid, entry in data["stimuli"].items():
        try:
            Camera.from_dict(entry["camera"])
            if not all(isinstance(v, str) for v in entry["colours"].values()):
                raise TypeError
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{path}: stimulus {sid!r}: needs 'camera' and 'colours'") from None
    return data


def find_colours(directory: str | Path) -> Path | None:
    """``colours.json`` in ``directory`` or one of its two parents, if any."""
    d = Path(directory)
    for cand in (d, d.parent, d.parent.parent):
        p = cand / "colours.json"
        if p.is_file():
            return p
    return None


# --------------------------------------------------------------------------- files → stimuli


def match_stimulus(name: str, ids: Sequence[str]) -> tuple[str | None, int | None]:
    """The stimulus id a video file name carries, and its sample index if the name gives one.

    The file's stem must be a stimulus id, or start with one followed by
    ``__``, ``_``, ``-`` or ``.``; the longest such id wins. A trailing
    ``s<k>`` or ``<k>`` after the id is the sample index
    (``tower_003__s002.mp4`` → ``("tower_003", 2)``).
    """
    stem = Path(name).name
    for suf in VIDEO_SUFFIXES:
        if stem.lower().endswith(suf):
            stem = stem[: -len(suf)]
            break
    best = None
    for sid in ids:
        if stem == sid:
            return sid, None
        if stem.startswith(sid) and stem[len(sid)] in "_-." and (best is None or len(sid) > len(best)):
            best = sid
    if best is None:
        return None, None
    rest = stem[len(best):].lstrip("_-.")
    m = re.search(r"s?(\d+)$", rest)
    return best, (int(m.group(1)) if m else None)


def list_videos(directory: str | Path, pattern: str | None = None) -> list[Path]:
    """Video files in ``directory`` (not recursive), sorted by name."""
    d = Path(directory)
    if not d.exists():
        raise InputError(f"{d}: no such directory")
    if d.is_file():
        return [d]
    files = sorted(d.glob(pattern)) if pattern else sorted(p for p in d.iterdir()
                                                            if p.suffix.lower() in VIDEO_SUFFIXES)
    return [p for p in files if p.is_file()]


# --------------------------------------------------------------------------- reading


def read_video(path: str | Path) -> np.ndarray:
    """All frames of a video as ``(F, H, W, 3)`` uint8; raises :class:`VideoError` if it cannot be read."""
    import imageio.v3 as iio

    path = Path(path)
    if path.suffix.lower() != ".gif":  # every other video format is read through ffmpeg
        optional_import("imageio_ffmpeg", f"{path}: reading video")
    try:
        if path.stat().st_size == 0:
            raise VideoError("empty file")
        frames = np.asarray(iio.imread(path, index=None))
    except VideoError:
        raise
    except Exception as exc:  # imageio/ffmpeg raise many kinds of errors on corrupt files
        msg = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise VideoError(f"cannot decode ({msg})") from None
    if frames.ndim == 3:  # one frame, or greyscale frames
        frames = frames[None] if frames.shape[-1] in (3, 4) else frames[..., None]
    if frames.ndim != 4 or len(frames) == 0:
        raise VideoError(f"unexpected frame array of shape {frames.shape}")
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    frames = frames[..., :3]
    if frames.dtype != np.uint8:
        f = frames.astype(float)
        frames = np.clip(f * (255.0 / max(f.max(), 1.0)) if f.max() <= 1.0 else f, 0, 255).astype(np.uint8)
    return frames


# --------------------------------------------------------------------------- segmentation and tracking


def _nearest(colours: np.ndarray, refs: np.ndarray, tolerance: float) -> np.ndarray:
    f = colours.astype(np.float32)
    r = np.asarray(refs, dtype=np.float32)
    d2 = (f * f).sum(1)[:, None] - 2.0 * (f @ r.T) + (r * r).sum(1)[None, :]
    lab = d2.argmin(1)
    ok = d2[np.arange(len(lab)), lab] <= tolerance ** 2
    return np.where(ok, lab, -1)


_LUT_CACHE: dict = {}
_LUT_BITS = 6


def _lookup_table(refs: np.ndarray, tolerance: float) -> np.ndarray:
    key = (np.asarray(refs, dtype=np.float32).tobytes(), float(tolerance))
    lut = _LUT_CACHE.get(key)
    if lut is None:
        step = 256 // (1 << _LUT_BITS)
        levels = np.arange(1 << _LUT_BITS) * step + (step - 1) / 2.0
        grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
        lut = _nearest(grid, refs, tolerance).astype(np.int16)
        if len(_LUT_CACHE) > 64:
            _LUT_CACHE.clear()
        _LUT_CACHE[key] = lut
    return lut


def segment(frame: np.ndarray, refs: np.ndarray, tolerance: float = DEFAULT_TOLERANCE) -> np.ndarray:
    """Label every pixel by its nearest reference colour within ``tolerance``; -1 where none is close.

    ``refs`` is ``(K, 3)`` RGB; the result is ``(H, W)`` int with values in
    ``-1 … K-1``. Colours are looked up in a table over RGB quantised to 6
    bits per channel (the nearest reference of each bin's centre).
    """
    lut = _lookup_table(refs, tolerance)
    shift = 8 - _LUT_BITS
    q = (frame.astype(np.int32) >> shift)
    idx = (q[..., 0] << (2 * _LUT_BITS)) | (q[..., 1] << _LUT_BITS) | q[..., 2]
    return lut[idx].astype(np.int64)


@dataclass
class Track:
    """Body tracks of one video.

    ``centres`` ``(F, n, 2)`` world coordinates (NaN where not found),
    ``found`` ``(F, n)``, ``exited`` ``(F, n)`` (left the frame earlier),
    ``expected`` ``(F, n)`` (should be visible), ``quality`` in [0, 1].
    """

    centres: np.ndarray
    found: np.ndarray
    exited: np.ndarray
    expected: np.ndarray
    quality: float
    exit_side: np.ndarray | None = None


def _removal_frames(stim: Stimulus, n_frames: int, fps: float | None) -> np.ndarray:
    """``expected[f, i]``: body i is not yet removed by an intervention at frame f."""
    n = len(stim.scene.bodies)
    expected = np.ones((n_frames, n), dtype=bool)
    if not fps:
        return expected
    ids = [b.id for b in stim.scene.bodies]
    for iv in stim.interventions:
        if iv.type == "remove":
            first = int(math.ceil(iv.time * fps - 1e-9))
            for bid in iv.bodies:
                expected[first:, ids.index(bid)] = False
    return expected


def _regions(frame: np.ndarray, refs: np.ndarray, tolerance: float, need: np.ndarray):
    """Segment one frame; per body ``(r0, c0, mask)`` of its largest region (``None`` when not found) and the labels."""
    from scipy import ndimage

    H, W = frame.shape[:2]
    n = len(need)
    lab = segment(frame, refs, tolerance)
    flat = lab.ravel()
    order = np.argsort(flat, kind="stable")
    bounds = np.searchsorted(flat[order], np.arange(2, n + 3))
    out = []
    for i in range(n):
        idx = order[bounds[i]:bounds[i + 1]]
        if len(idx) < need[i]:
            out.append(None)
            continue
        rows, cols = np.divmod(idx, W)
        r0, r1, c0, c1 = max(rows.min() - 3, 0), min(rows.max() + 4, H), max(cols.min() - 3, 0), min(cols.max() + 4, W)
        mask = np.zeros((r1 - r0, c1 - c0), dtype=bool)
        mask[rows - r0, cols - c0] = True
        comp, k = ndimage.label(mask)
        if k > 1:
            sizes = np.bincount(comp.ravel())[1:]
            mask = comp == (int(sizes.argmax()) + 1)
        out.append((r0, c0, mask) if mask.sum() >= need[i] else None)
    return out, lab


def track_bodies(frames: np.ndarray, stim: Stimulus, camera: Camera, colours: dict[str, str] | None = None,
                 tolerance: float = DEFAULT_TOLERANCE, min_area: float = DEFAULT_MIN_AREA,
                 fps: float | None = None, max_frames: int | None = 96) -> Track:
    """Segment frames by colour and track each body (see the module docstring).

    At most ``max_frames`` frames, evenly spaced and always including the
    first and the last, are segmented (all of them when ``None``); the
    track's arrays have one row per segmented frame. Centres are plain
    region means, except in the first frame and in each body's last frame,
    where they are sub-pixel centres (:func:`ipe.video.robust.subpixel_centre`) — the two the
    judgments use.
    """
    colours = colours or body_colours(stim)
    bodies = stim.scene.bodies
    n = len(bodies)
    F_all, H, W = frames.shape[:3]
    cam = camera.resized(W, H)
    refs = np.array([hex_to_rgb(BACKGROUND), hex_to_rgb(STATIC_COLOUR)]
                    + [hex_to_rgb(colours[b.id]) for b in bodies], dtype=float)
    px_area = np.array([b.area for b in bodies]) / cam.metres_per_pixel ** 2
    need = np.maximum(1.0, min_area * px_area)
    if max_frames and F_all > max_frames:
        use = np.unique(np.round(np.linspace(0, F_all - 1, max_frames)).astype(int))
    else:
        use = np.arange(F_all)
    F = len(use)
    centres = np.full((F, n, 2), np.nan)
    found = np.zeros((F, n), dtype=bool)
    border = np.zeros((F, n), dtype=np.int8)
    for f, fi in enumerate(use):
        regions, _ = _regions(frames[fi], refs, tolerance, need)
        for i, reg in enumerate(regions):
            if reg is None:
                continue
            r0, c0, mask = reg
            mr, mc = np.nonzero(mask)
            found[f, i] = True
            centres[f, i] = cam.to_world(np.array([mc.mean() + c0 + 0.5, mr.mean() + r0 + 0.5]))
            # 1: touches the left, right or bottom edge; 2: only the top edge
            side = mc.min() + c0 == 0 or mr.max() + r0 == H - 1 or mc.max() + c0 == W - 1
            border[f, i] = 1 if side else (2 if mr.min() + r0 == 0 else 0)
    last = [int(np.nonzero(found[:, i])[0][-1]) if found[:, i].any() else -1 for i in range(n)]
    _subpixel_centres(frames, use, centres, found, last, refs, tolerance, need, cam)
    expected = _removal_frames(stim, F_all, fps)[use]
    exited = np.zeros_like(found)
    exit_side = np.zeros(n, dtype=np.int8)
    for i in range(n):
        if last[i] >= 0 and border[last[i], i] and last[i] < F - 1:
            exited[last[i] + 1:, i] = True
            exit_side[i] = border[last[i], i]
    denom = expected.sum()
    quality = float(((found | exited) & expected).sum() / denom) if denom else 0.0
    return Track(centres, found, exited, expected, quality, exit_side)


def _subpixel_centres(frames: np.ndarray, use: np.ndarray, centres: np.ndarray, found: np.ndarray, last: list[int],
                      refs: np.ndarray, tolerance: float, need: np.ndarray, cam: Camera) -> None:
    """Sub-pixel centres where they are used: the first frame and each body's last frame (``centres`` in place)."""
    n = found.shape[1]
    for f in sorted({0, *[x for x in last if x >= 0]}):
        who = [i for i in range(n) if found[f, i] and (f == 0 or last[i] == f)]
        if not who:
            continue
        frame = frames[use[f]]
        regions, lab = _regions(frame, refs, tolerance, need)
        for i in who:
            r0, c0, mask = regions[i]
            h, w = mask.shape
            rc = subpixel_centre(frame[r0:r0 + h, c0:c0 + w], lab[r0:r0 + h, c0:c0 + w], mask, i + 2, refs)
            centres[f, i] = cam.to_world(np.array([rc[1] + c0 + 0.5, rc[0] + r0 + 0.5]))


def _initial_masks(stim: Stimulus, camera: Camera) -> np.ndarray:
    """``(n, H, W)`` boolean: where each body is in the first frame, drawn from the stimulus."""
    n = len(stim.scene.bodies)
    states = np.array([(b.position[0], b.position[1], b.angle) for b in stim.scene.bodies])
    masks = np.zeros((n, camera.height, camera.width), dtype=bool)
    white = np.array(hex_to_rgb(BACKGROUND))
    for i in range(n):
        vis = np.zeros(n, dtype=bool)
        vis[i] = True
        fr = draw_frame(stim, states, vis, camera, supersample=2).astype(int)
        # body pixels: neither background nor static grey
        grey = np.array(hex_to_rgb(STATIC_COLOUR))
        d_bg = np.abs(fr - white).sum(-1)
        d_st = np.abs(fr - grey).sum(-1)
        masks[i] = (d_bg > 60) & (d_st > 60)
    return masks


# --------------------------------------------------------------------------- judging one video


@dataclass
class VideoJudgment:
    """What the readout made of one video."""

    values: list[float]
    quality: float
    method: str
    n_frames: int
    initial: np.ndarray
    final: np.ndarray
    unreadable: bool = False
    notes: list[str] | None = None


def judge_frames(frames: np.ndarray, stim: Stimulus, camera: Camera, queries, colours: dict[str, str] | None = None,
                 fps: float | None = None, tolerance: float = DEFAULT_TOLERANCE,
                 motion_tolerance: float = DEFAULT_MOTION_TOLERANCE, min_area: float = DEFAULT_MIN_AREA
                 ) -> VideoJudgment:
    """Judge one video given as frames with the robust readout (:mod:`ipe.video.robust`); answer ``queries``.

    The first frame is checked against the stimulus, colours are learned
    there, every frame is registered to the static scene, the time scale is
    read from the motion. A video that cannot be read (a body not where the
    stimulus puts it, one that vanished before it fell) gets NaN values,
    ``unreadable`` set and quality 0; ``notes`` say why, and what else was
    flagged. Where only some bodies' ends are not seen, each query is
    answered where its answer is the same across their bounds, else NaN
    (:func:`_answers`).
    ``tolerance``, ``motion_tolerance`` and ``min_area`` are kept for
    compatibility; colour tolerances are now learned from the first frame.
    """
    colours = colours or body_colours(stim)
    tr = track_robust(frames, stim, camera, colours, fps=fps)
    bodies = stim.scene.bodies
    n = len(bodies)
    removed = np.zeros(n, dtype=bool)
    for iv in stim.interventions:
        if iv.type == "remove":
            for bid in iv.bodies:
                removed[[b.id for b in bodies].index(bid)] = True
    notes = list(tr.notes)
    values = [math.nan] * len(queries) if tr.unreadable else _answers(queries, stim, tr, removed, notes)
    return VideoJudgment(values, tr.quality, tr.method, len(frames), tr.initial, tr.final, tr.unreadable, notes)


FAR = 1e3  # m: "anywhere" for a final x that was not seen


def _answers(queries, stim: Stimulus, tr, removed: np.ndarray, notes: list[str]) -> list[float]:
    """Each query's answer from the track's initial and final positions. Where a body's final x or height was
    not seen (it left the picture moving, or vanished after falling: ``tr.x_known``, ``tr.y_known``), a query
    is answered only if its answer is the same wherever that body can be (``tr.x_range``: beyond the side of
    the picture it left by, or anywhere; ``tr.y_range``: between the floor under it and the height it cannot
    climb back above; probed at the corners of those bounds, far where unbounded, and where the body was last
    seen): a count of fallen bodies is, where each such body has fallen for good or cannot fall;
    ``falls_left`` is when every such body left by the side the others went; a direction or distance that
    takes in such a body is NaN, said in the note."""
    bodies = stim.scene.bodies
    ids = tuple(b.id for b in bodies)
    n = len(bodies)

    def answer(q, final):
        res = RolloutResult(body_ids=ids, initial=tr.initial, final=final, removed=removed, steps=0, n_steps=0)
        return float(evaluate(q, res, stim))

    def bounds(known, rng):
        unknown = np.zeros(n, dtype=bool) if known is None else ~known
        return unknown, (rng if rng is not None else np.tile([-np.inf, np.inf], (n, 1)))

    x_unknown, x_rng = bounds(tr.x_known, tr.x_range)
    y_unknown, y_rng = bounds(tr.y_known, tr.y_range)
    probes = []
    for xe in ((0, 1) if x_unknown.any() else (None,)):
        for ye in ((0, 1) if y_unknown.any() else (None,)):
            f2 = tr.final.copy()
            for col, unknown, rng, end in ((0, x_unknown, x_rng, xe), (1, y_unknown, y_rng, ye)):
                if end is not None:
                    v = rng[unknown, end]
                    f2[unknown, col] = np.where(np.isfinite(v), v, tr.final[unknown, col] + (FAR if end else -FAR))
            probes.append(f2)
    out, unanswered = [], []
    for q in queries:
        v = answer(q, tr.final)
        if x_unknown.any() or y_unknown.any():
            alt = [answer(q, f2) for f2 in probes]
            if not all(a == v or (math.isnan(a) and math.isnan(v)) for a in alt):
                v = math.nan
                unanswered.append(q.key)
        out.append(v)
    if unanswered:
        who = ", ".join(b.id for b, u in zip(bodies, x_unknown | y_unknown) if u)
        notes.append(f"{', '.join(unanswered)} not answered: where {who} ended is not seen")
    return out


# --------------------------------------------------------------------------- many videos


def _queries_for(stim: Stimulus, queries) -> list:
    qs = [stim.query] if not queries else [parse_query(q) for q in queries]
    for q in qs:
        if q.name not in READOUT_QUERIES:
            raise InputError(f"stimulus {stim.id!r}: query {q.key!r}: the readout answers queries of initial and "
                             f"final positions only ({', '.join(READOUT_QUERIES)})")
        try:
            check_query(q, stim.scene)
        except InputError as exc:
            raise exc.prefixed(f"stimulus {stim.id!r}: query {q.key!r}") from None
    return qs


def readout(videos: Sequence[str | Path] | str | Path, stimuli, colours: dict | str | Path | None = None,
            queries=None, tolerance: float = DEFAULT_TOLERANCE, motion_tolerance: float = DEFAULT_MOTION_TOLERANCE,
            min_area: float = DEFAULT_MIN_AREA, min_quality: float = 0.0, fps: float | None = None,
            progress: bool | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Judge every video; returns ``(summary, per_video)``.

    ``videos`` is a folder or a list of files; each file's name must carry a
    stimulus id (:func:`match_stimulus`). ``colours`` is a ``colours.json``
    (path or loaded dict); without one the cameras and colours are
    recomputed from the stimuli as :func:`ipe.video.frames.render_videos`
    makes them. ``queries`` default to each stimulus's own query. Videos
    whose quality is below ``min_quality`` are left out of the summary
    (they stay in the per-video table, flagged).

    ``summary`` has the columns of ``ipe predict`` plus ``quality`` (mean
    over the stimulus's videos); ``per_video`` one row per video and query
    (:data:`VIDEO_COLUMNS`), with ``status`` ``ok``, ``low_quality``,
    ``unreadable`` or ``unknown_stimulus``.
    """
    stimuli = as_stimulus_set(stimuli)
    by_id = {s.id: s for s in stimuli}
    files, colours = _video_files(videos, colours)
    cdata = load_colours(colours) if isinstance(colours, (str, Path)) else colours
    if fps is None and cdata is not None:
        fps = float(cdata.get("fps") or 0) or None
    rows = []
    counters: dict[str, int] = {}
    qcache: dict[str, list] = {}
    for path in _tqdm(files, progress, "reading videos"):
        sid, sample = match_stimulus(path.name, list(by_id))
        base = {"video": str(path), "stimulus_id": sid, "sample": sample, "method": "", "quality": math.nan,
                "n_frames": 0}
        if sid is None:
            rows.append({**base, "status": "unknown_stimulus", "query": "", "value": math.nan,
                         "note": "file name carries no known stimulus id"})
            continue
        stim = by_id[sid]
        if sample is None:
            sample = counters.get(sid, 0)
        counters[sid] = max(counters.get(sid, 0), sample + 1)
        base["sample"] = sample
        if sid not in qcache:
            qcache[sid] = _queries_for(stim, queries)
        setup = _camera_and_colours(stim, cdata)
        if isinstance(setup, str):
            rows.append({**base, "status": "unknown_stimulus", "query": "", "value": math.nan, "note": setup})
            continue
        rows += _judge_video(path, stim, qcache[sid], *setup, base,
                             dict(fps=fps, tolerance=tolerance, motion_tolerance=motion_tolerance, min_area=min_area))
    per_video = pd.DataFrame(rows, columns=VIDEO_COLUMNS)
    return summarize_videos(per_video, stimuli, min_quality=min_quality), per_video


def _video_files(videos, colours) -> tuple[list[Path], dict | str | Path | None]:
    """The video files of a folder (and the folder's ``colours.json`` unless one is given) or of a list."""
    if isinstance(videos, (str, Path)):
        folder = Path(videos)
        files = list_videos(folder)
        if colours is None:
            colours = find_colours(folder if folder.is_dir() else folder.parent)
    else:
        files = [Path(v) for v in videos]
    if not files:
        raise InputError(f"{videos}: no video files found")
    return files, colours


def _camera_and_colours(stim: Stimulus, cdata: dict | None) -> tuple[Camera, dict[str, str]] | str:
    """The camera and body colours of ``stim``'s videos (from colours.json, or as rendered), or why not."""
    entry = (cdata or {}).get("stimuli", {}).get(stim.id) if cdata else None
    if cdata is not None and entry is None:
        return "stimulus not in colours.json"
    if entry is None:
        return Camera.for_stimulus(stim, 256), body_colours(stim)
    cols = {bid: c for c, bid in entry["colours"].items()}
    if set(cols) != {b.id for b in stim.scene.bodies}:
        return "colours.json bodies differ from the stimulus's"
    return Camera.from_dict(entry["camera"]), cols


def _judge_video(path: Path, stim: Stimulus, qs: list, cam: Camera, cols: dict[str, str], base: dict,
                 options: dict) -> list[dict]:
    """The per-video rows of one file: one per query, or one saying why it could not be read."""
    try:
        frames = read_video(path)
    except VideoError as exc:
        return [{**base, "status": "unreadable", "query": "", "value": math.nan, "note": str(exc)}]
    if frames.shape[0] < 2:
        return [{**base, "status": "unreadable", "query": "", "value": math.nan, "n_frames": len(frames),
                 "note": "fewer than two frames"}]
    j = judge_frames(frames, stim, cam, qs, cols, **options)
    status = "unreadable" if j.unreadable else ("ok" if j.quality >= LOW_QUALITY else "low_quality")
    note_text = "; ".join(j.notes or [])
    return [{**base, "status": status, "method": j.method, "quality": j.quality, "n_frames": j.n_frames,
             "query": q.key, "value": v, "note": note_text} for q, v in zip(qs, j.values)]


def summarize_videos(per_video: pd.DataFrame, stimuli=None, min_quality: float = 0.0) -> pd.DataFrame:
    """Per stimulus and query: ``stimulus_id, query, n_samples, mean, sd, se, n_valid, p_falls, quality``.

    ``p_falls`` (for the stimulus's own query, given ``stimuli``) is the
    share of its videos in which something fell (:func:`ipe.report.p_falls`).
    Videos the robust readout declared unreadable count in ``n_samples`` but
    not in ``n_valid``: a stimulus whose videos were all unreadable keeps a
    row with ``mean`` NaN (flagged, not guessed, and not silently dropped).
    """
    by_id = {s.id: s for s in as_stimulus_set(stimuli)} if stimuli is not None else {}
    ok = per_video[(per_video["status"].isin(["ok", "low_quality"]) & (per_video["quality"] >= min_quality))
                   | ((per_video["status"] == "unreadable") & (per_video["query"] != ""))]
    out = []
    for (sid, q), g in ok.groupby(["stimulus_id", "query"], sort=False):
        v = g["value"].to_numpy(dtype=float)
        valid = v[np.isfinite(v)]
        nv = len(valid)
        mean = float(valid.mean()) if nv else math.nan
        sd = float(valid.std(ddof=1)) if nv > 1 else (0.0 if nv == 1 else math.nan)
        se = sd / math.sqrt(nv) if nv else math.nan
        stim = by_id.get(sid)
        pf = (float(np.mean([judgment_says_falls(x, stim) for x in valid]))
              if stim is not None and nv and q == stim.query.key else math.nan)
        out.append((sid, q, len(v), mean, sd, se, nv, pf, float(g["quality"].mean())))
    return pd.DataFrame(out, columns=SUMMARY_COLUMNS)
