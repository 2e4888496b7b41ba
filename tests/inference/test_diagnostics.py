"""The convergence verdict and the grid-edge check (ipe.inference.diagnostics)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ipe.inference.diagnostics import check_convergence, edge_problems


def test_verdict_checks_each_threshold():
    table = pd.DataFrame({"parameter": ["a", "b"], "r_hat": [1.0, 1.02], "ess_bulk": [500, 399],
                          "ess_tail": [450, 401]})
    v = check_convergence(table, 2, 300, np.array([[False, True]]), np.array([8, 3, 3]), 8, free=("sigma", "phi"))
    checks = {p["check"]: p for p in v.problems}
    assert set(checks) == {"r_hat", "ess_bulk", "divergences", "tree_depth"}
    assert checks["r_hat"]["parameter"] == "b" and checks["ess_bulk"]["parameter"] == "b"
    assert any("--free sigma" in a for a in v.advice)
    ok = check_convergence(table.assign(r_hat=1.0, ess_bulk=400, ess_tail=400), 2, 300, np.zeros(3, bool),
                           np.array([3, 3, 3]), 8)
    assert ok.converged and ok.message() == ""
    one_chain = check_convergence(table.assign(r_hat=np.nan, ess_bulk=900, ess_tail=900), 1, 300, np.zeros(3, bool))
    assert not one_chain.converged and "2 chains" in one_chain.problems[0]["message"]


def test_the_quick_answer_advised_is_the_calling_commands_own():
    """``quick``: ``ipe fit`` suggests ``--method svi``; a command without one (fit-landing) passes None."""
    table = pd.DataFrame({"parameter": ["a"], "r_hat": [1.2], "ess_bulk": [50], "ess_tail": [50]})
    fit = check_convergence(table, 2, 100, np.zeros(4, bool))
    assert fit.advice[-1] == "or --method svi for a quick approximate answer"
    landing = check_convergence(table, 2, 100, np.zeros(4, bool), hierarchical=False, quick=None)
    assert landing.advice and not any("--method" in a for a in landing.advice)
    assert landing.advice[0].startswith("more draws")


def test_a_posterior_piled_at_the_grid_edge_is_flagged_but_not_at_zero():
    near_top = np.full(100, 0.39)
    found = edge_problems({"phi": near_top, "sigma": np.full(100, 0.001)}, {"phi": (0.0, 0.4), "sigma": (0.0, 0.4)})
    assert [e["parameter"] for e in found] == ["phi"] and "widen the grid" in found[0]["message"]
    assert edge_problems({"phi": np.full(100, 0.21)}, {"phi": (0.2, 0.4)})[0]["edge"] == "lower"
    assert edge_problems({"phi": np.linspace(0, 0.4, 100)}, {"phi": (0.0, 0.4)}) == []
