"""``ipe predict``: worker-independent CSVs equal to the Python API's, several queries, any noise parameter
(``--noise NAME=VALUE``) and every fitted one (``--params``)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

import ipe
from ipe.cli import main
from ipe.montecarlo import simulate, summarize
from ipe.noise import NoiseParams
from ipe.scenefile import load_stimuli


def _header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as fh:
        return next(csv.reader(fh))


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


# --------------------------------------------------------------------------- --params


@pytest.fixture
def plinko(tmp_path):
    path = tmp_path / "plinko.json"
    assert main(["stimuli", "plinko", "--n", "2", "--seed", "3", "--out", str(path)]) == 0
    return path


def _params(path, **means):
    path.write_text(json.dumps({k: {"mean": v, "sd": 0.01, "q05": v, "q95": v} for k, v in means.items()}))
    return path


def _flag_matches_params_json(tmp_path, capsys, stimuli, name, value, bad, samples, **other):
    """``--NAME VALUE`` and a params.json with NAME = VALUE (plus ``other``) both predict what ``simulate`` does;
    ``--NAME BAD`` is a one-line error with exit status 2. Returns the expected summary."""
    option = "--" + name.replace("_", "-")
    flag, fitted = tmp_path / "flag.csv", tmp_path / "fitted.csv"
    common = ["--samples", str(samples), "--seed", "1", "--no-progress"]
    assert main(["predict", str(stimuli), option, str(value), "--out", str(flag), *common]) == 0
    params = _params(tmp_path / "params.json", **other, **{name: value})
    assert main(["predict", str(stimuli), "--params", str(params), "--out", str(fitted), *common]) == 0
    want = summarize(simulate(load_stimuli(stimuli), NoiseParams(**{name: value}), n_samples=samples, seed=1,
                              progress=False))
    for path in (flag, fitted):
        assert pd.read_csv(path)["mean"].tolist() == pytest.approx(want["mean"].tolist())
    capsys.readouterr()
    rc = main(["predict", str(stimuli), option, bad, "--out", str(tmp_path / "bad.csv")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and option in err[0]
    return want


def test_motion_parameters_from_params_json(tmp_path, plinko):
    params = _params(tmp_path / "params.json", launch_position=0.2, collision_angle=0.1)
    out = tmp_path / "pred.csv"
    assert main(["predict", str(plinko), "--params", str(params), "--samples", "6", "--seed", "2",
                 "--out", str(out), "--no-progress"]) == 0
    got = pd.read_csv(out)
    want = summarize(simulate(load_stimuli(plinko), NoiseParams(launch_position=0.2, collision_angle=0.1),
                              n_samples=6, seed=2, progress=False))
    assert got["mean"].tolist() == pytest.approx(want["mean"].tolist())
    noiseless = summarize(simulate(load_stimuli(plinko), NoiseParams(), n_samples=6, seed=2, progress=False))
    assert got["sd"].sum() > 0 and noiseless["sd"].sum() == 0


def test_unknown_parameter_in_params_json(tmp_path, plinko, capsys):
    params = _params(tmp_path / "params.json", gravity_noise=0.2)
    rc = main(["predict", str(plinko), "--params", str(params), "--out", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "unknown parameter 'gravity_noise'" in err[0]


def test_friction_from_the_command_line_and_from_params_json(tmp_path, capsys):
    stimuli = tmp_path / "towers.json"
    assert main(["stimuli", "towers", "--n", "3", "--seed", "4", "--out", str(stimuli)]) == 0
    _flag_matches_params_json(tmp_path, capsys, stimuli, "friction", 0.8, bad="-1", samples=5, sigma=0.0)


def test_removal_impulse_from_the_command_line_and_from_params_json(tmp_path, capsys):
    from ipe.scene import Block, Intervention, Query, Scene, StaticBox, Stimulus
    from ipe.scenefile import save_stimuli

    ground = StaticBox(id="ground", position=(0.0, -0.05), width=6.0, height=0.1)
    bodies = (Block(id="middle", position=(0.0, 0.15), width=0.1, height=0.3),  # removing it drops nothing
              Block(id="left", position=(-0.25, 0.15), width=0.1, height=0.3),
              Block(id="right", position=(0.25, 0.15), width=0.1, height=0.3),
              Block(id="lintel", position=(0.0, 0.35), width=0.7, height=0.1),
              Block(id="top", position=(0.0, 0.45), width=0.2, height=0.1))
    stim = Stimulus(id="arch", scene=Scene(bodies=bodies, statics=(ground,)), query=Query("fall", {}),
                    interventions=(Intervention(type="remove", time=0.3, bodies=("middle",)),))
    stimuli = save_stimuli([stim], tmp_path / "arch.json")
    want = _flag_matches_params_json(tmp_path, capsys, stimuli, "removal_impulse", 2.0, bad="nan", samples=6)
    plain = summarize(simulate(load_stimuli(stimuli), NoiseParams(), n_samples=6, seed=1, progress=False))
    assert want["sd"].iloc[0] > 0 and plain["sd"].iloc[0] == 0  # the kick makes the outcome uncertain

