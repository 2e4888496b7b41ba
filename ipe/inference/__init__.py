"""Pyro inference: the emulator, the hierarchical fit to people, latent properties, model comparison.

The chain of calls (each returns a plain value)::

    emulator = Emulator(grid=..., n_samples=40).fit(stimuli)        # Monte Carlo on a grid → smooth torch surfaces
    fit = HierarchicalFit(free=("sigma", "phi"), scale=scale).fit(responses, emulator)
    fit.params_, fit.summary_, fit.idata_                            # posterior summary, diagnostics, ArviZ

:func:`fit_ipe` does all of it from a response table and a stimulus set.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from .emulator import DEFAULT_GRID, Emulator
from .hierarchical import HierarchicalFit, HierarchicalModel, load_fit, load_params, load_population

__all__ = ["DEFAULT_GRID", "Emulator", "HierarchicalFit", "HierarchicalModel", "fit_ipe", "load_fit", "load_params",
           "load_population"]


def fit_ipe(responses, stimuli, free: Sequence[str] = ("sigma", "phi"), scale=None,
            grid: Mapping[str, Sequence[float]] | None = None, fixed: Mapping[str, float] | None = None,
            emulator: Emulator | None = None, emulator_samples: int = 40, seed: int = 0, workers: int = 1,
            progress: bool | None = None, **fit_options) -> HierarchicalFit:
    """Fit the hierarchical IPE to ``responses`` (a tidy table or a path) on ``stimuli``.

    Builds the emulator over ``free`` (``grid`` values, default
    :data:`DEFAULT_GRID`) unless one is given, validates the responses against
    the stimuli and the scale (inferred from the stimuli's query when ``None``),
    and runs NUTS. ``fit_options`` go to :class:`HierarchicalFit`.
    """
    from ..humans import ResponseScale, load_responses, scale_for_stimuli, validate_responses
    from ..scene import as_stimulus_set

    stimuli = as_stimulus_set(stimuli)
    if isinstance(scale, str):
        scale = ResponseScale.parse(scale)
    if scale is None:
        scale = scale_for_stimuli(stimuli)
    if not hasattr(responses, "columns"):
        responses = load_responses(responses)
    responses = validate_responses(responses, stimuli=stimuli, scale=scale)
    used = set(responses["stimulus_id"])
    subset = as_stimulus_set([s for s in stimuli if s.id in used])
    if emulator is None or not emulator.matches(subset):
        g = dict(grid) if grid is not None else {k: DEFAULT_GRID[k] for k in free}
        emulator = Emulator(grid=g, fixed=fixed, n_samples=emulator_samples, seed=seed, workers=workers,
                            progress=progress).fit(subset)
    fit = HierarchicalFit(free=free, scale=scale, seed=seed, progress=progress, **fit_options)
    return fit.fit(responses, emulator)
