"""How a landing fit samples (ipe.inference.landing.LandingFit through ipe.inference.sampling's step-by-step NUTS):
progress for every stage, a deadline that keeps the draws so far, the convergence verdict of ``ipe fit``, and
the same in ``ipe fit-landing``."""

from __future__ import annotations

import itertools
import json
from types import SimpleNamespace

import pandas as pd
import pytest

import ipe.cli.fit_landing as cli_fit_landing
import ipe.inference.landing as landing
import ipe.inference.sampling as sampling
from ipe.cli import main
from ipe.inference.diagnostics import ConvergenceWarning
from ipe.inference.hierarchical import FitStopped
from ipe.inference.landing import LandingEmulator, LandingFit, synthesize_landings
from ipe.noise import NoiseParams
from ipe.scenefile import save_stimuli
from scenes import peak_world

# Every fit here is too short to converge on purpose; the tests that are about the warning catch it themselves.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def inputs():
    stim = [peak_world()]
    clicks = synthesize_landings(stim, 20, NoiseParams(drop_angle=0.02), motor_sd=8.0, seed=3)
    emu = LandingEmulator(grid={"drop_angle": [0.0, 0.02, 0.04]}, n_samples=12, seed=4).fit(stim)
    return stim, clicks, emu


def fake_clock(monkeypatch, *modules):
    """Replace ``time`` in ``modules`` by a clock that moves one second each time it is read."""
    ticks = itertools.count()
    fake = SimpleNamespace(monotonic=lambda: float(next(ticks)))
    for m in modules:
        monkeypatch.setattr(m, "time", fake)


def test_sampling_shows_stage_step_size_divergences_and_eta_off_a_terminal(inputs, monkeypatch, capsys):
    """Off a terminal, progress=True prints plain lines: the chain, warm-up or draws, step size, divergences, ETA."""
    _, clicks, emu = inputs
    monkeypatch.delenv("IPE_NO_PROGRESS", raising=False)
    monkeypatch.setenv("IPE_PROGRESS_INTERVAL", "0")
    LandingFit(num_warmup=5, num_samples=5, num_chains=2, seed=0, progress=True).fit(clicks, emu)
    err = capsys.readouterr().err
    assert "landing fit: NUTS chain 1/2" in err and "landing fit: NUTS chain 2/2" in err
    assert "warm-up, step size" in err and "draws, step size" in err
    assert "divergences" in err and "ETA" in err
    # the emulator's rollouts report themselves the same way
    LandingEmulator(grid={"drop_angle": [0.0, 0.04]}, n_samples=2, seed=1, progress=True).fit([peak_world()])
    assert "simulating" in capsys.readouterr().err


def test_no_progress_is_silent(inputs, capsys):
    _, clicks, emu = inputs
    LandingFit(num_warmup=3, num_samples=3, num_chains=1, seed=0, progress=False).fit(clicks, emu)
    assert capsys.readouterr().err == ""


def test_max_time_keeps_the_draws_so_far_and_says_so(inputs, monkeypatch):
    _, clicks, emu = inputs
    fake_clock(monkeypatch, landing, sampling)
    with pytest.warns(ConvergenceWarning, match="stopped by --max-time"):
        fit = LandingFit(num_warmup=10, num_samples=10, num_chains=2, seed=0, max_time=15.5).fit(clicks, emu)
    assert fit.stopped_early_ and fit.verdict_.stopped_early and not fit.verdict_.converged
    n_chains, n_draws = fit.posterior_["motor_sd"].shape
    assert n_chains == 1 and 0 < n_draws < 10  # the deadline fell in the first chain's draws
    assert len(fit.draws()) == n_draws and fit.summary_["mean"].notna().all()


def test_max_time_before_the_first_draw_raises(inputs, monkeypatch):
    _, clicks, emu = inputs
    fake_clock(monkeypatch, landing, sampling)
    with pytest.raises(FitStopped, match="before the first draw"):
        LandingFit(num_warmup=10, num_samples=10, num_chains=1, seed=0, max_time=3).fit(clicks, emu)


def test_too_few_draws_give_the_convergence_warning_and_verdict(inputs, tmp_path):
    _, clicks, emu = inputs
    with pytest.warns(ConvergenceWarning, match="NOT CONVERGED"):
        fit = LandingFit(num_warmup=10, num_samples=10, num_chains=2, seed=0).fit(clicks, emu)
    v = fit.verdict_
    assert not v.converged and {p["check"] for p in v.problems} >= {"ess_bulk"}
    assert not any("--method" in a for a in v.advice)  # fit-landing has no --method
    assert {"r_hat", "ess_bulk", "ess_tail"} <= set(fit.summary_.columns)
    paths = fit.save(tmp_path)
    params = json.loads(paths["params"].read_text())
    assert params["_meta"]["converged"] is False and params["_meta"]["convergence"]["problems"]
    assert "equal-tailed" in params["_meta"]["interval"]
    assert json.loads(paths["convergence"].read_text())["converged"] is False


def test_max_time_option_is_checked_like_fits(tmp_path, capsys):
    argv = ["fit-landing", str(tmp_path / "c.csv"), "--stimuli", str(tmp_path / "s.json"), "--out",
            str(tmp_path / "o"), "--max-time", "soon"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--max-time 'soon'" in err
    with pytest.raises(Exception):
        LandingFit(max_time=-1.0).fit(None, None)


@pytest.fixture
def files(inputs, tmp_path):
    stim, clicks, _ = inputs
    sp, cp = tmp_path / "peak.json", tmp_path / "clicks.csv"
    save_stimuli(stim, sp)
    clicks.to_csv(cp, index=False)
    return ["fit-landing", str(cp), "--stimuli", str(sp), "--grid-points", "3", "--grid-max", "0.04",
            "--emulator-samples", "4", "--warmup", "10", "--draws", "10", "--chains", "2", "--free", "drop_angle"]


def test_cli_says_whether_it_converged_and_saves_the_verdict(files, tmp_path, capsys):
    out = tmp_path / "fit"
    assert main([*files, "--out", str(out), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "NOT CONVERGED" in captured.err and "90% equal-tailed" in captured.out
    assert {p.name for p in out.iterdir()} == {"summary.csv", "params.json", "draws.csv", "convergence.json",
                                               "emulator.npz"}
    assert json.loads((out / "params.json").read_text())["_meta"]["converged"] is False
    assert len(pd.read_csv(out / "draws.csv")) == 20


def test_cli_max_time_stops_cleanly_saves_and_says_so(files, tmp_path, monkeypatch, capsys):
    fake_clock(monkeypatch, cli_fit_landing, landing, sampling)
    out = tmp_path / "fit"
    assert main([*files, "--out", str(out), "--no-progress", "--max-time", "20"]) == 0
    err = capsys.readouterr().err
    assert "stopped by --max-time 20 after" in err and "what was drawn is saved" in err
    draws = pd.read_csv(out / "draws.csv")
    assert 0 < len(draws) < 20 and json.loads((out / "params.json").read_text())["_meta"]["stopped_early"]
    # out of time once the emulator is built: nothing to sample, exit status 1, said in one line
    again = tmp_path / "again"
    assert main([*files, "--out", str(again), "--no-progress", "--max-time", "1"]) == 1
    assert "stopped by --max-time 1 after the emulator, before sampling" in capsys.readouterr().err
    # the emulator is kept (in --out, and in the store, which the rerun reuses); no fit file is written
    assert {p.name for p in again.iterdir()} == {"emulator.npz"}
    assert main([*files, "--out", str(again), "--no-progress"]) == 0
    assert "emulator: reused" in capsys.readouterr().err
