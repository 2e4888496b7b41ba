"""BHT 2013 Exp 3/4 and Hamrick et al. 2016: mass matters to the prediction, and mass can be inferred from falls.

**Part 1 — swapping heavy and light blocks (BHT 2013, Exp. 3 and 4).**
Battaglia, Hamrick & Tenenbaum showed towers of heavy and light blocks in
pairs with the same geometry and the masses swapped. People's "will it
fall?" judgments differed between the two members of a pair, and a
mass-sensitive IPE accounted for the differences, while a mass-insensitive
IPE (which sees every block as equally heavy) predicts no difference at all
and fits worse. This script builds such pairs
(``generate_towers(mass_variants=True, balanced=True)``: half the blocks
density 10, half density 1, each tower in both assignments, only towers
whose two assignments differ under the no-noise model) and reports

* how often the mass-sensitive IPE (σ = φ = 0.2) rates the member of a
  pair that really falls (more) as more likely to fall (pair ordering
  accuracy; the mass-insensitive IPE gives both members the same
  prediction, so it orders no pair);
* the correlation between the model's within-pair difference
  P(a) − P(b) and that of synthetic participants
  (:func:`ipe.humans.synthesize`, mass-aware by construction — a
  consistency check, not human data), and both models' correlation with
  the participants' ratings over all stimuli.

**Part 2 — which colour is heavier? (Hamrick, Battaglia, Griffiths &
Tenenbaum 2016).** An observer watches a few towers of two-coloured blocks
fall (true heavy:light ratio 10) and infers the log density ratio through
the simulator (:class:`ipe.inference.latent.MassInference`: Pyro importance
sampling, a kernel likelihood on the blocks' displacements). The paper's
claims reproduced qualitatively: the observer identifies the heavier colour
and its belief sharpens over trials.

Outputs in ``experiments/results/mass/``: ``pairs.csv`` (per stimulus:
no-noise outcome, both models, synthetic humans), ``pairs.png``,
``learning.csv`` and ``learning.png`` (belief after each trial),
``results.csv`` / ``results.md`` / ``summary.json``.

Measured (full size, seed 2013): the mass-sensitive IPE orders 65% of 20
pairs like the true outcome, the mass-insensitive one none (identical
answers); r(within-pair difference, IPE vs synthetic participants) = 0.90;
r(P(fall)) with participants 0.98 (sensitive) vs 0.89 (insensitive). Mass
inference: P(heavy is heavier) = 0.999 after 6 towers, ratio 90% interval
[2.9, 9.4] for a true 10 (the edge of the prior).

Run::

    python experiments/mass.py          # full size: ~12 000 rollouts, about 3 CPU-minutes
    python experiments/mass.py --tiny   # seconds
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

import ipe  # noqa: E402
from ipe.fileio import write_csv  # noqa: E402
from ipe.humans import ResponseScale, aggregate, synthesize  # noqa: E402
from ipe.inference.latent import MassInference, mass_variant_stimuli, true_log_ratio, with_ratio  # noqa: E402
from ipe.render import save_figure  # noqa: E402

NAME = "mass"
FULL = dict(pairs=20, samples=60, participants=20, mass_towers=6, particles=100, sims=4)
TINY = dict(pairs=2, samples=4, participants=3, mass_towers=1, particles=6, sims=1)
SIGMA, PHI = 0.2, 0.2


def mass_blind(stimuli) -> ipe.StimulusSet:
    """The same stimuli with every block as dense as the light ones: what a mass-insensitive observer sees."""
    return ipe.StimulusSet(tuple(with_ratio(s, 0.0) for s in stimuli), name="mass_blind")


def part1(cfg: dict, seed: int, workers: int, out: Path) -> dict:
    stimuli = ipe.generate_towers(2 * cfg["pairs"], seed=seed, mass_variants=True, balanced=True)
    model = ipe.IPE(sigma=SIGMA, phi=PHI, n_samples=cfg["samples"], seed=seed + 1, workers=workers,
                    progress=C.progress())
    sens = model.predict(stimuli).set_index("stimulus_id")["mean"]
    # Both members of a pair look the same to a mass-blind observer: one prediction per pair (from member a).
    blind_a = model.predict(mass_blind([s for s in stimuli if s.metadata["mass_variant"] == "a"]))
    by_pair = {sid[:-2]: v for sid, v in zip(blind_a["stimulus_id"], blind_a["mean"])}
    blind = pd.Series({s.id: by_pair[s.metadata["pair"]] for s in stimuli})
    responses, _ = synthesize(stimuli, cfg["participants"], sigma=SIGMA, phi=PHI,
                              scale=ResponseScale.parse("rating:1-7"), seed=seed + 2, workers=workers,
                              progress=C.progress())
    human = aggregate(responses).set_index("stimulus_id")["mean"]
    rows = []
    for s in stimuli:
        rows.append({"stimulus_id": s.id, "pair": s.metadata["pair"], "variant": s.metadata["mass_variant"],
                     "n_fallen_no_noise": s.metadata["n_fallen_no_noise"], "p_mass_sensitive": sens[s.id],
                     "p_mass_blind": blind[s.id], "human_mean": human[s.id]})
    table = pd.DataFrame(rows)
    write_csv(out / "pairs.csv", table)
    wide = table.pivot(index="pair", columns="variant")
    d_true = wide["n_fallen_no_noise"]["a"] - wide["n_fallen_no_noise"]["b"]
    d_sens = wide["p_mass_sensitive"]["a"] - wide["p_mass_sensitive"]["b"]
    d_blind = wide["p_mass_blind"]["a"] - wide["p_mass_blind"]["b"]
    d_human = wide["human_mean"]["a"] - wide["human_mean"]["b"]
    ordered = float(np.mean(np.sign(d_sens) == np.sign(d_true)))
    ordered_blind = float(np.mean((np.sign(d_blind) == np.sign(d_true)) & (d_blind != 0)))
    res = {"pairs": len(wide), "ordering_sensitive": ordered, "ordering_blind": ordered_blind,
           "max_abs_diff_blind": float(np.max(np.abs(d_blind))),
           "r_diff_sensitive_human": C.pearson(d_sens, d_human),
           "r_diff_sensitive_human_ci": C.bootstrap_r(d_sens, d_human, seed=seed),
           "r_sensitive_human": C.pearson(table["p_mass_sensitive"], table["human_mean"]),
           "r_blind_human": C.pearson(table["p_mass_blind"], table["human_mean"])}

    fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.8))
    for ax, d, lab in ((axes[0], d_sens, "mass-sensitive IPE"), (axes[1], d_blind, "mass-insensitive IPE")):
        ax.scatter(d, d_human, c=np.sign(d_true), cmap="coolwarm", s=22, vmin=-1, vmax=1)
        ax.axhline(0, color="grey", lw=0.5)
        ax.axvline(0, color="grey", lw=0.5)
        ax.set_xlabel(f"{lab}: P(a) − P(b)")
        ax.set_title(f"r = {C.pearson(d, d_human):.2f}" if np.std(d) > 0 else "no difference predicted", fontsize=10)
    axes[0].set_ylabel("synthetic humans: rating(a) − rating(b)")
    fig.suptitle("Swapping heavy and light blocks (colour: which member really falls more)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, out / "pairs.png", dpi=120)
    plt.close(fig)
    print(f"part 1: {res['pairs']} pairs; mass-sensitive IPE orders {ordered:.0%} of pairs like the no-noise "
          f"outcome, the mass-blind IPE {ordered_blind:.0%}; r(Δ model, Δ humans) = "
          f"{res['r_diff_sensitive_human']:.3f}", flush=True)
    return res


def part2(cfg: dict, seed: int, out: Path) -> dict:
    stimuli = list(mass_variant_stimuli(cfg["mass_towers"], seed=seed))
    inf = MassInference(sigma=0.1, n_particles=cfg["particles"], n_sims=cfg["sims"], seed=seed,
                        progress=C.progress()).fit(stimuli)
    s = inf.summary_
    heavy, light = s["materials"]
    true_kappa = true_log_ratio(stimuli[0])
    write_csv(out / "learning.csv", inf.learning_)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    col = f"p_{heavy}_heavier"
    ax.plot(inf.learning_["trial"], inf.learning_[col], "o-", label=f"P({heavy} heavier)")
    ax.plot(inf.learning_["trial"], inf.learning_["mean_log_ratio"] / math.log(10), "s--",
            label="posterior mean log10 ratio")
    ax.axhline(true_kappa / math.log(10), color="grey", ls=":", label="true log10 ratio")
    ax.set_xlabel("trials observed")
    ax.set_ylim(-1.05, 1.05)
    ax.legend(fontsize=8)
    ax.set_title("Inferring which colour is heavier from falls", fontsize=10)
    fig.tight_layout()
    save_figure(fig, out / "learning.png", dpi=120)
    plt.close(fig)
    res = {"materials": [heavy, light], "true_ratio": math.exp(true_kappa), "p_heavy_heavier": s[col],
           "ratio_q05": s["ratio_q05"], "ratio_q95": s["ratio_q95"],
           "ratio_mean_geometric": math.exp(s["mean_log_ratio"]), "trials": s["n_trials"], "ess": s["ess"],
           "p_after_first_trial": float(inf.learning_[col].iloc[1]) if len(inf.learning_) > 1 else math.nan}
    print(f"part 2: P({heavy} heavier) = {res['p_heavy_heavier']:.3f} after {res['trials']} trials; ratio 90% "
          f"interval [{res['ratio_q05']:.2f}, {res['ratio_q95']:.2f}] (true {res['true_ratio']:g})", flush=True)
    return res


def main(argv=None) -> int:
    ap = C.parser(__doc__, NAME)
    ap.add_argument("--pairs", type=int)
    ap.add_argument("--samples", type=int)
    ap.add_argument("--participants", type=int)
    ap.add_argument("--mass-towers", type=int, help="towers observed in the mass-inference part")
    ap.add_argument("--particles", type=int)
    args = ap.parse_args(argv)
    cfg = C.sizes(args, TINY, FULL, ("pairs", "samples", "participants", "mass_towers", "particles"))
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    p1 = part1(cfg, args.seed, args.workers, out)
    p2 = part2(cfg, args.seed, out)
    claims = pd.DataFrame([
        {"claim": "mass-sensitive IPE: pairs ordered like the true outcome", "paper": "most (qualitative)",
         "ours": p1["ordering_sensitive"]},
        {"claim": "mass-insensitive IPE: pairs ordered (it predicts no difference)", "paper": "none",
         "ours": p1["ordering_blind"]},
        {"claim": "r(within-pair difference, IPE vs synthetic humans)", "paper": "high (qualitative)",
         "ours": p1["r_diff_sensitive_human"]},
        {"claim": "r(P(fall), mass-sensitive IPE vs synthetic humans)", "paper": "higher than insensitive",
         "ours": p1["r_sensitive_human"]},
        {"claim": "r(P(fall), mass-insensitive IPE vs synthetic humans)", "paper": "lower",
         "ours": p1["r_blind_human"]},
        {"claim": f"latent mass: P({p2['materials'][0]} is heavier) after {p2['trials']} trials",
         "paper": "> 0.5, grows with trials", "ours": p2["p_heavy_heavier"]},
        {"claim": "latent mass: posterior 90% interval of the ratio (true 10)", "paper": "covers the truth",
         "ours": f"[{p2['ratio_q05']:.2f}, {p2['ratio_q95']:.2f}]"},
    ])
    notes = ["Papers: Battaglia, Hamrick & Tenenbaum (2013) Exp. 3–4 (mass-sensitive vs mass-insensitive IPE); "
             "Hamrick, Battaglia, Griffiths & Tenenbaum (2016, Cognition). Their stimuli were 3D and judged by "
             "people; here the 'humans' are synthetic participants (mass-aware by construction) and the towers "
             "are 2D, so only the direction of each claim is compared.",
             f"Sizes: {cfg}. Total {time.time() - t0:.0f} s."]
    C.write_results(out, NAME, "Mass: swapped heavy/light blocks and latent-mass inference", claims,
                    details={"part1": p1, "part2": p2, "config": cfg}, notes=notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
