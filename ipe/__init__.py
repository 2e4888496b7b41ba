"""ipe — the intuitive physics engine, runnable.

People judge physical scenes by running a few noisy mental simulations
(Battaglia, Hamrick & Tenenbaum 2013). ``ipe`` is that simulator: 2D scenes in
pymunk, named noise sources (perceptual σ, force φ, mass μ), Monte Carlo
judgments in tidy pandas tables, and the ``ipe`` command line.

Quick start::

    import ipe
    stimuli = ipe.load_demo()
    ipe.IPE(sigma=0.2, phi=0.2, n_samples=50, seed=0).predict(stimuli)
"""

from .datasets import load_demo
from .errors import InputError
from .model import IPE
from .montecarlo import predict_population, simulate, summarize
from .noise import ForceNoise, MassNoise, NoiseParams, PerceptualNoise
from .checks import StimulusSet
from .scene import (
    Ball,
    Block,
    Intervention,
    Query,
    Scene,
    Simulation,
    StaticBox,
    StaticPolygon,
    StaticRegularPolygon,
    StaticSegment,
    Stimulus,
)
from .scenefile import load_stimuli, save_stimuli
from .stimuli import generate_towers

__version__ = "0.1.0"
PHYSICS_VERSION = "2"
"""Bumped whenever a change alters simulation results (used by caches)."""

__all__ = [
    "IPE", "InputError", "NoiseParams", "PerceptualNoise", "ForceNoise", "MassNoise", "simulate", "summarize",
    "predict_population",
    "Scene", "Simulation", "Block", "Ball", "StaticBox", "StaticPolygon", "StaticRegularPolygon", "StaticSegment",
    "Stimulus", "StimulusSet", "Query", "Intervention", "load_stimuli", "save_stimuli", "generate_towers",
    "load_demo", "__version__",
]


def __getattr__(name: str):
    # the fit workflow imports torch and Pyro: loaded on first use, not with ``import ipe``
    if name in ("fit_responses", "FitResult"):
        from .inference import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'ipe' has no attribute {name!r}")
