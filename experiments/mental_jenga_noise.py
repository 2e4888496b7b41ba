"""Mental Jenga, experiment 2: which noise sources bring the IPE closer to people, and what do people count?

The fitting issue asks for r ≥ 0.85 between the fitted IPE and the human mean
counts of Mental Jenga experiment 2 (Zhou, Smith, Tenenbaum & Gerstenberg
2023: 42 towers, "how many bricks will fall?" after the black brick is
removed). The split-half noise ceiling is about 0.98, so people agree with
each other far better than the noise-free physics agrees with them (r ≈ 0.65).
This script measures, on one footing, how each noise source moves that
correlation:

* one source at a time, at a few strengths: perceptual σ, force φ, friction
  uncertainty, collision (velocity-direction) noise, removal noise (the
  authors' impulse on the bricks resting on the removed one);
* a few combinations;
* two readings of every rollout: the stimuli's own query (``off_table``:
  bricks whose centre ends below the table, what the task asks) and
  ``count_fallen`` (bricks that dropped more than the fall threshold, on or
  off the table: what people may count instead).

For each configuration it reports Pearson r with the human means (with a 95%
bootstrap interval over towers) and the mean count, and writes

* ``configs.csv`` — ``config, query, r, r_low, r_high, mean_count`` for every configuration;
* ``per_stimulus.csv`` — each configuration's per-tower means next to the human means;
* ``results.csv`` / ``results.md`` / ``summary.json`` — the best of each reading against the no-noise model
  and the noise ceiling.

Measured (full size, 40 rollouts per tower and configuration, seed 2013,
198 s on 2 workers): no noise r = 0.65 [0.47, 0.80] (off the table) and
0.80 [0.69, 0.87] (dropped); best off the table: removal 6, r = 0.86
[0.79, 0.91] (removal 2: 0.82; removal 4 + collision 0.3: 0.85; friction 1
alone 0.73); best dropped: removal 6, r = 0.87 [0.80, 0.93]; σ lowers r in
both readings (σ 0.1: 0.57 / 0.59); noise ceiling 0.98. (Before
``World.resting_on`` tested the bare brick outline, removal 6 gave 0.78.)
The table is in ``docs/mental-jenga.md``.

Run::

    python experiments/mental_jenga_noise.py            # full size: ~39 000 rollouts, ~6 CPU-minutes
    python experiments/mental_jenga_noise.py --tiny     # seconds; skips cleanly without the data
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

import ipe  # noqa: E402
from ipe.fileio import write_csv  # noqa: E402
from ipe.humans import split_half_reliability  # noqa: E402
from ipe.noise import NoiseParams  # noqa: E402

NAME = "mental_jenga_noise"
TARGET_R = 0.85
CONFIGS = {
    "no noise": {},
    "σ 0.025": {"sigma": 0.025}, "σ 0.05": {"sigma": 0.05}, "σ 0.1": {"sigma": 0.1},
    "φ 0.025": {"phi": 0.025}, "φ 0.05": {"phi": 0.05}, "φ 0.1": {"phi": 0.1},
    "friction 0.25": {"friction": 0.25}, "friction 0.5": {"friction": 0.5}, "friction 1": {"friction": 1.0},
    "collision 0.15": {"collision_angle": 0.15}, "collision 0.3": {"collision_angle": 0.3},
    "collision 0.6": {"collision_angle": 0.6},
    "friction 0.5 + φ 0.05": {"friction": 0.5, "phi": 0.05},
    "friction 1 + φ 0.05": {"friction": 1.0, "phi": 0.05},
    "friction 0.5 + collision 0.3": {"friction": 0.5, "collision_angle": 0.3},
    "removal 0.5": {"removal_impulse": 0.5}, "removal 1": {"removal_impulse": 1.0},
    "removal 2": {"removal_impulse": 2.0}, "removal 4": {"removal_impulse": 4.0},
    "removal 6": {"removal_impulse": 6.0},
    "removal 4 + collision 0.3": {"removal_impulse": 4.0, "collision_angle": 0.3},
    "removal 4 + friction 1": {"removal_impulse": 4.0, "friction": 1.0},
}
TINY_CONFIGS = ("no noise", "friction 0.5", "collision 0.3", "removal 2")


def main(argv=None) -> int:
    ap = C.parser(__doc__, NAME)
    ap.add_argument("--samples", type=int, default=None, help="rollouts per tower and configuration (default 40)")
    ap.add_argument("--mj-root", type=Path, default=None, help="Mental Jenga checkout (default: ../shared/datasets)")
    args = ap.parse_args(argv)
    from ipe.datasets import mental_jenga as mj

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    root = args.mj_root or mj.default_root()
    if not (root / "data" / "exp2").is_dir() or mj.load_responses(root, 2) is None:
        note = f"Mental Jenga experiment 2 is not at {root} (set --mj-root or $IPE_MENTAL_JENGA): nothing to do."
        print(note)
        C.write_results(out, NAME, "Mental Jenga experiment 2: noise sources", pd.DataFrame(
            columns=["claim", "paper", "ours"]), details={"skipped": True}, notes=[note])
        return 0
    t0 = time.time()
    stimuli = mj.load_stimuli(root, 2)
    responses = mj.load_responses(root, 2)
    configs = {k: v for k, v in CONFIGS.items() if not args.tiny or k in TINY_CONFIGS}
    samples = args.samples or (2 if args.tiny else 40)
    if args.tiny:
        keep = stimuli.ids[:6]
        stimuli = ipe.StimulusSet(tuple(s for s in stimuli if s.id in keep), name=stimuli.name)
        responses = responses[responses["stimulus_id"].isin(keep)]
    human = responses.groupby("stimulus_id")["response"].mean()
    queries = [stimuli[0].query, "count_fallen"]
    labels = {stimuli[0].query.key: "off_table", "count_fallen": "count_fallen"}
    points = [NoiseParams(**v) for v in configs.values()]
    table = ipe.simulate(stimuli, points, n_samples=samples, seed=args.seed, queries=queries,
                         workers=args.workers, progress=C.progress())
    names = {p.key(): name for p, name in zip(points, configs)}
    table["config"] = [names[NoiseParams(**{k: r[k] for k in NoiseParams.names()}).key()]
                       for r in table[list(NoiseParams.names())].to_dict(orient="records")]
    table["reading"] = table["query"].map(labels)
    means = table.groupby(["config", "reading", "stimulus_id"], sort=False)["value"].mean().rename("model")
    per = means.reset_index().join(human.rename("human"), on="stimulus_id")
    write_csv(out / "per_stimulus.csv", per)
    rows = []
    for (config, reading), g in per.groupby(["config", "reading"], sort=False):
        lo, hi = C.bootstrap_r(g["model"], g["human"], seed=args.seed)
        rows.append({"config": config, "reading": reading, "r": C.pearson(g["model"], g["human"]),
                     "r_low": lo, "r_high": hi, "mean_count": float(g["model"].mean())})
    configs_table = pd.DataFrame(rows)
    write_csv(out / "configs.csv", configs_table)
    print(configs_table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    ceiling = split_half_reliability(responses, seed=args.seed)["r"]
    claims = []
    for reading in ("off_table", "count_fallen"):
        sub = configs_table[configs_table["reading"] == reading]
        base = sub[sub["config"] == "no noise"].iloc[0]
        best = sub.loc[sub["r"].idxmax()]
        claims += [
            {"claim": f"r, no-noise model ({reading})", "paper": math.nan, "ours": base["r"],
             "ours_ci_low": base["r_low"], "ours_ci_high": base["r_high"]},
            {"claim": f"best r ({reading}: {best['config']})", "paper": TARGET_R, "ours": best["r"],
             "ours_ci_low": best["r_low"], "ours_ci_high": best["r_high"]},
        ]
    claims.append({"claim": "noise ceiling (split-half, Spearman–Brown)", "paper": math.nan, "ours": ceiling,
                   "ours_ci_low": math.nan, "ours_ci_high": math.nan})
    notes = [f"'paper' holds the issue's target r = {TARGET_R} for the fitted IPE, not a published number.",
             f"Sizes: {len(stimuli)} towers, {samples} rollouts per tower and configuration, "
             f"{len(configs)} configurations. Total {time.time() - t0:.0f} s."]
    C.write_results(out, NAME, "Mental Jenga experiment 2: noise sources and what people count",
                    pd.DataFrame(claims), details={"configs": rows, "samples": samples}, notes=notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
