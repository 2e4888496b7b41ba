"""Running the samplers: NUTS chains with live progress and a deadline, and SVI (AutoNormal).

:func:`run_nuts_chain` drives a Pyro :class:`~pyro.infer.NUTS` kernel step by
step (what :class:`pyro.infer.MCMC` does inside) so that it can

* report every step to a progress bar: the stage (warm-up or draws), the
  chain, the adapted step size, the tree depth and the divergences so far,
  with tqdm's ETA (or a plain line every few seconds, :mod:`ipe.progress`);
* stop at a deadline and return the draws it has (``--max-time``);
* record each draw's tree depth, which Pyro does not keep, for the
  saturation check of :mod:`ipe.inference.diagnostics`.

:func:`run_svi` fits an :class:`~pyro.infer.autoguide.AutoNormal` guide with
Adam: the start of every NUTS chain (a draw from it, so chains start apart)
and the ``method="svi"`` quick answer.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import queue as queue_module
import time
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch


@contextlib.contextmanager
def one_torch_thread():
    """Run the block with one torch intra-op thread, then restore the setting.

    The sampler's tensors are tiny (participants × stimuli): splitting each
    operation over threads costs more than it saves, and on a machine whose
    cores are busy with other work the threads wait for each other. On the
    2-core test machine under load, one NUTS gradient of the course-lab fit
    took 20 ms with one thread and 150 ms with two
    (``benchmarks/README.md``, "Fitting").
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class ChainResult:
    """The draws of one chain (constrained values), its divergences, tree depths and adapted step size."""

    samples: dict[str, np.ndarray]
    diverging: np.ndarray
    tree_depth: np.ndarray
    step_size: float
    stopped: bool = False  # True when the deadline cut it short
    warmup_done: int = 0
    info: dict = field(default_factory=dict)

    @property
    def n_draws(self) -> int:
        return len(self.diverging)


def _nuts_class():
    from pyro.infer import NUTS

    class DepthNUTS(NUTS):
        """NUTS that remembers the tree depth of its last step (``last_depth``)."""

        def sample(self, params):
            self._depth = 0
            out = super().sample(params)
            self.last_depth = self._depth
            return out

        def _build_tree(self, z, r, z_grads, log_slice, direction, tree_depth, energy_current):
            self._depth = max(self._depth, tree_depth + 1)
            return super()._build_tree(z, r, z_grads, log_slice, direction, tree_depth, energy_current)

    return DepthNUTS


def run_nuts_chain(model, init_values: dict[str, torch.Tensor] | None, num_warmup: int, num_samples: int, *,
                   target_accept: float = 0.85, max_tree_depth: int = 8, jit: bool = True, bar=None,
                   deadline: float | None = None, label: str = "", full_mass=False,
                   init_scales: dict[str, torch.Tensor] | None = None) -> ChainResult:
    """One NUTS chain of ``num_warmup`` + ``num_samples`` steps (seed Pyro's RNG first).

    ``init_values`` (constrained values per site) start the chain; ``bar`` is
    a tqdm-shaped counter advanced once per step; ``deadline`` a
    :func:`time.monotonic` time after which the chain stops and returns the
    draws it has (``stopped=True``). ``init_scales`` (``{site: sd}`` in Pyro's
    unconstrained space, e.g. an SVI guide's scales) make the starting
    (diagonal) inverse mass matrix: warm-up then starts in well-scaled
    coordinates instead of the identity (:func:`initial_metric`).
    """
    from pyro.infer.autoguide.initialization import init_to_uniform, init_to_value

    init = init_to_value(values=init_values) if init_values else init_to_uniform
    kernel = _nuts_class()(model, target_accept_prob=target_accept, max_tree_depth=max_tree_depth, full_mass=full_mass,
                           jit_compile=jit, ignore_jit_warnings=True, init_strategy=init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kernel.setup(num_warmup)
        params = kernel.initial_params
        if init_scales:
            initial_metric(kernel, params, init_scales)
        names = sorted(params)
        draws: dict[str, list] = {n: [] for n in names}
        depths: list[int] = []
        warm_depths: list[int] = []
        stopped = False
        warm = 0
        for i in range(num_warmup + num_samples):
            if deadline is not None and time.monotonic() > deadline:
                stopped = True
                break
            params = kernel.sample(params)
            if i < num_warmup:
                warm = i + 1
                warm_depths.append(getattr(kernel, "last_depth", 0))
            else:
                for n in names:
                    draws[n].append(params[n].detach().clone())
                depths.append(getattr(kernel, "last_depth", 0))
            if bar is not None:
                stage = "warm-up" if i < num_warmup else "draws"
                n_div = len(kernel._divergences)
                bar.set_postfix_str(f"{stage}, step size {float(kernel.step_size):.3g}, "
                                    f"tree depth {getattr(kernel, 'last_depth', 0)}, divergences {n_div}",
                                    refresh=False)
                bar.update(1)
        transforms = kernel.transforms
        samples = {}
        for n in names:
            if not draws[n]:
                samples[n] = np.empty((0,) + tuple(params[n].shape))
                continue
            stacked = torch.stack(draws[n])
            if n in transforms:
                stacked = transforms[n].inv(stacked)
            samples[n] = stacked.detach().numpy()
        n_draws = len(depths)
        diverging = np.zeros(n_draws, dtype=bool)
        div = [d for d in kernel._divergences if 0 <= d < n_draws]
        diverging[np.asarray(div, dtype=int)] = True
        step = float(kernel.step_size)
        kernel.cleanup()
    return ChainResult(samples=samples, diverging=diverging, tree_depth=np.asarray(depths, dtype=int),
                       step_size=step, stopped=stopped, warmup_done=warm,
                       info={"warmup_tree_depth": np.asarray(warm_depths, dtype=int)})


def initial_metric(kernel, params: dict[str, torch.Tensor], scales: dict[str, torch.Tensor]) -> None:
    """Start ``kernel``'s warm-up with the inverse mass matrix ``diag(scales²)``, and a step size found for it.

    Pyro starts every chain at the identity and keeps it until the end of the
    first slow adaptation window; on a posterior whose scales differ by
    orders of magnitude (a rating model's slope β ≈ 8 ± 1 beside participant
    effects ≈ N(0, 1) and logit-scale spreads) those first steps run at a
    tiny step size with saturated trees, and they are most of the cost of a
    short chain. ``scales`` are ``{site: sd}`` in Pyro's unconstrained space
    (an SVI guide's scales; a missing site keeps 1); dense blocks
    (``full_mass``) start diagonal too. The windowed adaptation then goes on
    as usual from this start. On the course-lab fit (12 participants × 12
    towers, 50 + 50 steps, dense block over the shared sites) it cut the
    warm-up from about 9 200 leapfrog steps to 1 600–2 000
    (``benchmarks/README.md``, "Fitting").
    """
    adapter = kernel._adapter.mass_matrix_adapter
    start = {}
    for block, current in adapter.inverse_mass_matrix.items():
        var = torch.cat([(scales[n].detach().to(current.dtype).reshape(-1) ** 2) if n in scales else
                         torch.ones(params[n].numel(), dtype=current.dtype) for n in block])
        start[block] = torch.diag(var) if current.dim() == 2 else var
    adapter.inverse_mass_matrix = start
    kernel._adapter.reset_step_size_adaptation(params)


@dataclass
class SVIResult:
    """A fitted AutoNormal guide and its loss (negative ELBO) per step."""

    guide: object
    losses: np.ndarray
    stopped: bool = False

    def draw(self, n: int) -> dict[str, np.ndarray]:
        """``n`` draws from the guide (constrained values), ``{site: array (n, ...)}``."""
        out: dict[str, list] = {}
        with torch.no_grad():
            for _ in range(n):
                for k, v in self.guide().items():
                    out.setdefault(k, []).append(v.detach().clone())
        return {k: torch.stack(v).numpy() for k, v in out.items()}

    def scales(self) -> dict[str, torch.Tensor]:
        """The guide's scale of each site, in Pyro's unconstrained space (what NUTS moves in)."""
        return {name: self.guide._get_loc_and_scale(name)[1].detach().clone() for name in self.guide.prototype_trace
                .stochastic_nodes}

    def one_draw(self) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return {k: v.detach().clone() for k, v in self.guide().items()}


def run_svi(model, steps: int = 500, lr: float = 0.03, bar=None, deadline: float | None = None,
            label: str = "SVI", jit: bool = False) -> SVIResult:
    """Fit an AutoNormal guide to ``model`` with Adam for ``steps`` steps (seed Pyro's RNG first).

    The guide starts at the prior medians with a small scale; the loss is
    one-sample Trace_ELBO (``jit``: compiled, :class:`~pyro.infer.JitTrace_ELBO`,
    about twice as fast a step after a second of tracing; the same
    objective). Stops early at ``deadline``.
    """
    import pyro
    from pyro.infer import SVI, JitTrace_ELBO, Trace_ELBO
    from pyro.infer.autoguide import AutoNormal
    from pyro.infer.autoguide.initialization import init_to_median
    from pyro.optim import ClippedAdam

    pyro.clear_param_store()
    guide = AutoNormal(model, init_loc_fn=init_to_median(num_samples=15), init_scale=0.05)
    svi = SVI(model, guide, ClippedAdam({"lr": lr, "lrd": 0.1 ** (1 / max(steps, 1))}),
              JitTrace_ELBO(ignore_jit_warnings=True) if jit else Trace_ELBO())
    losses = []
    stopped = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(steps):
            if deadline is not None and time.monotonic() > deadline:
                stopped = True
                break
            loss = svi.step()
            losses.append(loss if math.isfinite(loss) else math.nan)
            if bar is not None:
                bar.set_postfix_str(f"{label}, loss {loss:.4g}", refresh=False)
                bar.update(1)
    return SVIResult(guide=guide, losses=np.asarray(losses, dtype=float), stopped=stopped)


class _BarProxy:
    """A tqdm-shaped counter in a chain's process: sends each step to the parent's bar through a queue."""

    def __init__(self, queue, index: int):
        self.queue, self.index = queue, index

    def set_postfix_str(self, text: str, refresh: bool = False) -> None:
        self.text = text

    def update(self, n: int = 1) -> None:
        self.queue.put(("step", self.index, n, getattr(self, "text", "")))


def _chain_process(job: Callable, index: int, queue) -> None:
    """The body of a chain's process: run ``job(bar)``, send back its result (or the error)."""
    try:
        torch.set_num_threads(1)
        result = job(_BarProxy(queue, index))
        queue.put(("done", index, result, None))
    except BaseException:  # noqa: BLE001 - handed to the parent, which raises it
        queue.put(("done", index, None, traceback.format_exc()))


def fork_available() -> bool:
    """Whether chains can run in forked processes (Linux; elsewhere they run one after another)."""
    return "fork" in multiprocessing.get_all_start_methods()


def run_chains(jobs: Sequence[Callable], workers: int = 1, bar=None, labels: Sequence[str] | None = None,
               desc: str = "NUTS") -> list:
    """Run chain ``jobs`` (each ``job(bar) -> ChainResult``), up to ``workers`` at once; the results in job order.

    Each job seeds its own random state (its chain's stream), so a chain's
    draws do not depend on which process runs it or on what ran before in
    that process: the results are the same for any ``workers`` (a test
    checks it bit for bit). With ``workers > 1`` and the ``fork`` start
    method, jobs run in forked child processes (the model, the emulator and
    the data are inherited, nothing is pickled but the draws), each with one
    torch thread, and report every step to ``bar`` through a queue; the
    bar's text names the chain that stepped. Without ``fork``, or with one
    worker, they run here, one after another. A job whose result has
    ``stopped`` set (the deadline passed) keeps the jobs not yet started
    from starting. ``desc`` starts the bar's description (``"NUTS chain 1/2"``).
    """
    labels = list(labels or [f"chain {i + 1}/{len(jobs)}" for i in range(len(jobs))])
    if workers <= 1 or len(jobs) <= 1 or not fork_available():
        results = []
        for job, label in zip(jobs, labels):
            if bar is not None:
                bar.set_description(f"{desc} {label}")
            results.append(job(bar))
            if getattr(results[-1], "stopped", False):
                break
        return results
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    results: dict[int, object] = {}
    running: dict[int, object] = {}
    silent: set[int] = set()
    next_job, stop = 0, False
    if bar is not None:
        bar.set_description(f"{desc} {len(jobs)} chains, {min(workers, len(jobs))} at once")
    try:
        while running or (next_job < len(jobs) and not stop):
            while not stop and next_job < len(jobs) and len(running) < workers:
                proc = ctx.Process(target=_chain_process, args=(jobs[next_job], next_job, queue), daemon=True)
                proc.start()
                running[next_job] = proc
                next_job += 1
            try:
                msg = queue.get(timeout=1.0)
            except queue_module.Empty:
                # a chain's process that died without a word (killed, out of memory) must not hang the fit
                for index, proc in running.items():
                    if proc.exitcode is not None and (proc.exitcode != 0 or index in silent):
                        raise RuntimeError(f"NUTS {labels[index]}: its process ended (exit status "
                                           f"{proc.exitcode}) without returning its draws")
                    if proc.exitcode is not None:
                        silent.add(index)  # one more second for its last message to arrive
                continue
            if msg[0] == "step":
                _, index, n, text = msg
                if bar is not None:
                    bar.set_postfix_str(f"{labels[index]}: {text}" if text else labels[index], refresh=False)
                    bar.update(n)
                continue
            _, index, result, error = msg
            running.pop(index).join()
            if error is not None:
                raise RuntimeError(f"NUTS {labels[index]} failed in its process:\n{error}")
            results[index] = result
            stop = stop or bool(getattr(result, "stopped", False))
    finally:
        for proc in running.values():
            proc.kill()
            proc.join()
    return [results[i] for i in sorted(results)]


def seed_pyro(seed: int, clear: bool = False) -> None:
    """Seed Pyro's random state (Python's, numpy's and torch's) with ``seed``; ``clear``: empty its param store."""
    import pyro

    if clear:
        pyro.clear_param_store()
    pyro.set_rng_seed(seed)
