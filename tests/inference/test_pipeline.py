"""The fit workflow in one call (ipe.inference.pipeline.fit_responses), and `ipe fit` on top of it."""

from __future__ import annotations

import json
import warnings

import pytest

from ipe.cli import main
from ipe.inference import load_params


@pytest.fixture(scope="module")
def towers(tmp_path_factory):
    d = tmp_path_factory.mktemp("honest")
    assert main(["stimuli", "towers", "--n", "2", "--seed", "1", "--blocks", "3", "--out", str(d / "t.json")]) == 0
    assert main(["humans", "synthesize", str(d / "t.json"), "-p", "2", "--sigma", "0.2", "--phi", "0.2", "--seed",
                 "1", "--out", str(d / "people.csv"), "--no-progress"]) == 0
    return d


@pytest.mark.parametrize("option,value,fragment", [
    ("--max-time", "0", "--max-time '0': expected a positive duration"),
    ("--max-time", "soon", "--max-time 'soon'"),
    ("--method", "mcmc", "--method 'mcmc': expected one of nuts, svi"),
    ("--hierarchy", "maybe", "--hierarchy 'maybe': expected auto, on or off"),
    ("--range", "sigma=0:2", "beyond the emulator's grid"),
    ("--emulator-se", "0", "--emulator-se must be a finite number > 0, got 0"),
    ("--emulator-se", "inf", "--emulator-se must be a finite number > 0, got inf"),
])
def test_bad_new_fit_options_are_one_line_and_exit_2(towers, option, value, fragment, capsys):
    d = towers
    capsys.readouterr()
    rc = main(["fit", str(d / "people.csv"), "--stimuli", str(d / "t.json"), "--out", str(d / "bad"), option, value,
               "--grid", "sigma=0,0.4", "--grid", "phi=0,0.4"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("ipe: error:") and fragment in err and err.count("\n") == 1, err
    assert not (d / "bad").exists()


def test_cli_fit_warns_about_two_participants_stores_the_emulator_and_reuses_it(towers, tmp_path, capsys):
    d = towers
    argv = ["fit", str(d / "people.csv"), "--stimuli", str(d / "t.json"), "--grid", "sigma=0,0.4",
            "--grid", "phi=0,0.4", "--emulator-samples", "2", "--warmup", "10", "--draws", "10", "--chains", "1",
            "--no-progress", "--cache-dir", str(tmp_path / "cache")]
    assert main(argv + ["--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert "2 participants barely identify the hierarchy" in err and "NOT CONVERGED" in err
    assert (tmp_path / "a" / "emulator.npz").exists() and (tmp_path / "a" / "convergence.json").exists()
    assert list((tmp_path / "cache").glob("physics-*/emulators/*.npz"))
    assert main(argv + ["--out", str(tmp_path / "b")]) == 0
    assert "emulator: reused" in capsys.readouterr().err
    a = json.loads((tmp_path / "a" / "params.json").read_text())
    b = json.loads((tmp_path / "b" / "params.json").read_text())
    assert a["sigma"] == b["sigma"]  # the stored emulator gives the same fit


def test_fit_responses_is_the_whole_workflow_in_one_call(towers, tmp_path):
    import ipe

    d = towers
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = ipe.fit_responses(d / "people.csv", d / "t.json", free=("sigma",), scale="rating:1-7",
                                   grid={"sigma": [0.0, 0.4]}, emulator_samples=2, emulator_store=False,
                                   num_warmup=10, num_samples=10, num_chains=1, progress=False)
    assert isinstance(result, ipe.FitResult)
    assert set(result.params) == {"sigma"} and result.converged is False
    assert list(result.summary()["parameter"]) == ["k_sims", "sigma"]
    assert "posterior" in result.to_arviz().groups()
    pred = result.predict(n_samples=2)
    assert set(pred["stimulus_id"]) == set(result.emulator.stimulus_ids_)
    paths = result.save(tmp_path / "fit", figures=False)
    assert load_params(paths["params"]) == {"sigma": result.params["sigma"]["mean"]}


def test_fit_responses_without_early_stop_builds_a_full_horizon_emulator(towers):
    """``early_stop=False`` (``ipe fit --no-early-stop``) reaches the emulator, whose stored key includes it."""
    import ipe
    from ipe.inference.emulator import emulator_key

    d = towers
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = ipe.fit_responses(d / "people.csv", d / "t.json", free=("sigma",), scale="rating:1-7",
                                   grid={"sigma": [0.0, 0.4]}, emulator_samples=2, emulator_store=False,
                                   early_stop=False, method="svi", svi_steps=20, num_samples=10, num_chains=1,
                                   progress=False)
    assert result.emulator.early_stop is False
    early = ipe.inference.Emulator(grid={"sigma": [0.0, 0.4]}, n_samples=2)
    full = ipe.inference.Emulator(grid={"sigma": [0.0, 0.4]}, n_samples=2, early_stop=False)
    stimuli = ipe.load_stimuli(d / "t.json")
    assert emulator_key(early, stimuli) != emulator_key(full, stimuli)


def test_fit_responses_passes_the_adaptive_emulator_target_and_the_workers_on(towers):
    """``emulator_se`` (``ipe fit --emulator-se``) makes an adaptive emulator; ``workers`` also runs the chains."""
    import ipe

    d = towers
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = ipe.fit_responses(d / "people.csv", d / "t.json", free=("sigma",), scale="rating:1-7",
                                   grid={"sigma": [0.0, 0.4]}, emulator_samples=20, emulator_se=0.2,
                                   emulator_store=False, method="svi", svi_steps=20, num_samples=10, num_chains=1,
                                   workers=2, progress=False)
    assert result.emulator.target_se == 0.2 and result.estimator.workers == 2
    assert result.emulator.grid_n_.max() <= 20 and result.emulator.grid_n_.min() >= 1


@pytest.mark.parametrize("options,message", [
    ({"max_time": 0}, "max_time must be a positive number of seconds or None, got 0"),
    ({"early_stop": 1}, "early_stop must be True or False, got 1"),
    ({"num_samples": 0}, "num_samples must be a positive integer, got 0"),
    ({"emulator_se": -0.1}, "emulator_se must be a finite number > 0 or None, got -0.1"),
    ({"workers": 0}, "workers must be a positive integer, got 0"),
])
def test_fit_responses_checks_its_options_before_reading_any_file(tmp_path, options, message):
    import ipe
    from ipe.errors import InputError

    with pytest.raises(InputError) as err:
        ipe.fit_responses(tmp_path / "missing.csv", tmp_path / "missing.json", **options)
    assert str(err.value) == message
