"""``ipe infer``: latent physical properties inferred through the simulator."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..validation import check
from .app import group
from .common import NoEarlyStopOption, ProgressOption, SeedOption, check_out_dir, note
from .noise import NOISE_RULE

infer_app = group("infer", "Infer latent physical properties from what was seen.")


@infer_app.command("mass")
def infer_mass(
    stimuli: Annotated[Path, typer.Argument(help="Stimulus-set JSON file; every scene has the same two materials.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for posterior.csv, learning.csv, "
                                                          "summary.json and learning.png.")],
    observations: Annotated[Optional[Path], typer.Option(
        "--observations", help="CSV of what was seen: stimulus_id, body, dx, dy (default: simulate each "
                               "stimulus as written, without noise).")] = None,
    sigma: Annotated[float, typer.Option("--sigma", help="Perceptual noise of the observer's simulations.")] = 0.1,
    particles: Annotated[int, typer.Option("--particles", min=1, help="Importance samples.")] = 200,
    sims: Annotated[int, typer.Option("--sims", min=1, help="Mental simulations per hypothesis and trial.")] = 4,
    kernel_width: Annotated[float, typer.Option("--kernel-width", help="Outcome kernel width (block scales).")] = 1.0,
    max_ratio: Annotated[float, typer.Option("--max-ratio", help="Prior: ratio between 1/R and R.")] = 10.0,
    seed: SeedOption = 0,
    no_early_stop: NoEarlyStopOption = False,
    progress: ProgressOption = None,
) -> None:
    """Which material is heavier, and by how much? A learning observer, trial by trial (Hamrick et al. 2016)."""

    from ..fileio import read_csv, write_csv, write_json
    from ..inference.latent import MassInference
    from ..scenefile import load_stimuli

    check_out_dir(out)
    sigma = check("--sigma", sigma, NOISE_RULE)
    stim = load_stimuli(stimuli)
    obs = None
    if observations is not None:
        obs = read_csv(observations, what="observations CSV")
    est = MassInference(sigma=sigma, n_particles=particles, n_sims=sims, kernel_width=kernel_width,
                        max_ratio=max_ratio, seed=seed, early_stop=not no_early_stop,
                        progress=True if progress is None else progress).fit(stim, obs)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "posterior.csv", est.particles_)
    write_csv(out / "learning.csv", est.learning_)
    write_json(out / "summary.json", est.summary_)
    _plot_learning(est, out / "learning.png")
    print(est.learning_.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    s = est.summary_
    a = s["materials"][0]
    print(f"\nP({a} heavier) = {s[f'p_{a}_heavier']:.3f}; ratio {a}:{s['materials'][1]} "
          f"90% interval [{s['ratio_q05']:.2f}, {s['ratio_q95']:.2f}] (ESS {s['ess']:.0f})")
    note(f"wrote posterior.csv, learning.csv, summary.json, learning.png to {out}")


def _plot_learning(est, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..render import save_figure

    a = est.materials_[0]
    df = est.learning_
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(df["trial"], df[f"p_{a}_heavier"], marker="o")
    ax.set_ylim(-0.02, 1.02)
    ax.axhline(0.5, color="0.7", lw=1, ls="--")
    ax.set_xlabel("trials observed")
    ax.set_ylabel(f"P({a} heavier)")
    ax.set_title("The learning observer's belief, trial by trial", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
