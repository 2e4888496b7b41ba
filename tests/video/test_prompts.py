"""`ipe video prompts` → a generator → `ipe video import`: the manifest round trip and the readout of continuations."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import ipe
from ipe.cli import main
from ipe.errors import InputError
from ipe.stimuli.towers import generate_towers
from ipe.video.prompts import MANIFEST_COLUMNS, import_continuations, parse_size, read_manifest, write_prompts
from ipe.video.frames import Camera, render_frames, video_trajectory, write_mp4


@pytest.fixture(scope="module")
def towers():
    return generate_towers(4, seed=31)


def _continue(out, row, stim):
    """What a perfect generator would return: the simulator's own rollout at the manifest's size."""
    from ipe.video.robust import fit_camera

    cam = fit_camera(Camera.for_stimulus(stim, min(row.width, row.height)), row.width, row.height)
    states, visible = video_trajectory(stim, row.fps)
    write_mp4(out / row.continuation, render_frames(stim, states, visible, cam), row.fps)


def test_manifest_round_trip_is_lossless(tmp_path, towers):
    odd = ipe.scene.Stimulus(**{**towers[0].__dict__, "id": "NA"})  # an id pandas would read as missing
    stims = ipe.StimulusSet((odd, *list(towers)[1:]))
    manifest = write_prompts(stims, tmp_path, sizes=["96x54", "64x64"], samples=2, cond_frames=3)
    back = read_manifest(tmp_path / "prompts.csv")
    assert list(back.columns) == MANIFEST_COLUMNS
    pd.testing.assert_frame_equal(back, manifest, check_dtype=False)
    assert back["stimulus_id"].tolist()[:2] == ["NA", "NA"]
    assert len(back) == len(stims) * 2 * 2
    for rel in set(back["first_frame"]) | set(back["cond"]) | set(back["colours"]):
        assert (tmp_path / rel).is_file()
    # every frame size has its own camera, framing the same scene at the same scale
    wide = json.loads((tmp_path / "96x54" / "colours.json").read_text())["stimuli"]["NA"]["camera"]
    square = json.loads((tmp_path / "64x64" / "colours.json").read_text())["stimuli"]["NA"]["camera"]
    assert (wide["width"], wide["height"]) == (96, 54)
    assert wide["x1"] - wide["x0"] > square["x1"] - square["x0"]
    # the prompt describes the scene, not the outcome
    p = back["prompt"].iloc[0]
    assert "Continue" in p and "fall" not in p.lower()
    # a folder reads as its prompts.csv
    pd.testing.assert_frame_equal(read_manifest(tmp_path), back)


def test_import_reads_continuations_by_the_manifest(tmp_path, towers):
    manifest = write_prompts(towers, tmp_path, sizes=["160x90"], samples=1)
    for row in manifest.itertuples(index=False):
        if row.stimulus_id != towers[3].id:  # one continuation never came back
            _continue(tmp_path, row, next(s for s in towers if s.id == row.stimulus_id))
    summary, per_video = import_continuations(tmp_path / "prompts.csv", towers, queries=["count_fallen"])
    status = per_video.set_index("stimulus_id")["status"]
    assert status[towers[3].id] == "missing"
    assert (status.drop(towers[3].id) == "ok").all()
    truth = ipe.IPE.ground_truth(progress=False).predict(list(towers)[:3], queries=["count_fallen"])
    got = summary.set_index("stimulus_id")["mean"].reindex(truth["stimulus_id"]).to_numpy()
    assert np.array_equal(got, truth["mean"].to_numpy())
    # the command line: prompts, then import with the continuations in place
    s = ipe.save_stimuli(towers, tmp_path / "s.json")
    assert main(["video", "import", str(tmp_path / "prompts.csv"), "--stimuli", str(s), "--out",
                 str(tmp_path / "j.csv")]) == 0
    j = pd.read_csv(tmp_path / "j.csv")
    assert sorted(j["stimulus_id"]) == sorted(x.id for x in list(towers)[:3])


def test_prompts_cli_and_bad_input(tmp_path, towers, capsys):
    s = ipe.save_stimuli(list(towers)[:1], tmp_path / "s.json")
    assert main(["video", "prompts", str(s), "--out", str(tmp_path / "p"), "--size", "64x36"]) == 0
    assert (tmp_path / "p" / "64x36" / "first" / f"{towers[0].id}.png").is_file()
    capsys.readouterr()
    for bad in (["--size", "64"], ["--size", "63x36"], ["--size", "64x36 "], ["--fps", "7"]):
        assert main(["video", "prompts", str(s), "--out", str(tmp_path / "q"), *bad]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(e.startswith("ipe: error:") for e in err)
    with pytest.raises(InputError, match="WIDTHxHEIGHT"):
        parse_size("1280×720")
    (tmp_path / "broken.csv").write_text("format,stimulus_id\nipe-video-prompts,a\n")
    with pytest.raises(InputError, match="missing column"):
        read_manifest(tmp_path / "broken.csv")


def test_physics_iq_scores_against_the_simulators_render(tmp_path, towers):
    from ipe.video.physics_iq import physics_iq_scores, score_videos
    from ipe.video.frames import render_videos

    render_videos(list(towers)[:3], tmp_path / "r", size=48, fps=15)
    ref = tmp_path / "r" / "gt"
    from ipe.video.readout import read_video

    vids = {s.id: read_video(ref / f"{s.id}.mp4") for s in list(towers)[:3]}
    falls = next(s for s in list(towers)[:3] if (np.abs(np.diff(vids[s.id].astype(int), axis=0)) > 30).any())
    a = vids[falls.id]
    perfect = physics_iq_scores(a, a)
    assert perfect["spatial_iou"] == 1 and perfect["spatiotemporal_iou"] == 1 and perfect["mse"] == 0
    frozen = np.repeat(a[:1], len(a), 0)  # a "generator" that shows nothing happening
    still = physics_iq_scores(frozen, a)
    moving = (np.abs(np.diff(a.astype(int), axis=0)).max(-1) > 30).any()
    assert moving and still["spatial_iou"] == 0 and still["weighted_spatial_iou"] == 0 and still["mse"] > 0
    big = np.repeat(np.repeat(a, 2, 1), 2, 2)  # another size: compared on the reference's grid
    assert physics_iq_scores(big, a)["spatial_iou"] == 1
    (tmp_path / "gen").mkdir()
    write_mp4(tmp_path / "gen" / f"{falls.id}__s000.mp4", frozen, 15)
    (tmp_path / "gen" / f"{towers[3].id}.mp4").write_bytes((ref / f"{falls.id}.mp4").read_bytes())
    table = score_videos(tmp_path / "gen", ref, towers)
    assert table.set_index("stimulus_id")["status"].to_dict() == {falls.id: "ok", towers[3].id: "no_reference"}
    s = ipe.save_stimuli(towers, tmp_path / "s.json")
    assert main(["video", "physics-iq", str(tmp_path / "gen"), "--stimuli", str(s), "--reference", str(ref),
                 "--out", str(tmp_path / "piq.csv")]) == 0
    assert pd.read_csv(tmp_path / "piq.csv")["spatial_iou"].iloc[0] == 0
