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
