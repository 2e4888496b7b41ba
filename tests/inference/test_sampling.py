"""Running the samplers (ipe.inference.sampling): live progress of a NUTS chain."""

from __future__ import annotations

import io

from fitting_helpers import RATING, LineEmulator, quiet_fit, synth


def test_progress_shows_stage_step_size_divergences_and_eta(monkeypatch):
    from ipe.inference.sampling import run_nuts_chain
    from ipe.progress import PlainProgress, progress_bar

    monkeypatch.delenv("IPE_NO_PROGRESS", raising=False)
    assert isinstance(progress_bar(10, True), PlainProgress)  # stderr is not a terminal under pytest
    assert not isinstance(progress_bar(10, None), PlainProgress) and not isinstance(progress_bar(10, False),
                                                                                      PlainProgress)
    emu = LineEmulator(3)
    df = synth(emu, "rating", 1, 7, sigma=0.3, n_part=3, reps=1)
    fit = quiet_fit(free=("sigma",), scale=RATING)
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
