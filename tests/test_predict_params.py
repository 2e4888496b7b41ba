"""`ipe predict --params` takes every fitted noise parameter, motion noise included."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from ipe.cli import main
from ipe.montecarlo import simulate, summarize
from ipe.noise import NoiseParams
from ipe.scenefile import load_stimuli


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


def test_friction_is_a_free_parameter_with_a_grid_and_a_prior_range():
    from ipe.cli.fit import parse_free
    from ipe.humans import RANGES
    from ipe.inference.emulator import DEFAULT_GRID

    assert parse_free("sigma,phi,friction") == ["sigma", "phi", "friction"]
    assert DEFAULT_GRID["friction"][0] == 0 and RANGES["friction"][1] >= max(DEFAULT_GRID["friction"])


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
