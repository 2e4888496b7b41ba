"""Figures of a hierarchical fit: posteriors of the group parameters, traces, posterior-predictive check."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..render import save_figure  # noqa: E402


def plot_fit(fit, out_dir: str | Path) -> dict[str, Path]:
    """Write ``posterior.png`` (densities and traces per chain) and ``ppc.png``; return their paths."""
    out = Path(out_dir)
    post = fit.idata_.posterior
    free = list(fit.model_.free)
    fig, axes = plt.subplots(len(free), 2, figsize=(9, 2.6 * len(free)), squeeze=False)
    for r, name in enumerate(free):
        v = post[name].values  # (chain, draw)
        ax = axes[r, 0]
        for c in range(v.shape[0]):
            ax.hist(v[c], bins=30, histtype="step", density=True, label=f"chain {c}")
        p = fit.params_[name]
        ax.axvspan(p["q05"], p["q95"], color="0.85", zorder=0, label="90% interval")
        ax.axvline(p["mean"], color="k", lw=1)
        ax.set_xlabel(f"{name} (group)")
        ax.set_ylabel("density")
        if r == 0:
            ax.legend(frameon=False, fontsize=8)
        ax = axes[r, 1]
        for c in range(v.shape[0]):
            ax.plot(v[c], lw=0.6)
        ax.set_ylabel(name)
        ax.set_xlabel("draw")
    fig.suptitle("Group parameters: posterior and NUTS traces")
    fig.tight_layout()
    paths = {"posterior_figure": save_figure(fig, out / "posterior.png")}
    plt.close(fig)

    ppc = fit.ppc_
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    yerr = np.vstack([ppc["predicted_mean"] - ppc["predicted_q05"], ppc["predicted_q95"] - ppc["predicted_mean"]])
    ax.errorbar(ppc["predicted_mean"], ppc["observed_mean"], xerr=yerr, fmt="o", ms=3, color="C0", ecolor="0.7",
                elinewidth=1)
    lo = float(min(ppc["predicted_q05"].min(), ppc["observed_mean"].min()))
    hi = float(max(ppc["predicted_q95"].max(), ppc["observed_mean"].max()))
    ax.plot([lo, hi], [lo, hi], color="0.5", lw=1, ls="--")
    r = np.corrcoef(ppc["predicted_mean"], ppc["observed_mean"])[0, 1] if len(ppc) > 2 else np.nan
    ax.set_xlabel("posterior-predictive mean response (90% interval)")
    ax.set_ylabel("observed mean response")
    ax.set_title(f"Posterior-predictive check, per stimulus (r = {r:.2f})", fontsize=10)
    fig.tight_layout()
    paths["ppc_figure"] = save_figure(fig, out / "ppc.png")
    plt.close(fig)
    return paths
