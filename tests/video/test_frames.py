"""Video frames (ipe.video.frames): the palette, the camera, and the checked options of render_videos."""

from __future__ import annotations

import numpy as np
import pytest

from ipe.errors import InputError
from ipe.video.frames import Camera, render_videos, video_palette


def test_palette_is_distinct_and_bounded():
    pal = video_palette(36)
    assert len(set(pal)) == 36
    rgb = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in pal], dtype=float)
    d = np.sqrt(((rgb[:, None] - rgb[None]) ** 2).sum(-1)) + np.eye(36) * 999
    assert d.min() > 40
    assert np.abs(rgb - 255).sum(1).min() > 100  # none close to the white background
    with pytest.raises(InputError, match="at most 36"):
        video_palette(37)


def test_camera_round_trip(demo):
    cam = Camera.for_stimulus(demo[0], 64)
    xy = np.array([[0.1, 0.2], [-0.3, 0.9]])
    assert np.allclose(cam.to_world(cam.to_pixels(xy)), xy)
    assert cam.to_pixels(np.array([cam.x0, cam.y1])).tolist() == [0.0, 0.0]
    assert Camera.from_dict(cam.to_dict()) == cam


@pytest.mark.parametrize("kwargs,message", [
    (dict(cond_frames=0), "--cond-frames must be a positive integer, got 0"),
    (dict(sigma=-0.5), "--sigma must be a finite number >= 0, got -0.5"),
    (dict(mu=float("nan")), "--mu must be a finite number >= 0, got nan"),
])
def test_render_videos_checks_its_options_before_writing(kwargs, message, demo, tmp_path):
    with pytest.raises(InputError) as exc:
        render_videos(list(demo)[:1], tmp_path / "out", size=32, **kwargs)
    assert str(exc.value) == message
    assert not (tmp_path / "out").exists()
