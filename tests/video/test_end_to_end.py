"""The worked example of docs/tutorials/video-end-to-end.md, tiny: prompts → continuation → import → readout → compare.

The page runs the same commands at full size; here two short towers, a slot model trained for one epoch on two
towers, and two continuations per stimulus keep it to seconds.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from ipe.cli import main


def _short_towers(path, n=2, horizon=0.5):
    """Towers with a short horizon (fewer frames), written as a stimulus set."""
    import ipe
    from dataclasses import replace
    from ipe.stimuli.towers import generate_towers

    towers = [replace(s, scene=replace(s.scene, simulation=replace(s.scene.simulation, horizon=horizon)))
              for s in list(generate_towers(2, seed=4, balanced=True))[:n]]
    return ipe.save_stimuli(towers, path)


def test_prompts_continuation_import_readout_compare(tmp_path, capsys):
    towers = _short_towers(tmp_path / "towers.json")
    w = tmp_path / "slots.pt"
    assert main(["video", "train", "slots", "--n-train", "2", "--samples", "1", "--epochs", "1", "--hidden", "8",
                 "--threads", "1", "--no-early-stop", "--out", str(w)]) == 0
    assert json.loads(w.with_suffix(".json").read_text())["log"]["config"]["early_stop"] is False
    prompts = tmp_path / "prompts"
    assert main(["video", "prompts", str(towers), "--out", str(prompts), "--size", "64x64", "--samples", "2"]) == 0
    manifest = prompts / "prompts.csv"
    assert main(["video", "generate", str(w), "--stimuli", str(towers), "--prompts", str(manifest),
                 "--threads", "1"]) == 0
    m = pd.read_csv(manifest)
    assert all((prompts / p).is_file() for p in m["continuation"])
    # a second run does not overwrite continuations silently
    capsys.readouterr()
    assert main(["video", "generate", str(w), "--stimuli", str(towers), "--prompts", str(manifest)]) == 2
    assert "already there" in capsys.readouterr().err
    assert main(["video", "import", str(manifest), "--stimuli", str(towers), "--out", str(tmp_path / "slots.csv")]) == 0
    judged = pd.read_csv(tmp_path / "slots.csv")
    assert sorted(judged["stimulus_id"]) == ["tower_000", "tower_001"]
    assert (judged["n_samples"] == 2).all()  # two continuations per stimulus, read out one by one
    per_video = pd.read_csv(tmp_path / "slots_videos.csv")
    assert len(per_video.drop_duplicates("video")) == 4
    assert main(["humans", "synthesize", str(towers), "--participants", "3", "--sigma", "0.2", "--phi", "0.05",
                 "--seed", "1", "--out", str(tmp_path / "responses.csv")]) == 0
    assert main(["compare", "--humans", str(tmp_path / "responses.csv"), "--stimuli", str(towers), "--model",
                 f"slot model={tmp_path / 'slots.csv'}", "--no-ipe", "--out", str(tmp_path / "cmp")]) == 0
    summary = pd.read_csv(tmp_path / "cmp" / "summary.csv")
    row = summary[summary["model"] == "slot model"]
    # a model trained for one epoch may make continuations the readout flags (NaN, never guessed): compare
    # judges the stimuli with at least one readable continuation
    assert len(row) == 1 and int(row["n_stimuli"].iloc[0]) == int((judged["n_valid"] > 0).sum())
    assert set(per_video["status"]) <= {"ok", "low_quality", "unreadable"}


@pytest.mark.parametrize("args, fragment", [
    (["--prompts", "P", "--out", "O"], "leave --out out"),
    (["--prompts", "P", "--samples", "3"], "come from the prompts manifest"),
    (["--out", "O", "--overwrite"], "--overwrite applies to --prompts"),
    ([], "--out is required"),
])
def test_generate_options(tmp_path, capsys, args, fragment):
    towers = _short_towers(tmp_path / "towers.json", n=1)
    from ipe.video.slots import SlotPredictor
    from ipe.video.models import save_model

    w = save_model(SlotPredictor(hidden=8), tmp_path / "s.pt", "slots", {"hidden": 8, "rounds": 2, "fps": 30.0}, {})
    assert main(["video", "prompts", str(towers), "--out", str(tmp_path / "P"), "--size", "32x32"]) == 0
    args = [str(tmp_path / a) if a in ("P", "O") else a for a in args]
    capsys.readouterr()
    assert main(["video", "generate", str(w), "--stimuli", str(towers), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err
