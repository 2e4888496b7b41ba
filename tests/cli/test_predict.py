"""The ``ipe`` command line, happy paths: deterministic files, worker-independent CSVs, help everywhere.

Everything runs in-process through :func:`ipe.cli.main`; one test runs a real
``python -m ipe.cli`` subprocess and checks it writes the same bytes.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

import ipe
from ipe.cli import main

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "data" / "demo_towers.json"


@pytest.fixture(scope="module")
def four(tmp_path_factory) -> Path:
    """A four-tower stimulus file made by the CLI."""
    p = tmp_path_factory.mktemp("cli") / "four.json"
    assert main(["stimuli", "towers", "--n", "4", "--seed", "7", "--out", str(p)]) == 0
    return p


def _header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as fh:
        return next(csv.reader(fh))


# --------------------------------------------------------------------------- stimuli


def test_stimuli_towers_is_byte_identical_across_runs(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["stimuli", "towers", "--n", "4", "--seed", "7", "--out", str(a)]) == 0
    assert main(["stimuli", "towers", "--n", "4", "--seed", "7", "--out", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()
    err = capsys.readouterr().err
    assert "wrote 4 stimuli" in err
    st = ipe.load_stimuli(a)
    assert len(st) == 4
    # the CLI writes exactly what the Python API saves
    c = tmp_path / "c.json"
    ipe.save_stimuli(ipe.generate_towers(4, seed=7), c)
    assert c.read_bytes() == a.read_bytes()


def test_stimuli_towers_seed_and_options(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["stimuli", "towers", "--n", "4", "--seed", "7", "--out", str(a)]) == 0
    assert main(["stimuli", "towers", "--n", "4", "--seed", "8", "--out", str(b)]) == 0
    assert a.read_bytes() != b.read_bytes()
    m = tmp_path / "m.json"
    assert main(["stimuli", "towers", "--n", "2", "--seed", "1", "--blocks", "4", "--mass-variants",
                 "--out", str(m)]) == 0
    st = ipe.load_stimuli(m)
    assert len(st) == 2 and all(len(s.scene.bodies) == 4 for s in st)
    assert {b.material for b in st[0].scene.bodies} == {"heavy", "light"}
    bal = tmp_path / "bal.json"
    assert main(["stimuli", "towers", "--n", "4", "--seed", "2", "--balanced", "--out", str(bal)]) == 0
    assert sum(s.metadata["stable"] for s in ipe.load_stimuli(bal)) == 2


def test_subprocess_writes_the_same_bytes(tmp_path, four):
    out = tmp_path / "sub.json"
    env = dict(os.environ, IPE_NO_PROGRESS="1")
    proc = subprocess.run([sys.executable, "-m", "ipe.cli", "stimuli", "towers", "--n", "4", "--seed", "7",
                           "--out", str(out)], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert out.read_bytes() == four.read_bytes()


# --------------------------------------------------------------------------- predict


def test_predict_is_identical_for_one_and_two_workers(tmp_path, four, capsys):
    common = ["predict", str(four), "--sigma", "0.2", "--phi", "0.1", "--samples", "6", "--seed", "3"]
    p1, p2 = tmp_path / "w1.csv", tmp_path / "w2.csv"
    r1, r2 = tmp_path / "r1.csv", tmp_path / "r2.csv"
    assert main(common + ["--workers", "1", "--out", str(p1), "--rollouts", str(r1)]) == 0
    assert main(common + ["--workers", "2", "--out", str(p2), "--rollouts", str(r2)]) == 0
    assert p1.read_bytes() == p2.read_bytes()
    assert r1.read_bytes() == r2.read_bytes()
    header = _header(p1)
    for c in ("stimulus_id", "query", "n_samples", "mean", "sd", "se"):
        assert c in header, c
    rows = list(csv.DictReader(p1.open(newline="", encoding="utf-8")))
    assert [r["stimulus_id"] for r in rows] == ipe.load_stimuli(four).ids
    assert all(r["n_samples"] == "6" and r["query"] == "fall" for r in rows)
    assert _header(r1)[:5] == ["sigma", "phi", "mu", "angle_sigma", "push_duration"]
    assert sum(1 for _ in r1.open(encoding="utf-8")) == 1 + 4 * 6
    assert "wrote predictions for 4 stimuli" in capsys.readouterr().err


def test_predict_csv_matches_the_python_api(tmp_path, four):
    out = tmp_path / "p.csv"
    assert main(["predict", str(four), "--sigma", "0.2", "--samples", "4", "--seed", "5", "--out", str(out)]) == 0
    import pandas as pd

    got = pd.read_csv(out)
    want = ipe.IPE(sigma=0.2, n_samples=4, seed=5).predict(ipe.load_stimuli(four))
    pd.testing.assert_frame_equal(got, want, check_exact=True, check_dtype=False)


def test_predict_with_several_queries(tmp_path, four):
    out = tmp_path / "q.csv"
    assert main(["predict", str(four), "--samples", "1", "-q", "fall", "-q", "count_fallen",
                 "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open(newline="", encoding="utf-8")))
    assert [r["query"] for r in rows] == ["fall", "count_fallen"] * 4


def test_predict_noise_option_sets_any_noise_parameter(tmp_path, capsys):
    """--noise NAME=VALUE gives the rollouts of ipe.simulate with that NoiseParams (motion noise on Plinko)."""
    import pandas as pd

    plinko = tmp_path / "plinko.json"
    assert main(["stimuli", "plinko", "--n", "2", "--seed", "1", "--out", str(plinko)]) == 0
    out, raw = tmp_path / "p.csv", tmp_path / "r.csv"
    assert main(["predict", str(plinko), "--noise", "launch_position=0.2", "--noise", "collision-angle=0.1",
                 "-n", "4", "--seed", "2", "--rollouts", str(raw), "--out", str(out)]) == 0
    want = ipe.simulate(ipe.load_stimuli(plinko), ipe.NoiseParams(launch_position=0.2, collision_angle=0.1),
                        n_samples=4, seed=2, progress=False)
    pd.testing.assert_frame_equal(pd.read_csv(raw), want, check_exact=True, check_dtype=False)
    assert set(pd.read_csv(out)["launch_position"]) == {0.2}
    capsys.readouterr()
    for args, message in ((["--noise", "bogus=1"], "unknown noise parameter 'bogus'"),
                          (["--noise", "launch_position"], "expected NAME=VALUE"),
                          (["--noise", "launch_position=x"], "'x' is not a number"),
                          (["--noise", "launch_position=-1"], "--noise launch_position must be a finite number >= 0"),
                          (["--noise", "sigma=0.1", "--sigma", "0.2"], "sigma is also given as --sigma"),
                          (["--noise", "step_angle=0.1", "--noise", "step_angle=0.2"], "given twice")):
        assert main(["predict", str(plinko), "-n", "1", "--out", str(tmp_path / "bad.csv"), *args]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
    assert not (tmp_path / "bad.csv").exists()


# --------------------------------------------------------------------------- render / validate / demo


def test_render_writes_one_png_per_stimulus(tmp_path, four, capsys):
    out = tmp_path / "png"
    assert main(["render", str(four), "--out", str(out), "--size", "64"]) == 0
    ids = ipe.load_stimuli(four).ids
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted(f"{i}.png" for i in ids)
    for p in out.iterdir():
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote 4 images" in capsys.readouterr().err


def test_validate_prints_ok(four, capsys):
    assert main(["validate", str(four)]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "4 stimuli" in out
    assert main(["validate", str(DEMO)]) == 0
    assert "OK, 12 stimuli" in capsys.readouterr().out


def test_demo_writes_predictions_and_figure(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--samples", "4", "--out", str(out)]) == 0
    pred, fig = out / "predictions.csv", out / "demo.png"
    assert pred.is_file() and fig.is_file()
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    header = _header(pred)
    assert header[0] == "model"
    for c in ("stimulus_id", "query", "n_samples", "mean", "sd", "se"):
        assert c in header
    rows = list(csv.DictReader(pred.open(newline="", encoding="utf-8")))
    assert len(rows) == 2 * 12
    assert {r["model"] for r in rows} == {"ipe", "no_noise"}
    assert all(r["n_samples"] == "4" for r in rows if r["model"] == "ipe")
    assert all(r["n_samples"] == "1" for r in rows if r["model"] == "no_noise")
    printed = capsys.readouterr().out
    assert "predictions.csv" in printed and "demo.png" in printed


# --------------------------------------------------------------------------- help


@pytest.mark.parametrize("cmd", [[], ["stimuli"], ["stimuli", "towers"], ["predict"], ["render"], ["validate"],
                                 ["demo"]])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_works_on_every_command(cmd, flag, capsys):
    assert main(cmd + [flag]) == 0
    out = capsys.readouterr().out
    assert "Usage" in out
    if cmd:
        assert cmd[-1] in out
