"""Landing fits (ipe.inference.landing): synthetic clicks, the landing emulator, LandingFit on trials and means,
`ipe fit-landing`, `ipe fit` on clicked positions, and the KDE likelihood on a two-mode world."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import ipe
from ipe.cli import main
from ipe.errors import InputError
from ipe.inference.landing import (DEFAULT_N, LandingEmulator, LandingFit, default_free, kde_bandwidth,
                                   stimulus_means, synthesize_landings)
from ipe.montecarlo import run_sample
from ipe.noise import NoiseParams
from ipe.scene import Ball, Stimulus
from ipe.scenefile import save_stimuli
from ipe.stimuli.plinko import generate_plinko
from scenes import peak_world


@pytest.fixture(scope="module")
def bimodal():
    stim = [peak_world()]
    truth = NoiseParams(drop_angle=0.02)
    clicks = synthesize_landings(stim, 60, truth, motor_sd=8.0, seed=3)
    emu = LandingEmulator(grid={"drop_angle": [0.01, 0.02, 0.04]}, n_samples=40, seed=4).fit(stim)
    return stim, clicks, emu


def test_the_world_is_bimodal(bimodal):
    _, clicks, emu = bimodal
    x = clicks["response"].to_numpy()
    assert ((x < 250).mean() > 0.2) and ((x > 350).mean() > 0.2) and not ((x > 250) & (x < 350)).any()
    assert np.isfinite(emu.samples_).all() and emu.samples_.shape == (1, 3, 40)


def test_click_noise_is_recovered_on_a_bimodal_world(bimodal):
    """8 px of click noise: the KDE likelihood's 90 % interval holds 8; the mean-and-sd likelihood's cannot."""
    _, clicks, emu = bimodal
    fit = LandingFit(num_warmup=100, num_samples=100, num_chains=1, seed=0).fit(clicks, emu)
    tau = fit.summary_.set_index("parameter").loc["motor_sd"]
    assert tau.q05 <= 8.0 <= tau.q95, tau
    assert tau.q95 - tau.q05 < 5.0
    # the mean and sd alone see one wide hump 300 px across: they cannot pin the click noise down
    old = LandingFit(num_warmup=50, num_samples=50, num_chains=1, seed=0, likelihood="gaussian").fit(clicks, emu)
    old_tau = old.summary_.set_index("parameter").loc["motor_sd"]
    assert old_tau.q95 - old_tau.q05 > 20.0, old_tau


@pytest.mark.filterwarnings("error::FutureWarning")
@pytest.mark.filterwarnings("ignore:landing fit:UserWarning")
def test_means_with_and_without_n(bimodal):
    _, clicks, emu = bimodal
    means = stimulus_means(clicks)
    fit = LandingFit(num_warmup=30, num_samples=30, num_chains=1, seed=0).fit(means, emu, means=True)
    assert fit.n_used_.tolist() == [60]
    unknown = LandingFit(num_warmup=30, num_samples=30, num_chains=1, seed=0).fit(means.drop(columns="n"), emu,
                                                                                  means=True)
    assert unknown.n_used_.tolist() == [DEFAULT_N]
    with pytest.raises(InputError, match="default_n"):
        LandingFit(default_n=0).fit(means.drop(columns="n"), emu, means=True)
    with pytest.raises(InputError, match="likelihood"):
        LandingFit(likelihood="normal").fit(clicks, emu)


def test_kde_bandwidth_keeps_modes_apart():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 2, 30), rng.normal(300, 2, 30)])
    h = kde_bandwidth(x, 1e-3)
    assert 0.5 < h < 5  # Silverman's rule would give ~ 70
    assert kde_bandwidth(np.full(10, 3.0), 0.1) == 0.1


def test_default_free_parameters_follow_how_the_ball_starts():
    plinko = generate_plinko(1, seed=8)
    assert default_free(plinko) == ("drop_angle", "collision_angle")
    stim = peak_world()
    thrown = Stimulus("t", stim.scene.with_bodies([Ball("ball", (300.0, 420.0), 20.0, velocity=(50.0, 0.0))]),
                      stim.query)
    assert default_free([stim, thrown]) == ("launch_angle", "collision_angle")


def test_variance_corrected_centres_keep_mean_and_variance():
    from ipe.inference.landing import variance_corrected

    rng = np.random.default_rng(1)
    x = rng.normal(100.0, 20.0, 40)
    h = kde_bandwidth(x, 1e-3)
    c = variance_corrected(x, h)
    assert c.mean() == pytest.approx(x.mean()) and c.var() + h * h == pytest.approx(x.var())
    assert np.all(variance_corrected(np.full(5, 2.0), 1.0) == 2.0)
    assert np.allclose(variance_corrected(np.array([0.0, 1.0]), 10.0), 0.5)  # h wider than the spread: onto the mean


@pytest.mark.parametrize("option,value,message", [
    ("samples_per_judgment", 0, "samples_per_judgment must be a positive integer, got 0"),
    ("num_warmup", 0, "num_warmup must be a positive integer, got 0"),
    ("likelihood", "normal", "likelihood must be one of kde, gaussian, got 'normal'"),
    ("motor_scale", -1.0, "motor_scale must be a finite number > 0 or None, got -1.0"),
    ("emulator_bootstrap", -1, "emulator_bootstrap must be a non-negative integer, got -1"),
])
def test_fit_options_break_their_rule_with_one_message(option, value, message):
    with pytest.raises(InputError) as err:
        LandingFit(**{option: value}).fit(None, None)
    assert str(err.value) == message


@pytest.mark.parametrize("options,message", [
    ({"n_participants": 0}, "n_participants must be a positive integer, got 0"),
    ({"motor_sd": -1.0}, "motor_sd must be a finite number >= 0, got -1.0"),
    ({"samples_per_judgment": 0}, "samples_per_judgment must be a positive integer, got 0"),
])
def test_synthetic_clicks_check_their_arguments(options, message):
    args = {"n_participants": 2, **options}
    with pytest.raises(InputError) as err:
        synthesize_landings([], params=NoiseParams(), **args)
    assert str(err.value) == message


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


def _written_inputs(small_fit_inputs, tmp_path):
    """The small fit's stimuli and clicks written as fit-landing reads them: ``(stimuli.json, clicks.csv)``."""
    stimuli, _, clicks, _ = small_fit_inputs
    sp, cp = tmp_path / "p.json", tmp_path / "clicks.csv"
    save_stimuli(stimuli, sp)
    clicks.to_csv(cp, index=False)
    return sp, cp


def test_cli_fit_landing(small_fit_inputs, tmp_path, capsys):
    sp, cp = _written_inputs(small_fit_inputs, tmp_path)
    out = tmp_path / "fit"
    argv = ["fit-landing", str(cp), "--stimuli", str(sp), "--out", str(out), "--grid-points", "3",
            "--grid-max", "0.4", "--emulator-samples", "4", "--warmup", "10", "--draws", "10", "--chains", "1",
            "--no-progress"]
    assert main(argv) == 0
    assert {p.name for p in out.iterdir()} == {"summary.csv", "params.json", "draws.csv", "convergence.json",
                                               "emulator.npz"}
    assert main(argv[:-1] + ["--free", "launch_position,bogus"]) == 2
    assert main(["fit-landing", str(tmp_path / "none.csv"), "--stimuli", str(sp), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--free" in err and "no such file" in err


def test_ipe_fit_takes_clicked_positions(small_fit_inputs, tmp_path, capsys):
    """`ipe fit` with the position scale (the default for landing_x): the KDE likelihood over the emulator's kept
    rollouts; an emulator that keeps none is refused with one line."""
    from ipe.humans import scale_for_stimuli
    from ipe.inference import Emulator

    stimuli, _, clicks, _ = small_fit_inputs
    scale = scale_for_stimuli(stimuli)
    assert scale.kind == "position" and scale.low == -20 and scale.high == 620
    grid = {"launch_position": [0.0, 0.2, 0.4], "collision_angle": [0.0, 0.2, 0.4]}
    emu = Emulator(grid=grid, n_samples=6, seed=2, keep_samples=True).fit(stimuli)
    assert emu.samples_.shape == (2, 9, 6) and np.isfinite(emu.samples_).all()
    # the kept values are the rollouts' own: their mean per grid point is the grid mean
    np.testing.assert_allclose(emu.samples_.mean(axis=2), emu.grid_means_.T, rtol=1e-12)
    sd = emu.predict_sd(torch_tensor([[0.0, 0.0], [0.4, 0.4]]))
    assert sd.shape == (2, 2) and (sd[1] > sd[0]).all()
    emu.save(tmp_path / "emu.npz")
    np.testing.assert_array_equal(Emulator.load(tmp_path / "emu.npz").samples_, emu.samples_)
    sp, cp = tmp_path / "p.json", tmp_path / "clicks.csv"
    save_stimuli(stimuli, sp)
    clicks.to_csv(cp, index=False)
    out = tmp_path / "fit"
    argv = ["fit", str(cp), "--stimuli", str(sp), "--out", str(out), "--free", "launch_position,collision_angle",
            "--emulator", str(tmp_path / "emu.npz"), "--warmup", "15", "--draws", "15", "--chains", "2",
            "--no-progress"]
    assert main(argv) == 0
    params = json.loads((out / "params.json").read_text())
    assert params["_meta"]["scale"] == "position:-20-620" and params["_meta"]["likelihood"] == "kde"
    assert params["_meta"]["sims"] == 1.0  # one simulation per click, not "fit"
    assert set(params["_meta"]["emulator_mc_sd"]) == {"launch_position", "collision_angle"}
    assert 0.0 <= params["launch_position"]["mean"] <= 0.6
    assert "motor_sd" in pd.read_csv(out / "diagnostics.csv")["parameter"].tolist()
    assert "emulator Monte Carlo error across each posterior" in capsys.readouterr().err
    ppc = pd.read_csv(out / "ppc.csv")
    assert ppc["predicted_mean"].between(-20, 620).all()
    capsys.readouterr()
    Emulator(grid=grid, n_samples=6, seed=2).fit(stimuli).save(tmp_path / "means_only.npz")
    assert main(argv[:-9] + ["--emulator", str(tmp_path / "means_only.npz"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert "Traceback" not in err and last.startswith(f"ipe: error: --emulator {tmp_path / 'means_only.npz'}: keeps")
    assert "keeps no rollouts" in last
    assert main(argv + ["--sims", "2.5"]) == 2  # a click is the mean of a whole number of simulations
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "ipe: error: sims: a position click is the mean of a whole number of simulations, got 2.5")


def test_ipe_fit_frees_the_motion_noise_that_suits_the_balls(small_fit_inputs, tmp_path):
    """Without --free, `ipe fit` on clicked positions frees drop and collision noise for balls released at rest
    (sigma, phi for judgments)."""
    from ipe.humans import ResponseScale
    from ipe.inference.pipeline import default_free

    stimuli, _, clicks, _ = small_fit_inputs
    assert default_free(ResponseScale.parse("rating:1-7"), stimuli) == ("sigma", "phi")
    sp, cp, out = tmp_path / "p.json", tmp_path / "clicks.csv", tmp_path / "fit"
    save_stimuli(stimuli, sp)
    clicks.to_csv(cp, index=False)
    assert main(["fit", str(cp), "--stimuli", str(sp), "--out", str(out), "--grid", "drop_angle=0:0.2:3",
                 "--grid", "collision_angle=0:0.2:3", "--emulator-samples", "4", "--warmup", "10", "--draws", "10",
                 "--chains", "1", "--no-progress"]) == 0
    meta = json.loads((out / "params.json").read_text())["_meta"]
    assert meta["free"] == ["drop_angle", "collision_angle"] and meta["likelihood"] == "kde"
    assert main(["fit", str(cp), "--stimuli", str(sp), "--out", str(out), "--grid", "sigma=0:0.2:3"]) == 2


@pytest.fixture(scope="module")
def tilted_peaks():
    """Four peak worlds (the ball a little off the apex: different odds of each side; 2 px off, it always goes
    right at this noise), 12 people each."""
    from ipe.checks import StimulusSet

    stim = StimulusSet(tuple(peak_world(o, f"peak_{i}") for i, o in enumerate((0.0, 1.0, -1.0, 2.0))))
    return stim, synthesize_landings(stim, 12, NoiseParams(drop_angle=0.02), motor_sd=8.0, seed=3)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_ipe_fit_reads_two_mode_landings_as_two_modes(tilted_peaks):
    """`ipe fit` (hierarchical) on clicks at two-mode worlds: the drop noise and the 8 px click noise are
    recovered. The mean-and-sd likelihood it used before put the drop noise at 0.011 [0.010, 0.013] (truth 0.02)
    and the click noise at 5.6 [2.6, 8.8]."""
    stim, clicks = tilted_peaks
    assert sum(0 < (clicks.loc[clicks.stimulus_id == s.id, "response"] < 300).mean() < 1 for s in stim) == 3
    result = ipe.fit_responses(clicks, stim, free=("drop_angle",), grid={"drop_angle": [0.01, 0.02, 0.04]},
                               emulator_samples=40, emulator_store=False, num_warmup=100, num_samples=100,
                               num_chains=2, progress=False, seed=0)
    table = result.summary(all=True).set_index("parameter")
    drop, tau = table.loc["drop_angle"], table.loc["motor_sd"]
    assert drop["q5%"] <= 0.02 <= drop["q95%"], drop
    assert tau["q5%"] <= 8.0 <= tau["q95%"] and tau["q95%"] - tau["q5%"] < 5.0, tau
    assert result.estimator.model_.likelihood == "kde"


def torch_tensor(x):
    import torch

    return torch.as_tensor(np.asarray(x, dtype=float))


# --------------------------------------------------------------------------- the emulator kept, and its Monte Carlo error


def test_landing_emulator_saves_and_loads(small_fit_inputs, tmp_path):
    stimuli, _, _, emu = small_fit_inputs
    path = emu.save(tmp_path / "landing.npz")
    back = LandingEmulator.load(path, stimuli)
    np.testing.assert_array_equal(back.samples_, emu.samples_)
    np.testing.assert_array_equal(back.centre_, emu.centre_)
    assert back.names_ == emu.names_ and back.get_params()["n_samples"] == 6
    theta = np.array([[0.1, 0.3]])
    for a, b in zip(back.predict(theta), emu.predict(theta)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)
    with pytest.raises(InputError, match="built for other stimuli"):
        LandingEmulator.load(path, stimuli.subset([stimuli.ids[0]]))
    (tmp_path / "junk.npz").write_text("not an archive")
    with pytest.raises(InputError, match="not a landing emulator written by ipe"):
        LandingEmulator.load(tmp_path / "junk.npz", stimuli)


def test_landing_emulator_is_stored_when_built_and_reused(small_fit_inputs, tmp_path, monkeypatch):
    from ipe.inference import landing

    stimuli = small_fit_inputs[0]
    grid = {"launch_position": [0.0, 0.4], "collision_angle": [0.0, 0.4]}
    first, path, reused = landing.landing_fit_or_load(LandingEmulator(grid=grid, n_samples=3, seed=5), stimuli,
                                                      tmp_path)
    assert path.is_file() and not reused and path.parent.parent.parent == tmp_path

    def no_simulation(*args, **kwargs):
        raise AssertionError("simulated again")

    monkeypatch.setattr("ipe.montecarlo.simulate", no_simulation)
    again, path2, reused = landing.landing_fit_or_load(LandingEmulator(grid=grid, n_samples=3, seed=5), stimuli,
                                                       tmp_path)
    assert reused and path2 == path
    np.testing.assert_array_equal(again.samples_, first.samples_)
    # another seed is another emulator
    assert landing.landing_emulator_path(LandingEmulator(grid=grid, n_samples=3, seed=6), stimuli, tmp_path) != path


def test_the_fit_measures_the_emulators_monte_carlo_error(small_fit_inputs):
    """Six rollouts per grid point cannot place the posterior: the verdict says so and how many would."""
    _, _, clicks, emu = small_fit_inputs
    fit = LandingFit(num_warmup=20, num_samples=20, num_chains=1, seed=0).fit(clicks, emu)
    assert set(fit.mc_sd_) == {"launch_position", "collision_angle"}
    assert all(v > 0 for v in fit.mc_sd_.values())
    again = LandingFit(num_warmup=20, num_samples=20, num_chains=1, seed=0).fit(clicks, emu)
    assert again.mc_sd_ == fit.mc_sd_
    assert max(fit.mc_sd_.values()) > 1.0
    assert [p["check"] for p in fit.verdict_.problems].count("emulator_mc") == 1
    assert not fit.verdict_.converged and any("--emulator-samples" in a for a in fit.verdict_.advice)
    gauss = LandingFit(num_warmup=5, num_samples=5, num_chains=1, seed=0, likelihood="gaussian").fit(clicks, emu)
    assert gauss.mc_sd_ == {}


def test_a_pooled_fit_carries_the_emulators_error_into_its_intervals(small_fit_inputs):
    """emulator_bootstrap=B: B fits on bootstrap replicates of the emulator's rollouts, pooled. The emulator's
    Monte Carlo error (six rollouts per point: far too few, see the test above) widens the intervals instead of
    failing the verdict; the verdict asks for more replicates while the pooled mean is not pinned down."""
    _, _, clicks, emu = small_fit_inputs
    opts = dict(num_warmup=20, num_samples=20, num_chains=1, seed=0)
    one = LandingFit(**opts).fit(clicks, emu)
    pooled = LandingFit(**opts, emulator_bootstrap=4).fit(clicks, emu)
    assert pooled.posterior_["motor_sd"].shape == (4, 20) and pooled.replicate_.tolist() == [0, 1, 2, 3]
    draws = pooled.draws()
    assert sorted(set(draws["replicate"])) == [0, 1, 2, 3] and len(draws) == 80
    sd = pooled.summary_.set_index("parameter")["sd"]
    sd_one = one.summary_.set_index("parameter")["sd"]
    assert (sd[["launch_position", "collision_angle"]] > sd_one[["launch_position", "collision_angle"]]).all()
    # the replicates disagree: that spread is the emulator's part of the interval
    assert set(pooled.mc_between_) == {"launch_position", "collision_angle"}
    assert all(0.2 < v < 1.0 for v in pooled.mc_between_.values())
    checks = [p["check"] for p in pooled.verdict_.problems]
    assert "emulator_mc" not in checks and "emulator_mc" in [p["check"] for p in one.verdict_.problems]
    assert "emulator_pool" in checks and any("--emulator-bootstrap" in a for a in pooled.verdict_.advice)
    assert not pooled.verdict_.converged
    # seeded: replicate b's resample and chains are the same for any B (so the same B gives the same draws)
    fewer = LandingFit(**opts, emulator_bootstrap=2).fit(clicks, emu)
    np.testing.assert_array_equal(fewer.posterior_["motor_sd"], pooled.posterior_["motor_sd"][:2])
    with pytest.raises(InputError, match="emulator_bootstrap needs likelihood='kde'"):
        LandingFit(**opts, emulator_bootstrap=2, likelihood="gaussian").fit(clicks, emu)


def test_cli_fit_landing_pools_bootstrap_replicates(small_fit_inputs, tmp_path, capsys):
    sp, cp = _written_inputs(small_fit_inputs, tmp_path)
    out = tmp_path / "fit"
    argv = ["fit-landing", str(cp), "--stimuli", str(sp), "--out", str(out), "--grid-points", "3",
            "--grid-max", "0.4", "--emulator-samples", "4", "--warmup", "5", "--draws", "5", "--chains", "1",
            "--no-progress", "--emulator-bootstrap", "2"]
    assert main(argv) == 0
    meta = json.loads((out / "params.json").read_text())["_meta"]
    assert meta["emulator_bootstrap"] == 2 and set(meta["emulator_between_share"]) == {"drop_angle",
                                                                                        "collision_angle"}
    assert sorted(set(pd.read_csv(out / "draws.csv")["replicate"])) == [0, 1]
    assert "bootstrap replicates" in capsys.readouterr().err
    assert main(argv + ["--likelihood", "gaussian"]) == 2
    assert "--emulator-bootstrap needs --likelihood kde" in capsys.readouterr().err
