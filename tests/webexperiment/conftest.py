"""Fixtures of the browser experiment's tests: five small towers, their materials, an in-process server."""

from __future__ import annotations

import warnings

import pytest

with warnings.catch_warnings():  # Starlette >= 1.x asks for httpx2; httpx works the same here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from ipe.stimuli.towers import generate_towers
from ipe.webexperiment import ExperimentConfig, Store, build_materials, create_app, design_json


@pytest.fixture(scope="module")
def towers():
    return list(generate_towers(5, seed=11, n_blocks=4))


@pytest.fixture(scope="module")
def materials(towers):
    return build_materials(towers, ExperimentConfig(task="will-it-fall", practice=2, seed=3))


@pytest.fixture
def server(materials, tmp_path):
    store = Store(tmp_path / "lab.db", design=design_json(materials), fingerprint=materials.fingerprint)
    client = TestClient(create_app(materials, store))
    yield client, store
    client.close()
    store.close()
