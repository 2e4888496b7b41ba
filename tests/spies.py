"""Spies for the tests: count what the code under test does without changing what it returns."""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def counting_rollouts(monkeypatch):
    """Count the rollouts ``ipe.runner`` simulates inside the block: yields a list that gets one item per rollout.

    Leaving the block undoes every ``monkeypatch`` change made so far (the spy's and any made inside the block).
    """
    import ipe.runner as runner

    calls: list[int] = []
    real = runner.rollout

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(runner, "rollout", counting)
    try:
        yield calls
    finally:
        monkeypatch.undo()
