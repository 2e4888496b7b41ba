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


def test_drifting_camera_is_flagged_when_it_loses_the_scene(towers):
    """A camera that drifts 1 % per frame for the whole video takes the tower out of the picture."""
    s = towers[1]
    d = degraded_video(s, "drift", size=96, fps=FPS)
    tr = track_robust(d.frames, s, d.camera, d.colours, fps=FPS)
    assert tr.unreadable or _count(s, tr.initial, tr.final) == _count(s, d.states[0], d.states[-1])
    assert any("camera" in n for n in tr.notes)


@pytest.mark.slow
def test_degradation_table(tmp_path):
    """The table in docs/video-models.md: 12 towers at 128 px, every degradation (about 5 min on 2 cores).

    Fell agreement >= 98 % and exact count >= 90 % where the readout meets the issue's acceptance; a drifting
    camera that loses the scene is flagged every time. The conditions that do not yet meet it (half speed,
    own colours) are measured, not asserted: see the docs.
    """
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "experiments" / "video_readout_degraded.py"
    spec = importlib.util.spec_from_file_location("video_readout_degraded", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    table, _ = mod.run(12, 128, seed=2026, out=tmp_path)
    t = table.set_index("condition")
    met = ["clean", "noise", "lighting", "black_bg", "reframe", "hue", "one_colour", "pan", "zoom", "pan_zoom"]
    assert (t.loc[met, "fell_agreement"] >= 0.98).all(), t
    assert (t.loc[met, "count_exact"] >= 0.90).all(), t
    assert (t.loc[met, "flagged"] == 0).all(), t
    assert t.loc["drift", "flagged"] >= 0.9, t


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
