"""The robust readout: first-frame check, colours learned in place, camera registration, time scale, flags.

A generator moves the camera, shifts colours, changes speed, and sometimes
loses or invents objects. :func:`track_robust` reads a video of a stimulus
without mistaking any of these for physics:

1. **First-frame check** (:func:`first_frame_check`). The stimulus says where
   every body is at t = 0, so the first frame is labelled from the
   stimulus itself (pixels wholly inside one body, the ground, or the
   background). Each body's colour is *learned* there (median of its
   interior), and compared with the colour ``colours.json`` gives it,
   after removing the video's overall hue drift (circular median over
   bodies). A body whose colour is nearer another body's expected colour
   is a **colour mix-up**: flagged, and the body is identified by its known
   position instead. A body whose place does not hold one colour distinct
   from the background is **not where the stimulus puts it**: the video
   does not show this stimulus, and it is flagged unreadable. Bodies whose
   learned colours cannot be told apart (one colour for all bodies, colours
   lost) form groups that are read by shape and motion masks instead.
2. **Segmentation** of every frame by the learned colours (nearest colour,
   per-colour tolerance from its spread in the first frame), following
   slow colour drift: each colour is re-learned from the pixels it labelled.
   Edge pixels that are blends of two *other* colours are left out
   (:func:`reject_blends`), and each body is the connected piece of its
   colour that continuity picks: at its known place in the first frame,
   near where its last step carries it after.
3. **Registration** to the static scene (:func:`register`). Per frame a
   similarity (scale about the frame centre, translation) maps the first
   frame onto it. The ground's top edge fixes the vertical part (where the
   camera, predicted at its velocity, puts it inside the picture); bodies
   that have not moved, the horizontal part and the scale, chosen by
   consensus (bodies that fell are outliers), with the scale of rigid
   bodies' areas as a check; blocks that fell and came to rest join the
   static scene at their new place (a drifting camera takes the standing
   ones out of the picture). A frame without two bodies (or one and the
   ground) in agreement is not registered, and a body read there makes the
   video unreadable. Every position is mapped back into the first frame's
   pixels and from there into the world by the camera of ``colours.json``.
4. **Time scale** (:func:`time_scale`), from the motion: the steepest
   downward acceleration seen on any body (free fall, over windows of 0.3 s
   of simulated time) against the scene's gravity gives frames per
   simulated second. A slowed video of the whole horizon is read at the
   frame where the horizon falls on that scale (stretched, not cut); where
   the estimate's ±15 % puts the horizon over a body crossing the fall
   threshold, the video is unreadable. A video whose motion runs slow and
   shows only part of the horizon is noted, and read only if every body
   has come to rest by its end (else unreadable: where they land is not
   shown). With no free fall to time the video by, the nominal rate is
   assumed, and a body still moving at the frame read makes it unreadable.
5. **Flags**: bodies that vanish (not through a picture edge), objects that
   appear (unexplained regions the size of a body), bodies the camera, not
   physics, took out of the picture. A body whose end cannot be seen is not
   guessed. A body the camera took out of the picture while at rest, with
   nothing leaving the picture moving, is read where it rested. Any other
   gets bounds (``x_range``, ``y_range``) from what is already final: the
   side it left by, the floor under it, and that nothing in an inelastic
   scene lifts a body back by its own thickness, so a body seen more than
   the fall threshold plus its thickness below its start has **fallen for
   good**. Queries are answered only where their answer is the same across
   those bounds (a tower whose top blocks fell out of the picture *fell*;
   how many fell is open while a block out of sight might have been
   knocked down: :meth:`RobustTrack.fallen_bounds`).

``quality`` is the share of (frame, body) pairs read, times the first-frame
agreement, lowered by large registration residuals and by flags; the
reasons are in ``notes``. An unreadable video's quality is 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..queries import fall_threshold
from ..scene import Ball, StaticSegment, Stimulus, world_vertices
from .frames import BACKGROUND, STATIC_COLOUR, Camera, hex_to_rgb

SAME_COLOUR = 40.0
MIN_TOLERANCE = 60.0
_PURE = 40.0  # a pixel within this distance of its reference colour is pure, not a blend
_SQ = np.ones((3, 3), dtype=bool)


def fit_camera(camera: Camera, width: int, height: int) -> Camera:
    """``camera``'s window seen in a ``width × height`` frame: resized, or centred and padded when the aspect differs."""
    cw, ch = camera.x1 - camera.x0, camera.y1 - camera.y0
    if abs(width / height - cw / ch) < 0.02:
        return camera.resized(width, height)
    mpp = max(cw / width, ch / height)
    cx, cy = (camera.x0 + camera.x1) / 2, (camera.y0 + camera.y1) / 2
    return Camera(cx - width * mpp / 2, cx + width * mpp / 2, cy - height * mpp / 2, cy + height * mpp / 2,
                  int(width), int(height))


WORK_SIZE = 200  # px: a video at least twice this on its short side is read averaged down towards it


def working_resolution(frames: np.ndarray, camera: Camera) -> tuple[np.ndarray, Camera, int]:
    """``(frames, camera, k)``: the frames averaged over ``k × k`` blocks where their short side is at least
    ``2 × WORK_SIZE`` (the last rows and columns that do not fill a block dropped), and the camera of what is
    left; else the frames as they are, ``camera`` fitted to them and ``k = 1``."""
    F, H, W = frames.shape[:3]
    cam = fit_camera(camera, W, H)
    k = min(H, W) // WORK_SIZE
    if k < 2:
        return frames, cam, 1
    Hc, Wc = H // k * k, W // k * k
    mx, my = (cam.x1 - cam.x0) / W, (cam.y1 - cam.y0) / H
    small = Camera(cam.x0, cam.x0 + Wc * mx, cam.y1 - Hc * my, cam.y1, Wc // k, Hc // k)
    total = frames[:, :Hc, :Wc].reshape(F, Hc // k, k, Wc // k, k, -1).sum((2, 4), dtype=np.uint32)
    return ((total + (k * k) // 2) // (k * k)).astype(np.uint8), small, k


def label_image(stim: Stimulus, camera: Camera, states: np.ndarray | None = None, supersample: int = 4) -> np.ndarray:
    """``(H, W)`` labels of the scene drawn from the stimulus: 0 background, 1 static, 2 + i body i, -1 mixed pixels."""
    from PIL import Image, ImageDraw

    ss = supersample
    big = camera.resized(camera.width * ss, camera.height * ss)
    img = Image.new("L", (big.width, big.height), 0)
    draw = ImageDraw.Draw(img)

    def px(points):
        return [tuple(p) for p in big.to_pixels(np.asarray(points, dtype=float)).tolist()]

    for s in stim.scene.statics:
        if isinstance(s, StaticSegment):
            draw.line(px([s.a, s.b]), fill=1, width=max(1, int(round(2 * s.radius / big.metres_per_pixel))))
        else:
            draw.polygon(px(world_vertices(s)), fill=1)
    from dataclasses import replace

    for i, b in enumerate(stim.scene.bodies):
        if states is not None:
            b = replace(b, position=(float(states[i, 0]), float(states[i, 1])), angle=float(states[i, 2]))
        if isinstance(b, Ball):
            (cx, cy), = px([b.position])
            r = b.radius / big.metres_per_pixel
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=2 + i)
        else:
            draw.polygon(px(world_vertices(b)), fill=2 + i)
    a = np.asarray(img, dtype=np.int16).reshape(camera.height, ss, camera.width, ss)
    lo, hi = a.min(axis=(1, 3)), a.max(axis=(1, 3))
    return np.where(lo == hi, lo, -1).astype(np.int16)


# --------------------------------------------------------------------------- first frame


def _hue_sat(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from matplotlib.colors import rgb_to_hsv

    hsv = rgb_to_hsv(np.clip(np.asarray(rgb, dtype=float), 0, 255) / 255.0)
    return hsv[..., 0] * 360.0, hsv[..., 1]


@dataclass
class FirstFrame:
    """What the first frame says: learned colours, their tolerances, groups, flags."""

    refs: np.ndarray            # (2 + n, 3) background, static, bodies
    tolerances: np.ndarray      # (2 + n,)
    present: np.ndarray         # (2 + n,) bool: the label has pixels in the first frame
    groups: list[list[int]]     # bodies (indices) that share one colour
    agreement: np.ndarray       # (n,) share of each body's interior nearest its own colour
    hue_shift: float
    mixups: list[tuple[str, str]]
    missing: list[str]          # bodies not at their known position
    labels: np.ndarray          # the stimulus's label image
    notes: list[str] = field(default_factory=list)
    static_like: list[int] = field(default_factory=list)  # bodies in the ground's colour


def _nominal_colour(k: int, bodies, colours: dict[str, str]) -> np.ndarray:
    """The colour label ``k`` should have: background, the static scene, or body ``k - 2``'s from colours.json."""
    return np.array(hex_to_rgb(BACKGROUND if k == 0 else STATIC_COLOUR if k == 1 else colours[bodies[k - 2].id]),
                    dtype=float)


def _learn_colours(pix: np.ndarray, labels: np.ndarray, bodies, colours: dict[str, str]):
    """Each label's colour (median of its interior), tolerance and presence in the first frame, and interiors."""
    from scipy import ndimage

    K = len(bodies) + 2
    refs = np.zeros((K, 3))
    tol = np.full(K, MIN_TOLERANCE)
    present = np.zeros(K, dtype=bool)
    interiors = []
    for k in range(K):
        m = labels == k
        inner = ndimage.binary_erosion(m, _SQ, border_value=0) if k >= 1 else m
        if inner.sum() < 3:
            inner = m
        interiors.append(inner)
        if inner.sum() == 0:
            refs[k] = hex_to_rgb(BACKGROUND if k == 0 else STATIC_COLOUR) if k < 2 else hex_to_rgb(
                colours[bodies[k - 2].id])
            continue
        present[k] = True
        vals = pix[inner]
        refs[k] = np.median(vals, axis=0)
        nominal = _nominal_colour(k, bodies, colours)
        if np.sqrt(((refs[k] - nominal) ** 2).sum()) < 30:  # the colour it should have: keep it exact
            refs[k] = nominal
        d = np.sqrt(((vals - refs[k]) ** 2).sum(-1))
        tol[k] = max(MIN_TOLERANCE, 1.5 * float(np.quantile(d, 0.9)))
    return refs, tol, present, interiors


def _same_colour_groups(refs: np.ndarray, n: int) -> list[list[int]]:
    """Groups of bodies whose learned colours cannot be told apart."""
    groups: list[list[int]] = []
    for i in range(n):
        for g in groups:
            if np.sqrt(((refs[2 + i] - refs[2 + g[0]]) ** 2).sum()) < SAME_COLOUR:
                g.append(i)
                break
        else:
            groups.append([i])
    return groups


def _agreement(pix: np.ndarray, refs: np.ndarray, present: np.ndarray, interiors: list, groups: list[list[int]],
               n: int) -> tuple[np.ndarray, list[int], list[int]]:
    """Share of each body's interior nearest its own colour (any colour of its group counts); the bodies in
    the ground's colour (read by motion); the bodies not where the stimulus puts them (``bad``)."""
    group_of = {i: g for g in groups for i in g}
    agreement = np.ones(n)
    bad: list[int] = []
    static_like: list[int] = []
    for i in range(n):
        inner = interiors[2 + i]
        if not inner.any():
            agreement[i] = math.nan
            continue
        d = ((pix[inner][:, None, :] - refs[None, :, :]) ** 2).sum(-1)
        agreement[i] = float(np.isin(d.argmin(1), [2 + j for j in group_of[i]]).mean())
        if present[1] and np.sqrt(((refs[2 + i] - refs[1]) ** 2).sum()) < SAME_COLOUR and agreement[i] >= 0.6:
            static_like.append(i)  # the ground's colour: visible against the background, read by motion
            continue
        distinct = np.sqrt(((refs[2 + i] - refs[0]) ** 2).sum()) if present[0] else 999.0
        if agreement[i] < 0.6 or distinct < SAME_COLOUR:
            bad.append(i)
    return agreement, static_like, bad


def _find_misplaced(bad: list[int], frame: np.ndarray, bodies, colours: dict[str, str], camera: Camera,
                    refs: np.ndarray, agreement: np.ndarray) -> tuple[list[str], list[str]]:
    """Bodies not where the stimulus puts them: found nearby in their own colour (a perturbed start: taken,
    ``moved``), or ``missing``. Returns ``(missing, moved)`` ids; ``refs`` and ``agreement`` are updated."""
    K = len(bodies) + 2
    lab0 = label_frame(frame, np.array([_nominal_colour(k, bodies, colours) for k in range(K)]),
                       np.full(K, MIN_TOLERANCE), np.ones(K, dtype=bool))
    mpp = camera.metres_per_pixel
    missing, moved = [], []
    for i in bad:
        m = _largest(lab0 == 2 + i) if (lab0 == 2 + i).any() else None
        area_px = bodies[i].area / mpp ** 2
        if m is not None and m.sum() >= 0.4 * area_px:
            rr, cc = np.nonzero(m)
            xy = camera.to_world(np.array([cc.mean() + 0.5, rr.mean() + 0.5]))
            if np.hypot(*(xy - np.array(bodies[i].position))) <= bodies[i].long_side:
                refs[2 + i] = np.array(hex_to_rgb(colours[bodies[i].id]), dtype=float)
                agreement[i] = 1.0
                moved.append(bodies[i].id)
                continue
        missing.append(bodies[i].id)
    return missing, moved


def _hue_identity(refs: np.ndarray, bodies, colours: dict[str, str], notes: list[str]
                  ) -> tuple[float, list[tuple[str, str]]]:
    """Colour identity against colours.json after the video's overall hue drift: ``(hue_shift, mixups)``."""
    n = len(bodies)
    exp = np.array([hex_to_rgb(colours[b.id]) for b in bodies], dtype=float)
    h_got, s_got = _hue_sat(refs[2:])
    h_exp, s_exp = _hue_sat(exp)
    sat = (s_got > 0.25) & (s_exp > 0.25)
    hue_shift = 0.0
    mixups = []
    if sat.sum() >= 2:
        diff = (h_got - h_exp + 180.0) % 360.0 - 180.0
        ang = np.deg2rad(diff[sat])
        hue_shift = float(np.rad2deg(np.arctan2(np.median(np.sin(ang)), np.median(np.cos(ang)))))
        spread = float(np.median(np.abs((diff[sat] - hue_shift + 180.0) % 360.0 - 180.0)))
        if spread > 20.0:  # no one drift explains the colours: the video paints the bodies in a palette of its own
            notes.append(f"body colours are not colours.json's (a palette of its own: hues differ by {spread:.0f}° "
                         "on median after any drift); bodies identified by their known positions")
            return 0.0, []
        for i in range(n):
            if not s_got[i] > 0.25:
                continue
            dh = np.abs((h_got[i] - hue_shift - h_exp + 180.0) % 360.0 - 180.0) / 30.0
            dist = dh + np.abs(s_got[i] - s_exp) / 0.3
            j = int(dist.argmin())
            if j != i and dist[i] > dist[j] + 0.25:
                mixups.append((bodies[i].id, bodies[j].id))
        if abs(hue_shift) > 5:
            notes.append(f"hue drift {hue_shift:+.0f}°")
    elif n:
        notes.append("body colours lost (no saturated colour)")
    return hue_shift, mixups


def first_frame_check(frame: np.ndarray, stim: Stimulus, camera: Camera, colours: dict[str, str]) -> FirstFrame:
    """Check the first frame against the stimulus's known positions and learn its colours (see the module)."""
    bodies = stim.scene.bodies
    n = len(bodies)
    labels = label_image(stim, camera)
    pix = frame.astype(float)
    refs, tol, present, interiors = _learn_colours(pix, labels, bodies, colours)
    groups = _same_colour_groups(refs, n)
    agreement, static_like, bad = _agreement(pix, refs, present, interiors, groups, n)
    notes: list[str] = []
    missing: list[str] = []
    if bad:
        missing, moved = _find_misplaced(bad, frame, bodies, colours, camera, refs, agreement)
        if moved:
            notes.append(f"first frame: {', '.join(moved[:4])} near but not at its known position")
    hue_shift, mixups = _hue_identity(refs, bodies, colours, notes)
    if mixups:
        shown = ", ".join(f"{a} looks like {b}" for a, b in mixups[:4]) + (" …" if len(mixups) > 4 else "")
        notes.append(f"colour mix-up in the first frame ({shown}); bodies identified by their known positions")
    if any(len(g) > 1 for g in groups):
        shared = sum(len(g) for g in groups if len(g) > 1)
        notes.append(f"{shared} bodies share a colour; read by shape and motion")
    if missing:
        notes.append(f"first frame does not match the stimulus: {', '.join(missing[:4])} not at its known position")
    if static_like:
        notes.append(f"{', '.join(bodies[i].id for i in static_like[:4])} in the ground's colour; read by motion")
        groups = [[j for j in g if j not in static_like] for g in groups]
        groups = [g for g in groups if g]
    return FirstFrame(refs, tol, present, groups, agreement, hue_shift, mixups, missing, labels, notes, static_like)


# --------------------------------------------------------------------------- segmentation


def subpixel_centre(pix: np.ndarray, lab: np.ndarray, mask: np.ndarray, k: int, refs: np.ndarray,
                     with_area: bool = False) -> tuple[float, ...]:
    """Centre (row, col) of a body's region with anti-aliased edges unmixed.

    Pixels well inside the region weigh 1. Pixels on its edge and in a
    one-pixel ring around it weigh the share ``α`` of the body's colour
    ``c`` in them, ``p ≈ α c + (1 − α) d``, where the partner colour ``d``
    is the most common *pure* colour (within a small distance of its
    reference) next to the pixel (3 × 3 window, else 5 × 5): the
    neighbouring body, the background or a static shape; white when none is
    known. Unmixing
    against the actual neighbour matters: two colours blended at a shared
    edge can look like a third reference colour (blue and yellow make
    grey), and a hard assignment of such a row would flip as a whole.
    With ``with_area`` the total weight (the region's area in pixels, edges
    counted by their share) comes third.
    """
    from scipy import ndimage

    inner = ndimage.binary_erosion(mask, _SQ, border_value=1)
    band = ndimage.binary_dilation(mask, _SQ) & ~inner
    # pure pixels: within PURE of their reference colour (blends are not pure)
    dist = np.sqrt(((pix.astype(float) - refs[np.maximum(lab, 0)]) ** 2).sum(-1))
    ring = ndimage.binary_dilation(mask, _SQ) & ~mask
    pure = (lab >= 0) & (lab != k) & (dist <= _PURE) & ~ring  # blends live in the ring: never a partner
    # partner of every pixel: the most common pure label in its 3×3 window, else in its 5×5 window
    best = np.full(mask.shape, -1)
    for size in (5, 3):
        best_n = np.zeros(mask.shape)
        choice = np.full(mask.shape, -1)
        for lbl in np.unique(lab[pure]):
            cnt = ndimage.uniform_filter((pure & (lab == lbl)).astype(float), size=size, mode="constant")
            better = cnt > best_n + 1e-9
            choice[better] = lbl
            best_n[better] = cnt[better]
        best = np.where(choice >= 0, choice, best)
    partner = np.where(best[..., None] >= 0, refs[np.maximum(best, 0)], refs[0])
    c = refs[k]
    axis = c - partner
    den = np.maximum((axis * axis).sum(-1), 1e-9)
    alpha = np.clip(((pix.astype(float) - partner) * axis).sum(-1) / den, 0.0, 1.0)
    w = np.where(inner, 1.0, 0.0) + np.where(band, alpha, 0.0)
    tot = w.sum()
    if tot <= 0:
        rows, cols = np.nonzero(mask)
        out = (float(rows.mean()), float(cols.mean()))
        return out + (float(mask.sum()),) if with_area else out
    rr, cc = np.mgrid[0:mask.shape[0], 0:mask.shape[1]]
    out = (float((w * rr).sum() / tot), float((w * cc).sum() / tot))
    return out + (float(tot),) if with_area else out


def label_frame(frame: np.ndarray, refs: np.ndarray, tolerances: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Nearest active reference colour of every pixel, -1 where it is beyond that colour's tolerance."""
    f = frame.reshape(-1, 3).astype(np.float32)
    r = refs[active].astype(np.float32)
    d2 = (f * f).sum(1)[:, None] - 2.0 * (f @ r.T) + (r * r).sum(1)[None, :]
    j = d2.argmin(1)
    idx = np.nonzero(active)[0][j]
    ok = d2[np.arange(len(j)), j] <= tolerances[idx].astype(np.float32) ** 2
    return np.where(ok, idx, -1).reshape(frame.shape[:2])


def _largest(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    comp, k = ndimage.label(mask)
    if k <= 1:
        return mask
    sizes = np.bincount(comp.ravel())[1:]
    return comp == (int(sizes.argmax()) + 1)


def ground_edge(lab: np.ndarray, frame: np.ndarray | None = None, refs: np.ndarray | None = None) -> float:
    """Row (continuous, rows down) of the top edge of the static ground: NaN when no static row spans the frame.

    The first row that is ground across 60 % of the widest ground row, less the share of
    ground in the row above it: from the colours (between background and
    ground) where ``frame`` and ``refs`` are given, in the columns where
    only background and ground meet; else from the labels.
    """
    frac = (lab == 1).mean(1)
    if frac.max() < 0.2:
        return math.nan
    full = np.nonzero(frac > 0.6 * frac.max())[0]  # the ground may not span a padded frame
    if not len(full):
        return math.nan
    r1 = int(full[0])
    if r1 < 1:
        return float(r1)
    above = frac[r1 - 1]
    if frame is not None and refs is not None and r1 >= 2:
        cols = ((lab[r1 - 2:r1 + 1] == 0) | (lab[r1 - 2:r1 + 1] == 1) | (lab[r1 - 2:r1 + 1] == -1)).all(0)
        cols &= lab[r1] == 1
        if cols.sum() >= 4:
            axis = refs[1] - refs[0]
            den = float((axis * axis).sum())
            if den > 100:
                px = frame[r1 - 1, cols].astype(float).mean(0)
                above = float(((px - refs[0]) * axis).sum() / den)
    return float(r1 - min(max(above, 0.0), 1.0))


# --------------------------------------------------------------------------- registration


def _apply(p: np.ndarray, s: float, t: np.ndarray, c: np.ndarray) -> np.ndarray:
    return s * (p - c) + c + t


@dataclass
class _Pairs:
    """What :func:`register` matches: body centres in the first frame and frame t, the ground's top edge in
    both (NaN when not seen), the frame centre, and each body's area ratio (or ``None``)."""

    c0: np.ndarray
    ct: np.ndarray
    g0: float
    gt: float
    centre: np.ndarray
    area_ratio: np.ndarray | None

    @property
    def has_ground(self) -> bool:
        return math.isfinite(self.g0) and math.isfinite(self.gt)

    def fit(self, bodies_, scale=None, prior=None, ground: bool = True) -> tuple[float, float, float]:
        """Least-squares ``(s, tx, ty)`` on ``bodies_`` and (with ``ground``) the ground; ``scale`` held fixed, or
        kept near ``prior``."""
        c0, ct, centre, area_ratio = self.c0, self.ct, self.centre, self.area_ratio
        rows, rhs = [], []
        if prior is not None:  # the scale changes little per frame: (s - prev) / 2 % weighs like a body at 0.25 px
            # (one body fixes no scale: then (s - prev) / 0.2 % weighs like a body at 0.25 px)
            wp = 0.25 / (0.02 if len(bodies_) >= 2 else 0.002)
            rows.append([wp, 0.0, 0.0])
            rhs.append(wp * prior)
            if area_ratio is not None and len(bodies_):
                ar = area_ratio[list(bodies_)]
                ar = ar[np.isfinite(ar)]
                if len(ar):  # rigid bodies at rest change area only with the zoom: s = sqrt(area ratio)
                    # (one body's area is noisy at small sizes: a 5 × 15 px block's edges move it by 5 %)
                    w = 0.25 / (0.005 if len(ar) >= 2 else 0.02) * math.sqrt(len(ar))
                    rows.append([w, 0.0, 0.0])
                    rhs.append(w * float(np.sqrt(np.median(ar))))
        for i in bodies_:
            rows.append([c0[i, 0] - centre[0], 1.0, 0.0])
            rhs.append(ct[i, 0] - centre[0])
            rows.append([c0[i, 1] - centre[1], 0.0, 1.0])
            rhs.append(ct[i, 1] - centre[1])
        if ground and self.has_ground:
            for _ in range(2):
                rows.append([self.g0 - centre[1], 0.0, 1.0])
                rhs.append(self.gt - centre[1])
        A, y = np.array(rows), np.array(rhs)
        if scale is not None:
            sol, *_ = np.linalg.lstsq(A[:, 1:], y - scale * A[:, 0], rcond=None)
            return float(scale), float(sol[0]), float(sol[1])
        sol, *_ = np.linalg.lstsq(A, y, rcond=None)
        return float(sol[0]), float(sol[1]), float(sol[2])

    def hypotheses(self, idx: np.ndarray, prev: tuple[float, float, float]) -> list[tuple[float, float, float]]:
        """Candidate transforms: the predicted one, single bodies (scale kept or from their area; alone, and with
        the ground's edge when it is seen), pairs."""
        hyps = [prev, (prev[0], 0.0, 0.0)]
        grounds = (False, True) if self.has_ground else (False,)
        for i in idx:
            for g in grounds:  # a body alone fixes the pan; with the ground, also its vertical part from the edge
                hyps.append(self.fit([i], prev[0], ground=g))
                if self.area_ratio is not None and math.isfinite(self.area_ratio[i]) and self.area_ratio[i] > 0:
                    hyps.append(self.fit([i], float(np.sqrt(self.area_ratio[i])), ground=g))
        for a in range(len(idx)):
            for b in range(a + 1, len(idx)):
                i, j = idx[a], idx[b]
                if (np.abs(self.c0[i] - self.c0[j]) / (2 * self.centre)).max() < 0.4:
                    continue
                hyps.append(self.fit([i, j]))
        return hyps

    def score(self, h, idx: np.ndarray, prev: tuple[float, float, float], tol: float, lost: int = 0):
        """``((ground agrees, inliers less the cost of moving from prev), inliers)`` of hypothesis ``h``; after
        ``lost`` frames without registration the prediction is less sure, and moving away from it costs less."""
        s, tx, ty = h
        centre = self.centre
        pred = _apply(self.c0[idx], s, np.array([tx, ty]), centre)
        res = np.sqrt(((pred - self.ct[idx]) ** 2).sum(-1))
        inl = res < tol
        g_ok = not self.has_ground or abs(s * (self.g0 - centre[1]) + centre[1] + ty - self.gt) < tol
        # moving away from the predicted camera costs half an inlier per tolerance of change
        dist = abs(s - prev[0]) * 2 * centre[0] + abs(tx - prev[1]) + abs(ty - prev[2])
        return (g_ok, int(inl.sum()) - 0.5 * dist / tol / (1 + lost) ** 2 - 0.1 * float(res[inl].sum()) / tol), inl

    def residuals(self, use: np.ndarray, s: float, tx: float, ty: float) -> np.ndarray:
        return np.sqrt(((_apply(self.c0[use], s, np.array([tx, ty]), self.centre) - self.ct[use]) ** 2).sum(-1))


def register(c0: np.ndarray, ct: np.ndarray, ok: np.ndarray, g0: float, gt: float, centre: np.ndarray, tol: float,
             prev: tuple[float, float, float] = (1.0, 0.0, 0.0), area_ratio: np.ndarray | None = None,
             reach: float = 0.02) -> tuple[float, float, float, np.ndarray, float]:
    """Similarity ``(s, tx, ty)`` mapping first-frame pixels onto frame t, by consensus of bodies and the ground.

    ``c0``, ``ct`` ``(n, 2)`` body centres (col, row) in the first frame and in
    frame t, ``ok`` which pairs are usable (found whole in both); ``g0``, ``gt``
    the ground's top edge (NaN when not seen); ``prev`` the transform
    predicted from the frames before. Hypotheses come from single bodies
    (scale kept), pairs of bodies and the ground; the one with the ground
    in agreement and the most bodies within ``tol`` pixels wins, less half a
    body for every ``tol`` it moves away from ``prev`` (a camera moves
    smoothly: at most ``reach`` (2 %) of the frame per frame away from the
    prediction), and is refined by least squares on its inliers. When no body
    agrees with any hypothesis, the prediction is kept (its vertical part from
    the ground's edge when that is seen): a frame is never registered on the
    ground alone, which fixes no pan. Returns ``s, tx, ty``, the inliers and
    their rms residual.
    """
    pairs = _Pairs(c0, ct, g0, gt, centre, area_ratio)
    idx = np.nonzero(ok)[0]
    hyps = pairs.hypotheses(idx, prev)
    # the camera moves smoothly: at most `reach` of the frame (and as much zoom) per frame away from the prediction
    near = [h for h in hyps if abs(h[0] - prev[0]) <= reach and abs(h[1] - prev[1]) <= reach * 2 * centre[0]
            and abs(h[2] - prev[2]) <= reach * 2 * centre[1]]
    lost = int(round(reach / 0.02)) - 1
    best = max(near or [prev], key=lambda h: pairs.score(h, idx, prev, tol, lost)[0])
    use = idx[pairs.score(best, idx, prev, tol)[1]]
    s, tx, ty = best
    if not len(use):
        s, tx, ty = prev
        if pairs.has_ground:  # the edge fixes the vertical part only
            ty = pairs.gt - centre[1] - s * (pairs.g0 - centre[1])
    for _ in range(2):  # refine on the inliers (the scale held near the previous frame's)
        if not len(use):
            break
        s, tx, ty = pairs.fit(use, prior=prev[0])
        res = pairs.residuals(use, s, tx, ty)
        if res.max() < tol / 2 or len(use) == 1:
            break
        use = use[res < max(tol / 2, np.median(res) * 2)]
    rms = 0.0
    if len(use):
        pred = _apply(c0[use], s, np.array([tx, ty]), centre)
        rms = float(np.sqrt(((pred - ct[use]) ** 2).sum(-1).mean()))
    out = np.zeros(len(c0), dtype=bool)
    out[use] = True
    return s, tx, ty, out, rms


# --------------------------------------------------------------------------- time scale


MIN_BEND = 0.002  # m: a window's parabola must bend by this much to be a fall (creeping by rendering noise is not)


def _fall_accelerations(y: np.ndarray, moving: np.ndarray, window: int) -> np.ndarray:
    """Downward accelerations (m per frame²) of every ``window``-frame stretch of a moving body that a
    parabola fits closely (at most 10 % of its bend off, or 0.1 mm) and that bends by at least
    :data:`MIN_BEND` (free fall over 0.3 s bends by 11 cm; a body settling by a fraction of a millimetre
    fits a parabola too, of an acceleration that would mean absurd slow motion)."""
    h = window // 2
    tt = np.arange(-h, h + 1, dtype=float)
    X = np.stack([np.ones_like(tt), tt, tt ** 2 / 2], 1)
    pinv = np.linalg.pinv(X)
    acc = []
    for i in np.nonzero(moving)[0]:
        if len(y) < window:
            break
        segs = np.lib.stride_tricks.sliding_window_view(y[:, i], window)     # (F - window + 1, window)
        good = np.isfinite(segs).all(1)
        if not good.any():
            continue
        coef = segs[good] @ pinv.T                                           # (m, 3): y0, v, a
        res = np.abs(segs[good] - coef @ X.T).max(1)
        a = coef[:, 2]
        keep = (coef[:, 1] < 0) & (a < 0) & (res < 0.1 * np.abs(a) * h * h + 1e-4) & (np.abs(a) * h * h / 2 >= MIN_BEND)
        acc.extend((-a[keep]).tolist())
    return np.asarray(acc, dtype=float)


FALL_SECONDS = 0.3  # the stretch of simulated time a free-fall fit spans


def time_scale(y: np.ndarray, moving: np.ndarray, gravity: float, nominal: float = 30.0) -> tuple[float, int]:
    """Frames per simulated second from free fall: ``sqrt(g / a)`` for the steepest downward acceleration ``a``.

    ``y`` ``(F, n)`` heights (m, NaN where not seen) per frame; ``moving``
    ``(n,)`` the bodies to look at. Accelerations come from quadratic fits
    over windows that a parabola fits closely; the steepest is the median of
    the five steepest windows (free fall: contacts only slow a body's
    centre). The windows span :data:`FALL_SECONDS` of *simulated* time: a
    first estimate at ``nominal`` frames per second sets the window, which is
    refit until it agrees with its own estimate (slow motion needs longer
    windows: per frame, its bend is small against the pixels' noise). On 30
    generated towers at 128 px, at 1× and 0.5× speed, the estimate is within
    13 % of the truth (mean error 3–4 %). Returns ``(fps, n_windows)``; NaN
    when no body fell freely long enough.
    """
    est, n_win = math.nan, 0
    window = max(9, 2 * int(round(FALL_SECONDS / 2 * nominal)) + 1)
    tried: set[int] = set()
    while window not in tried and window <= max(9, len(y) // 2):
        tried.add(window)
        acc = _fall_accelerations(y, moving, window)
        if len(acc) < 5:
            break
        est, n_win = math.sqrt(gravity / float(np.median(np.sort(acc)[-5:]))), len(acc)
        window = max(9, 2 * int(round(FALL_SECONDS / 2 * est)) + 1)
    return est, n_win


# --------------------------------------------------------------------------- the whole track


@dataclass
class RobustTrack:
    """What :func:`track_robust` made of one video."""

    initial: np.ndarray          # (n, 3) world x, y, angle (angle 0: not read)
    final: np.ndarray
    quality: float
    method: str                  # colour, motion (shared colours) or mixed
    unreadable: bool
    notes: list[str]
    fps: float                   # frames per simulated second used
    n_frames: int
    transforms: np.ndarray       # (F, 3) s, tx, ty per frame
    first: FirstFrame | None = None
    x_known: np.ndarray | None = None  # (n,) False where a body's final x was not seen (it left the picture or
    #                                    vanished after falling): its final x is only where it was last seen
    x_range: np.ndarray | None = None  # (n, 2) where its final x can be (lo, hi; ±inf: unbounded); final x twice
    #                                    where it was seen
    y_known: np.ndarray | None = None  # (n,) False where a body's final height was not seen (:func:`_unseen_end`)
    y_range: np.ndarray | None = None  # (n, 2) where its final y can be (lo, hi); final y twice where it was seen

    def fallen_bounds(self, threshold: float) -> tuple[int, int]:
        """The fewest and the most bodies that can have fallen (dropped more than ``threshold``), over the
        bounds of the final heights not seen: equal where the count is answered; the yes/no judgment is
        answered where the fewest is at least one or the most is zero."""
        drop = self.initial[:, 1] - self.final[:, 1]
        if self.y_range is None:
            k = int((drop > threshold).sum())
            return k, k
        lo = int((self.initial[:, 1] - self.y_range[:, 1] > threshold).sum())
        hi = int((self.initial[:, 1] - self.y_range[:, 0] > threshold).sum())
        return lo, hi


def _region_stats(lab: np.ndarray, k: int, need: float, near: np.ndarray | None = None, reach: float = math.inf):
    """Label ``k``'s region: ``(col, row, pixels, touches the picture's edge, (r0, c0, mask))``, or ``None``.

    The region is one connected piece of the label: the largest, or with
    ``near`` (a predicted centre, col/row) the largest whose centre lies within
    ``reach`` pixels of it (continuity: a stray blend of the same colour
    elsewhere is not the body), falling back to the largest when none does.
    """
    from scipy import ndimage

    m = lab == k
    if m.sum() < need:
        return None
    rows, cols = np.nonzero(m)
    H, W = lab.shape
    r0, r1 = max(rows.min() - 3, 0), min(rows.max() + 4, H)  # a margin: edges and their ring are weighed
    c0, c1 = max(cols.min() - 3, 0), min(cols.max() + 4, W)
    comp, n_comp = ndimage.label(m[r0:r1, c0:c1])
    if n_comp == 0:
        return None
    sizes = np.bincount(comp.ravel())[1:]
    pick = int(sizes.argmax())
    if near is not None and n_comp > 1 and np.isfinite(near).all():
        cent = np.array(ndimage.center_of_mass(np.ones_like(comp), comp, np.arange(1, n_comp + 1)))
        d = np.hypot(cent[:, 1] + c0 + 0.5 - near[0], cent[:, 0] + r0 + 0.5 - near[1])
        ok = (d <= reach) & (sizes >= need)
        if ok.any():
            pick = int(np.nonzero(ok)[0][sizes[ok].argmax()])
    sub = comp == pick + 1
    if sub.sum() < need:
        return None
    rr, cc = np.nonzero(sub)
    rr = rr + r0
    cc = cc + c0
    border = rr.min() == 0 or cc.min() == 0 or rr.max() == H - 1 or cc.max() == W - 1
    return float(cc.mean() + 0.5), float(rr.mean() + 0.5), int(len(rr)), bool(border), (r0, c0, sub)


def _unexplained(lab: np.ndarray) -> int:
    from scipy import ndimage

    m = ndimage.binary_erosion(lab == -1, _SQ)
    if not m.any():
        return 0
    comp, k = ndimage.label(m)
    return int(np.bincount(comp.ravel())[1:].max()) if k else 0


@dataclass
class _Groups:
    """How the learned colours map to labels: bodies read alone by colour (``solo``), groups read by motion
    (``shared``, with the label each group's pixels get), and the colours segmentation looks for (``active``)."""

    solo: list[int]
    shared: list[list[int]]
    label_of: np.ndarray
    group_label: dict[int, int]
    active: np.ndarray


def _colour_groups(ff: FirstFrame, n: int) -> _Groups:
    solo = [g[0] for g in ff.groups if len(g) == 1]
    shared = [g for g in ff.groups if len(g) > 1]
    label_of = np.arange(n + 2)
    group_label = {}
    for g in shared:
        label_of[[2 + i for i in g]] = 2 + g[0]
        group_label[g[0]] = 2 + g[0]
    active = ff.present.copy()
    for g in shared:
        active[[2 + i for i in g[1:]]] = False
    if ff.static_like:
        label_of[[2 + i for i in ff.static_like]] = 1
        active[[2 + i for i in ff.static_like]] = False
        shared = shared + [list(ff.static_like)]
        group_label[ff.static_like[0]] = 1
    return _Groups(solo, shared, label_of, group_label, active)


@dataclass
class _Regions:
    """Per processed frame: each solo body's centre ``C`` (col, row), area, whether it touches the picture's
    edge (``border``) and was found; the ground's edge, the largest unexplained region (``extra``), and the
    label images of the first and last frames (``labs``)."""

    C: np.ndarray
    area: np.ndarray
    border: np.ndarray
    found: np.ndarray
    ground: np.ndarray
    extra: np.ndarray
    labs: dict

    @classmethod
    def empty(cls, F: int, n: int) -> "_Regions":
        return cls(np.full((F, n, 2), np.nan), np.full((F, n), np.nan), np.zeros((F, n), dtype=bool),
                   np.zeros((F, n), dtype=bool), np.full(F, np.nan), np.zeros(F, dtype=int), {})


def reject_blends(frame: np.ndarray, lab: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """``lab`` with the body pixels that are blends of two *other* colours set to -1 (mixed).

    Anti-aliasing mixes neighbouring colours, and a mix can lie near a third
    body's colour: white and red make pink, the ground's grey and white a
    light grey, red and yellow orange. A body pixel on its label's edge is a
    blend when it lies nearer the segment between two pure colours next to
    it (3 × 3, neither its own) than its own colour; such stray pixels would
    otherwise join the body's region and move its centre.
    """
    H, W = lab.shape
    pix = frame.astype(np.float32)
    pad = np.pad(lab, 1, constant_values=-1)
    shifts = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if dr or dc]
    nb = np.stack([pad[1 + dr:1 + dr + H, 1 + dc:1 + dc + W] for dr, dc in shifts])  # (8, H, W)
    cand = (lab >= 2) & (nb != lab[None]).any(0)
    if not cand.any():
        return lab
    rr, cc = np.nonzero(cand)
    own = lab[rr, cc]
    p = pix[rr, cc]                                                      # (N, 3)
    refs32 = refs.astype(np.float32)
    dist = np.sqrt(((pix - refs32[np.maximum(lab, 0)]) ** 2).sum(-1))
    pure = (lab >= 0) & (dist <= _PURE)
    ppad = np.pad(pure, 1, constant_values=False)
    nl = nb[:, rr, cc].T                                                  # (N, 8) neighbour labels
    npure = np.stack([ppad[1 + dr:1 + dr + H, 1 + dc:1 + dc + W][rr, cc] for dr, dc in shifts], 1)
    usable = npure & (nl != own[:, None]) & (nl >= 0)
    if not usable.any():
        return lab
    cols = refs32[np.maximum(nl, 0)]                                      # (N, 8, 3)
    best = np.full(len(rr), np.inf, dtype=np.float32)
    for a in range(8):
        for b in range(a, 8):
            ok = usable[:, a] & usable[:, b]
            if not ok.any():
                continue
            ca, cb = cols[ok, a], cols[ok, b]
            axis = cb - ca
            den = np.maximum((axis * axis).sum(-1), 1e-6)
            t = np.clip(((p[ok] - ca) * axis).sum(-1) / den, 0.0, 1.0)
            d = np.sqrt(((p[ok] - ca - t[:, None] * axis) ** 2).sum(-1))
            best[ok] = np.minimum(best[ok], d)
    d_own = np.sqrt(((p - refs32[own]) ** 2).sum(-1))
    out = lab.copy()
    blend = best < d_own
    out[rr[blend], cc[blend]] = -1
    return out


def _label(frame: np.ndarray, refs: np.ndarray, tols: np.ndarray, groups: _Groups) -> np.ndarray:
    lab = reject_blends(frame, label_frame(frame, refs, tols, groups.active), refs)
    return np.where(lab >= 0, groups.label_of[np.maximum(lab, 0)], -1)


def _segment_frames(frames: np.ndarray, use: np.ndarray, groups: _Groups, refs: np.ndarray, tols: np.ndarray,
                    need: np.ndarray, start: np.ndarray, size: np.ndarray) -> _Regions:
    """Step 2: segment every processed frame by the learned colours, which follow slow drift (``refs`` in place).

    Each body is followed by continuity: in the first frame its region is
    the piece of its colour at its known place (``start``, pixels), later
    the piece near where its motion so far puts it (``size``: its long side
    in pixels)."""
    F, n = len(use), len(need)
    reg = _Regions.empty(F, n)
    for f, fi in enumerate(use):
        lab = _label(frames[fi], refs, tols, groups)
        if f == 0 or f == F - 1:
            reg.labs[f] = lab
        reg.ground[f] = ground_edge(lab, frames[fi], refs)
        reg.extra[f] = _unexplained(lab)
        pix = frames[fi].astype(float)
        for i in groups.solo:
            near, reach = _predict(reg, f, i, start[i], size[i], frames.shape[1:3])
            _find_body(reg, f, i, frames[fi], pix, lab, refs, need[i], near, reach)
        for k in (0, 1):
            m = lab == k
            if m.sum() > 50:
                new = np.median(pix[m][::7], axis=0)
                if np.sqrt(((new - refs[k]) ** 2).sum()) > 8:
                    refs[k] = 0.5 * refs[k] + 0.5 * new
    return reg


def _predict(reg: _Regions, f: int, i: int, start: np.ndarray, size: float, shape) -> tuple[np.ndarray, float]:
    """Where body ``i`` should be in processed frame ``f`` (col, row) and how far from it it may be found: its
    known place in the first frame (within half its size); later its last centre carried on by its last step."""
    if f == 0:
        return start, 0.5 * size
    seen = np.nonzero(reg.found[:f, i])[0]
    if not len(seen):
        return start, size + 0.1 * max(shape) * f
    a = int(seen[-1])
    p = reg.C[a, i]
    if a >= 1 and reg.found[a - 1, i]:
        p = p + (f - a) * (reg.C[a, i] - reg.C[a - 1, i])
    return p, size + 0.05 * max(shape) * (f - a)


def _find_body(reg: _Regions, f: int, i: int, frame: np.ndarray, pix: np.ndarray, lab: np.ndarray, refs: np.ndarray,
               need: float, near: np.ndarray | None = None, reach: float = math.inf) -> None:
    """Body ``i`` in processed frame ``f``: its sub-pixel centre and area; its colour follows slow drift."""
    from scipy import ndimage

    st = _region_stats(lab, 2 + i, need, near, reach)
    if st is None:
        return
    r0, c0, sub = st[4]
    h_, w_ = sub.shape
    rc = subpixel_centre(frame[r0:r0 + h_, c0:c0 + w_], lab[r0:r0 + h_, c0:c0 + w_], sub, 2 + i, refs,
                          with_area=True)
    reg.C[f, i] = (rc[1] + c0 + 0.5, rc[0] + r0 + 0.5)  # pixel (r, c) is centred at (c + 0.5, r + 0.5)
    reg.area[f, i] = rc[2]
    reg.border[f, i] = st[3]
    reg.found[f, i] = True
    inner = ndimage.binary_erosion(sub, _SQ, border_value=0)
    if inner.sum() >= 6:  # follow slow colour drift from the region's interior (edges are blends)
        new = np.median(pix[r0:r0 + sub.shape[0], c0:c0 + sub.shape[1]][inner], axis=0)
        if np.sqrt(((new - refs[2 + i]) ** 2).sum()) > 8:
            refs[2 + i] = 0.5 * refs[2 + i] + 0.5 * new


def _camera_is_still(reg: _Regions, W: int, H: int) -> bool:
    """A fixed camera: the ground's edge stays put (in every frame where it is seen: a zoom or a vertical pan
    that takes it out of the picture moved it first) and the bodies that did not drop did not move
    sideways."""
    if min(W, H) < 96:
        return True  # too coarse to tell a camera's motion from pixel noise: the camera is taken as fixed
    seen = np.isfinite(reg.ground)
    if seen[0] and seen.sum() >= 3 and not float(np.abs(reg.ground[seen] - reg.ground[0]).max()) < 0.35:
        return False
    whole0 = reg.found[0] & ~reg.border[0]
    whole = reg.found & ~reg.border
    for f in range(1, len(reg.ground)):
        ok = whole0 & whole[f]
        d = reg.C[f, ok] - reg.C[0, ok]
        level = np.abs(d[:, 1]) < 0.5
        if level.sum() >= 2:  # one block pushed sideways is physics; a pan moves every block at rest
            med = float(np.median(d[level, 0]))
            if abs(med) > 0.35 and (np.abs(d[level, 0] - med) < 0.3).mean() >= 0.6:
                return False
    return True


REF_FRAMES = 6  # a body that moved is a static reference again when its place held over this many registered frames


def _register_frames(reg: _Regions, centre: np.ndarray, tol: float, still: bool
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step 3: ``(s, tx, ty)`` of every processed frame against the first (identity for a still camera), the
    registration residuals, and which frames were registered on the scene (``registered``).

    The static scene a frame is registered to is the ground's edge (where the prediction puts it inside the
    picture) and the bodies: each at its first-frame place (the consensus tells those that moved), or, for a
    body that moved away from it and came to rest (its place *in the scene*, its centre mapped back into the
    first frame, held still over the last :data:`REF_FRAMES` registered frames), at its new place: a camera
    that drifts on takes the standing bodies out of the picture, and blocks that fell and came to rest carry
    the registration on. The camera is predicted at the velocity of the last two registered frames. A frame
    is registered when two bodies agree, or one body and the ground's edge; else it keeps its best guess and
    is not ``registered``: a body read there makes the video unreadable."""
    F, n = reg.found.shape
    T = np.tile([1.0, 0.0, 0.0], (F, 1))
    rms = np.zeros(F)
    registered = np.ones(F, dtype=bool)
    if still:
        return T, rms, registered
    whole = reg.found & ~reg.border
    mapped = np.full((F, n, 2), np.nan)  # body centres mapped back into the first frame by each frame's camera
    mapped[0][whole[0]] = reg.C[0][whole[0]]
    H = 2 * centre[1]
    good = [0]   # frames registered on the scene
    for f in range(1, F):
        a = good[-1]
        pred = T[a].copy()
        if len(good) >= 2:  # the camera moves smoothly: its velocity over the last two registered frames
            b = good[-2]
            pred = T[a] + (T[a] - T[b]) * min(f - a, 3) / (a - b)
            pred[0] = T[a, 0] + 0.5 * (pred[0] - T[a, 0])  # the zoom's velocity, damped: scale is the noisiest
        lost = f - a - 1  # frames since the last one registered: look further
        # the ground's edge is used where the prediction puts it, inside the picture: a zoom that takes the
        # ground out of the bottom leaves some other grey row as its "edge", which would drag the vertical pan
        gt = reg.ground[f]
        g_pred = pred[0] * (reg.ground[0] - centre[1]) + centre[1] + pred[2]
        if not (abs(gt - g_pred) <= max(2 * tol, 0.02 * H) * (1 + lost) and g_pred < H - 1):
            gt = math.nan
        # static references: every body whole in the first frame and this one, at its first-frame place (the
        # consensus tells those that moved); a body that moved away from that place and came to rest (its
        # place in the scene held still over the last REF_FRAMES registered frames) at its new place instead:
        # a camera that drifts on takes the standing bodies out of the picture, and what is left at rest
        # carries the registration on
        ref = np.full((n, 2), np.nan)
        cand = whole[0] & whole[f]
        ref[cand] = reg.C[0][cand]
        if len(good) >= REF_FRAMES:
            recent = mapped[good[-REF_FRAMES:]]                                # (k, n, 2)
            for i in np.nonzero(whole[f] & np.isfinite(recent[..., 0]).all(0))[0]:
                pts = recent[:, i]
                here = pts.mean(0)
                if float(np.abs(pts - here).max()) < tol and not (
                        whole[0, i] and float(np.abs(here - reg.C[0, i]).max()) < 2 * tol):
                    ref[i] = here
        ok = np.isfinite(ref[:, 0])
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = reg.area[f] / reg.area[0]
        s, tx, ty, inl, r = register(np.nan_to_num(ref), reg.C[f], ok, reg.ground[0], gt, centre, tol,
                                     tuple(pred), ratio, reach=0.02 * (1 + lost))
        T[f] = (s, tx, ty)
        rms[f] = r
        ground_ok = math.isfinite(gt) and abs(s * (reg.ground[0] - centre[1]) + centre[1] + ty - gt) < tol
        if inl.sum() >= 2 or (inl.sum() >= 1 and ground_ok):
            good.append(f)
            mapped[f][whole[f]] = (reg.C[f][whole[f]] - centre - T[f, 1:]) / T[f, 0] + centre
        else:
            registered[f] = False
    return T, rms, registered


SCALE_UNCERTAINTY = 0.15  # a measured time scale is trusted to ±15 % (the estimate's worst error on 30 towers: 13 %)


def _time_base(stim: Stimulus, use: np.ndarray, found: np.ndarray, y: np.ndarray, thr: float, nominal: float,
               notes: list[str]) -> "_TimeBase":
    """Step 4: frames per simulated second (from free fall when it differs from ``nominal`` by more than 25 %),
    the processed frame read (the horizon's), the seconds of horizon the video lacks, original frames per
    processed frame, and, for a measured time scale, the processed frames its uncertainty puts the horizon
    between."""
    F, n = found.shape
    g = abs(stim.scene.gravity[1]) or 9.81
    step = (use[-1] / (F - 1)) if F > 1 else 1.0
    with np.errstate(invalid="ignore"):
        drop_any = np.nanmax(np.where(found, y[0][None] - y, -np.inf), axis=0) if F > 1 else np.zeros(n)
    moving = np.nan_to_num(drop_any, nan=0.0) > 3 * thr
    fps_eff = nominal
    f_end = F - 1
    truncated = 0.0
    measured = False
    timed = False  # no free fall seen: the nominal rate is assumed, and checked where bodies still move
    if moving.any() and F >= 9:
        est, _ = time_scale(y, moving, g, nominal / step)  # per processed frame
        est = est * step if math.isfinite(est) else est   # per original frame
        timed = math.isfinite(est)
        if math.isfinite(est) and abs(est / nominal - 1) > 0.25:
            fps_eff = est
            measured = True
            notes.append(f"motion runs at {nominal / est:.2g}× the expected speed (time scale from free fall: "
                         f"{est:.0f} frames per simulated second, not {nominal:.0f})")
    horizon = stim.scene.simulation.horizon
    f_h = horizon * fps_eff / step
    if f_h < F - 1 - 0.5:
        f_end = int(round(f_h))
        notes.append(f"read at frame {use[f_end]} (the horizon), not the last frame")
    elif f_h > (F - 1) * 1.1:
        truncated = horizon - use[-1] / fps_eff
        notes.append(f"the video shows about {use[-1] / fps_eff:.1f} s of the {horizon:g} s horizon")
    window = None
    if measured:
        lo = max(1, int(math.floor(f_h / (1 + SCALE_UNCERTAINTY))))
        hi = min(F - 1, int(math.ceil(f_h / (1 - SCALE_UNCERTAINTY))))
        if lo < hi:
            window = (lo, hi)
    return _TimeBase(use, f_end, fps_eff, truncated, step, thr, window, timed)


def _horizon_uncertain(stim: Stimulus, groups: "_Groups", reg: "_Regions", Wd: np.ndarray, initial: np.ndarray,
                       base: "_TimeBase", notes: list[str]) -> bool:
    """With a measured time scale, the horizon lies somewhere in ``base.window``: a body that crosses the fall
    threshold in between (or drops out of sight) makes the judgment depend on where: the video is unreadable."""
    if base.window is None:
        return False
    lo, hi = base.window
    changed = []
    for i in groups.solo:
        seen = reg.found[lo:hi + 1, i]
        if not seen.any():
            continue
        fell = (initial[i, 1] - Wd[lo:hi + 1, i, 1][seen]) > base.thr
        if fell.any() and not fell.all():
            changed.append(stim.scene.bodies[i].id)
    if changed:
        notes.append(f"the measured time scale (±{100 * SCALE_UNCERTAINTY:.0f} %) puts the horizon between frames "
                     f"{base.use[lo]} and {base.use[hi]}, and {', '.join(changed[:4])} cross the fall threshold "
                     "in between: where the horizon falls decides the judgment")
        return True
    return False


def _centre_at(frames: np.ndarray, use: np.ndarray, reg: _Regions, f: int, i: int, refs: np.ndarray,
               need: float) -> np.ndarray:
    """Body ``i``'s sub-pixel centre (col, row) in processed frame ``f`` (first or last: their labels are kept)."""
    _, _, _, _, (r0, c0, sub) = _region_stats(reg.labs[f], 2 + i, need, reg.C[f, i], 1.0)
    h_, w_ = sub.shape
    rc = subpixel_centre(frames[use[f]][r0:r0 + h_, c0:c0 + w_], reg.labs[f][r0:r0 + h_, c0:c0 + w_], sub, 2 + i,
                          refs)
    return np.array([rc[1] + c0 + 0.5, rc[0] + r0 + 0.5])


MOVING_SPEED = 0.05  # m/s: slower than this, a body is at rest


def _still_moving(xy: np.ndarray, found: np.ndarray, base: "_TimeBase") -> bool:
    """Whether a body is still moving at the last of its positions ``xy`` ``(F, 2)``: a straight-line fit over
    the last 0.3 s (simulated) gives a speed above :data:`MOVING_SPEED` and above three standard errors (pixel
    noise alone moves a centre from frame to frame)."""
    w = max(4, int(round(FALL_SECONDS * base.fps / base.step)))
    idx = np.nonzero(found[-w:])[0]
    if len(idx) < 4:
        return False
    t = (idx - idx.mean()) * base.step / base.fps
    p = xy[-w:][idx]
    v = (t[:, None] * (p - p.mean(0))).sum(0) / (t * t).sum()                 # m/s, x and y
    res = p - p.mean(0) - t[:, None] * v
    se = np.sqrt((res ** 2).sum(0) / max(len(idx) - 2, 1) / (t * t).sum())
    speed = float(np.hypot(*v))
    return speed > MOVING_SPEED and speed > 3.0 * float(np.hypot(*se))


def _rest_place(xy: np.ndarray, ok: np.ndarray, lw: int, base: "_TimeBase", thr: float, px: float
                ) -> np.ndarray | None:
    """Where a body rested over the :data:`FALL_SECONDS` (simulated) before processed frame ``lw``, its last
    whole sighting (the median of its places there), or ``None`` if it was not at rest: seen (whole, in
    registered frames) at four or more of those frames spanning at least two thirds of them, the medians of
    the first and the second half of them less than a fall threshold apart (or one pixel, ``px`` metres,
    where that is more: registration is good to about half a pixel), and no place more than two pixels from
    the median. A body sliding or tipping at 5 cm/s moves 1.5 cm over those 0.3 s."""
    w = max(4, int(round(FALL_SECONDS * base.fps / base.step)))
    lo = max(0, lw - w + 1)
    idx = np.nonzero(ok[lo:lw + 1])[0]
    if len(idx) < 4 or idx[-1] - idx[0] < (2 * (lw - lo)) // 3:
        return None
    p = xy[lo:lw + 1][idx]
    h = len(p) // 2
    med = np.median(p, axis=0)
    if float(np.hypot(*(np.median(p[h:], 0) - np.median(p[:h], 0)))) > max(thr, px) or float(
            np.abs(p - med).max()) > 2 * px:
        return None
    return med


def _exit_bounds(c: np.ndarray, W: int, H: int, T_end: np.ndarray, registered_end: bool, centre: np.ndarray,
                 cam0: Camera, long_side: float) -> tuple[float, float]:
    """Where in x a body that left the picture can have ended, from the side it left by (``c``, its last centre
    in that frame's pixels): beyond the same side of the picture at the frame read (to get back it would have
    crossed the picture, where it would be seen: a body is found whenever a fifth of it is in view), give or
    take half its length. Through the top or the bottom, or when the frame read is not registered: anywhere."""
    side = int(np.argmin([c[0], W - c[0], H - c[1], c[1]]))  # left, right, bottom, top
    if side >= 2 or not registered_end:
        return -math.inf, math.inf
    s, tx, ty = T_end
    col0 = ((0.0 if side == 0 else float(W)) - centre[0] - tx) / s + centre[0]
    edge = float(cam0.to_world(np.array([col0, H / 2.0]))[0])
    return (-math.inf, edge + long_side / 2) if side == 0 else (edge - long_side / 2, math.inf)


FLOOR_REACH = 1.0  # m: a static surface is a floor under a body when it spans this far to either side of it


def _floor(stim: Stimulus, i: int, x: float, y: float) -> float:
    """The lowest height body ``i``'s centre can reach from ``(x, y)``: the top of the static surface under it
    (spanning :data:`FLOOR_REACH` to either side, so that being pushed off its end is out of reach) plus half
    the body's short side; ``-inf`` where none is."""
    from ..scene import top_surface, x_extent

    tops = [top_surface(s) for s in stim.scene.statics
            if top_surface(s) <= y and x_extent(s)[0] <= x - FLOOR_REACH and x_extent(s)[1] >= x + FLOOR_REACH]
    return max(tops) + stim.scene.bodies[i].short_side / 2 if tops else -math.inf


def _unseen_end(stim: Stimulus, i: int, initial: np.ndarray, Wd: np.ndarray, seen_whole: np.ndarray,
                y_range: np.ndarray) -> bool:
    """Bounds on the final height of body ``i``, whose end is not seen, from what is final already
    (``y_range[i]``; ``seen_whole`` its whole sightings in registered frames). Returns whether it has
    fallen for good.

    * Down: no lower than the static surface under it (:func:`_floor`). A body that lies on the floor
      already (its start within the fall threshold of its lowest height: a base block lying flat) cannot
      fall, whatever moves out of the picture.
    * Up: no higher than its lowest whole sighting plus its own short side. Nothing in a scene of
      inelastic bodies lifts a body back by its own thickness once it has dropped (undoing a fall takes
      the energy of another body falling further, delivered upwards); with elastic bodies (elasticity
      above 0.2) a bounce might, and there is no such bound. A body whose lowest sighting is more than
      the fall threshold plus its short side below its start has therefore **fallen for good**: the
      yes/no judgment and the count are answerable though where it ends is not shown."""
    body = stim.scene.bodies[i]
    y0 = initial[i, 1]
    ys = Wd[seen_whole, i, 1]
    low = float(ys.min()) if len(ys) else y0
    xs = Wd[seen_whole, i, 0]
    x = float(xs[np.argmin(ys)]) if len(ys) else initial[i, 0]
    elastic = max([b.elasticity for b in stim.scene.bodies] + [getattr(s, "elasticity", 0.0)
                                                                 for s in stim.scene.statics])
    hi = low + body.short_side if elastic <= 0.2 else math.inf
    y_range[i] = (_floor(stim, i, x, low), hi)
    return y_range[i, 1] < y0 - fall_threshold(stim.scene)


def _read_solo(stim: Stimulus, groups: _Groups, reg: _Regions, initial: np.ndarray, final: np.ndarray,
               P: np.ndarray, Wd: np.ndarray, base: "_TimeBase", cam0: Camera, registered: np.ndarray,
               x_range: np.ndarray, y_range: np.ndarray, T: np.ndarray, notes: list[str]) -> tuple[np.ndarray, bool]:
    """Step 5 for bodies read by colour: their last whole position, and flags for bodies that vanish or leave
    the picture. Returns which (frame, body) left the picture, and whether the video is unreadable.

    A body the camera took out of the picture is read where it was last seen when it was at rest there
    (:func:`_rest_place`) and nothing else left the picture moving (out of sight, nothing can then disturb
    it: a scene at rest stays at rest, the rule by which the simulator itself stops a rollout). Every other
    body whose end is not seen (it left the picture moving, or something that did could disturb it; it was
    last seen whole where the camera could not be registered) is not guessed: its final height gets the
    bounds of what is final already (``y_range``, :func:`_unseen_end`: it has fallen for good, it cannot
    fall, or either), and its final x those that the side it left by gives (``x_range``,
    :func:`_exit_bounds`; unbounded when it vanished or was last seen in an unregistered frame). Queries are
    answered only where their answer is the same across those bounds (:func:`ipe.video.readout.judge_frames`).
    A body that vanishes inside the picture before it fell makes the video unreadable."""
    bodies, (F, n), H, W = stim.scene.bodies, reg.found.shape, cam0.height, cam0.width
    exited = np.zeros((F, n), dtype=bool)
    unreadable = False
    moving_at_end: list[str] = []
    at_rest_exits: list[int] = []
    moving_exits: list[int] = []
    unseen: dict[int, str] = {}  # bodies whose end is not seen: why
    exit_bounds: dict[int, tuple[float, float]] = {}  # bodies that left at rest: the x bounds of their side
    f_end, found, border = base.f_end, reg.found, reg.border
    whole_reg = found & ~border & registered[:, None]
    still = bool(np.allclose(P, reg.C, equal_nan=True))  # no camera motion was registered
    centre = np.array([W / 2.0, H / 2.0])
    for i in groups.solo:
        seen = np.nonzero(found[:f_end + 1, i])[0]
        last = int(seen[-1])
        whole = np.nonzero(found[:f_end + 1, i] & ~border[:f_end + 1, i])[0]
        lw = int(whole[-1]) if len(whole) else last
        final[i, :2] = Wd[lw, i]
        if not registered[lw]:  # seen where the camera is not known: where it is in the scene is not
            wr = np.nonzero(whole_reg[:f_end + 1, i])[0]
            if len(wr):
                final[i, :2] = Wd[int(wr[-1]), i]
            x_range[i] = (-math.inf, math.inf)
            unseen[i] = (f"last seen whole at frame {base.use[lw]}, where the camera could not be registered to "
                         "the scene (too little of it at rest in view)")
            if last < f_end:
                exited[last + 1:, i] = True
            continue
        if last < f_end:
            drop = initial[i, 1] - final[i, 1]
            if border[last, i]:
                p = P[last, i]
                # through the scene's own edge: its centre at the first frame's edge; with a fixed camera, also
                # a body that moved to within its length of that edge (only physics moves it there)
                out_side = p[0] < 2 or p[0] > W - 2 or p[1] > H - 2
                if still and not out_side:
                    reach = bodies[i].long_side / cam0.metres_per_pixel
                    moved = float(np.hypot(*(p - P[0, i]))) > 0.5 * reach if reg.found[0, i] else True
                    out_side = moved and (p[0] < reach or p[0] > W - reach or p[1] > H - reach)
                exited[last + 1:, i] = True
                rest = None if out_side else _rest_place(Wd[:, i], whole_reg[:, i], lw, base, base.thr,
                                                       cam0.metres_per_pixel)
                if rest is not None:  # at rest where the camera took it out of the picture: read there
                    final[i, :2] = rest
                    at_rest_exits.append(i)
                    exit_bounds[i] = _exit_bounds(reg.C[last, i], W, H, T[f_end], bool(registered[f_end]), centre,
                                                  cam0, bodies[i].long_side)
                elif out_side:
                    final[i, 1] = cam0.y0 - bodies[i].long_side
                    x_range[i] = _exit_bounds(reg.C[last, i], W, H, T[f_end], bool(registered[f_end]), centre,
                                              cam0, bodies[i].long_side)
                    notes.append(f"{bodies[i].id} left the picture through its edge (out of the scene; where it "
                                 "landed is not seen)")
                    if p[1] <= H - 2:
                        moving_exits.append(i)
                else:
                    x_range[i] = _exit_bounds(reg.C[last, i], W, H, T[f_end], bool(registered[f_end]), centre,
                                              cam0, bodies[i].long_side)
                    moving_exits.append(i)
                    unseen[i] = ("left the picture with the camera after falling" if drop > base.thr else
                                 "left the picture with the camera while moving")
            elif drop > base.thr:
                x_range[i] = (-math.inf, math.inf)
                notes.append(f"{bodies[i].id} vanished at frame {base.use[last + 1]} after falling")
            else:
                notes.append(f"{bodies[i].id} vanished at frame {base.use[last + 1]}")
                unreadable = True
        elif (base.truncated > 0 or not base.timed) and _still_moving(Wd[:lw + 1, i], whole_reg[:lw + 1, i], base):
            # the video ends before the horizon, or its time scale is unknown: the frame read is the
            # horizon's only if nothing is still moving there
            moving_at_end.append(bodies[i].id)
    if at_rest_exits:
        ids = ", ".join(bodies[i].id for i in at_rest_exits[:4]) + (" …" if len(at_rest_exits) > 4 else "")
        if moving_exits or unseen:
            movers = list(dict.fromkeys(j for j in moving_exits + list(unseen) if j not in at_rest_exits))
            notes.append(f"{ids} left the picture with the camera at rest, but "
                         f"{', '.join(bodies[j].id for j in movers[:3])} left it moving or unseen: what happened "
                         "out of the picture is not shown")
            for i in at_rest_exits:
                unseen[i] = "left the picture at rest, where something moving out of sight could disturb it"
                x_range[i] = exit_bounds[i]
        else:
            notes.append(f"{ids} left the picture with the camera while at rest; read where last seen")
    gone, undecided = [], []
    for i, why in unseen.items():
        fell_for_good = _unseen_end(stim, i, initial, Wd, whole_reg[:f_end + 1, i].nonzero()[0], y_range)
        if fell_for_good:
            gone.append(bodies[i].id)
        elif y_range[i, 0] < initial[i, 1] - base.thr:
            undecided.append(bodies[i].id)
        notes.append(f"{bodies[i].id} {why} (where it ended is not seen"
                     + ("; it had fallen for good)" if fell_for_good else "; it cannot fall)"
                        if y_range[i, 0] >= initial[i, 1] - base.thr else "; whether it fell is not known)"))
    if gone:
        notes.append(f"{', '.join(gone[:4])}{' …' if len(gone) > 4 else ''} dropped by more than the fall threshold "
                     "and their own thickness while in view: fallen, though not seen to land")
    if undecided:
        notes.append(f"whether {', '.join(undecided[:4])}{' …' if len(undecided) > 4 else ''} fell is not shown: "
                     "judgments that depend on it are not answered")
    if moving_at_end:
        ids = ", ".join(moving_at_end[:4]) + (" …" if len(moving_at_end) > 4 else "")
        if base.truncated > 0:
            notes.append(f"{ids} still moving where the video ends, before the horizon: where they come to rest "
                         "is not shown")
        else:
            notes.append(f"{ids} still moving at the frame read, and no free fall to time the video by: whether "
                         "that frame is the horizon cannot be told")
        unreadable = True
    return exited, unreadable


@dataclass
class _TimeBase:
    """The frames processed (``use``), which one is read (``f_end``), the frame rate, and the fall threshold."""

    use: np.ndarray
    f_end: int
    fps: float
    truncated: float
    step: float
    thr: float
    window: tuple[int, int] | None = None  # processed frames a measured time scale puts the horizon between
    timed: bool = True                      # the motion was timed by free fall


def _read_shared(stim: Stimulus, ff: FirstFrame, groups: _Groups, lab_end: np.ndarray, ground_end: float,
                 T_end: np.ndarray, centre: np.ndarray, cam0: Camera, thr: float, final: np.ndarray,
                 notes: list[str]) -> bool:
    """Step 5 for bodies that share a colour: motion masks at the frame read. A body whose first-frame
    footprint (carried by the camera) is still covered by its colour stayed; the others landed where their
    colour is left over. Returns whether the video is unreadable (a body outside the picture)."""
    from scipy import ndimage

    bodies, (H, W) = stim.scene.bodies, lab_end.shape
    s, tx, ty = T_end
    rr, cc = np.mgrid[0:H, 0:W]
    stayed_cover = np.zeros((H, W), dtype=bool)
    moved = []
    unreadable = False
    for grp in groups.shared:
        gm = lab_end == groups.group_label[grp[0]]
        for i in grp:
            foot = ff.labels == 2 + i
            inner = ndimage.binary_erosion(foot, _SQ, border_value=0)  # edges blend as bodies settle
            fr, fc = np.nonzero(inner if inner.sum() >= 0.3 * foot.sum() else foot)
            if not len(fr):
                continue
            q = _apply(np.stack([fc + 0.5, fr + 0.5], 1), s, np.array([tx, ty]), centre)
            qc = np.clip(np.floor(q[:, 0]).astype(int), 0, W - 1)
            qr = np.clip(np.floor(q[:, 1]).astype(int), 0, H - 1)
            inside = (q[:, 0] >= 0) & (q[:, 0] < W) & (q[:, 1] >= 0) & (q[:, 1] < H)
            if inside.mean() < 0.8:
                notes.append(f"{bodies[i].id} outside the picture at the frame read")
                unreadable = True
                continue
            if gm[qr[inside], qc[inside]].mean() >= 0.8:
                stayed_cover[qr, qc] = True
            else:
                moved.append((i, grp[0]))
    for i, g0 in moved:
        left = (lab_end == groups.group_label[g0]) & ~stayed_cover
        if groups.group_label[g0] == 1:  # the ground's colour: only what stands above the ground's edge
            left &= rr < (ground_end if math.isfinite(ground_end) else H) - 0.5
        x0, y0 = bodies[i].position
        if left.any():
            p = _apply(np.stack([cc[left] + 0.5, rr[left] + 0.5], 1), 1.0 / s, -np.array([tx, ty]) / s, centre)
            landing = cam0.to_world(p.mean(0))
            final[i, :2] = (landing[0], min(landing[1], y0 - 2 * thr))
        else:
            final[i, :2] = (x0, y0 - 2 * thr)
    return unreadable


def _quality(ff: FirstFrame, groups: _Groups, reg: _Regions, exited: np.ndarray, rms: np.ndarray, tol: float,
             px_area: np.ndarray, base: _TimeBase, notes: list[str]) -> float:
    """Share of (frame, body) pairs read times the first-frame agreement, lowered by flags (see the module)."""
    fe = base.f_end + 1
    n = reg.found.shape[1]
    read = reg.found[:fe] | exited[:fe]
    for grp in groups.shared:
        read[:, grp] = True
    coverage = float(read.mean()) if read.size else 0.0
    q = coverage * float(np.nanmin(np.r_[ff.agreement, 1.0]) if n else 1.0)
    big = reg.extra[:fe] > 0.5 * float(px_area.min())
    if big.sum() >= 3:
        notes.append(f"unexplained object in {int(big.sum())} frames (first at frame {base.use[int(np.argmax(big))]})")
        q *= 0.8
    med_rms = float(np.median(rms[1:fe])) if fe > 1 else 0.0
    if med_rms > tol:
        notes.append(f"registration residual {med_rms:.1f} px")
        q *= tol / med_rms
    if base.truncated > 0:
        q *= 0.9
    return q


def track_robust(frames: np.ndarray, stim: Stimulus, camera: Camera, colours: dict[str, str],
                 fps: float | None = None, max_frames: int = 160) -> RobustTrack:
    """Read one video of ``stim`` into initial and final body positions, with flags (see the module).

    A video larger than twice :data:`WORK_SIZE` on its short side is read at a working resolution: averaged
    over ``k × k`` pixel blocks (``k = short side // WORK_SIZE``), which keeps its anti-aliasing, as a render at
    that size would have it, and costs a ``k²``-th (8 → 2 CPU s a video at 400 px). Smaller videos are read as
    they are. ``transforms`` are in the video's own pixels either way."""
    frames, cam0, k = working_resolution(frames, camera)
    F_all, H, W = frames.shape[:3]
    bodies = stim.scene.bodies
    n = len(bodies)
    nominal = float(fps) if fps else 30.0
    ff = first_frame_check(frames[0], stim, cam0, colours)
    notes: list[str] = list(ff.notes)
    init_world = np.array([[b.position[0], b.position[1], b.angle] for b in bodies], dtype=float)
    if ff.missing:
        return RobustTrack(init_world, init_world.copy(), 0.0, "colour", True, notes, nominal, F_all,
                           np.tile([1.0, 0.0, 0.0], (F_all, 1)), ff)
    use = np.arange(F_all) if F_all <= max_frames else np.unique(
        np.round(np.linspace(0, F_all - 1, max_frames)).astype(int))
    groups = _colour_groups(ff, n)
    refs, tols = ff.refs.copy(), ff.tolerances.copy()
    px_area = np.array([b.area for b in bodies]) / cam0.metres_per_pixel ** 2
    need = np.maximum(1.0, 0.2 * px_area)
    centre = np.array([W / 2.0, H / 2.0])
    start = cam0.to_pixels(np.array([b.position for b in bodies], dtype=float).reshape(n, 2))
    size_px = np.array([b.long_side for b in bodies]) / cam0.metres_per_pixel
    reg = _segment_frames(frames, use, groups, refs, tols, need, start, size_px)
    tol = max(0.5, 0.005 * W)
    T, rms, registered = _register_frames(reg, centre, tol, _camera_is_still(reg, W, H))
    if np.abs(T[:, 0] - 1).max() > 0.003 or np.abs(T[:, 1:]).max() > 0.3:
        notes.append(f"camera moves (up to {100 * np.abs(T[:, 1:] / [W, H]).max():.0f}% pan, "
                     f"{100 * np.abs(np.log(T[:, 0])).max():.0f}% zoom); registered to the static scene")
    P = (reg.C - centre - T[:, None, 1:]) / T[:, None, :1] + centre  # in the first frame's pixels
    Wd = cam0.to_world(P)
    thr = fall_threshold(stim.scene)
    base = _time_base(stim, use, reg.found, Wd[..., 1], thr, nominal, notes)
    fps_eff, f_end = base.fps, base.f_end
    initial, final = init_world.copy(), init_world.copy()
    for i in groups.solo:  # sub-pixel centres in the first frame
        if reg.found[0, i]:
            initial[i, :2] = cam0.to_world(_centre_at(frames, use, reg, 0, i, refs, need[i]))
    lost = [i for i in groups.solo if not reg.found[0, i]]  # too small or blended away in the first frame
    if lost:
        notes.append(f"{', '.join(bodies[i].id for i in lost[:4])} not found by colour; read by motion")
        groups.solo = [i for i in groups.solo if reg.found[0, i]]
        groups.shared = groups.shared + [[i] for i in lost]
        groups.group_label.update({i: 2 + i for i in lost})
    x_range = np.full((n, 2), np.nan)  # NaN: the final x was seen
    y_range = np.full((n, 2), np.nan)  # NaN: the final y was seen (or is final: out of the scene)
    exited, unreadable = _read_solo(stim, groups, reg, initial, final, P, Wd, base, cam0, registered, x_range,
                                    y_range, T, notes)
    unreadable |= _horizon_uncertain(stim, groups, reg, Wd, initial, base, notes)
    if f_end == len(use) - 1 and f_end in reg.labs:
        # sub-pixel centres at the last frame for bodies read there (no camera motion only: exact registration)
        for i in groups.solo:
            if reg.found[f_end, i] and not reg.border[f_end, i] and not exited[f_end, i]:
                p = (_centre_at(frames, use, reg, f_end, i, refs, need[i]) - centre - T[f_end, 1:]) / T[f_end, 0]
                final[i, :2] = cam0.to_world(p + centre)
    if groups.shared and not registered[f_end]:
        notes.append(f"the camera could not be registered to the scene at frame {use[f_end]}, the frame read (too "
                     "little of it at rest in view)")
        unreadable = True
    elif groups.shared:
        lab_end = reg.labs.get(f_end)
        if lab_end is None:
            lab_end = _label(frames[use[f_end]], refs, tols, groups)
        unreadable |= _read_shared(stim, ff, groups, lab_end, reg.ground[f_end], T[f_end], centre, cam0, thr, final,
                                   notes)
    q = 0.0 if unreadable else _quality(ff, groups, reg, exited, rms, tol, px_area, base, notes)
    method = "colour" if not groups.shared else ("motion" if not groups.solo else "mixed")
    full_T = np.tile([1.0, 0.0, 0.0], (F_all, 1))
    full_T[use] = T
    full_T[:, 1:] *= k  # in the video's own pixels
    return RobustTrack(initial, final, float(q), method, unreadable, notes, fps_eff, F_all, full_T, ff,
                       np.isnan(x_range[:, 0]), np.where(np.isnan(x_range), final[:, :1], x_range),
                       np.isnan(y_range[:, 0]), np.where(np.isnan(y_range), final[:, 1:2], y_range))
