"""Pyro inference: the emulator, the hierarchical fit to people, latent properties, model comparison.

The chain of calls (each returns a plain value)::

    emulator = Emulator(grid=..., n_samples=40).fit(stimuli)        # Monte Carlo on a grid → smooth torch surfaces
    fit = HierarchicalFit(free=("sigma", "phi"), scale=scale).fit(responses, emulator)
    fit.params_, fit.summary_, fit.idata_                            # posterior summary, diagnostics, ArviZ

:func:`fit_responses` does all of it from a response table and a stimulus set and returns a
:class:`FitResult` (``.params``, ``.summary()``, ``.diagnostics``, ``.to_arviz()``, ``.predict()``, ``.save()``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Mapping, Sequence

from ..scenefile import as_stimulus_set

if TYPE_CHECKING:  # the names below load on first use (__getattr__): reading a params.json needs no torch
    from .diagnostics import ConvergenceWarning, EdgeWarning, Verdict
    from .emulator import DEFAULT_GRID, Emulator
    from .fitfiles import load_params, load_population
    from .hierarchical import HierarchicalFit, load_fit
    from .hierarchical_model import HierarchicalModel
    from .pipeline import FitResult, fit_responses

#: Where each public name lives; imported on first use, so ``ipe predict --params`` (which reads a fit's
#: params.json through :mod:`ipe.inference.fitfiles`) does not import torch and Pyro.
_LAZY = {
    "ConvergenceWarning": "diagnostics", "EdgeWarning": "diagnostics", "Verdict": "diagnostics",
    "DEFAULT_GRID": "emulator", "Emulator": "emulator", "load_params": "fitfiles", "load_population": "fitfiles",
    "HierarchicalFit": "hierarchical", "load_fit": "hierarchical", "HierarchicalModel": "hierarchical_model",
    "FitResult": "pipeline", "fit_responses": "pipeline",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

__all__ = ["ConvergenceWarning", "DEFAULT_GRID", "EdgeWarning", "Emulator", "FitResult", "HierarchicalFit",
           "HierarchicalModel", "Verdict", "fit_ipe", "fit_responses", "load_fit", "load_params", "load_population"]


def fit_ipe(responses, stimuli, free: Sequence[str] | None = None, scale=None,
            grid: Mapping[str, Sequence[float]] | None = None, fixed: Mapping[str, float] | None = None,
            emulator: Emulator | None = None, emulator_samples: int = 40, seed: int = 0, workers: int = 1,
            progress: bool | None = None, **fit_options) -> HierarchicalFit:
    """Fit the hierarchical IPE to ``responses`` on ``stimuli``; the fitted :class:`HierarchicalFit`.

    :func:`fit_responses` with the estimator as the result (kept for older
    scripts; new code should use :func:`fit_responses` and its
    :class:`FitResult`).
    """
    stimuli = as_stimulus_set(stimuli)
    if emulator is not None and not emulator.matches(
            [s for s in stimuli if s.id in set(getattr(responses, "stimulus_id", []))] or stimuli):
        emulator = None
    from .pipeline import fit_responses

    return fit_responses(responses, stimuli, free=free, scale=scale, grid=grid, fixed=fixed, emulator=emulator,
                         emulator_samples=emulator_samples, seed=seed, workers=workers, progress=progress,
                         **fit_options).estimator
