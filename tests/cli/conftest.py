"""Fixtures of the command-line tests: a four-tower stimulus file made by ``ipe stimuli towers``."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipe.cli import main


@pytest.fixture(scope="module")
def four(tmp_path_factory) -> Path:
    """A four-tower stimulus file made by the CLI."""
    p = tmp_path_factory.mktemp("cli") / "four.json"
    assert main(["stimuli", "towers", "--n", "4", "--seed", "7", "--out", str(p)]) == 0
    return p
