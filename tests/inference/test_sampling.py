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


def test_svi_scales_start_the_mass_matrix_and_shorten_warm_up():
    """A posterior whose scales differ by 10^4: warm-up from the identity saturates its trees, from scales² not."""
    import pyro
    import pyro.distributions as dist
    import torch

    from ipe.inference.sampling import initial_metric, run_nuts_chain, seed_pyro

    def model():
        pyro.sample("wide", dist.Normal(torch.tensor(0.0, dtype=torch.float64), 100.0))
        pyro.sample("narrow", dist.Normal(torch.zeros(3, dtype=torch.float64), 0.01).to_event(1))

    scales = {"wide": torch.tensor(100.0, dtype=torch.float64), "narrow": torch.full((3,), 0.01, dtype=torch.float64)}
    start = {"wide": torch.tensor(50.0, dtype=torch.float64), "narrow": torch.zeros(3, dtype=torch.float64)}
    depth = {}
    for name, init in (("identity", None), ("scales", scales)):
        seed_pyro(0)
        res = run_nuts_chain(model, start, 12, 2, max_tree_depth=6, jit=False, init_scales=init)
        depth[name] = res.info["warmup_tree_depth"]
    leapfrogs = {k: int((2 ** d - 1).sum()) for k, d in depth.items()}
    assert (depth["identity"] == 6).sum() >= 4, depth  # saturated trees: tiny steps for the wide site
    assert leapfrogs["identity"] > 3 * leapfrogs["scales"], leapfrogs

    from pyro.infer import NUTS

    seed_pyro(0)
    kernel = NUTS(model, full_mass=[("wide",)], jit_compile=False)
    kernel.setup(10)
    params = kernel.initial_params
    initial_metric(kernel, params, scales)
    metric = kernel._adapter.mass_matrix_adapter.inverse_mass_matrix
    assert torch.allclose(metric[("wide",)], torch.tensor([[1e4]], dtype=torch.float64))  # a dense block: diag
    assert torch.allclose(metric[("narrow",)], torch.full((3,), 1e-4, dtype=torch.float64))


def test_chains_in_parallel_processes_give_the_same_draws_as_one_after_another():
    """``workers=2`` runs the two NUTS chains in forked processes: bit-identical draws, the same verdict."""
    import numpy as np
    import pytest

    from ipe.inference.sampling import fork_available

    if not fork_available():
        pytest.skip("no fork start method: chains always run one after another")
    emu = LineEmulator(4)
    df = synth(emu, "rating", 1, 7, sigma=0.3, n_part=4, reps=1)
    fits = {}
    for workers in (1, 2):
        fits[workers] = quiet_fit(free=("sigma",), scale=RATING, num_warmup=10, num_samples=10, num_chains=2,
                                  svi_steps=20, seed=3, workers=workers, jit=False, max_tree_depth=3).fit(df, emu)
    post1, post2 = fits[1].idata_.posterior, fits[2].idata_.posterior
    assert set(post1.data_vars) == set(post2.data_vars)
    for name in post1.data_vars:
        assert np.array_equal(post1[name].values, post2[name].values), name
    assert fits[1].verdict_.converged == fits[2].verdict_.converged


def test_a_failing_chain_process_raises_in_the_parent():
    import pytest

    from ipe.inference.sampling import fork_available, run_chains

    if not fork_available():
        pytest.skip("no fork start method")

    def bad(bar):
        raise ValueError("boom in the chain")

    class Done:
        stopped = False

    with pytest.raises(RuntimeError, match="boom in the chain"):
        run_chains([lambda bar: Done(), bad], workers=2)


def test_a_chain_process_that_dies_without_a_word_raises_instead_of_hanging():
    """A chain's process killed from outside (out of memory, a signal) sends nothing: the parent must not wait forever."""
    import os
    import signal

    import pytest

    from ipe.inference.sampling import fork_available, run_chains

    if not fork_available():
        pytest.skip("no fork start method")

    def killed(bar):
        os.kill(os.getpid(), signal.SIGKILL)

    class Done:
        stopped = False

    with pytest.raises(RuntimeError, match="without returning its draws"):
        run_chains([lambda bar: Done(), killed], workers=2)
