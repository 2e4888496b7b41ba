"""The robust readout: first-frame check, colour mix-ups, degraded videos, flags instead of guesses.

The default suite keeps this cheap (one tower per case at 96 px, 15 frames
per second); the full table (60 towers, every degradation) is behind ``slow`` and
in ``experiments/video_readout_degraded.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from ipe.queries import fall_threshold
from ipe.stimuli.towers import generate_towers
from ipe.video.degrade import degraded_video
from ipe.video.readout import judge_frames
from ipe.video.frames import Camera, body_colours, draw_frame, video_trajectory
from ipe.video.robust import first_frame_check, fit_camera, label_image, track_robust

FPS = 15.0


@pytest.fixture(scope="module")
def towers():
    return generate_towers(6, seed=2026)


def _count(stim, initial, final):
    thr = fall_threshold(stim.scene)
    return int(((initial[:, 1] - final[:, 1]) > thr).sum())


def test_label_image_puts_bodies_where_the_stimulus_says(towers):
    s = towers[0]
    cam = Camera.for_stimulus(s, 64)
    lab = label_image(s, cam)
    for i, b in enumerate(s.scene.bodies):
        col, row = cam.to_pixels(np.array(b.position))
        assert lab[int(row), int(col)] == 2 + i
    assert (lab == 1).any() and (lab == 0).any() and (lab == -1).any()


def test_fit_camera_pads_another_aspect_without_stretching(towers):
    cam = Camera.for_stimulus(towers[0], 64)
    wide = fit_camera(cam, 128, 72)
    assert wide.metres_per_pixel == pytest.approx((cam.y1 - cam.y0) / 72)
    assert (wide.x0 + wide.x1) / 2 == pytest.approx((cam.x0 + cam.x1) / 2)
    assert fit_camera(cam, 32, 32) == cam.resized(32, 32)


def test_colour_mix_up_is_flagged_and_bodies_read_by_position(towers):
    """Two bodies drawn in each other's colours: flagged as a mix-up, and still read right."""
    s = towers[0]
    cols = body_colours(s)
    ids = [b.id for b in s.scene.bodies]
    swapped = dict(cols)
    swapped[ids[0]], swapped[ids[5]] = cols[ids[5]], cols[ids[0]]
    cam = Camera.for_stimulus(s, 96)
    states, visible = video_trajectory(s, FPS)
    frames = np.stack([draw_frame(s, states[f], visible[f], cam, swapped) for f in range(len(states))])
    ff = first_frame_check(frames[0], s, cam, cols)
    assert (ids[0], ids[5]) in ff.mixups and (ids[5], ids[0]) in ff.mixups
    assert len(ff.mixups) == 2
    tr = track_robust(frames, s, cam, cols, fps=FPS)
    assert any("colour mix-up" in n and ids[0] in n for n in tr.notes)
    assert not tr.unreadable
    assert _count(s, tr.initial, tr.final) == _count(s, states[0], states[-1])
    # the same video with the right colours raises no flag
    ok = np.stack([draw_frame(s, states[f], visible[f], cam, cols) for f in (0,)])
    assert first_frame_check(ok[0], s, cam, cols).mixups == []


def test_a_video_of_another_scene_is_unreadable_not_guessed(towers):
    a, b = towers[0], towers[1]
    cam = Camera.for_stimulus(a, 96)
    states, visible = video_trajectory(b, FPS)
    frames = np.stack([draw_frame(b, states[f], visible[f], cam, body_colours(a)) for f in range(0, len(states), 6)])
    from ipe.scene import Query

    j = judge_frames(frames, a, cam, [Query("count_fallen")], body_colours(a), fps=FPS / 6)
    assert j.unreadable and np.isnan(j.values[0])
    assert any("does not match the stimulus" in n for n in j.notes)


@pytest.mark.parametrize("condition, which", [("noise", 0), ("hue", 1), ("one_colour", 0), ("pan", 0),
                                              ("zoom", 1)])
def test_degraded_videos_are_read_like_the_simulation(towers, condition, which):
    """One tower per degradation (tower 0 falls, tower 1 stands), 96 px, 15 fps: the count is exact."""
    s = towers[which]
    d = degraded_video(s, condition, size=96, fps=FPS, seed=1)
    tr = track_robust(d.frames, s, d.camera, d.colours, fps=FPS)
    assert not tr.unreadable, tr.notes
    assert _count(s, tr.initial, tr.final) == _count(s, d.states[0], d.states[-1]), (s.id, tr.notes)


def test_camera_motion_is_registered_not_read_as_falls(towers):
    s = towers[1]
    d = degraded_video(s, "pan_zoom", size=96, fps=FPS)
    tr = track_robust(d.frames, s, d.camera, d.colours, fps=FPS)
    assert any("camera moves" in n for n in tr.notes)
    assert _count(s, tr.initial, tr.final) == 0
    clean = track_robust(degraded_video(s, "clean", size=96, fps=FPS).frames, s, d.camera, d.colours, fps=FPS)
    assert not any("camera moves" in n for n in clean.notes)


def test_drifting_camera_reads_a_standing_tower_where_it_rested(towers):
    """A camera that drifts 1 % of the frame per frame takes the tower out of the picture. Blocks at rest when
    they leave are read where they rested (nothing left the picture moving that could disturb them); before,
    every block that left was 'left the picture before it could be read' and the video flagged."""
    s = towers[1]
    d = degraded_video(s, "drift", size=96, fps=30.0)
    tr = track_robust(d.frames, s, d.camera, d.colours, fps=30.0)
    assert not tr.unreadable, tr.notes
    assert _count(s, tr.initial, tr.final) == 0
    assert any("while at rest" in n for n in tr.notes), tr.notes
    path = tr.transforms[:, 1]  # registered: 0.96 px per frame at 96 px, while blocks are in view
    assert abs(path[20] - 0.96 * 20) < 0.5


def test_drifting_camera_flags_blocks_that_leave_before_they_can_be_read(towers):
    """A falling tower under the drift: blocks carried out of the picture while still moving, before they
    had fallen, cannot be read: flagged or left open, not guessed (the bounds on the count always hold the
    simulation's)."""
    s = towers[0]
    d = degraded_video(s, "drift", size=96, fps=30.0)
    tr = track_robust(d.frames, s, d.camera, d.colours, fps=30.0)
    lo, hi = tr.fallen_bounds(fall_threshold(s.scene))
    assert tr.unreadable or lo <= _count(s, d.states[0], d.states[-1]) <= hi
    assert any("camera" in n for n in tr.notes)


def test_drifting_camera_reads_that_a_tower_fell_from_blocks_that_fell_for_good(towers):
    """Tower 3 falls while the camera drifts: its top blocks leave the picture still moving, but only after
    dropping by more than the fall threshold and their own thickness, which nothing in the scene can undo:
    'it fell' is answered (before: the video was flagged, since where they landed is not shown). The base
    blocks left at rest while those moved out of sight, so whether one of them was knocked down is not
    known: the count is left open, not guessed, and its bounds hold the simulation's."""
    from ipe.scene import Query

    s = towers[3]
    d = degraded_video(s, "drift", size=96, fps=30.0)
    tr = track_robust(d.frames, s, d.camera, d.colours, fps=30.0)
    assert not tr.unreadable, tr.notes
    true = _count(s, d.states[0], d.states[-1])
    lo, hi = tr.fallen_bounds(fall_threshold(s.scene))
    assert 1 <= lo <= true <= hi and lo < hi
    assert any("fallen for good" in n for n in tr.notes), tr.notes
    gone = [b.id for b, y in zip(s.scene.bodies, tr.y_range[:, 1] - tr.initial[:, 1]) if y < -0.1]
    j = judge_frames(d.frames, s, d.camera, [Query("count_fallen"), Query("body_falls", {"body": gone[0]})],
                     d.colours, fps=30.0)
    assert np.isnan(j.values[0]) and j.values[1] == 1.0
    assert any("count_fallen not answered" in n for n in j.notes), j.notes


@pytest.fixture(scope="module")
def towers34():
    return generate_towers(34, seed=2026)


def test_pan_and_zoom_that_take_the_ground_out_keep_the_registration(towers34):
    """Tower 33 stands; at frame 11 the zoom takes the ground out of the bottom of the picture and the old
    registration took another grey row for its edge, fitted the vertical pan to it and then never let go
    (a 'still moving' tower, flagged). The ground's edge is now used only where the camera's prediction puts
    it inside the picture, and no frame is registered on the ground alone."""
    s = towers34[33]
    d = degraded_video(s, "pan_zoom", size=96, fps=30.0, seed=2026)
    tr = track_robust(d.frames, s, d.camera, d.colours, fps=30.0)
    assert not tr.unreadable, tr.notes
    assert _count(s, tr.initial, tr.final) == 0
    from ipe.video.degrade import camera_path
    p = camera_path("pan_zoom", len(d.frames))
    true_tx, true_ty = -p[:, 2] * p[:, 0] * 96, p[:, 2] * p[:, 1] * 96
    assert np.abs(tr.transforms[:, 1] - true_tx).max() < 1.0
    assert np.abs(tr.transforms[:, 2] - true_ty).max() < 1.0


def test_a_block_that_leaves_the_picture_leaves_direction_unanswered(towers):
    """Tower 3's top block falls out of the picture (off the scene): it counts as fallen, but where it ended in
    x is not seen, so the direction is not answered (before: read at its last-seen x, 10 cm off on average);
    that it ended beyond the side it left by still answers which way the tower fell."""
    from ipe.queries import Query

    s = towers[3]
    d = degraded_video(s, "clean", size=96, fps=FPS)
    j = judge_frames(d.frames, s, d.camera, [Query("count_fallen"), Query("direction"), Query("fall"),
                                             Query("falls_left")], d.colours, fps=FPS)
    assert not j.unreadable, j.notes
    assert j.values[0] == _count(s, d.states[0], d.states[-1])
    assert np.isnan(j.values[1])
    assert j.values[2] == pytest.approx(j.values[0] / len(s.scene.bodies))
    assert any("not answered" in n and "direction" in n for n in j.notes), j.notes
    # it left by the right side of the picture, so it ended right of it: the side the tower fell to is known
    thr = fall_threshold(s.scene)
    fell = (d.states[0, :, 1] - d.states[-1, :, 1]) > thr
    true_dx = float(np.mean(d.states[-1, fell, 0] - d.states[0, fell, 0]))
    assert j.values[3] == (1.0 if true_dx < 0 else 0.0)


@pytest.mark.slow
def test_degradation_table(tmp_path):
    """The issue's acceptance on 12 towers at 128 px, every degradation (several minutes on 2 cores; the
    60-tower table in docs/video-models.md comes from the same script).

    Every condition of the issue's table, pan, zoom and the drifting camera included: fell agreement >= 98 %
    and exact count >= 90 % of the videos read, and at most one in ten flagged (one in five under a moving
    camera, half under the drift, which carries falling blocks out of the picture while they move); half
    speed cut to the render's length is read exactly where it is read, the rest flagged.
    """
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "experiments" / "video_readout_degraded.py"
    spec = importlib.util.spec_from_file_location("video_readout_degraded", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    table, _ = mod.run(12, 128, seed=2026, out=tmp_path)
    t = table.set_index("condition")
    met = ["clean", "noise", "lighting", "black_bg", "reframe", "hue", "half_speed", "own_colours", "one_colour",
           "pan", "zoom", "pan_zoom", "drift"]
    assert (t.loc[met, "fell_agreement"] >= 0.98).all(), t
    assert (t.loc[met, "count_exact"] >= 0.90).all(), t
    camera = ["pan", "zoom", "pan_zoom"]
    assert (t.loc[[c for c in met[:-1] if c not in camera], "flagged"] <= 0.10).all(), t
    # a falling tower tipping as one while the camera moves can leave too little of the scene at rest in view
    # to register the frame read: flagged, not guessed (2026-12-07, 128 px: pan 1, pan and zoom 2 of 12)
    assert (t.loc[camera, "flagged"] <= 0.20).all(), t
    assert t.loc["half_speed_cut", "count_exact"] >= 0.90, t
    # the drift takes the tower out of the picture: towers whose blocks leave it moving are flagged, the
    # standing ones are read (at 96 px on 60 towers: 17 of 21 falling towers flagged, none of the 39 standing)
    assert t.loc["drift", "flagged"] <= 0.5, t


def test_an_object_that_appears_is_flagged(towers):
    """A generator that invents an object: a body-sized patch of a colour no body has, from frame 10 on."""
    s = towers[1]
    d = degraded_video(s, "clean", size=96, fps=FPS)
    frames = d.frames.copy()
    frames[10:, 8:24, 8:24] = (20, 20, 20)
    tr = track_robust(frames, s, d.camera, d.colours, fps=FPS)
    assert any("unexplained object" in n for n in tr.notes), tr.notes
    clean = track_robust(d.frames, s, d.camera, d.colours, fps=FPS)
    assert not any("unexplained object" in n for n in clean.notes) and tr.quality < clean.quality


def test_a_body_that_vanishes_is_flagged_not_guessed(towers):
    """A standing tower whose top block disappears mid-video: unreadable (it might have fallen or not)."""
    s = towers[1]
    cols = body_colours(s)
    cam = Camera.for_stimulus(s, 96)
    states, visible = video_trajectory(s, FPS)
    top = int(np.argmax(states[0, :, 1]))
    visible = visible.copy()
    visible[10:, top] = False
    frames = np.stack([draw_frame(s, states[f], visible[f], cam, cols) for f in range(len(states))])
    tr = track_robust(frames, s, cam, cols, fps=FPS)
    assert tr.unreadable
    assert any(f"{s.scene.bodies[top].id} vanished" in n for n in tr.notes), tr.notes
    assert tr.quality == 0.0  # an unreadable video says so in its quality too, not a computed share


@pytest.fixture(scope="module")
def towers12():
    return generate_towers(12, seed=2026)


@pytest.mark.parametrize("which", [4, 10])
def test_scene_own_colours_are_read_by_place_and_continuity(towers12, which):
    """The scene's own palette at 128 px: the pale pink block's colour is also what the ground's anti-aliased
    edge (grey on white) and a red block's edge (red on white) blend to. Matched by its known place in the first
    frame and by continuity after, and with blends of two other colours left out, it is read exactly (tower 4
    falls, tower 10 stands: the old readout counted 8 of 9 and 1 of 0)."""
    s = towers12[which]
    d = degraded_video(s, "own_colours", size=128, fps=FPS, seed=1)
    tr = track_robust(d.frames, s, d.camera, d.colours, fps=FPS)
    assert not tr.unreadable, tr.notes
    assert _count(s, tr.initial, tr.final) == _count(s, d.states[0], d.states[-1]), tr.notes
    pink = [b.color for b in s.scene.bodies].index("#fabed4")
    assert np.abs(tr.initial[pink, :2] - d.states[0, pink, :2]).max() < 0.5 * d.camera.metres_per_pixel


def test_blends_of_two_other_colours_are_not_a_body():
    """White over grey (the ground's edge) blends to light grey; a pink body's colour is nearer it than white
    or grey is, but the pixel lies on the white–grey segment: it is a blend, not the pink body."""
    from ipe.video.robust import label_frame, reject_blends

    refs = np.array([[255, 255, 255], [128, 128, 128], [250, 190, 212]], dtype=float)
    frame = np.full((9, 12, 3), 255, dtype=np.uint8)
    frame[6:] = 128                    # the ground
    frame[5] = 200                     # its anti-aliased edge (white over grey)
    frame[1:4, 2:6] = (250, 190, 212)  # the pink body
    lab = label_frame(frame, refs, np.full(3, 60.0), np.ones(3, dtype=bool))
    assert (lab[5] == 2).all()         # nearest colour alone: the edge is "pink"
    out = reject_blends(frame, lab, refs)
    assert (out[5] == -1).all()
    assert (out[1:4, 2:6] == 2).all() and (out[6:] == 1).all()


def test_time_scale_of_slow_motion_uses_windows_of_simulated_time():
    """A body in free fall filmed at 60 frames per simulated second with 0.15 px of noise, nominal 30: the
    window grows to 0.3 s of the slowed motion, and the estimate is within 5 % (9-frame windows: 10 % off)."""
    from ipe.video.robust import time_scale

    rng = np.random.default_rng(0)
    fps, mpp = 60.0, 0.02
    t = np.arange(121) / fps
    y = np.stack([2.0 - 0.5 * 9.81 * np.clip(t - t0, 0, None) ** 2 for t0 in (0.2, 0.5, 0.8)], 1)
    y = np.where(y > 0.1, y, 0.1) + rng.normal(0, 0.15 * mpp, y.shape)
    est, n = time_scale(y, np.ones(3, dtype=bool), 9.81)  # nominal 30 frames per second (the default)
    assert abs(est / fps - 1) < 0.05, est


def test_a_long_video_subsampled_keeps_its_time_scale(towers):
    """More frames than ``max_frames``: the frames read are every other one, and the free fall measured on them
    is per processed frame; it is converted back to the video's frames (the old code divided by the step)."""
    s = towers[0]
    d = degraded_video(s, "clean", size=64, fps=30.0, seed=1)
    tr = track_robust(d.frames, s, d.camera, d.colours, fps=30.0, max_frames=31)
    assert not any("expected speed" in n for n in tr.notes), tr.notes
    assert abs(tr.fps - 30.0) < 1e-9
    assert _count(s, tr.initial, tr.final) == _count(s, d.states[0], d.states[-1])


def test_slow_motion_of_the_whole_horizon_is_read_at_its_horizon(towers12):
    """Half speed over the whole horizon (twice the frames, 64 px): timed from free fall to within 15 % (the old
    9-frame windows said 47 frames per second, not 60), and read where the horizon falls on that time scale."""
    s = towers12[7]
    d = degraded_video(s, "half_speed", size=64, fps=30.0, seed=1)
    assert len(d.frames) == 2 * len(d.states) - 1
    tr = track_robust(d.frames, s, d.camera, d.colours, fps=30.0)
    assert not tr.unreadable, tr.notes
    assert any("expected speed" in n for n in tr.notes)
    assert abs(tr.fps / 60.0 - 1) < 0.15
    assert _count(s, tr.initial, tr.final) == _count(s, d.states[0], d.states[-1]), tr.notes


def test_slow_motion_cut_short_without_free_fall_is_flagged_not_guessed(towers12):
    """Half speed cut to the render's length: tower 5 only starts to tip in the half horizon shown, so no free
    fall times the video, and its blocks are still moving at the end. The old readout took the last frame for
    the horizon and counted 4 of 8; it cannot be told, so it is unreadable, with quality 0."""
    s = towers12[5]
    d = degraded_video(s, "half_speed_cut", size=96, fps=FPS, seed=1)
    tr = track_robust(d.frames, s, d.camera, d.colours, fps=FPS)
    assert tr.unreadable
    assert tr.quality == 0.0
    assert any("no free fall to time the video by" in n for n in tr.notes), tr.notes


def test_still_moving_needs_a_speed_beyond_pixel_noise():
    """A body at rest whose centre jitters by pixel noise is at rest; one sliding at 30 cm/s is moving. (A
    three-frame difference called σ 25 noise at 96 px motion and flagged standing towers.)"""
    from ipe.video.robust import _still_moving, _TimeBase

    rng = np.random.default_rng(1)
    base = _TimeBase(np.arange(61), 60, 30.0, 0.0, 1.0, 0.0075)
    found = np.ones(61, dtype=bool)
    still = np.array([0.3, 0.5]) + rng.normal(0, 0.3 * 0.03, (61, 2))   # 0.3 px of noise at 3 cm per pixel
    assert not _still_moving(still, found, base)
    sliding = still + np.outer(np.arange(61) / 30.0, [0.30, 0.0])
    assert _still_moving(sliding, found, base)


def test_a_body_creeping_by_a_fraction_of_a_millimetre_is_not_a_free_fall():
    """A standing block that settles by a few millimetres bends a parabola too, of an acceleration that would mean 0.04×
    speed (own colours, tower 19, 96 px: the standing tower was flagged as slow motion cut short). Windows must
    bend by 2 mm to count: no time scale is read from it."""
    from ipe.video.robust import time_scale

    t = np.arange(61.0)
    y = np.stack([1.0 - 0.5e-5 * np.clip(t - 30, 0, None) ** 2, np.full(61, 0.5)], 1)  # 4.5 mm by the end
    y[20:23, 0] -= 0.03  # a transient jump: the block counts as one that moved
    est, n = time_scale(y, np.array([True, False]), 9.81)
    assert np.isnan(est) and n == 0, est


def test_a_camera_whose_ground_edge_moves_then_leaves_the_picture_is_not_still():
    """Under pan and zoom at 256 px the zoom takes the ground out of the picture from frame 11; the old test
    needed its edge in every frame, took the camera for fixed, and read the pan as slow motion (15 standing
    towers of 60 flagged). The edge moved by 18 px while it was seen: the camera moves. A fixed camera's
    edge stays put while blocks fall: still."""
    from ipe.video.robust import _Regions, _camera_is_still

    F, n = 20, 3
    reg = _Regions.empty(F, n)
    reg.found[:] = True
    reg.C[:] = [[100.0, 150.0], [130.0, 150.0], [115.0, 120.0]]
    reg.C[:, 2, 1] += np.linspace(0, 40, F)  # the top block falls (rows grow downwards)
    reg.ground[:] = 200.0
    assert _camera_is_still(reg, 256, 256)
    reg.ground[:11] = 200.0 + np.linspace(0, 18, 11)
    reg.ground[11:] = np.nan
    assert not _camera_is_still(reg, 256, 256)


@pytest.mark.slow
def test_standing_tower_under_pan_and_zoom_at_256_px_is_read():
    """Tower 1 stands; under pan and zoom at 256 px it was flagged ('motion runs at 0.2× the expected speed',
    the pan read as slow motion). Slow motion with a fixed camera is still read as slow motion."""
    s = generate_towers(2, seed=2026)[1]
    d = degraded_video(s, "pan_zoom", size=256, fps=30.0, seed=2026)
    tr = track_robust(d.frames, s, d.camera, d.colours, fps=30.0)
    assert not tr.unreadable, tr.notes
    assert _count(s, tr.initial, tr.final) == 0
    assert any("camera moves" in n for n in tr.notes) and not any("expected speed" in n for n in tr.notes)
    slow = degraded_video(s, "half_speed", size=256, fps=30.0, seed=2026)
    tr = track_robust(slow.frames, s, slow.camera, slow.colours, fps=30.0)
    assert not any("camera moves" in n for n in tr.notes), tr.notes


def test_bounds_on_a_body_whose_end_is_not_seen(towers):
    """What is final about a body that left the picture: a base block lying flat cannot fall (the floor is
    within the fall threshold of it); a block seen more than the threshold plus its thickness below its start
    has fallen for good; one seen 5 cm lower may still be anything; in an elastic scene a bounce could undo a
    drop, and nothing is final."""
    from dataclasses import replace

    from ipe.video.robust import _unseen_end

    s = towers[1]
    bodies = s.scene.bodies
    initial = np.array([[b.position[0], b.position[1], b.angle] for b in bodies])
    base = int(np.argmin(initial[:, 1]))
    top = int(np.argmax(initial[:, 1]))
    assert bodies[base].height < bodies[base].width  # lying flat on the ground
    seen = np.arange(3)
    Wd = np.repeat(initial[None, :, :2], 3, axis=0)
    y_range = np.full((len(bodies), 2), np.nan)
    assert not _unseen_end(s, base, initial, Wd, seen, y_range)
    assert y_range[base, 0] >= initial[base, 1] - fall_threshold(s.scene)  # cannot fall
    Wd[2, top, 1] -= 0.2
    assert _unseen_end(s, top, initial, Wd, seen, y_range)
    assert y_range[top, 1] < initial[top, 1] - fall_threshold(s.scene)
    Wd[2, top, 1] += 0.15  # 5 cm below its start: fallen, but a block lying across a gap might tip back
    assert not _unseen_end(s, top, initial, Wd, seen, y_range)
    assert y_range[top, 0] < initial[top, 1] - fall_threshold(s.scene) < y_range[top, 1]
    bouncy = replace(s, scene=replace(s.scene, bodies=tuple(replace(b, elasticity=0.8) for b in bodies)))
    Wd[2, top, 1] -= 0.15
    assert not _unseen_end(bouncy, top, initial, Wd, seen, y_range)


def test_large_videos_are_read_at_a_working_resolution(towers):
    """A 400 px video is averaged over 2 × 2 blocks (a render at 200 px, anti-aliased), its camera maps the
    world to the same place; a 16:9 one keeps its aspect; under 400 px nothing changes."""
    from ipe.video.robust import working_resolution

    s = towers[1]
    cam = Camera.for_stimulus(s, 400)
    frames = np.zeros((2, 400, 400, 3), dtype=np.uint8)
    frames[:, 10, 20] = 255
    small, cam2, k = working_resolution(frames, cam)
    assert k == 2 and small.shape == (2, 200, 200, 3) and (cam2.width, cam2.height) == (200, 200)
    assert small[0, 5, 10, 0] == 64  # one white pixel of four
    p = np.array([[0.3, 0.4], [-0.5, 1.2]])
    assert np.allclose(cam2.to_pixels(p) * 2, cam.to_pixels(p))
    wide = np.zeros((1, 400, 712, 3), dtype=np.uint8)
    small, cam3, k = working_resolution(wide, cam)
    assert k == 2 and small.shape == (1, 200, 356, 3)
    assert np.allclose(cam3.to_pixels(p) * 2, fit_camera(cam, 712, 400).to_pixels(p))
    frames = np.zeros((1, 256, 256, 3), dtype=np.uint8)
    same, cam4, k = working_resolution(frames, Camera.for_stimulus(s, 256))
    assert k == 1 and same is frames
