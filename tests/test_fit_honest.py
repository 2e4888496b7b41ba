"""Fits that are honest: progress while sampling, a convergence verdict, priors inside the emulator, a time
limit, SVI, the group-level fallback, the emulator store, one library call, and fit handover to predict."""

from __future__ import annotations

import io
import json
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from ipe.cli import main
from ipe.errors import InputError
from ipe.inference import ConvergenceWarning, EdgeWarning, HierarchicalFit, load_params
from ipe.inference.diagnostics import check_convergence, edge_problems
from ipe.inference.emulator import FixedPredictions
from ipe.inference.hierarchical import FitStopped
from test_hierarchical import LineEmulator, synth

RATING = SimpleNamespace(kind="rating", low=1, high=7)
PROB = SimpleNamespace(kind="probability", low=0, high=100)
POSITION = SimpleNamespace(kind="position", low=0, high=100)


def _quiet_fit(**kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return HierarchicalFit(**kw)


# --------------------------------------------------------------------------- the verdict


def test_too_few_draws_give_the_non_convergence_warning(tmp_path):
    emu = LineEmulator(4)
    df = synth(emu, "rating", 1, 7, sigma=0.3, n_part=4, reps=1)
    fit = HierarchicalFit(free=("sigma",), scale=RATING, num_warmup=15, num_samples=10, num_chains=2, seed=1,
                          max_tree_depth=5, svi_steps=50, jit=False)
    with pytest.warns(ConvergenceWarning, match="NOT CONVERGED") as rec:
        fit.fit(df, emu)
    text = str(rec[0].message)
    assert "ESS of" in text and "(needs >= 400)" in text  # names the quantity and the threshold
    assert "more draws" in text and "--hierarchy off" in text  # and what to try
    assert fit.verdict_.converged is False
    fit.save(tmp_path, figures=False)
    meta = json.loads((tmp_path / "params.json").read_text())["_meta"]
    assert meta["converged"] is False and meta["convergence"]["problems"]
    assert json.loads((tmp_path / "convergence.json").read_text())["converged"] is False


def _identified_probability_data(n_part=20, n_stim=8, sigma=0.3, seed=4):
    """Probability answers made by the model itself (no participant effects)."""
    emu = LineEmulator(n_stim)
    rng = np.random.default_rng(seed)
    q = emu.predict(torch.tensor([sigma])).numpy()
    rows = [(f"p{j}", sid, float(np.clip(np.round(100 * (0.05 + 0.9 * q[i]) + rng.normal(0, 8)), 0, 100)))
            for j in range(n_part) for i, sid in enumerate(emu.stimulus_ids_)]
    return emu, pd.DataFrame(rows, columns=["participant", "stimulus_id", "response"])


class PositionEmulator(LineEmulator):
    """Where a ball lands (0–100) moves with σ at a rate of its own; the IPE's spread is 3 everywhere."""

    def predict(self, theta):
        return 100 * super().predict(theta)

    def predict_sd(self, theta):
        shape = torch.as_tensor(theta).shape[:-1] + (len(self.stimulus_ids_),)
        return torch.full(shape, 3.0, dtype=torch.float64)


def test_a_well_specified_fit_gives_no_warning():
    """Clicks made by the group-level model itself, at σ = 0.3 with click noise 5: every check passes."""
    emu = PositionEmulator(8)
    df = _clicks(emu)
    fit = HierarchicalFit(free=("sigma",), scale=POSITION, num_warmup=150,
                          num_samples=400, num_chains=2, seed=0, hierarchy=False, response_bias=False, svi_steps=100)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        warnings.simplefilter("error", EdgeWarning)
        fit.fit(df, emu)
    v = fit.verdict_
    assert v.converged and v.max_r_hat <= 1.01 and v.min_ess_bulk >= 400 and v.min_ess_tail >= 400
    assert v.n_divergent == 0 and v.saturated_share <= 0.01
    p = fit.params_["sigma"]
    assert p["q05"] <= 0.3 <= p["q95"]


def test_verdict_checks_each_threshold():
    table = pd.DataFrame({"parameter": ["a", "b"], "r_hat": [1.0, 1.02], "ess_bulk": [500, 399],
                          "ess_tail": [450, 401]})
    v = check_convergence(table, 2, 300, np.array([[False, True]]), np.array([8, 3, 3]), 8, free=("sigma", "phi"))
    checks = {p["check"]: p for p in v.problems}
    assert set(checks) == {"r_hat", "ess_bulk", "divergences", "tree_depth"}
    assert checks["r_hat"]["parameter"] == "b" and checks["ess_bulk"]["parameter"] == "b"
    assert any("--free sigma" in a for a in v.advice)
    ok = check_convergence(table.assign(r_hat=1.0, ess_bulk=400, ess_tail=400), 2, 300, np.zeros(3, bool),
                           np.array([3, 3, 3]), 8)
    assert ok.converged and ok.message() == ""
    one_chain = check_convergence(table.assign(r_hat=np.nan, ess_bulk=900, ess_tail=900), 1, 300, np.zeros(3, bool))
    assert not one_chain.converged and "2 chains" in one_chain.problems[0]["message"]


# --------------------------------------------------------------------------- inside the emulator


def test_prior_range_defaults_to_the_emulator_grid_and_may_not_leave_it():
    emu = LineEmulator(4)
    emu.grid_values_ = {"sigma": np.array([0.0, 0.1, 0.5])}
    df = synth(emu, "rating", 1, 7, sigma=0.3, n_part=4, reps=1)
    fit = _quiet_fit(free=("sigma",), scale=RATING, num_warmup=20, num_samples=20, num_chains=1, seed=1,
                     max_tree_depth=4, svi_steps=30, jit=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit.fit(df, emu)
    assert fit.model_.ranges == {"sigma": (0.0, 0.5)}
    assert float(fit.idata_.posterior["sigma"].max()) <= 0.5
    with pytest.raises(InputError, match="beyond the emulator's grid"):
        HierarchicalFit(free=("sigma",), scale=RATING, ranges={"sigma": (0.0, 1.0)}).fit(df, emu)


def test_a_posterior_piled_at_the_grid_edge_is_flagged_but_not_at_zero():
    near_top = np.full(100, 0.39)
    found = edge_problems({"phi": near_top, "sigma": np.full(100, 0.001)}, {"phi": (0.0, 0.4), "sigma": (0.0, 0.4)})
    assert [e["parameter"] for e in found] == ["phi"] and "widen the grid" in found[0]["message"]
    assert edge_problems({"phi": np.full(100, 0.21)}, {"phi": (0.2, 0.4)})[0]["edge"] == "lower"
    assert edge_problems({"phi": np.linspace(0, 0.4, 100)}, {"phi": (0.0, 0.4)}) == []


def test_one_kind_of_interval_in_the_table_and_in_params_json(tmp_path):
    emu = LineEmulator(4)
    df = synth(emu, "rating", 1, 7, sigma=0.3, n_part=4, reps=1)
    fit = _quiet_fit(free=("sigma",), scale=RATING, num_warmup=20, num_samples=20, num_chains=1, seed=1,
                     max_tree_depth=4, svi_steps=30, jit=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit.fit(df, emu)
    row = fit.summary_.set_index("parameter").loc["sigma"]
    assert not any(c.startswith("hdi") for c in fit.summary_.columns)
    assert row["q5%"] == pytest.approx(fit.params_["sigma"]["q05"]) and row["q95%"] == pytest.approx(
        fit.params_["sigma"]["q95"])
    fit.save(tmp_path, figures=False)
    assert "equal-tailed" in json.loads((tmp_path / "params.json").read_text())["_meta"]["interval"]


# --------------------------------------------------------------------------- sampling well, and quickly


def test_two_participants_fall_back_to_the_group_level_fit_and_say_so():
    emu = LineEmulator(4)
    df = synth(emu, "rating", 1, 7, sigma=0.3, n_part=2, reps=2)
    fit = HierarchicalFit(free=("sigma",), scale=RATING, num_warmup=20, num_samples=20, num_chains=1, seed=1,
                          max_tree_depth=4, svi_steps=30, jit=False)
    with pytest.warns(UserWarning, match="2 participants barely identify the hierarchy"):
        fit.fit(df, emu)
    assert fit.hierarchical_ is False and "z_sigma" not in fit.idata_.posterior and "tau_sigma" not in \
        fit.idata_.posterior
    assert fit.participants_["sigma"].nunique() == 1  # everyone at the group value
    forced = _quiet_fit(free=("sigma",), scale=RATING, num_warmup=10, num_samples=10, num_chains=1, seed=1,
                        max_tree_depth=3, svi_steps=10, hierarchy=True, jit=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        forced.fit(df, emu)
    assert forced.hierarchical_ and "z_sigma" in forced.idata_.posterior


def _clicks(emu, sigma=0.3, n_part=10, seed=0):
    rng = np.random.default_rng(seed)
    q = emu.predict(torch.tensor([sigma])).numpy()
    return pd.DataFrame([(f"p{j}", sid, float(q[i] + rng.normal(0, 5))) for j in range(n_part)
                         for i, sid in enumerate(emu.stimulus_ids_)], columns=["participant", "stimulus_id", "response"])


def test_svi_method_gives_an_approximate_posterior_and_says_it_is_unchecked():
    emu = PositionEmulator(8)
    fit = HierarchicalFit(free=("sigma",), scale=POSITION, num_samples=100, num_chains=2, seed=0, method="svi",
                          svi_steps=300, hierarchy=False, response_bias=False)
    with pytest.warns(ConvergenceWarning, match="CONVERGENCE NOT CHECKED"):
        fit.fit(_clicks(emu), emu)
    assert fit.idata_.posterior["sigma"].shape == (1, 200)
    assert fit.verdict_.method == "svi" and not fit.verdict_.checked
    assert 0.25 < fit.params_["sigma"]["mean"] < 0.35
    with pytest.raises(InputError, match="method"):
        HierarchicalFit(free=("sigma",), scale=POSITION, method="vi").fit(_clicks(emu), emu)


class _Clock:
    """A clock that moves one second each time it is read: a time limit that does not depend on the load."""

    def __init__(self):
        self.t = 0.0

    def monotonic(self):
        self.t += 1.0
        return self.t


def test_max_time_stops_cleanly_and_keeps_the_draws(tmp_path, monkeypatch):
    clock = _Clock()
    for module in ("ipe.inference.sampling", "ipe.inference.hierarchical"):
        monkeypatch.setattr(f"{module}.time", SimpleNamespace(monotonic=clock.monotonic))
    emu = LineEmulator(4)
    df = synth(emu, "rating", 1, 7, sigma=0.3, n_part=4, reps=1)
    fit = _quiet_fit(free=("sigma",), scale=RATING, num_warmup=5, num_samples=1000, num_chains=2, seed=1,
                     max_tree_depth=3, init="random", max_time=30.0, jit=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit.fit(df, emu)
    assert fit.stopped_early_ and 0 < fit.idata_.posterior.sizes["draw"] < 1000
    assert fit.idata_.posterior.sizes["chain"] == 1  # the second chain never started
    assert not fit.verdict_.converged and fit.verdict_.problems[0]["check"] == "stopped"
    fit.save(tmp_path, figures=False)
    assert json.loads((tmp_path / "params.json").read_text())["_meta"]["stopped_early"] is True
    with pytest.raises(FitStopped, match="before the first draw"):
        _quiet_fit(free=("sigma",), scale=RATING, num_warmup=10, num_samples=10, num_chains=1, init="random",
                   max_time=0.5, jit=False).fit(df, emu)
    with pytest.raises(InputError, match="max_time"):
        HierarchicalFit(free=("sigma",), scale=RATING, max_time=-1).fit(df, emu)


def test_progress_shows_stage_step_size_divergences_and_eta(monkeypatch):
    from ipe.inference.sampling import run_nuts_chain
    from ipe.progress import PlainProgress, progress_bar

    monkeypatch.delenv("IPE_NO_PROGRESS", raising=False)
    assert isinstance(progress_bar(10, True), PlainProgress)  # stderr is not a terminal under pytest
    assert not isinstance(progress_bar(10, None), PlainProgress) and not isinstance(progress_bar(10, False),
                                                                                      PlainProgress)
    emu = LineEmulator(3)
    df = synth(emu, "rating", 1, 7, sigma=0.3, n_part=3, reps=1)
    fit = _quiet_fit(free=("sigma",), scale=RATING)
    from ipe.inference.hierarchical_model import HierarchicalModel, prepare_trials

    model = HierarchicalModel(prepare_trials(df, emu, RATING), emu, ("sigma",), {"sigma": (0.0, 1.0)})
    stream = io.StringIO()
    bar = PlainProgress(8, desc="NUTS chain 1/1", unit="step", interval=0.0, stream=stream)
    res = run_nuts_chain(model.model, None, 4, 4, max_tree_depth=3, bar=bar)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert res.n_draws == 4 and len(res.tree_depth) == 4 and fit is not None
    assert "warm-up" in lines[0] and "draws" in lines[-1]
    for part in ("NUTS chain 1/1", "step size", "divergences", "ETA", "/8 step"):
        assert part in lines[-1], lines[-1]


# --------------------------------------------------------------------------- the CLI and the library call


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


# --------------------------------------------------------------------------- handover: fit-landing → predict


def test_fit_landing_params_go_straight_to_predict(tmp_path):
    from ipe.inference.landing import synthesize_landings
    from ipe.noise import NoiseParams
    from ipe.scene import load_stimuli

    sp = tmp_path / "p.json"
    assert main(["stimuli", "plinko", "--n", "2", "--seed", "8", "--out", str(sp)]) == 0
    clicks = synthesize_landings(load_stimuli(sp), 4, NoiseParams(launch_position=0.2), motor_sd=5.0, seed=1)
    clicks.to_csv(tmp_path / "clicks.csv", index=False)
    fit = tmp_path / "fit"
    assert main(["fit-landing", str(tmp_path / "clicks.csv"), "--stimuli", str(sp), "--out", str(fit), "--free",
                 "launch_position", "--grid-points", "3", "--grid-max", "0.4", "--emulator-samples", "3",
                 "--warmup", "10", "--draws", "10", "--chains", "1", "--no-progress"]) == 0
    assert main(["predict", str(sp), "--params", str(fit / "params.json"), "--samples", "2", "--no-progress",
                 "--out", str(tmp_path / "pred.csv")]) == 0
    fitted = json.loads((fit / "params.json").read_text())["params"]["launch_position"]
    assert load_params(fit / "params.json") == {"launch_position": fitted}
    assert len(pd.read_csv(tmp_path / "pred.csv")) == 2
    (tmp_path / "bad.json").write_text(json.dumps({"params": {"gravity": 1.0}, "free": ["gravity"]}))
    with pytest.raises(InputError, match="unknown parameter 'gravity'"):
        load_params(tmp_path / "bad.json")


def test_fixed_predictions_still_fit_with_no_free_parameters():
    emu, df = _identified_probability_data(n_part=4, n_stim=4)
    wrapped = FixedPredictions(emu.stimulus_ids_, np.linspace(0.1, 0.9, 4))
    fit = _quiet_fit(free=(), scale=PROB, num_warmup=10, num_samples=10, num_chains=1, sims=None, svi_steps=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit.fit(df, wrapped)
    assert fit.hierarchical_ and "z_bias" in fit.idata_.posterior
