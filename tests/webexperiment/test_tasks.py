"""The browser experiment's tasks (ipe.webexperiment.tasks): which posted answers each task takes."""

from __future__ import annotations

import pytest

from ipe.stimuli.towers import generate_towers
from ipe.webexperiment.tasks import get_task


@pytest.fixture(scope="module")
def towers():
    return list(generate_towers(1, seed=11, n_blocks=4))  # the first of test_server.py's towers (a prefix)


@pytest.mark.parametrize("task,good,bad", [
    ("will-it-fall", [1, 7, 4.0], [0, 8, 3.5, "4", True, None]),
    ("how-many", [0, 4], [-1, 5, 1.5, "two"]),
    ("probability", [0, 100, 33.3], [-0.1, 100.5, "50", float("inf")]),
    ("direction", ["left", "right", 1, 0], ["up", 0.5, 2, "LEFT"]),
])
def test_task_answers(task, good, bad, towers):
    t = get_task(task)
    stim = towers[0]
    frame = (-1.0, 1.0, 0.0, 2.0)
    for v in good:
        t.parse(v, stim, frame)
    for v in bad:
        with pytest.raises(ValueError):
            t.parse(v, stim, frame)
    assert get_task("direction").parse("left", stim, frame) == 1.0
    assert get_task("direction").parse("right", stim, frame) == 0.0
