"""Shared fixtures: a fixed seed, the demo towers, small hand-made scenes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Tests live in folders that mirror the package (tests/inference/, tests/video/, ...) and are imported with
# --import-mode=importlib (no __init__.py; the same file name may appear in two folders). The helper modules
# in tests/ itself (scenes.py, ...) are found through this path entry.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import ipe

from scenes import stack_scene

os.environ.setdefault("IPE_NO_PROGRESS", "1")


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory):
    """Commands that cache by default (``ipe sweep``) write to a throw-away directory, not ~/.cache/ipe."""
    old = os.environ.get("IPE_CACHE_DIR")
    os.environ["IPE_CACHE_DIR"] = str(tmp_path_factory.mktemp("ipe-cache"))
    yield
    if old is None:
        os.environ.pop("IPE_CACHE_DIR", None)
    else:
        os.environ["IPE_CACHE_DIR"] = old


@pytest.fixture
def seed() -> int:
    return 20131105


@pytest.fixture(scope="session")
def demo():
    return ipe.load_demo()


@pytest.fixture
def straight_stack():
    return stack_scene([0.0] * 10)


@pytest.fixture
def falling_stack():
    return stack_scene([0.0, 0.12, 0.24, 0.36])
