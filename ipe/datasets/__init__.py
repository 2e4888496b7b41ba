"""Bundled and published datasets.

:func:`load_demo` returns the bundled demo towers (``data/demo_towers.json``):
12 BHT-style towers, 6 stable and 6 falling under the no-noise model, made by
``ipe stimuli towers --n 12 --balanced --seed 2013``.
"""

from __future__ import annotations

from pathlib import Path

from ..checks import StimulusSet
from ..scenefile import load_stimuli
from ..stimuli.towers import generate_towers

DEMO_SEED = 2013
DEMO_N = 12
DEMO_FILE = "demo_towers.json"


def demo_path() -> Path | None:
    """Path of the bundled demo file, or ``None`` when ipe is installed without its ``data/`` folder."""
    here = Path(__file__).resolve().parent
    for cand in (here.parent.parent / "data" / DEMO_FILE, here / DEMO_FILE):
        if cand.is_file():
            return cand
    return None


def make_demo() -> StimulusSet:
    """Build the demo set from scratch (identical to the bundled file)."""

    return generate_towers(DEMO_N, seed=DEMO_SEED, balanced=True)


def load_demo() -> StimulusSet:
    """The bundled demo towers (rebuilt deterministically if the file is not installed)."""
    path = demo_path()
    return load_stimuli(path) if path is not None else make_demo()
