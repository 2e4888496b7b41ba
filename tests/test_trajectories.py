"""Landing queries, fall direction with circular statistics, recorded paths, figures, the CLI and its bad input."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ipe
from ipe.cli import main
from ipe.errors import InputError
from ipe.montecarlo import run_sample
from ipe.noise import NoiseParams
from ipe.queries import circular_summary, parse_query
from ipe.scene import Ball, Query, Scene, Simulation, StaticBox, StaticRegularPolygon, Stimulus
from ipe.trajectories import (LANDING_COLUMNS, PATH_COLUMNS, fall_directions, landing_density, landing_query,
                              landing_summary, plot_trajectories, record_paths)

DOCS = Path(__file__).resolve().parents[1] / "docs" / "scene-format.md"


def docs_plinko_text() -> str:
    text = DOCS.read_text(encoding="utf-8")
    for m in re.finditer(r"^```json\n(.*?)^```", text, re.MULTILINE | re.DOTALL):
        if '"plinko_by_hand"' in m.group(1):
            return m.group(1)
    raise AssertionError("the Plinko example is missing from docs/scene-format.md")


def drop(height=1.0, radius=0.05, x=0.3, **sim) -> Stimulus:
    """A ball dropped from rest onto a ground whose top is y = 0 (SI units)."""
    scene = Scene(bodies=(Ball("ball", (x, height), radius),),
                  statics=(StaticBox("ground", (0.0, -0.05), 6.0, 0.1, label="ground"),
                           StaticRegularPolygon("peg", 4, 0.1, (2.0, 0.5))),
                  simulation=Simulation(**sim))
    return Stimulus("drop", scene, Query("landing_x", {"body": "ball", "target": "ground"}))


# --------------------------------------------------------------------------- landing queries


def test_free_fall_lands_where_and_when_physics_says():
    stim = drop(height=1.0, radius=0.05)
    qs = [stim.query, parse_query("time_to_land:body=ball,target=ground"),
          parse_query("landing_x:body=ball,level=0.5"), parse_query("time_to_land:body=ball,level=0.5"),
          parse_query("first_contact:body=ball,target=ground"), parse_query("first_contact:body=ball,target=peg")]
    vals, res = run_sample(stim, NoiseParams(), 0, 0, qs)
    x, t, x_level, t_level, first_ground, first_peg = vals
    assert x == pytest.approx(0.3, abs=1e-12) and x_level == pytest.approx(0.3, abs=1e-12)
    dt = stim.scene.simulation.dt
    # Contact begins when the ball's bottom reaches the ground (within one step; slop aside).
    assert t == pytest.approx(math.sqrt(2 * 0.95 / 9.81), abs=2 * dt)
    # The crossing of y = 0.5 is interpolated between steps: semi-implicit Euler is within a step of exact.
    assert t_level == pytest.approx(math.sqrt(2 * 0.5 / 9.81), abs=dt)
    assert (first_ground, first_peg) == (1.0, 0.0)


def test_a_ball_that_never_lands_answers_its_position_at_the_horizon():
    from dataclasses import replace

    stim = drop(height=1.0, horizon=0.1)
    ball = replace(stim.scene.bodies[0], velocity=(0.5, 0.0))
    stim = replace(stim, scene=stim.scene.with_bodies([ball]))
    qs = [stim.query, parse_query("time_to_land:body=ball,target=ground"),
          parse_query("first_contact:body=ball,target=peg"), parse_query("landing_x:body=ball,level=-1")]
    for early in (True, False):
        vals, res = run_sample(stim, NoiseParams(), 0, 0, qs, early_stop=early)
        assert res.steps == res.n_steps  # still falling at the horizon
        # never NaN: the x where the ball is at the horizon (it moved right at 0.5 m/s for 0.1 s)
        assert vals[0] == res.final[0, 0] == pytest.approx(0.35, abs=1e-9)
        assert vals[3] == vals[0]
        assert math.isnan(vals[1]) and math.isnan(vals[2])


def test_untracked_rollout_gives_a_clear_error():
    from ipe.queries import evaluate
    from ipe.rollout import rollout

    stim = drop()
    with pytest.raises(InputError, match="tracked"):
        evaluate(stim.query, rollout(stim.scene), stim)


@pytest.mark.parametrize("text, message", [
    ("landing_x:target=ground", "needs parameter 'body'"),
    ("landing_x:body=ball", "exactly one of 'target'"),
    ("landing_x:body=ball,target=ground,level=1", "exactly one of 'target'"),
    ("first_contact:body=ball", "needs parameter 'target'"),
])
def test_bad_landing_queries(text, message):
    with pytest.raises(InputError, match=message):
        parse_query(text)


def test_landing_query_names_must_exist():
    from ipe.queries import check_query

    scene = drop().scene
    with pytest.raises(InputError, match="unknown target 'floor'"):
        check_query(parse_query("landing_x:body=ball,target=floor"), scene)
    with pytest.raises(InputError, match="unknown body 'ghost'"):
        check_query(parse_query("landing_x:body=ghost,target=ground"), scene)


# --------------------------------------------------------------------------- fall direction


def test_circular_summary():
    s = circular_summary([0.1, 0.1, 0.1, float("nan")])
    assert s["n"] == 3 and s["mean"] == pytest.approx(0.1) and s["resultant"] == pytest.approx(1.0)
    # Angles either side of ±π average to π, not to 0 as an arithmetic mean would.
    w = circular_summary([math.pi - 0.1, -math.pi + 0.1])
    assert abs(abs(w["mean"]) - math.pi) < 1e-9 and w["p_left"] == 1.0
    even = circular_summary(np.linspace(-math.pi, math.pi, 400, endpoint=False))
    assert even["resultant"] < 1e-9 and even["kappa"] < 1e-6
    rng = np.random.default_rng(0)
    vm = circular_summary(rng.vonmises(0.5, 4.0, 4000))
    assert vm["kappa"] == pytest.approx(4.0, rel=0.1) and vm["mean"] == pytest.approx(0.5, abs=0.03)


def test_fall_directions_of_a_leaning_tower(falling_stack):
    from scenes import stim

    s = stim(falling_stack, sid="lean")
    table = fall_directions([s], NoiseParams(sigma=0.05), n_samples=6, seed=1)
    row = table.iloc[0]
    assert row["p_fall"] == 1.0
    assert -math.pi / 2 < row["mean"] < 0  # down and to the right, the way it leans
    assert row["resultant"] > 0.9


# --------------------------------------------------------------------------- recorded paths


@pytest.fixture(scope="module")
def plinko_set(tmp_path_factory):
    path = tmp_path_factory.mktemp("traj") / "plinko.json"
    path.write_text(docs_plinko_text(), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def recorded(plinko_set):
    stimuli = ipe.load_stimuli(plinko_set)
    params = NoiseParams(launch_position=0.2, collision_angle=0.2)
    paths, land = record_paths(stimuli, params, n_samples=6, seed=3)
    return stimuli, params, paths, land


def test_record_paths_tables(recorded):
    stimuli, params, paths, land = recorded
    assert list(paths.columns) == PATH_COLUMNS and list(land.columns) == LANDING_COLUMNS
    assert sorted(land["sample"]) == list(range(-1, 6))
    assert land["noise_free"].tolist() == [True] + [False] * 6
    # one pose per frame: 4 physics steps
    free = paths[paths["noise_free"]]
    assert np.allclose(np.diff(free["t"].to_numpy())[:-1], 1 / 60)
    assert free["x"].iloc[0] == 300.0 and free["y"].iloc[0] == 610.0


def test_recorded_landings_are_the_monte_carlo_values(recorded):
    stimuli, params, paths, land = recorded
    table = ipe.simulate(stimuli, params, n_samples=6, seed=3)
    noisy = land[~land["noise_free"]]
    np.testing.assert_array_equal(noisy["value"].to_numpy(), table["value"].to_numpy())
    free = ipe.simulate(stimuli, NoiseParams(), n_samples=1, seed=3)
    assert land.loc[land["noise_free"], "value"].iloc[0] == free["value"].iloc[0]


def test_landing_summary_and_density(recorded):
    _, _, _, land = recorded
    s = landing_summary(land)
    assert s["n"].iloc[0] == 6 and s["no_noise"].iloc[0] == pytest.approx(565.545, abs=0.01)
    grid = np.linspace(-3000, 4000, 20001)
    dens = landing_density(land["value"], grid)
    assert np.trapezoid(dens, grid) == pytest.approx(1.0, abs=1e-3)


def test_plot_trajectories_writes_one_png_per_stimulus(recorded, tmp_path):
    stimuli, _, paths, land = recorded
    files = plot_trajectories(stimuli, paths, land, tmp_path / "fans")
    assert [f.name for f in files] == ["plinko_by_hand.png"]
    assert files[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_landing_query_default_needs_a_ball(demo):
    with pytest.raises(InputError, match="no landing query and no ball"):
        landing_query(demo[0])


# --------------------------------------------------------------------------- the docs example and the CLI


def test_the_hand_written_docs_world_gives_landing_predictions(plinko_set, tmp_path, capsys):
    out = tmp_path / "pred.csv"
    assert main(["predict", str(plinko_set), "--samples", "4", "--out", str(out), "--no-progress"]) == 0
    pred = pd.read_csv(out)
    assert pred["query"].iloc[0] == "landing_x(body=ball,target=ground)"
    assert pred["mean"].iloc[0] == pytest.approx(565.545, abs=0.01)  # no noise: every rollout the same
    assert main(["predict", str(plinko_set), "--samples", "4", "--out", str(out), "--no-progress",
                 "--sigma", "0.3"]) == 0
    assert math.isfinite(pd.read_csv(out)["mean"].iloc[0])


def test_cli_plot_trajectories(plinko_set, tmp_path, capsys):
    out = tmp_path / "fans"
    code = main(["plot", "trajectories", str(plinko_set), "--out", str(out), "--samples", "3",
                 "--collision-angle", "0.1", "--no-progress"])
    assert code == 0
    assert {p.name for p in out.iterdir()} == {"plinko_by_hand.png", "paths.csv", "landings.csv",
                                               "landing_summary.csv"}
    assert "plinko_by_hand" in capsys.readouterr().out


def _bad(tmp_path, mutate) -> Path:
    data = json.loads(docs_plinko_text())
    mutate(data["stimuli"][0])
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize("mutate, message", [
    (lambda s: s["scene"]["bodies"][0].update(position=[275.0, 430.0]), "bodies 'ball' and 'pentagon' overlap"),
    (lambda s: s["query"].update(target="floor"), "unknown target 'floor'"),
    (lambda s: s["query"].pop("body"), "query 'landing_x' needs parameter 'body'"),
    (lambda s: s["query"].update(body="ghost"), "unknown body 'ghost'"),
])
@pytest.mark.parametrize("command", [["validate"], ["plot", "trajectories", "--out", "OUT", "--samples", "2"],
                                     ["predict", "--out", "OUT.csv", "--samples", "2"]])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, mutate, message, command):
    path = _bad(tmp_path, mutate)
    argv = [a.replace("OUT", str(tmp_path / "out")) for a in command[:1 + (command[0] == "plot")]]
    argv += [str(path)] + [a.replace("OUT", str(tmp_path / "out")) for a in command[1 + (command[0] == "plot"):]]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ipe: error:") and message in err[0]


def test_cli_bad_query_and_body_options(plinko_set, tmp_path, capsys):
    assert main(["plot", "trajectories", str(plinko_set), "--out", str(tmp_path / "o"), "--query",
                 "landing_x:target=ground"]) == 2
    assert "needs parameter 'body'" in capsys.readouterr().err
    assert main(["plot", "trajectories", str(plinko_set), "--out", str(tmp_path / "o"), "--body", "ghost"]) == 2
    assert "--body 'ghost'" in capsys.readouterr().err
    assert main(["plot", "trajectories", str(plinko_set), "--out", str(tmp_path / "o"),
                 "--launch-angle", "-1"]) == 2
    assert "--launch-angle" in capsys.readouterr().err
