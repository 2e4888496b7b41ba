"""Parameter sweeps: grid specs, the ``ipe sweep`` command, per-point scores against people, the figure."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import ipe
from ipe.cli import main
from ipe.errors import InputError
from ipe.fileio import write_csv
from ipe.humans import aggregate, load_responses, scale_for_stimuli, validate_responses
from ipe.metrics import normalise_responses, pearson
from ipe.noise import NoiseParams
from ipe.scenefile import save_stimuli
from ipe.sweep import grid, parse_values, plot_sweep, score_sweep, varying_parameters


@pytest.fixture(scope="module")
def three(demo):
    """Three demo towers: two that stand under the no-noise model and one that falls."""
    return ipe.StimulusSet(stimuli=tuple(demo)[:3], name="demo3")


@pytest.fixture(scope="module")
def files(three, tmp_path_factory):
    """The three towers on disk and 8 synthetic participants who judged them at σ = 0.3, φ = 0.1."""
    d = tmp_path_factory.mktemp("sweep")
    stim = d / "three.json"
    save_stimuli(three, stim)
    people = d / "people.csv"
    assert main(["humans", "synthesize", str(stim), "-p", "8", "--sigma", "0.3", "--phi", "0.1", "--seed", "4",
                 "-o", str(people), "--no-progress"]) == 0
    return stim, people


# --------------------------------------------------------------------------- grid specs


def test_parse_values_reads_ranges_lists_and_numbers():
    assert parse_values("0:0.5:11") == [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5]
    # a range names the same values as the list typed out (rounded to 12 significant digits)
    assert parse_values("0:0.3:16") == parse_values(",".join(f"{0.02 * i:.2f}" for i in range(16)))
    assert parse_values(" 0.3, 0.1 ,0.2") == [0.3, 0.1, 0.2]  # order kept
    assert parse_values("0.25:0.25:1") == [0.25]
    assert parse_values(0.2) == [0.2]
    assert parse_values([0, 0.5]) == [0.0, 0.5]
    assert parse_values("-0") == [0.0] and math.copysign(1, parse_values("-0")[0]) == 1


@pytest.mark.parametrize("spec, message", [
    ("", "no values"),
    ("0:1", "START:STOP:N"),
    ("0:1:2:3", "START:STOP:N"),
    ("1:0:3", "below START"),
    ("0:1:0", "at least 1"),
    ("0:1:1", "cannot span"),
    ("0:1:2.5", "whole number"),
    ("a,0.1", "must be numbers, got 'a'"),
    ("0.1,0.1", "given twice"),
    ("-0.1", ">= 0"),
    ("nan", "finite"),
    ("0:inf:3", "finite"),
])
def test_parse_values_refuses_bad_specs_in_one_line(spec, message):
    with pytest.raises(InputError, match=message) as info:
        parse_values(spec, "sigma")
    assert "\n" not in str(info.value) and "sigma" in str(info.value)


def test_grid_is_every_combination_first_axis_slowest():
    pts = grid(sigma="0,0.2", phi="0:0.2:3", mu=0.5)
    assert [(p.sigma, p.phi, p.mu) for p in pts] == [
        (0.0, 0.0, 0.5), (0.0, 0.1, 0.5), (0.0, 0.2, 0.5), (0.2, 0.0, 0.5), (0.2, 0.1, 0.5), (0.2, 0.2, 0.5)]
    assert all(isinstance(p, NoiseParams) and p.push_duration == 0.2 for p in pts)
    assert [p.phi for p in grid({"phi": "0,0.1"}, sigma=0.3)] == [0.0, 0.1]  # a mapping's keys come first
    assert len(grid(sigma="0:0.5:11", phi="0:0.3:16")) == 176  # BHT's grid


@pytest.mark.parametrize("kwargs, message", [
    ({}, "no parameters"),
    ({"sgima": "0,1"}, "unknown noise parameter 'sgima'"),
])
def test_grid_refuses_unknown_or_missing_parameters(kwargs, message):
    with pytest.raises(InputError, match=message):
        grid(**kwargs)


# --------------------------------------------------------------------------- the command


def test_sweep_command_writes_the_summary_of_simulate_on_the_grid(files, three, tmp_path):
    stim, _ = files
    out = tmp_path / "sweep.csv"
    raw = tmp_path / "rollouts.csv"
    assert main(["sweep", str(stim), "--grid", "sigma=0,0.3", "--grid", "phi=0:0.2:2", "-n", "5", "--seed", "3",
                 "--rollouts", str(raw), "-o", str(out), "--no-progress"]) == 0
    table = ipe.simulate(three, grid(sigma="0,0.3", phi="0,0.2"), n_samples=5, seed=3, progress=False)
    expected = tmp_path / "expected.csv"
    write_csv(expected, ipe.summarize(table))
    assert out.read_bytes() == expected.read_bytes()
    write_csv(expected, table)
    assert raw.read_bytes() == expected.read_bytes()
    got = pd.read_csv(out)
    assert len(got) == 4 * 3 and set(zip(got["sigma"], got["phi"])) == {(0, 0), (0, 0.2), (0.3, 0), (0.3, 0.2)}
    assert not (tmp_path / "sweep.scores.csv").exists()  # scores only with --humans or --scores


def test_sweep_command_is_byte_identical_on_two_workers(files, tmp_path):
    stim, _ = files
    outs = []
    for w in ("1", "2"):
        out = tmp_path / f"sweep{w}.csv"
        assert main(["sweep", str(stim), "--grid", "sigma=0.1,0.4", "-n", "6", "-w", w, "-o", str(out),
                     "--no-progress", "--no-cache"]) == 0
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


def test_sweep_with_humans_scores_every_point_and_prints_the_best(files, three, tmp_path, capsys):
    stim, people = files
    out, scores, fig = tmp_path / "s.csv", tmp_path / "s.scores.csv", tmp_path / "s.png"
    assert main(["sweep", str(stim), "--grid", "sigma=0,0.3", "--grid", "phi=0,0.2", "-n", "6", "--humans",
                 str(people), "--figure", str(fig), "-o", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "rank" in printed and "noise ceiling" in printed
    assert fig.stat().st_size > 5_000 and fig.read_bytes()[:4] == b"\x89PNG"
    per = pd.read_csv(scores)  # the default scores path: <out>.scores.csv
    assert len(per) == 4 and per["best"].sum() == 1
    assert sorted(per["rank"]) == [1, 2, 3, 4]
    assert per.loc[per["best"], "r"].item() == per["r"].max()
    # r by hand for every point
    summary = pd.read_csv(out)
    resp = validate_responses(load_responses(people), stimuli=three, scale=scale_for_stimuli(three))
    human = aggregate(resp).set_index("stimulus_id")["mean"].reindex(three.ids)
    h01 = normalise_responses(human.to_numpy(), scale_for_stimuli(three))
    for _, row in per.iterrows():
        g = summary[(summary["sigma"] == row["sigma"]) & (summary["phi"] == row["phi"])]
        m01 = g.set_index("stimulus_id")["mean"].reindex(three.ids).to_numpy()  # `fall`: already a proportion
        assert row["r"] == pytest.approx(pearson(m01, h01), abs=1e-12)
        assert row["rmse"] == pytest.approx(float(np.sqrt(np.mean((m01 - h01) ** 2))), abs=1e-12)
        assert row["model_mean"] == pytest.approx(m01.mean(), abs=1e-12)
        assert row["n_stimuli"] == 3
    # the noise-free point cannot fit people who see noisily: stable towers get 0 under it
    assert per.loc[(per["sigma"] == 0) & (per["phi"] == 0), "rank"].item() > 1


def test_score_sweep_without_people_gives_the_mean_judgment_only(three):
    summary = ipe.summarize(ipe.simulate(three, grid(sigma="0,0.4"), n_samples=4, seed=0, progress=False))
    per = score_sweep(summary, three)
    assert list(per.columns[-2:]) == ["n_stimuli", "model_mean"] and "r" not in per
    assert per["model_mean"].iloc[1] > per["model_mean"].iloc[0]  # noise topples the standing towers
    assert varying_parameters(per) == ["sigma"]


def test_score_sweep_refuses_tables_it_cannot_read(three):
    with pytest.raises(InputError, match="empty"):
        score_sweep(pd.DataFrame(), three)
    with pytest.raises(InputError, match="noise-parameter"):
        score_sweep(pd.DataFrame({"stimulus_id": ["x"], "query": ["fall"], "mean": [0.1]}), three)
    bad = pd.DataFrame({"stimulus_id": ["nope"], "query": ["fall"], "mean": [0.1], "sigma": [0.0]})
    with pytest.raises(InputError, match="unknown stimulus id 'nope'"):
        score_sweep(bad, three)


def test_plot_sweep_draws_one_or_two_axes_and_refuses_three(tmp_path):
    two = pd.DataFrame([{**p.as_dict(), "model_mean": p.sigma + p.phi} for p in grid(sigma="0,0.1,0.2", phi="0,0.1")])
    assert plot_sweep(two, tmp_path / "two.svg").read_text().startswith("<?xml")
    one = two[two["phi"] == 0]
    assert plot_sweep(one, tmp_path / "one.png").stat().st_size > 5_000
    three_axes = pd.DataFrame([{**p.as_dict(), "model_mean": 0.5} for p in grid(sigma="0,1", phi="0,1", mu="0,1")])
    with pytest.raises(InputError, match="varies 3 parameters"):
        plot_sweep(three_axes, tmp_path / "x.png")
    with pytest.raises(InputError, match="no column 'r'"):
        plot_sweep(two, tmp_path / "x.png", value="r")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("args, message", [
    ([], "give the grid with --grid"),
    (["--grid", "sigma"], "expected NAME="),
    (["--grid", "sgima=0,1"], "unknown noise parameter 'sgima'"),
    (["--grid", "sigma=0:1"], "START:STOP:N"),
    (["--grid", "sigma=0,1", "--grid", "sigma=2"], "given twice"),
    (["--grid", "sigma=0,1", "--grid", "phi=0,1", "--grid", "mu=0,1", "--figure", "f.png"], "varies 3 parameters"),
    (["--grid", "sigma=0,1", "--figure", "f.gif"], ".png, .pdf or .svg"),
    (["--grid", "sigma=0,1", "--scale", "rating:1-7"], "need --humans"),
    (["--grid", "sigma=0,1", "--scores", "OUT"], "the same file as --out"),
    (["--grid", "sigma=0,1", "--backend", "mpi"], "--backend 'mpi'"),
])
def test_sweep_command_refuses_bad_input_before_simulating(files, tmp_path, capsys, monkeypatch, args, message):
    stim, _ = files
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "o.csv"
    args = [str(out) if a == "OUT" else a for a in args]
    assert main(["sweep", str(stim), "-o", str(out), "--no-progress", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ipe: error:") and message in err and "\n" not in err
    assert not out.exists()


def test_sweep_command_checks_the_human_table_before_simulating(files, tmp_path, capsys):
    stim, people = files
    bad = tmp_path / "bad.csv"
    bad.write_text(people.read_text().replace("tower", "tovver"))
    out = tmp_path / "o.csv"
    assert main(["sweep", str(stim), "--grid", "sigma=0,1", "--humans", str(bad), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "unknown stimulus id" in err and "sweep:" not in err  # refused before the first rollout
    assert not out.exists()


def test_common_random_numbers_give_every_point_the_same_seeds(files, three, tmp_path):
    stim, _ = files
    out = tmp_path / "crn.csv"
    assert main(["sweep", str(stim), "--grid", "sigma=0.1,0.2", "-n", "5", "--common-random-numbers",
                 "-o", str(out), "--no-progress"]) == 0
    pts = grid(sigma="0.1,0.2")
    expected = tmp_path / "expected.csv"
    write_csv(expected, ipe.summarize(ipe.simulate(three, pts, n_samples=5, common_random_numbers=True,
                                                   progress=False)))
    assert out.read_bytes() == expected.read_bytes()
    write_csv(expected, ipe.summarize(ipe.simulate(three, pts, n_samples=5, progress=False)))
    assert out.read_bytes() != expected.read_bytes()


def test_fit_emulator_grid_reads_the_same_specs():
    from ipe.cli.fit import parse_grid
    from ipe.inference.emulator import DEFAULT_GRID

    g = parse_grid(["sigma=0:0.4:3"], ["sigma", "phi"])
    assert g["sigma"] == [0.0, 0.2, 0.4] and g["phi"] == list(DEFAULT_GRID["phi"])
    with pytest.raises(InputError, match="given twice"):
        parse_grid(["sigma=0.1,0.1"], ["sigma", "phi"])


def test_sweep_caches_by_default_so_an_interrupted_sweep_resumes(files, tmp_path, monkeypatch, capsys):
    """Points finished before an interruption come back from the cache; --no-cache stores nothing."""
    from ipe.cache import SimulationCache

    stim, _ = files
    monkeypatch.setenv("IPE_CACHE_DIR", str(tmp_path / "cache"))
    partial, full, again = tmp_path / "partial.csv", tmp_path / "full.csv", tmp_path / "again.csv"
    # the first "run" finishes only σ = 0.1 (as if interrupted after its points were stored)
    assert main(["sweep", str(stim), "--grid", "sigma=0.1", "-n", "4", "-o", str(partial), "--no-progress"]) == 0
    assert SimulationCache().info().entries == 3
    capsys.readouterr()
    assert main(["sweep", str(stim), "--grid", "sigma=0.1,0.4", "-n", "4", "-o", str(full), "--no-progress"]) == 0
    assert "3 hit(s), 3 miss(es)" in capsys.readouterr().err
    assert SimulationCache().info().entries == 6
    # the same sweep without the cache: byte-identical, and nothing new stored
    assert main(["sweep", str(stim), "--grid", "sigma=0.1,0.4", "-n", "4", "-o", str(again), "--no-progress",
                 "--no-cache"]) == 0
    assert again.read_bytes() == full.read_bytes()
    assert SimulationCache().info().entries == 6
