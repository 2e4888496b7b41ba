"""Torch baselines: shapes, seeds, saving; tiny training runs only (the real ones are in docs/video-models.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import ipe
from ipe.cli import main
from ipe.errors import InputError
from ipe.stimuli.towers import generate_towers
from ipe.video.models import (
    CNNConfig,
    PhysNetCNN,
    SimVPPredictor,
    VideoConfig,
    classes_to_frames,
    cnn_judgments,
    disjoint_check,
    first_frame,
    frames_to_classes,
    generate_video,
    generate_videos,
    load_model,
    n_parameters,
    save_model,
    train_cnn,
    train_video_model,
    video_clip,
)


@pytest.fixture(scope="module")
def tiny():
    return generate_towers(6, seed=11), generate_towers(4, seed=12)


def _same_weights(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_model_sizes():
    assert n_parameters(SimVPPredictor()) <= 2_000_000
    cnn = PhysNetCNN()
    f, c = cnn(torch.zeros(2, 3, 64, 64))
    assert f.shape == (2,) and c.shape == (2, 11)
    v = SimVPPredictor()
    assert v(torch.zeros(1, 4, 64, 64, dtype=torch.long)).shape == (1, 5, 26, 64, 64)


def test_cnn_trains_deterministically_and_saves(tiny, tmp_path):
    train, test = tiny
    cfg = CNNConfig(epochs=1, batch_size=4, n_train=6, n_test=4, seed=5)
    m1, log1 = train_cnn(cfg, train_stimuli=train, test_stimuli=test, threads=1)
    m2, log2 = train_cnn(cfg, train_stimuli=train, test_stimuli=test, threads=1)
    assert _same_weights(m1, m2) and log1["train_loss"] == log2["train_loss"]
    m3, _ = train_cnn(CNNConfig(epochs=1, batch_size=4, seed=6), train_stimuli=train, test_stimuli=test, threads=1)
    assert not _same_weights(m1, m3)
    assert 0 <= log1["test_accuracy"] <= 1 and log1["n_test"] == 4
    path = save_model(m1, tmp_path / "cnn.pt", "cnn", {"size": 64, "width": 16, "max_count": m1.max_count}, log1)
    assert path.with_suffix(".json").exists()
    kind, loaded, data = load_model(path)
    assert kind == "cnn" and _same_weights(m1, loaded) and data["log"]["n_train"] == 6
    table = cnn_judgments(loaded, test)
    assert list(table.columns[:6]) == ["stimulus_id", "query", "n_samples", "mean", "sd", "se"]
    assert table["mean"].between(0, 1).all() and table["p_falls"].between(0, 1).all()


def test_train_and_test_towers_are_kept_apart(tiny):
    train, test = tiny
    assert disjoint_check(train, test) == 0
    with pytest.raises(InputError, match="also test towers"):
        disjoint_check(train, list(train)[:2])


def test_video_model_trains_generates_and_is_read_out(tiny, tmp_path):
    train, test = tiny
    cfg = VideoConfig(n_train=3, epochs=1, batch_size=2, seed=1)
    cond, fut = video_clip(train[0], cfg)
    assert cond.shape == (4, 64, 64) and fut.shape == (5, 64, 64)
    assert np.array_equal(frames_to_classes(classes_to_frames(cond)), cond)
    model, log = train_video_model(cfg, train_stimuli=list(train)[:3], threads=1)
    model2, _ = train_video_model(cfg, train_stimuli=list(train)[:3], threads=1)
    assert _same_weights(model, model2) and len(log["train_loss"]) == 1
    frames = generate_video(model, classes_to_frames(cond))
    assert frames.shape == (6, 64, 64, 3) and frames.dtype == np.uint8
    config = {"size": 64, "cond_frames": 4, "n_future": 5, "hidden": 32, "translator": 96, "n_blocks": 3,
              "cond_fps": 30.0, "future_fps": 2.5}
    p = save_model(model, tmp_path / "v.pt", "video", config, log)
    kind, loaded, data = load_model(p)
    assert kind == "video" and _same_weights(model, loaded)
    made = generate_videos(loaded, data["config"], list(test)[:2], tmp_path / "gen")
    assert made["status"].tolist() == ["ok", "ok"]
    from ipe.video.readout import readout

    summary, per_video = readout(tmp_path / "gen", list(test)[:2])
    assert sorted(per_video["stimulus_id"]) == sorted(s.id for s in list(test)[:2])
    # a model trained for one epoch makes what it makes: read, or flagged with the reason, never guessed
    assert per_video["status"].isin(["ok", "low_quality", "unreadable"]).all()
    bad = per_video[per_video["status"] == "unreadable"]
    assert bad["value"].isna().all() and (bad["note"].str.len() > 0).all()
    assert sorted(summary["stimulus_id"]) == sorted(s.id for s in list(test)[:2])  # flagged ones keep a NaN row
    flagged_only = set(bad["stimulus_id"]) - set(per_video.loc[per_video["status"] != "unreadable", "stimulus_id"])
    assert summary.set_index("stimulus_id").loc[sorted(flagged_only), "n_valid"].eq(0).all()


def test_load_model_rejects_other_files(tmp_path):
    (tmp_path / "x.pt").write_bytes(b"garbage")
    with pytest.raises(InputError, match="not a saved ipe baseline"):
        load_model(tmp_path / "x.pt")
    with pytest.raises(InputError, match="no such file"):
        load_model(tmp_path / "y.pt")


def test_cli_train_generate_and_import(tmp_path, capsys):
    s = ipe.save_stimuli(generate_towers(3, seed=99), tmp_path / "s.json")
    assert main(["video", "train", "cnn", "--n-train", "4", "--n-test", "2", "--epochs", "1", "--threads", "1",
                 "--out", str(tmp_path / "cnn.pt")]) == 0
    assert "held-out accuracy" in capsys.readouterr().out
    assert main(["video", "generate", str(tmp_path / "cnn.pt"), "--stimuli", str(s), "--out",
                 str(tmp_path / "cnn_out")]) == 0
    j = pd.read_csv(tmp_path / "cnn_out" / "judgments.csv")
    assert len(j) == 3
    assert main(["video", "train", "rnn", "--out", str(tmp_path / "x.pt")]) == 2
    assert main(["video", "train", "cnn", "--train-seed", "3", "--test-seed", "3", "--out", str(tmp_path / "x.pt")]) == 2
    # judgments made elsewhere
    ids = [x.id for x in ipe.load_stimuli(s)]
    ext = pd.DataFrame({"stimulus_id": ids * 2, "model": "m", "sample": [0] * 3 + [1] * 3,
                        "judgment": [0.0, 0.1, 0.2, 0.0, 0.3, 0.0]})
    ext.to_csv(tmp_path / "ext.csv", index=False)
    assert main(["video", "import", str(tmp_path / "ext.csv"), "--stimuli", str(s), "--out",
                 str(tmp_path / "ext_j.csv")]) == 0
    table = pd.read_csv(tmp_path / "ext_j.csv")
    assert table["n_samples"].tolist() == [2, 2, 2] and table["p_falls"].tolist() == [0.0, 1.0, 0.5]
    capsys.readouterr()
    ext.assign(stimulus_id="ghost").to_csv(tmp_path / "ghost.csv", index=False)
    ext.assign(judgment="lots").to_csv(tmp_path / "word.csv", index=False)
    for name, fragment in (("ghost.csv", "unknown stimulus id 'ghost'"), ("word.csv", "must be a number"),
                           ("missing.csv", "no such file")):
        assert main(["video", "import", str(tmp_path / name), "--stimuli", str(s), "--out",
                     str(tmp_path / "o.csv")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and fragment in err[0], err


def test_first_frame_matches_render(demo, tmp_path):
    from ipe.video.frames import render_videos
    from PIL import Image

    render_videos(list(demo)[:1], tmp_path, size=64)
    png = np.asarray(Image.open(tmp_path / "first" / "tower_000.png").convert("RGB"))
    assert np.array_equal(png, first_frame(demo[0], 64))


def test_physion_style_probe_on_frozen_features(tiny):
    """The probe: a logistic readout on a frozen model's features, fitted on training towers, scored on test towers."""
    from ipe.video.probe import LogisticProbe, probe_study

    train, test = tiny
    # the readout itself: separable features are learned exactly, and deterministically
    X = np.array([[0.0, 1.0], [0.1, 0.9], [1.0, 0.0], [0.9, 0.2]])
    y = np.array([0, 0, 1, 1])
    p = LogisticProbe().fit(X, y)
    assert ((p.predict_proba(X) >= 0.5) == y).all()
    assert np.array_equal(p.coef_, LogisticProbe().fit(X, y).coef_)
    cfg = VideoConfig(n_train=3, epochs=1, batch_size=2, seed=1)
    video, _ = train_video_model(cfg, train_stimuli=list(train)[:3], threads=1)
    res = probe_study("video", video, train, test, {"size": 64, "cond_frames": 4})
    assert res["n_features"] == 2 * cfg.translator and res["n_test"] == len(test)
    assert 0 <= res["test_accuracy"] <= 1 and 0 <= res["train_accuracy"] <= 1
    assert res == probe_study("video", video, train, test, {"size": 64, "cond_frames": 4})
    cnn, _ = train_cnn(CNNConfig(epochs=1, batch_size=4, seed=5), train_stimuli=train, test_stimuli=test, threads=1)
    assert probe_study("cnn", cnn, train, test)["n_features"] == 128
    with pytest.raises(InputError, match="unknown model kind"):
        probe_study("rnn", cnn, train, test)
