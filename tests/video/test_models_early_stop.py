"""``--no-early-stop`` on ``ipe video train`` and ``ipe video generate``: the rollouts they simulate run to the horizon."""

from __future__ import annotations

import json

import pytest

import ipe
from ipe.cli import main
from ipe.stimuli.towers import generate_towers
from ipe.video.models import SimVPPredictor, VideoConfig, save_model, video_clip


@pytest.fixture
def spy(monkeypatch):
    import ipe.video.frames as frames

    seen = []
    real = frames.run_sample

    def run_sample(*a, **k):
        seen.append(k.get("early_stop", True))
        return real(*a, **k)

    monkeypatch.setattr(frames, "run_sample", run_sample)
    return seen


def test_video_clip_runs_to_the_horizon_without_early_stop(spy):
    s = generate_towers(2, seed=3)[0]
    with_stop = video_clip(s, VideoConfig())
    assert spy == [True]
    without = video_clip(s, VideoConfig(early_stop=False))
    assert spy == [True, False]
    assert with_stop[0].shape == without[0].shape


def test_cli_no_early_stop_reaches_the_rollouts(tmp_path, spy):
    stim = ipe.save_stimuli(list(generate_towers(2, seed=5))[:1], tmp_path / "s.json")
    cfg = {"size": 64, "cond_frames": 4, "n_future": 5, "hidden": 32, "translator": 96, "n_blocks": 3,
           "cond_fps": 30.0, "future_fps": 2.5}
    w = save_model(SimVPPredictor(), tmp_path / "v.pt", "video", cfg, {})
    assert main(["video", "generate", str(w), "--stimuli", str(stim), "--no-readout", "--threads", "1",
                 "--no-early-stop", "--out", str(tmp_path / "gen")]) == 0
    assert spy == [False]
    assert main(["video", "train", "video", "--n-train", "1", "--epochs", "1", "--threads", "1", "--no-early-stop",
                 "--out", str(tmp_path / "t.pt")]) == 0
    assert spy[1:] == [False]
    assert json.loads((tmp_path / "t.json").read_text())["log"]["config"]["early_stop"] is False
