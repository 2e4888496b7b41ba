"""The Plinko generator, its command, and fitting clicked landing x (trial level and stimulus means)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ipe
from ipe.cli import main
from ipe.errors import InputError
from ipe.inference.landing import LandingEmulator, LandingFit, stimulus_means, synthesize_landings
from ipe.montecarlo import run_sample
from ipe.noise import NoiseParams
from ipe.scenefile import save_stimuli
from ipe.stimuli.plinko import HOLES, PlinkoOptions, generate_plinko

REPO = Path(__file__).resolve().parents[2]


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


# --------------------------------------------------------------------------- landing-x fitting


@pytest.fixture(scope="module")
def small_fit_inputs():
    stimuli = generate_plinko(2, seed=8)
    truth = NoiseParams(launch_position=0.2, collision_angle=0.2)
    clicks = synthesize_landings(stimuli, 8, truth, motor_sd=5.0, seed=1)
    emu = LandingEmulator(grid={"launch_position": [0.0, 0.2, 0.4], "collision_angle": [0.0, 0.2, 0.4]},
                          n_samples=6, seed=2).fit(stimuli)
    return stimuli, truth, clicks, emu


def test_synthetic_clicks(small_fit_inputs):
    stimuli, truth, clicks, _ = small_fit_inputs
    assert list(clicks.columns) == ["participant", "stimulus_id", "response", "trial_index"]
    assert set(clicks["stimulus_id"]) == set(stimuli.ids)
    again = synthesize_landings(stimuli, 8, truth, motor_sd=5.0, seed=1)
    pd.testing.assert_frame_equal(clicks, again)
    # without motor noise a click is a noisy rollout's landing: the values ipe.simulate gives
    raw = synthesize_landings(stimuli, 8, truth, motor_sd=0.0, seed=1)
    sims = ipe.simulate(stimuli, truth, n_samples=8, seed=1)
    np.testing.assert_array_equal(np.sort(raw["response"].to_numpy()), np.sort(sims["value"].dropna().to_numpy()))


def test_landing_emulator_tracks_the_monte_carlo(small_fit_inputs):
    stimuli, _, _, emu = small_fit_inputs
    frame = emu.predict_frame(launch_position=0.0, collision_angle=0.0)
    free = [run_sample(s, NoiseParams(), 0, 0, [s.query])[0][0] for s in stimuli]
    # at zero noise every rollout is the noise-free one: the emulated spread is ~0, the mean that landing
    np.testing.assert_allclose(frame["mean"], free, atol=0.15 * float(np.ptp(emu.rollouts_["value"])) + 1.0)
    noisy = emu.predict_frame(launch_position=0.4, collision_angle=0.4)
    assert (noisy["sd"] > frame["sd"]).all()
    mean, sd = emu.predict(np.array([[0.2, 0.2], [0.1, 0.3]]))
    assert mean.shape == (2, 2) and (sd > 0).all()


@pytest.mark.parametrize("means", [False, True])
def test_landing_fit_runs_on_trials_and_on_means(small_fit_inputs, means):
    _, _, clicks, emu = small_fit_inputs
    data = stimulus_means(clicks) if means else clicks
    fit = LandingFit(num_warmup=20, num_samples=20, num_chains=1, seed=0).fit(data, emu, means=means)
    assert fit.summary_["parameter"].tolist() == ["launch_position", "collision_angle", "motor_sd"]
    for r in fit.summary_.itertuples():
        assert r.q05 <= r.mean <= r.q95
    assert 0.0 <= fit.params_["launch_position"] <= 0.4 and 0.0 <= fit.params_["collision_angle"] <= 0.4


def test_landing_fit_bad_input(small_fit_inputs):
    _, _, clicks, emu = small_fit_inputs
    with pytest.raises(InputError, match="missing column"):
        LandingFit(num_warmup=2, num_samples=2, num_chains=1).fit(clicks.drop(columns="response"), emu)
    with pytest.raises(InputError, match="not among the emulated"):
        LandingFit(num_warmup=2, num_samples=2, num_chains=1).fit(clicks.assign(stimulus_id="zz"), emu)
    with pytest.raises(InputError, match="the emulator varies"):
        LandingFit(free=("sigma",), num_warmup=2, num_samples=2, num_chains=1).fit(clicks, emu)
    with pytest.raises(InputError, match="'n'"):
        LandingFit(num_warmup=2, num_samples=2, num_chains=1).fit(stimulus_means(clicks).assign(n=0), emu, means=True)


def test_cli_fit_landing(small_fit_inputs, tmp_path, capsys):
    stimuli, _, clicks, _ = small_fit_inputs
    sp, cp = tmp_path / "p.json", tmp_path / "clicks.csv"
    save_stimuli(stimuli, sp)
    clicks.to_csv(cp, index=False)
    out = tmp_path / "fit"
    argv = ["fit-landing", str(cp), "--stimuli", str(sp), "--out", str(out), "--grid-points", "3",
            "--grid-max", "0.4", "--emulator-samples", "4", "--warmup", "10", "--draws", "10", "--chains", "1",
            "--no-progress"]
    assert main(argv) == 0
    assert {p.name for p in out.iterdir()} == {"summary.csv", "params.json"}
    assert main(argv[:-1] + ["--free", "launch_position,bogus"]) == 2
    assert main(["fit-landing", str(tmp_path / "none.csv"), "--stimuli", str(sp), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--free" in err and "no such file" in err


# --------------------------------------------------------------------------- parameter recovery


def test_recovery_script_tiny(tmp_path):
    sys.path.insert(0, str(REPO / "experiments"))
    try:
        import landing_recovery
    finally:
        sys.path.pop(0)
    assert landing_recovery.main(["--tiny", "--out", str(tmp_path / "r")]) == 0
    table = pd.read_csv(tmp_path / "r" / "recovery.csv")
    assert set(table["data"]) == {"trials", "means"}


@pytest.mark.slow
def test_launch_and_collision_noise_are_recovered():
    """Synthetic participants at known launch and collision noise: the truth lies in the 90 % intervals."""
    sys.path.insert(0, str(REPO / "experiments"))
    try:
        import landing_recovery
    finally:
        sys.path.pop(0)
    table = landing_recovery.run(n_stimuli=8, n_participants=30, emulator_samples=40, grid_points=6, warmup=300,
                                 draws=300, chains=2, seed=4, true_launch=0.25, true_collision=0.2, motor_sd=8.0)
    trials = table[(table["data"] == "trials") & table["parameter"].isin(["launch_position", "collision_angle"])]
    assert trials["inside_90"].all(), trials
    assert (trials["r_hat"] < 1.05).all()


def test_ipe_fit_takes_clicked_positions(small_fit_inputs, tmp_path, capsys):
    """`ipe fit` with the position scale (the default for landing_x): Gaussian likelihood with emulated spread."""
    from ipe.humans import scale_for_stimuli
    from ipe.inference import Emulator

    stimuli, _, clicks, _ = small_fit_inputs
    scale = scale_for_stimuli(stimuli)
    assert scale.kind == "position" and scale.low == -20 and scale.high == 620
    emu = Emulator(grid={"launch_position": [0.0, 0.2, 0.4], "collision_angle": [0.0, 0.2, 0.4]}, n_samples=6,
                   seed=2).fit(stimuli)
    sd = emu.predict_sd(torch_tensor([[0.0, 0.0], [0.4, 0.4]]))
    assert sd.shape == (2, 2) and (sd[1] > sd[0]).all()
    assert emu.predict_sd(torch_tensor(emu.grid_points_)).numpy() == pytest.approx(emu.grid_sd_, abs=0.35 * float(
        emu.grid_sd_.max()))
    emu.save(tmp_path / "emu.npz")
    sp, cp = tmp_path / "p.json", tmp_path / "clicks.csv"
    save_stimuli(stimuli, sp)
    clicks.to_csv(cp, index=False)
    out = tmp_path / "fit"
    assert main(["fit", str(cp), "--stimuli", str(sp), "--out", str(out), "--free", "launch_position,collision_angle",
                 "--emulator", str(tmp_path / "emu.npz"), "--warmup", "15", "--draws", "15", "--chains", "2",
                 "--no-progress"]) == 0
    params = json.loads((out / "params.json").read_text())
    assert params["_meta"]["scale"] == "position:-20-620"
    assert 0.0 <= params["launch_position"]["mean"] <= 0.6
    assert "motor_sd" in pd.read_csv(out / "diagnostics.csv")["parameter"].tolist()


def torch_tensor(x):
    import torch

    return torch.as_tensor(np.asarray(x, dtype=float))


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
