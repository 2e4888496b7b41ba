"""The Plinko generator, its command, and the published engine's scene settings (landing fits: tests/inference/test_landing.py)."""

from __future__ import annotations

import json

import pytest

import ipe
from ipe.cli import main
from ipe.errors import InputError
from ipe.montecarlo import run_sample
from ipe.noise import NoiseParams
from ipe.scenefile import save_stimuli
from ipe.stimuli.plinko import HOLES, PlinkoOptions, generate_plinko


@pytest.fixture(scope="module")
def four():
    return generate_plinko(4, seed=5)


# --------------------------------------------------------------------------- generator


def test_same_seed_same_bytes_other_seed_other_worlds(tmp_path, four):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    save_stimuli(four, a)
    save_stimuli(generate_plinko(4, seed=5), b)
    assert a.read_bytes() == b.read_bytes()
    other = generate_plinko(4, seed=6)
    assert [s.scene for s in other] != [s.scene for s in four]
    assert ipe.load_stimuli(a) == ipe.load_stimuli(b)  # loads back, every check passing


def test_plinko_worlds_have_the_promised_parts(four):
    for s in four:
        scene = s.scene
        assert scene.gravity == (0.0, -1500.0)
        assert scene.simulation.time_step == pytest.approx(1 / 60) and scene.simulation.substeps == 4
        (ball,) = scene.bodies
        assert ball.radius == 25.0 and ball.position[0] in HOLES and ball.velocity == (0.0, 0.0)
        obstacles = [st for st in scene.statics if st.label == "obstacle"]
        assert len(obstacles) == 3 and all(o.type == "regular_polygon" for o in obstacles)
        assert len([st for st in scene.statics if st.label == "lid"]) == 4  # three holes
        assert scene.static("ground").label == "ground"
        assert s.query.name == "landing_x" and s.query.params == {"body": "ball", "target": "ground"}
        meta = s.metadata
        assert meta["hole_x"] == ball.position[0]
        assert meta["first_obstacle"] in {o.id for o in obstacles}
        # the stored no-noise landing is what the simulator says
        x = run_sample(s, NoiseParams(), 0, 0, [s.query])[0][0]
        assert x == pytest.approx(meta["landing_x_no_noise"], abs=1e-3)
        assert 0 < x < 600


def test_generator_options_and_bad_arguments():
    s = generate_plinko(1, seed=2, options=PlinkoOptions(n_obstacles=5))
    assert len([st for st in s[0].scene.statics if st.label == "obstacle"]) == 5
    for bad in (dict(n=0), dict(n=2, seed=-1)):
        with pytest.raises(InputError):
            generate_plinko(**bad)


def test_cli_stimuli_plinko(tmp_path, capsys):
    out = tmp_path / "p.json"
    assert main(["stimuli", "plinko", "--n", "2", "--seed", "3", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert [s["id"] for s in data["stimuli"]] == ["plinko_000", "plinko_001"]
    assert "wrote 2 Plinko stimuli" in capsys.readouterr().err
    assert main(["stimuli", "plinko", "--n", "0", "--out", str(out)]) == 2
    assert main(["stimuli", "plinko", "--n", "2", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert all(line.startswith("ipe: error:") for line in err) and len(err) == 2


# --------------------------------------------------------------------------- scene settings of the published engine


def test_collision_bias_and_noise_labels_are_scene_settings():
    from ipe.scenefile import parse_stimulus_set, stimulus_set_to_dict
    from ipe.stimuli.plinko import COLLISION_BIAS
    from ipe.world import COLLISION_BIAS as IPE_BIAS, SolverSettings, World

    worlds = generate_plinko(1, seed=8)
    sim = worlds[0].scene.simulation
    assert sim.collision_bias == COLLISION_BIAS == 0.9 ** 60 and sim.collision_noise_labels == ("obstacle",)
    assert World(worlds[0].scene).space.collision_bias == COLLISION_BIAS
    data = stimulus_set_to_dict(worlds)
    assert data["stimuli"][0]["scene"]["simulation"]["collision_noise_labels"] == ["obstacle"]
    again = parse_stimulus_set(json.loads(json.dumps(data)))
    assert again[0].scene.simulation == sim
    # without the fields: ipe's default bias, noise on every contact
    d = json.loads(json.dumps(data))
    del d["stimuli"][0]["scene"]["simulation"]["collision_bias"]
    del d["stimuli"][0]["scene"]["simulation"]["collision_noise_labels"]
    plain = parse_stimulus_set(d)[0].scene
    assert SolverSettings.for_scene(plain).collision_bias == IPE_BIAS and plain.simulation.collision_noise_labels is None
    # the bias matters: landings move
    a = run_sample(worlds[0], NoiseParams(), 0, 0, [worlds[0].query])[0][0]
    b = run_sample(parse_stimulus_set(d)[0], NoiseParams(), 0, 0, [worlds[0].query])[0][0]
    assert a != b
    for value, msg in ((0, "> 0"), (2.0, r"\(0, 1\]")):
        bad = json.loads(json.dumps(data))
        bad["stimuli"][0]["scene"]["simulation"]["collision_bias"] = value
        with pytest.raises(InputError, match=msg):
            parse_stimulus_set(bad)
    for value in ([], "obstacle", [1]):
        bad = json.loads(json.dumps(data))
        bad["stimuli"][0]["scene"]["simulation"]["collision_noise_labels"] = value
        with pytest.raises(InputError, match="collision_noise_labels"):
            parse_stimulus_set(bad)
