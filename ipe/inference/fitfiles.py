"""The files of a fit: writing an ``ipe fit`` output directory, and reading parameters back from one.

:func:`write_fit` writes what :meth:`HierarchicalFit.save
<ipe.inference.hierarchical.HierarchicalFit.save>` promises (``params.json``
with its ``_meta``, ``convergence.json``, ``emulator.npz``, ``posterior.nc``,
``diagnostics.csv``, ``participants.csv``, ``ppc.csv`` and the figures).
:func:`load_params` reads the group parameters of any fit command's
``params.json``; :func:`load_population` the fitted participants beside it.
(:func:`ipe.inference.hierarchical.load_fit` rebuilds the whole estimator.)
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..fileio import read_csv, read_json, write_csv, write_json
from ..noise import NoiseParams
from ..validation import FINITE_NUMBER

#: The noise parameters a ``params.json`` may name.
NOISE_FIELDS = tuple(f.name for f in dataclasses.fields(NoiseParams))


def _finite_or_none(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def fit_meta(fit) -> dict:
    """The ``_meta`` entry of ``params.json``: the settings, the data's size and the verdict of a fitted estimator."""
    from .posterior import INTERVAL  # here, not at the top: reading params.json (ipe predict) needs no torch

    model, data = fit.model_, fit.model_.data
    verdict = fit.verdict_.as_dict() if getattr(fit, "verdict_", None) is not None else {}
    return {"free": list(model.free), "ranges": {k: list(v) for k, v in model.ranges.items()},
            "scale": f"{data.kind}:{data.low:g}-{data.high:g}",
            "n_participants": len(data.participants), "n_trials": int(len(data.y)),
            "num_chains": fit.num_chains, "num_samples": fit.num_samples, "num_warmup": fit.num_warmup,
            "seed": fit.seed, "response_bias": model.response_bias, "n_divergent": fit.n_divergent_,
            "sims": model.sims, "k_sims": getattr(fit, "k_sims_", None),
            "emulator_error": model.emulator_error, "link": model.link,
            "likelihood": getattr(model, "likelihood", None),
            "emulator_mc_sd": dict(getattr(fit, "mc_sd_", {}) or {}),
            "link_gamma": getattr(fit, "link_gamma_", None),
            # R-hat needs two chains: with one it is NaN, written as null
            "max_r_hat": _finite_or_none(fit.diagnostics_table_["r_hat"].max()),
            "min_ess_bulk": _finite_or_none(fit.diagnostics_table_["ess_bulk"].min()),
            "interval": INTERVAL, "method": fit.method,
            "hierarchical": bool(getattr(fit, "hierarchical_", True)),
            "stopped_early": bool(getattr(fit, "stopped_early_", False)),
            "notes": list(getattr(fit, "notes_", [])),
            "converged": verdict.get("converged"), "convergence": verdict}


def write_fit(fit, out_dir: str | Path, figures: bool = True) -> dict[str, Path]:
    """Write a fitted :class:`~ipe.inference.hierarchical.HierarchicalFit`'s files to ``out_dir``; their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    verdict = fit.verdict_.as_dict() if getattr(fit, "verdict_", None) is not None else {}
    paths = {"params": write_json(out / "params.json", {**fit.params_, "_meta": fit_meta(fit)})}
    paths["convergence"] = write_json(out / "convergence.json", verdict)
    from .emulator import Emulator

    if isinstance(fit.emulator_, Emulator):
        paths["emulator"] = fit.emulator_.save(out / "emulator.npz")

    tmp = out / ".posterior.nc.tmp"
    fit.idata_.to_netcdf(str(tmp))
    tmp.replace(out / "posterior.nc")
    paths["posterior"] = out / "posterior.nc"
    paths["diagnostics"] = write_csv(out / "diagnostics.csv", fit.diagnostics_table_)
    paths["participants"] = write_csv(out / "participants.csv", fit.participants_)
    paths["ppc"] = write_csv(out / "ppc.csv", fit.ppc_)
    if figures:
        from .figures import plot_fit  # matplotlib is loaded only when figures are drawn

        paths.update(plot_fit(fit, out))
    return paths


def load_params(path: str | Path) -> dict[str, float]:
    """Posterior means of the group parameters from the ``params.json`` of any fit command.

    ``ipe fit`` (:meth:`HierarchicalFit.save`) writes ``{name: {mean, sd, q05,
    q95}, "_meta": …}``; ``ipe fit-landing`` writes ``{"params": {name: mean},
    "free": [names], …}``, whose noise parameters are the ``free`` ones (its
    other entries, such as the click noise ``motor_sd``, describe the
    response model, not the simulator).
    """
    data = read_json(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object of parameters")
    if isinstance(data.get("params"), dict) and isinstance(data.get("free"), list):  # a fit-landing params.json
        means, free = data["params"], data["free"]
        out = {}
        for name in free:
            if not isinstance(name, str) or name not in NOISE_FIELDS:
                raise InputError(f"{path}: free: unknown parameter {name!r}")
            v = means.get(name)
            if isinstance(v, dict):
                v = v.get("mean")
            if not FINITE_NUMBER.accepts(v):
                raise InputError(f"{path}: params: {name}: expected a finite number")
            out[name] = float(v)
        if not out:
            raise InputError(f"{path}: no parameters found")
        return out
    out = {}
    for name, v in data.items():
        if name.startswith("_"):
            continue
        if name not in NOISE_FIELDS:
            raise InputError(f"{path}: unknown parameter {name!r}")
        if not isinstance(v, dict) or not isinstance(v.get("mean"), (int, float)) or not math.isfinite(v["mean"]):
            raise InputError(f"{path}: {name}: expected an object with a finite 'mean'")
        out[name] = float(v["mean"])
    if not out:
        raise InputError(f"{path}: no parameters found")
    return out


def load_population(params_path: str | Path) -> pd.DataFrame:
    """The fitted participants' noise values, from ``participants.csv`` beside ``params.json``.

    One row per participant, one column per free parameter (posterior means of
    that participant's value). :func:`ipe.montecarlo.predict_population` averages
    the simulator over these rows: the fitted population's mean judgment, which
    is what a mean over the same people estimates. With a nonlinear simulator
    that differs from the judgment at the group value when participants differ.
    """
    params_path = Path(params_path)
    fitted = load_params(params_path)
    path = params_path.parent / "participants.csv"
    if not path.exists():
        raise InputError(f"{path}: no such file (the population comes from the participants.csv that `ipe fit` "
                         "writes beside params.json)")
    table = read_csv(path)
    missing = [n for n in fitted if n not in table.columns]
    if missing:
        raise InputError(f"{path}: no column {missing[0]!r} (fitted parameters: {', '.join(fitted)})")
    if table.empty:
        raise InputError(f"{path}: no participants")
    values = table[list(fitted)].apply(pd.to_numeric, errors="coerce")
    bad = ~np.isfinite(values.to_numpy(dtype=float)) | (values.to_numpy(dtype=float) < 0)
    if bad.any():
        row, col = (int(i[0]) for i in np.nonzero(bad))
        raise InputError(f"{path}: row {row + 1}: {list(fitted)[col]} must be a finite number >= 0")
    out = values.astype(float)
    if "participant" in table.columns:
        out.insert(0, "participant", table["participant"].to_numpy())
    return out.reset_index(drop=True)


__all__ = ["NOISE_FIELDS", "fit_meta", "load_params", "load_population", "write_fit"]
