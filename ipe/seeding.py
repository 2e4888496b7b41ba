"""Seeds: every random draw derives from one user seed through :class:`numpy.random.SeedSequence`.

A rollout's randomness is keyed by ``(stimulus, parameter point, sample
index)`` and, inside the rollout, by the name of the noise source that draws.
So a result never depends on the number of workers, on how work is batched,
or on which other noise sources are switched on.

Keys are stable 64-bit integers made from SHA-256 of text, so they are the
same on every machine and every Python run (unlike :func:`hash`).
"""

from __future__ import annotations

import hashlib

import numpy as np


def text_key(text: str) -> int:
    """A stable 64-bit integer key for ``text``."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


def sample_seed(seed: int, stimulus_id: str, point_key: int, sample: int) -> np.random.SeedSequence:
    """The :class:`~numpy.random.SeedSequence` of one rollout.

    ``point_key`` identifies the parameter point (see
    :meth:`ipe.noise.NoiseParams.key`); pass the same ``point_key`` for all
    points of a grid to get common random numbers across the grid.
    """
    if seed < 0:
        raise ValueError("seed must be >= 0")
    return np.random.SeedSequence(int(seed), spawn_key=(text_key(stimulus_id), int(point_key), int(sample)))


def source_rng(ss: np.random.SeedSequence, source_name: str) -> np.random.Generator:
    """The generator one named noise source uses inside one rollout."""
    child = np.random.SeedSequence(ss.entropy, spawn_key=tuple(ss.spawn_key) + (text_key(source_name),))
    return np.random.Generator(np.random.PCG64(child))
