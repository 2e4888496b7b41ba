"""``--no-early-stop`` on every command that simulates: the option reaches each rollout (issue 21).

A spy on :func:`ipe.rollout.rollout` (as ``ipe.runner`` calls it: every rollout of ipe goes through
``ipe.runner.run_sample``) records the ``early_stop`` each rollout was run with. With the option every
rollout a command runs has ``early_stop=False``; without it, ``True`` (which shows the spy sees them).
The commands run on one or two towers with one or two rollouts each, so every test takes about a second.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pandas as pd
import pytest

import ipe.runner
from ipe.cli import main
from ipe.scenefile import load_stimuli, save_stimuli


@pytest.fixture
def rollouts(monkeypatch):
    """The ``early_stop`` of every rollout run while the test runs (serial: ``--workers 1``, the default)."""
    seen: list[bool] = []
    real = ipe.runner.rollout

    def spy(*args, **kwargs):
        seen.append(bool(kwargs.get("early_stop", True)))
        return real(*args, **kwargs)

    monkeypatch.setattr(ipe.runner, "rollout", spy)
    return seen


@pytest.fixture(scope="module")
def two(tmp_path_factory, four):
    """Two towers of the CLI tests' four."""
    p = tmp_path_factory.mktemp("nes") / "two.json"
    stim = load_stimuli(four)
    save_stimuli(stim.subset(stim.ids[:2]), p)
    return p


@pytest.fixture(scope="module")
def people(tmp_path_factory, two):
    p = tmp_path_factory.mktemp("nes") / "people.csv"
    assert main(["humans", "synthesize", str(two), "--participants", "2", "--sigma", "0.2", "--phi", "0.2",
                 "--seed", "1", "--samples-per-judgment", "1", "--out", str(p)]) == 0
    return p


def _all(seen: list[bool], value: bool) -> None:
    assert seen, "no rollout ran"
    assert set(seen) == {value}, f"{seen.count(not value)} of {len(seen)} rollouts ran with early_stop={not value}"


@pytest.mark.parametrize("flag", [[], ["--no-early-stop"]])
def test_humans_synthesize(rollouts, tmp_path, two, flag):
    assert main(["humans", "synthesize", str(two), "--participants", "2", "--sigma", "0.2", "--phi", "0.2",
                 "--seed", "1", "--samples-per-judgment", "1", "--out", str(tmp_path / "r.csv"), *flag]) == 0
    _all(rollouts, not flag)


def test_demo(monkeypatch, rollouts, tmp_path):
    import matplotlib.pyplot as plt

    import ipe.demo

    monkeypatch.setattr(ipe.demo, "demo_figure", lambda *a, **k: plt.figure(figsize=(1, 1)))  # tests/cli/test_demo.py
    assert main(["demo", "--samples", "1", "--no-early-stop", "--out", str(tmp_path / "d")]) == 0
    _all(rollouts, False)
    assert len(rollouts) == 2 * 12  # the noisy model's rollout and the no-noise one of each demo tower


def test_compare_humans(monkeypatch, rollouts, tmp_path, two, people):
    import ipe.report

    # the report's statistics and figures are tested elsewhere (tests/test_report.py); here only what is simulated
    monkeypatch.setattr(ipe.report, "compare_judgments", lambda *a, **k: (pd.DataFrame({"model": []}), None))
    monkeypatch.setattr(ipe.report, "write_report", lambda out, *a, **k: {})
    assert main(["compare", "--humans", str(people), "--stimuli", str(two), "--samples", "2", "--no-early-stop",
                 "--out", str(tmp_path / "c")]) == 0
    _all(rollouts, False)
    assert len(rollouts) == 2 + 2 * 2  # the no-noise model and the built-in IPE row


def test_compare_fit_passes_it_to_the_no_noise_baseline(monkeypatch, rollouts, tmp_path, two, people):
    """``compare --fit``: the IPE's predictions come from the fit's emulator; the no-noise baseline simulates."""
    import ipe.inference.comparison as comparison
    import ipe.inference.hierarchical as hierarchical
    from ipe.humans import ResponseScale

    monkeypatch.setattr(hierarchical, "load_fit", lambda d: SimpleNamespace(scale=ResponseScale.parse("rating:1-7")))
    seen = {}

    def compare_models(*args, **kwargs):
        seen.update(kwargs)
        return comparison.baseline_table(load_stimuli(two), early_stop=kwargs["early_stop"])

    monkeypatch.setattr(comparison, "compare_models", compare_models)
    monkeypatch.setattr(comparison, "plot_comparison", lambda table, path: path)
    assert main(["compare", str(people), "--stimuli", str(two), "--fit", str(tmp_path), "--no-early-stop",
                 "--out", str(tmp_path / "c.csv")]) == 0
    assert seen["early_stop"] is False
    _all(rollouts, False)


def test_compare_models_passes_it_to_the_baseline(monkeypatch, two):
    import ipe.inference.comparison as comparison

    class Reached(Exception):
        pass

    def baseline_table(stimuli, workers=1, early_stop=True):
        raise Reached(early_stop)

    monkeypatch.setattr(comparison, "baseline_table", baseline_table)
    stim = load_stimuli(two)
    fit = SimpleNamespace(_check_fitted=lambda: None, emulator_=SimpleNamespace(stimulus_ids_=list(stim.ids)))
    responses = pd.DataFrame({"stimulus_id": list(stim.ids), "response": [3.0, 5.0]})
    with pytest.raises(Reached) as got:
        comparison.compare_models(responses, stim, fit, None, early_stop=False)
    assert got.value.args == (False,)


@pytest.fixture(scope="module")
def mass(tmp_path_factory):
    """One tower of two materials (made before the spy starts: making it simulates)."""
    from ipe.inference.latent import mass_variant_stimuli

    return save_stimuli(mass_variant_stimuli(1, seed=3), tmp_path_factory.mktemp("nes") / "mass.json")


def test_infer_mass(mass, rollouts, tmp_path):
    path = mass
    assert main(["infer", "mass", str(path), "--particles", "2", "--sims", "1", "--no-early-stop",
                 "--out", str(tmp_path / "o")]) == 0
    _all(rollouts, False)  # the observed rollout and every hypothesis's simulations


def test_render_video(rollouts, tmp_path, two):
    pytest.importorskip("imageio_ffmpeg")
    assert main(["render", str(two), "--video", "--size", "16", "--fps", "15", "--samples", "1", "--sigma", "0.1",
                 "--no-early-stop", "--out", str(tmp_path / "v")]) == 0
    _all(rollouts, False)
    assert len(rollouts) == 2 * 2  # the no-noise rollout and one noisy sample per tower


def test_render_no_early_stop_needs_video(tmp_path, two, capsys):
    assert main(["render", str(two), "--no-early-stop", "--out", str(tmp_path / "p")]) == 2
    assert "need --video" in capsys.readouterr().err


def test_experiment_simulate(monkeypatch, rollouts, two, capsys):
    """The class's answers are simulated before anyone takes part; the server itself is not needed here."""
    import ipe.cli.experiment_simulate as xs

    async def config(base):
        return {"task": "will-it-fall", "conditions": []}

    async def run_class(base, ids, answers, seed, timeout, concurrent):
        return [(pid, 0, "") for pid in ids]

    monkeypatch.setattr(xs, "_config", config)
    monkeypatch.setattr(xs, "_run_class", run_class)
    assert main(["experiment", "simulate", "http://127.0.0.1:1", "--stimuli", str(two), "--participants", "2",
                 "--no-early-stop"]) == 0
    _all(rollouts, False)
    assert asyncio.iscoroutinefunction(xs._config)


def test_datasets_import_mental_jenga(monkeypatch, tmp_path):
    """The label agreement's no-noise rollouts (run by ``rollout`` directly): the first one is enough to see."""
    import ipe.datasets.mental_jenga as mj

    root = mj.default_root()
    if not (root / "data" / "exp2").is_dir():
        pytest.skip("Mental Jenga data not available (../shared/datasets/mental_jenga)")
    pytest.importorskip("pyreadr")
    seen = []

    class Enough(Exception):
        pass

    def spy(*args, **kwargs):
        seen.append(kwargs.get("early_stop", True))
        raise Enough  # one rollout shows what every one gets; the 42 would take seconds

    monkeypatch.setattr(mj, "rollout", spy)
    with pytest.raises(Enough):
        mj.import_mental_jenga(root, 2, tmp_path / "a", early_stop=False)
    assert seen == [False]
    def import_mental_jenga(root, experiment, out, early_stop=True):
        seen.append(early_stop)
        return SimpleNamespace(report={"stimuli": 0}, stimuli_path=out, responses_path=None)

    monkeypatch.setattr(mj, "import_mental_jenga", import_mental_jenga)
    assert main(["datasets", "import", "mental-jenga", str(root), "--experiment", "2", "--out",
                 str(tmp_path / "b"), "--no-early-stop"]) == 0
    assert seen == [False, False]


def test_experiment_serve(monkeypatch, rollouts, tmp_path, two):
    """The noise-free rollouts behind the feedback and pictures; the design keeps the option for the export."""
    import ipe.webexperiment as web
    from ipe.webexperiment.materials import ExperimentConfig, materials_from_design

    served = []
    monkeypatch.setattr(web, "serve", lambda app, host, port: served.append(app))
    assert main(["experiment", "serve", str(two), "--task", "will-it-fall", "--practice", "1", "--no-early-stop",
                 "--db", str(tmp_path / "lab.db")]) == 0
    assert served
    _all(rollouts, False)
    assert len(rollouts) == 2
    store = web.Store(tmp_path / "lab.db", readonly=True)
    stored = store.design
    store.close()
    assert '"early_stop": false' in stored
    rollouts.clear()
    assert materials_from_design(stored).config.early_stop is False  # what `ipe experiment export` rebuilds
    _all(rollouts, False)
    assert "early_stop" not in ExperimentConfig(task="will-it-fall").to_dict()  # older designs read the same
