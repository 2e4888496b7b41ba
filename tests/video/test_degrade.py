"""Degraded videos (ipe.video.degrade): seeded, and the conditions the robust readout is measured on."""

from __future__ import annotations

import numpy as np

from ipe.stimuli.towers import generate_towers
from ipe.video.degrade import CONDITIONS, degraded_video

FPS = 15.0


def test_degradations_are_seeded():
    s = generate_towers(1, seed=5)[0]
    a = degraded_video(s, "noise", size=32, fps=FPS, seed=3).frames
    assert np.array_equal(a, degraded_video(s, "noise", size=32, fps=FPS, seed=3).frames)
    assert not np.array_equal(a, degraded_video(s, "noise", size=32, fps=FPS, seed=4).frames)
    assert set(CONDITIONS) >= {"clean", "hue", "half_speed", "pan", "zoom", "drift"}


def test_half_speed_shows_the_whole_horizon_and_the_cut_shows_half():
    """Slow motion of the whole horizon has twice the frames (less one); cut to the render's length, it shows
    the first half of the horizon. The truth is the simulation at the horizon in both."""
    s = generate_towers(1, seed=5)[0]
    clean = degraded_video(s, "clean", size=24, fps=FPS)
    slow = degraded_video(s, "half_speed", size=24, fps=FPS)
    cut = degraded_video(s, "half_speed_cut", size=24, fps=FPS)
    F = len(clean.frames)
    assert len(slow.frames) == 2 * F - 1 and len(cut.frames) == F
    assert np.array_equal(slow.frames[-1], clean.frames[-1])     # the slowed video ends at the horizon
    assert np.array_equal(cut.frames, slow.frames[:F])
    assert np.array_equal(slow.states, clean.states) and np.array_equal(cut.states, clean.states)
