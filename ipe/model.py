"""The intuitive physics engine as an estimator-like object.

>>> from ipe import IPE, load_demo
>>> model = IPE(sigma=0.2, phi=0.2, n_samples=20, seed=1)
>>> table = model.predict(load_demo())          # doctest: +SKIP
>>> table[["stimulus_id", "query", "mean", "se"]].head()   # doctest: +SKIP

Following scikit-learn's conventions, ``__init__`` only stores parameters
(:meth:`get_params` / :meth:`set_params` read and change them) and the
computation happens in :meth:`predict` / :meth:`simulate`. The no-noise
("ground truth") model is the same class with all noise at zero and one
sample: :meth:`IPE.ground_truth`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from .estimator import ParamsMixin
from .montecarlo import simulate, summarize
from .noise import NoiseParams


class IPE(ParamsMixin):
    """A noisy-simulation observer.

    Parameters
    ----------
    sigma:
        Perceptual position noise σ, in block short sides (see :mod:`ipe.noise`).
    phi:
        Force noise φ: a sideways push of φ × weight for the first 200 ms.
    mu:
        Mass noise μ: s.d. of the log density ratio between materials.
    angle_sigma:
        Perceptual angle noise (radians).
    n_samples:
        Simulations per stimulus.
    seed:
        Seed of every random draw; the same seed gives the same table.
    workers, backend:
        Parallelism (see :func:`ipe.montecarlo.simulate`); never changes results.
    early_stop:
        Stop a rollout once the scene is at rest (same judgments, less time).
    progress:
        Progress bar (``None``: when stderr is a terminal).
    push_duration:
        How long the φ push lasts (s).
    target_se:
        Adaptive sample counts (opt-in): simulate each stimulus until every
        query's standard error is at most this, ``n_samples`` at most (see
        :mod:`ipe.adaptive`). ``None``: exactly ``n_samples``.
    """

    def __init__(self, sigma: float = 0.0, phi: float = 0.0, mu: float = 0.0, angle_sigma: float = 0.0,
                 n_samples: int = 100, seed: int = 0, workers: int = 1, backend: str | None = None,
                 early_stop: bool = True, progress: bool | None = None, push_duration: float = 0.2,
                 target_se: float | None = None):
        self.sigma = sigma
        self.phi = phi
        self.mu = mu
        self.angle_sigma = angle_sigma
        self.n_samples = n_samples
        self.seed = seed
        self.workers = workers
        self.backend = backend
        self.early_stop = early_stop
        self.progress = progress
        self.push_duration = push_duration
        self.target_se = target_se

    @classmethod
    def ground_truth(cls, **kwargs: Any) -> "IPE":
        """The no-noise model: σ = φ = μ = 0 and a single sample per stimulus."""
        kwargs.setdefault("n_samples", 1)
        return cls(sigma=0.0, phi=0.0, mu=0.0, angle_sigma=0.0, **kwargs)

    @property
    def noise(self) -> NoiseParams:
        """The model's noise as a :class:`~ipe.noise.NoiseParams` point."""
        return NoiseParams(sigma=self.sigma, phi=self.phi, mu=self.mu, angle_sigma=self.angle_sigma,
                           push_duration=self.push_duration)

    # computation ---------------------------------------------------------------------------
    def simulate(self, stimuli, queries=None) -> pd.DataFrame:
        """One row per rollout (and query): see :mod:`ipe.montecarlo`."""
        return simulate(stimuli, self.noise, n_samples=self.n_samples, seed=self.seed, queries=queries,
                        workers=self.workers, backend=self.backend, early_stop=self.early_stop,
                        progress=self.progress, target_se=self.target_se)

    def predict(self, stimuli, queries=None) -> pd.DataFrame:
        """One row per stimulus (and query): ``stimulus_id, query, n_samples, mean, sd, se, …``.

        ``mean`` is the model's expected answer in the query's units (for
        ``fall``: the expected fraction of blocks that fall).
        """
        return summarize(self.simulate(stimuli, queries=queries))
