"""``ipe fit``: its option parsers."""

from __future__ import annotations

from ipe.cli.fit import parse_free


def test_friction_is_a_free_parameter_with_a_grid_and_a_prior_range():
    from ipe.humans import RANGES
    from ipe.inference.emulator import DEFAULT_GRID

    assert parse_free("sigma,phi,friction") == ["sigma", "phi", "friction"]
    assert DEFAULT_GRID["friction"][0] == 0 and RANGES["friction"][1] >= max(DEFAULT_GRID["friction"])
