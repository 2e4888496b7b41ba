"""Experiment materials (ipe.webexperiment.materials): the configuration's options are checked by declared rules."""

from __future__ import annotations

import pytest

from ipe.errors import InputError
from ipe.webexperiment.materials import ExperimentConfig


@pytest.mark.parametrize("kwargs,message", [
    (dict(practice=-1), "--practice must be a non-negative integer, got -1"),
    (dict(practice=True), "--practice must be a non-negative integer, got True"),
    (dict(seed=True), "--seed must be a non-negative integer, got True"),
    (dict(seed=-2), "--seed must be a non-negative integer, got -2"),
    (dict(image_size=50), "--image-size must be an integer in [100, 2000], got 50"),
    (dict(image_size=400.5), "--image-size must be an integer in [100, 2000], got 400.5"),
])
def test_config_options_break_their_rule_with_one_message(kwargs, message):
    with pytest.raises(InputError) as exc:
        ExperimentConfig(task="will-it-fall", **kwargs)
    assert str(exc.value) == message


def test_a_good_config_keeps_its_values():
    cfg = ExperimentConfig(task="will-it-fall", practice=0, seed=5, image_size=100)
    assert (cfg.practice, cfg.seed, cfg.image_size) == (0, 5, 100)
