"""SVI against NUTS on the same data: the numbers of docs/svi-vs-nuts.md.

Synthetic participants (``ipe.humans.synthesize``, σ = φ = 0.2, 3–7 simulations per judgment) rate towers
on 1–7; one emulator; then the same hierarchical model is fitted twice, with NUTS (2 chains × (300 + 300),
convergence checked) and with SVI (an AutoNormal guide, 2 000 Adam steps, 600 draws). Prints one table:
each free parameter's mean and 90 % equal-tailed interval under both, and each method's wall time.

    python experiments/svi_vs_nuts.py                 # the documented sizes (minutes)
    python experiments/svi_vs_nuts.py --tiny          # a smoke run
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--towers", type=int, default=10)
    ap.add_argument("--participants", type=int, default=10)
    ap.add_argument("--emulator-samples", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--draws", type=int, default=300)
    ap.add_argument("--svi-steps", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tiny", action="store_true", help="4 towers, 4 participants, short runs (a smoke test).")
    ap.add_argument("--out", default=None, help="Write the table as JSON here (a folder: OUT/svi_vs_nuts.json).")
    args = ap.parse_args(argv)
    if args.tiny:
        args.towers, args.participants, args.emulator_samples = 4, 4, 2
        args.warmup, args.draws, args.svi_steps = 20, 20, 100
    max_tree_depth = 4 if args.tiny else 8  # a smoke run needs no deep trees (HierarchicalFit's default is 8)

    import ipe
    from ipe.humans import ResponseScale, synthesize
    from ipe.inference import Emulator, HierarchicalFit

    towers = ipe.generate_towers(args.towers, seed=3, balanced=True)
    scale = ResponseScale.parse("rating:1-7")
    responses, _ = synthesize(towers, args.participants, sigma=0.2, phi=0.2, scale=scale, seed=args.seed)
    grid = {"sigma": [0.0, 0.1, 0.2, 0.3, 0.45], "phi": [0.0, 0.1, 0.2, 0.3, 0.45]}
    t0 = time.perf_counter()
    emu = Emulator(grid=grid, n_samples=args.emulator_samples, seed=0, progress=False).fit(towers)
    rows = {"emulator_s": round(time.perf_counter() - t0, 1)}
    for method in ("nuts", "svi"):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = HierarchicalFit(free=("sigma", "phi"), scale=scale, num_warmup=args.warmup,
                                  num_samples=args.draws, num_chains=2, seed=0, method=method,
                                  svi_steps=args.svi_steps, max_tree_depth=max_tree_depth,
                                  progress=False).fit(responses, emu)
        rows[method] = {"seconds": round(time.perf_counter() - t0, 1),
                        "converged": fit.verdict_.converged,
                        **{n: {k: round(v, 3) for k, v in fit.params_[n].items()} for n in ("sigma", "phi")}}
        if method == "nuts":
            rows[method].update(max_r_hat=fit.verdict_.max_r_hat, min_ess_bulk=fit.verdict_.min_ess_bulk,
                                n_divergent=fit.verdict_.n_divergent)
    import pyro
    import torch

    rows["versions"] = {"torch": torch.__version__, "pyro": pyro.__version__, "ipe": ipe.__version__}
    print(f"emulator: {rows['emulator_s']} s; torch {torch.__version__}, Pyro {pyro.__version__}")
    print("| method | σ mean [90% interval] | φ mean [90% interval] | wall time (s) |")
    print("|---|---|---|---:|")
    for method in ("nuts", "svi"):
        r = rows[method]
        cell = lambda n: f"{r[n]['mean']:.3f} [{r[n]['q05']:.3f}, {r[n]['q95']:.3f}]"  # noqa: E731
        print(f"| {method.upper()} | {cell('sigma')} | {cell('phi')} | {r['seconds']} |")
    n = rows["nuts"]
    print(f"NUTS verdict: converged={n['converged']}, max R-hat {n['max_r_hat']}, min bulk ESS "
          f"{n['min_ess_bulk']}, divergences {n['n_divergent']}")
    if args.out:
        out = Path(args.out)
        if out.is_dir():
            out = out / "svi_vs_nuts.json"
        out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
