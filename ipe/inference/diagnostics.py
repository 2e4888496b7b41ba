"""Did the fit work? The convergence verdict after sampling, and the emulator-edge check.

The checks and thresholds are those of Vehtari et al. (2021), as ArviZ uses
them:

* rank-normalised split R-hat ≤ :data:`MAX_R_HAT` (1.01) for every sampled
  quantity (needs at least 2 chains);
* bulk and tail effective sample size ≥ :data:`MIN_ESS` (400);
* no divergent transitions after warm-up;
* the tree depth not saturated: fewer than :data:`MAX_SATURATED` (1 %) of the
  draws hit the maximum tree depth.

Any failed check gives a :class:`ConvergenceWarning` that names the worst
quantity of each check and what to try. The verdict
(:class:`Verdict`) is saved in ``params.json`` (``_meta.convergence``) and
``convergence.json``.

Separately, :func:`edge_problems` flags a posterior that piles up at an edge
of the emulator's grid (not at a natural bound, 0): the data want values the
emulator does not cover, and the grid should be wider.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

MAX_R_HAT = 1.01
MIN_ESS = 400
MAX_SATURATED = 0.01
#: A posterior "piles up" at an edge when this share of its draws lies in the outer EDGE_BAND of the range.
EDGE_SHARE = 0.10
EDGE_BAND = 0.05


class ConvergenceWarning(UserWarning):
    """The sampler has not converged (or could not be checked): the numbers are not to be trusted yet."""


class EdgeWarning(UserWarning):
    """The posterior piles up at the edge of the emulator's grid."""


@dataclass
class Verdict:
    """The outcome of the convergence checks.

    ``converged`` is True only when every check ran and passed. ``problems``
    lists failed checks as dicts (``check``, ``parameter``, ``value``,
    ``threshold``, ``message``); ``advice`` what to try.
    """

    converged: bool
    method: str = "nuts"
    checked: bool = True
    max_r_hat: float | None = None
    min_ess_bulk: float | None = None
    min_ess_tail: float | None = None
    n_divergent: int = 0
    saturated_share: float | None = None
    max_tree_depth: int | None = None
    stopped_early: bool = False
    problems: list = field(default_factory=list)
    edges: list = field(default_factory=list)
    advice: list = field(default_factory=list)
    thresholds: dict = field(default_factory=lambda: {"max_r_hat": MAX_R_HAT, "min_ess_bulk": MIN_ESS,
                                                      "min_ess_tail": MIN_ESS, "max_divergences": 0,
                                                      "max_saturated_share": MAX_SATURATED})

    def as_dict(self) -> dict:
        return _jsonable(asdict(self))

    def message(self) -> str:
        """The loud warning text (empty when converged and no edge problem)."""
        lines = []
        if not self.converged:
            head = ("NOT CONVERGED" if self.checked else "CONVERGENCE NOT CHECKED") + \
                   " — do not trust these numbers yet:"
            lines.append(head)
            lines += [f"  - {p['message']}" for p in self.problems]
            if self.advice:
                lines.append("  try: " + "; ".join(self.advice))
        for e in self.edges:
            lines.append(f"EMULATOR EDGE: {e['message']}")
        return "\n".join(lines)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def _worst(table: pd.DataFrame, column: str, largest: bool) -> tuple[str, float] | None:
    col = pd.to_numeric(table[column], errors="coerce")
    col = col[np.isfinite(col)]
    if col.empty:
        return None
    i = col.idxmax() if largest else col.idxmin()
    return str(table.loc[i, "parameter"]), float(col.loc[i])


def check_convergence(summary: pd.DataFrame, n_chains: int, n_draws: int, diverging: np.ndarray,
                      tree_depth: np.ndarray | None = None, max_tree_depth: int | None = None,
                      hierarchical: bool = True, free: tuple[str, ...] = (), stopped_early: bool = False,
                      method: str = "nuts", quick: str | None = "--method svi") -> Verdict:
    """The :class:`Verdict` from a diagnostics table (``parameter``, ``r_hat``, ``ess_bulk``, ``ess_tail``).

    ``quick``: the calling command's option for a quick approximate answer,
    suggested last when a check fails (``None``: the command has none, e.g.
    ``ipe fit-landing``).
    """
    if method != "nuts":
        return _unchecked(method, stopped_early)
    v = Verdict(converged=True, method=method, n_divergent=int(np.sum(diverging)), stopped_early=stopped_early,
                max_tree_depth=max_tree_depth)
    problems = v.problems
    if stopped_early:
        problems.append({"check": "stopped", "parameter": None, "value": n_draws, "threshold": None,
                         "message": f"sampling was stopped by --max-time after {n_draws} draws per chain"})
    if n_draws == 0:
        v.converged = False
        v.checked = False
        problems.append({"check": "draws", "parameter": None, "value": 0, "threshold": None,
                         "message": "no draws were made"})
        v.advice.append("allow more time (--max-time) or fewer warm-up steps")
        return v
    worst_r = _worst(summary, "r_hat", largest=True)
    v.max_r_hat = worst_r[1] if worst_r else None
    if n_chains < 2 or worst_r is None:
        problems.append({"check": "r_hat", "parameter": None, "value": None, "threshold": MAX_R_HAT,
                         "message": f"R-hat needs at least 2 chains (ran {n_chains})"})
    elif worst_r[1] > MAX_R_HAT:
        n_bad = int((pd.to_numeric(summary["r_hat"], errors="coerce") > MAX_R_HAT).sum())
        problems.append({"check": "r_hat", "parameter": worst_r[0], "value": worst_r[1], "threshold": MAX_R_HAT,
                         "message": f"R-hat of {worst_r[0]} is {worst_r[1]:.3f} (needs <= {MAX_R_HAT}; "
                                    f"{n_bad} quantit{'y' if n_bad == 1 else 'ies'} above it)"})
    for col, label, attr in (("ess_bulk", "bulk", "min_ess_bulk"), ("ess_tail", "tail", "min_ess_tail")):
        worst = _worst(summary, col, largest=False)
        setattr(v, attr, worst[1] if worst else None)
        if worst is not None and worst[1] < MIN_ESS:
            problems.append({"check": col, "parameter": worst[0], "value": worst[1], "threshold": MIN_ESS,
                             "message": f"{label} ESS of {worst[0]} is {worst[1]:.0f} (needs >= {MIN_ESS})"})
    if v.n_divergent:
        problems.append({"check": "divergences", "parameter": None, "value": v.n_divergent, "threshold": 0,
                         "message": f"{v.n_divergent} divergent transition(s) after warm-up"})
    if tree_depth is not None and max_tree_depth and len(tree_depth):
        share = float(np.mean(np.asarray(tree_depth) >= max_tree_depth))
        v.saturated_share = share
        if share > MAX_SATURATED:
            problems.append({"check": "tree_depth", "parameter": None, "value": share, "threshold": MAX_SATURATED,
                             "message": f"{share:.0%} of the draws hit the maximum tree depth {max_tree_depth}"})
    v.converged = not problems
    if problems:
        v.advice.extend(_advice({p["check"] for p in problems}, free, hierarchical, quick))
    return v


def _unchecked(method: str, stopped_early: bool) -> Verdict:
    """The verdict of an approximate method (SVI): nothing to check, so not converged, with what to do."""
    v = Verdict(converged=False, method=method, checked=False, stopped_early=stopped_early)
    v.problems.append({"check": "method", "parameter": None, "value": None, "threshold": None,
                       "message": f"{method.upper()} gives an approximation of the posterior; R-hat, ESS and "
                                  "divergences are not defined for it"})
    v.advice.append("confirm with --method nuts before reporting the intervals")
    return v


def _advice(checks: set[str], free: tuple[str, ...], hierarchical: bool, quick: str | None = "--method svi"
            ) -> list[str]:
    """What to try when the ``checks`` failed."""
    advice = []
    if checks & {"r_hat", "ess_bulk", "ess_tail", "stopped"}:
        advice.append("more draws and warm-up (e.g. --warmup 1000 --draws 1000) and at least 2 chains")
    if checks & {"divergences", "tree_depth"}:
        advice.append("a higher target acceptance or a longer tree (divergences and saturated trees mean "
                      "hard geometry)")
    if len(free) > 1:
        advice.append(f"fewer free parameters (e.g. --free {free[0]})")
    if hierarchical:
        advice.append("a non-hierarchical, group-level fit (--hierarchy off)")
    if quick:
        advice.append(f"or {quick} for a quick approximate answer")
    return advice


def edge_problems(draws: dict[str, np.ndarray], grid: dict[str, tuple[float, float]]) -> list[dict]:
    """Free parameters whose posterior piles up at an edge of the emulator's grid (never at a lower edge of 0)."""
    out = []
    for name, v in draws.items():
        if name not in grid:
            continue
        lo, hi = grid[name]
        band = EDGE_BAND * (hi - lo)
        v = np.asarray(v, dtype=float).ravel()
        if not len(v):
            continue
        at_hi = float(np.mean(v >= hi - band))
        at_lo = float(np.mean(v <= lo + band)) if lo > 0 else 0.0
        for share, side, edge, wider in ((at_hi, "upper", hi, f"{hi:g} to about {hi + (hi - lo):g}"),
                                         (at_lo, "lower", lo, f"down to {max(0.0, lo - (hi - lo)):g}")):
            if share >= EDGE_SHARE:
                out.append({"parameter": name, "edge": side, "value": edge, "share": share,
                            "message": f"{share:.0%} of the posterior of {name} lies at the {side} edge of the "
                                       f"emulator's grid ({edge:g}): the data want values the emulator does not "
                                       f"cover; widen the grid (e.g. --grid {name}=... extending {wider})"})
    return out


def warn(verdict: Verdict) -> None:
    """Issue the loud warnings of ``verdict`` (one :class:`ConvergenceWarning`, one :class:`EdgeWarning` each)."""
    if not verdict.converged:
        text = Verdict(**{**asdict(verdict), "edges": []}).message()
        warnings.warn(text, ConvergenceWarning, stacklevel=3)
    for e in verdict.edges:
        warnings.warn(f"EMULATOR EDGE: {e['message']}", EdgeWarning, stacklevel=3)
