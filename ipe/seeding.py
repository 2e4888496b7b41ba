"""Seeds: every random draw derives from one user seed through :class:`numpy.random.SeedSequence`.

A rollout's randomness is keyed by ``(stimulus, parameter point, sample
index)`` and, inside the rollout, by the name of the noise source that draws.
So a result never depends on the number of workers, on how work is batched,
or on which other noise sources are switched on.

Keys are stable 64-bit integers made from SHA-256 of text, so they are the
same on every machine and every Python run (unlike :func:`hash`).

Every other random draw (bootstrap resamples, synthetic participants, NUTS
and SVI seeds, trial orders, network weights) comes from a *named stream*:
:func:`stream_seed` / :func:`stream_rng` / :func:`stream_int` with a name
(``"ipe.<module>:<purpose>"``, or one of :data:`LEGACY_KEYS`), plus optional keys (a chain, a participant, a stimulus). No
other module builds a :class:`~numpy.random.SeedSequence` itself, and no two
names share a spawn key (both are checked in the tests).
"""

from __future__ import annotations

import hashlib

import numpy as np

#: Named streams whose spawn key is a small integer: they were keyed so before names were used, and keep
#: their keys so that fits and documented numbers repeat bit for bit. Every other stream is keyed by
#: ``text_key(name)``. Two names never share a key (tests/test_seeding.py checks it).
LEGACY_KEYS: dict[str, int] = {
    "fit.nuts_chain": 1,  # each NUTS chain (keys: chain)
    "fit.ppc": 2,  # posterior predictive draws
    "fit.svi": 3,  # the SVI fit (method="svi", or the SVI start of NUTS)
    "fit.svi_start": 4,  # each chain's start drawn from the SVI guide (keys: chain)
    "humans.split_half": 5,
    "landing.responses": 7,
    "latent.nuts": 11,
    "landing.kde": 13,
}
# Not legacy (they shared a key with another stream, so they now get their own): "compare.folds" (was 7, as
# landing.responses) and "landing.nuts_chain" (was (11, chain), under latent.nuts).


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


def _key(name: str, keys: tuple) -> tuple[int, ...]:
    head = LEGACY_KEYS.get(name)
    head = text_key(name) if head is None else head
    return (head, *(text_key(k) if isinstance(k, str) else int(k) for k in keys))


def stream_seed(seed: int, name: str, *keys: int | str) -> np.random.SeedSequence:
    """The :class:`~numpy.random.SeedSequence` of the named stream ``name`` (then ``keys``) under ``seed``.

    Text keys are turned into stable integers with :func:`text_key`. The
    stream's spawn key is ``(text_key(name), *keys)`` (or the name's legacy
    integer from :data:`LEGACY_KEYS`).
    """
    return np.random.SeedSequence(int(seed), spawn_key=_key(name, keys))


def stream_rng(seed: int, name: str, *keys: int | str) -> np.random.Generator:
    """A PCG64 generator drawing from the named stream (see :func:`stream_seed`)."""
    return np.random.Generator(np.random.PCG64(stream_seed(seed, name, *keys)))


def stream_int(seed: int, name: str, *keys: int | str, bits: int = 32) -> int:
    """One integer seed below ``2**bits`` from the named stream, for torch/pyro generators.

    With ``bits <= 32`` it is the stream's first 32-bit state word (reduced), as
    ``SeedSequence.generate_state(1)`` gives it; above 32 bits, the first 64-bit word.
    """
    if not 1 <= bits <= 64:
        raise ValueError(f"bits must be in [1, 64], got {bits}")
    dtype = np.uint32 if bits <= 32 else np.uint64
    state = stream_seed(seed, name, *keys).generate_state(1, dtype=dtype)[0]
    return int(state) % (2 ** bits)
