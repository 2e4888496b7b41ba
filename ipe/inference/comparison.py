"""Model comparison: the fitted IPE against the no-noise model and feature models, in one table.

Two kinds of score, on the same human data:

*Held-out stimuli (k-fold).* Stimuli are split into ``k`` folds. On the
training folds each model is fitted to the human per-stimulus means — a
linear map ``mean ≈ a + b · prediction`` for every model, and for the IPE
also its free noise parameters (least squares over a dense grid of the
emulator). The fitted model then predicts the held-out fold. Out-of-fold
predictions of all folds are pooled into one Pearson r and one RMSE per
model.

*Trial level (LOO, WAIC).* Every model goes through the same hierarchical
response model (:mod:`ipe.inference.hierarchical`): the IPE with its noise
parameters free, each baseline as fixed per-stimulus predictions scaled to
[0, 1] (features are oriented so that larger means "more falls", using the
sign of their correlation with the human means). PSIS-LOO and WAIC come from
the pointwise log likelihood (ArviZ).

The ``r`` column is in-sample: for the IPE, its emulator averaged over the
fitted participants (:func:`population_prediction`); for the others, their
raw predictions.

The table ends with the **noise ceiling**: the split-half reliability of the
human means (Spearman–Brown corrected), read as
:data:`ipe.metrics.NOISE_CEILING` says (a benchmark with a range, not a
hard limit).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from ..baselines import FEATURES, baseline_table, minmax, pearson
from ..errors import InputError
from ..humans import split_half_reliability
from ..scenefile import as_stimulus_set
from ..seeding import stream_rng
from ..validation import POSITIVE_INT, SEED, Integer, validate_params
from .diagnostics import ConvergenceWarning
from .emulator import Emulator, FixedPredictions
from .hierarchical import HierarchicalFit

COMPARISON_COLUMNS = ["model", "free_parameters", "r", "r_kfold", "rmse_kfold", "elpd_loo", "se_loo", "p_loo",
                      "elpd_waic", "delta_elpd_loo"]


def _linear_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    if x.std() == 0:
        return float(y.mean()), 0.0
    b, a = np.polyfit(x, y, 1)
    return float(a), float(b)


def _dense_grid(emulator: Emulator, free: Sequence[str], n: int = 41) -> tuple[np.ndarray, np.ndarray]:
    axes = []
    for name in emulator.names_:
        v = emulator.grid_values_[name]
        axes.append(np.linspace(v[0], v[-1], n) if name in free else np.array([v[0]]))
    mesh = np.meshgrid(*axes, indexing="ij")
    theta = np.stack([m.ravel() for m in mesh], axis=1)
    with torch.no_grad():
        pred = emulator.predict(torch.as_tensor(theta, dtype=torch.float64)).numpy()
    return theta, pred  # (G, F), (G, S)


def _fit_ipe_fold(theta: np.ndarray, pred: np.ndarray, y: np.ndarray, train: np.ndarray) -> int:
    """Index of the grid point whose linearly mapped predictions fit the training means best."""
    p = pred[:, train]
    yt = y[train]
    pc = p - p.mean(axis=1, keepdims=True)
    yc = yt - yt.mean()
    var = (pc ** 2).sum(axis=1)
    b = np.where(var > 0, (pc @ yc) / np.where(var > 0, var, 1.0), 0.0)
    sse = ((yc[None, :] - b[:, None] * pc) ** 2).sum(axis=1)
    return int(np.argmin(sse))


def kfold_scores(y: np.ndarray, predictors: dict[str, np.ndarray], emulator: Emulator | None, free: Sequence[str],
                 k: int = 5, seed: int = 0) -> dict[str, dict[str, float]]:
    """Pooled out-of-fold r and RMSE per model (see the module docstring)."""
    n = len(y)
    if n < 2 * k:
        k = max(2, n // 2)
    rng = stream_rng(seed, "compare.folds")
    folds = np.array_split(rng.permutation(n), k)
    out: dict[str, dict[str, float]] = {}
    grid = _dense_grid(emulator, free) if emulator is not None else None
    names = (["IPE"] if emulator is not None else []) + list(predictors)
    for name in names:
        oof = np.empty(n)
        for test in folds:
            train = np.setdiff1d(np.arange(n), test)
            if name == "IPE":
                theta, pred = grid
                j = _fit_ipe_fold(theta, pred, y, train)
                x = pred[j]
            else:
                x = predictors[name]
            a, b = _linear_fit(x[train], y[train])
            oof[test] = a + b * x[test]
        out[name] = {"r_kfold": pearson(oof, y), "rmse_kfold": float(np.sqrt(np.mean((oof - y) ** 2)))}
    return out


def population_prediction(fit) -> np.ndarray:
    """The fitted IPE's in-sample prediction of each stimulus's mean response, from its emulator.

    The emulator is evaluated at every participant's fitted values (posterior
    means, as in ``participants.csv``) and averaged, as ``ipe predict --params
    … --population`` does with fresh rollouts: a human mean is a mean over
    participants. A fit without participant values (no free parameters, or an
    older posterior) predicts at the group posterior means.
    """
    emulator = fit.emulator_
    free = list(fit.free)
    post = fit.idata_.posterior
    per = [f"{n}_participant" for n in free]
    if free and all(name in post for name in per):
        values = {n: np.asarray(post[f"{n}_participant"].mean(dim=("chain", "draw")), dtype=float) for n in free}
        n_people = len(next(iter(values.values())))
    else:
        values = {n: np.array([fit.params_[n]["mean"]]) for n in free}
        n_people = 1
    cols = [values[n] if n in values else np.full(n_people, float(emulator.grid_values_[n][0]))
            for n in emulator.names_]
    theta = torch.tensor(np.stack(cols, axis=-1) if cols else np.zeros((n_people, 0)), dtype=torch.float64)
    with torch.no_grad():
        return emulator.predict(theta).numpy().mean(axis=0)


@validate_params(k=Integer(2), seed=SEED, num_warmup=POSITIVE_INT, num_samples=POSITIVE_INT,
                 num_chains=POSITIVE_INT)
def compare_models(responses: pd.DataFrame, stimuli, fit, scale, k: int = 5, seed: int = 0, workers: int = 1,
                   num_warmup: int = 200, num_samples: int = 200, num_chains: int = 2,
                   features: Sequence[str] = FEATURES, progress: bool | None = None, report=None,
                   early_stop: bool = True) -> pd.DataFrame:
    """The comparison table (one row per model, then the noise ceiling).

    ``fit`` is a fitted :class:`~ipe.inference.HierarchicalFit` of the IPE on
    ``responses``; its emulator supplies the IPE's predictions
    (``early_stop=False``: the no-noise model's rollouts run to the horizon). ``progress``
    shows each baseline fit's sampling (:mod:`ipe.progress`); ``report`` is
    called with a status line before each long step. ``workers`` runs the
    no-noise baseline's rollouts and each baseline fit's NUTS chains that
    many at once (the table does not depend on it).
    """
    fit._check_fitted()
    emulator = fit.emulator_
    stimuli = as_stimulus_set(stimuli)
    ids = list(emulator.stimulus_ids_)
    means = responses.groupby("stimulus_id")["response"].mean()
    missing = [s for s in ids if s not in means.index]
    if missing:
        raise InputError(f"compare: no responses for stimulus {missing[0]!r}")
    y = means.loc[ids].to_numpy(dtype=float)
    by_id = {s.id: s for s in stimuli}
    say = report or (lambda msg: None)
    say(f"compare: the no-noise model and features on {len(ids)} stimuli")
    base = baseline_table([by_id[s] for s in ids], workers=workers, early_stop=early_stop
                          ).set_index("stimulus_id").loc[ids]
    predictors = {"no-noise model": base["no_noise"].to_numpy(dtype=float)}
    for f in features:
        predictors[f"feature: {f}"] = base[f].to_numpy(dtype=float)
    free = list(fit.free)
    scores = kfold_scores(y, predictors, emulator, free, k=k, seed=seed)

    ipe_pred = population_prediction(fit)
    rows = [{"model": "IPE (fitted noise)", "free_parameters": ", ".join(free), "r": pearson(ipe_pred, y),
             **scores["IPE"], **fit.criteria()}]
    unconverged: list[str] = []
    for name, x in predictors.items():
        orient = 1.0 if not (pearson(x, y) < 0) else -1.0
        q = minmax(x, orient)
        if fit.scale.kind == "count":
            q = q * (fit.scale.high - fit.scale.low)  # the response model divides counts by the range again
        wrapped = FixedPredictions(ids, q, name=name)
        say(f"compare: fitting the response model of {name} ({len(rows)}/{len(predictors)})")
        # a feature model has no simulations behind it, hence no sampling variance; its SVI start is no
        # longer than twice its NUTS run (500 Adam steps cost more than a short baseline fit's sampling)
        est = HierarchicalFit(free=(), scale=fit.scale, num_warmup=num_warmup, num_samples=num_samples,
                              num_chains=num_chains, seed=seed, response_bias=fit.response_bias, progress=progress,
                              sims=None, link=getattr(fit, "link", "linear"),
                              svi_steps=min(500, 2 * (num_warmup + num_samples)), workers=workers)
        with warnings.catch_warnings():  # one warning for all baselines below, not one per fit
            warnings.simplefilter("ignore")
            est.fit(responses, wrapped)
        if est.verdict_ is not None and not est.verdict_.converged:
            unconverged.append(f"{name} (max R-hat {_fmt(est.verdict_.max_r_hat)}, "
                               f"min bulk ESS {_fmt(est.verdict_.min_ess_bulk)})")
        rows.append({"model": name, "free_parameters": "", "r": pearson(x, y), **scores[name], **est.criteria()})
    if unconverged:
        warnings.warn(ConvergenceWarning(
            f"compare: the response model of {len(unconverged)} of {len(predictors)} baselines did not converge: "
            f"{'; '.join(unconverged)}. Their elpd_loo and delta_elpd_loo are not to be trusted yet: rerun with "
            "more warm-up and draws (ipe compare --warmup 500 --draws 500)."), stacklevel=2)
    table = pd.DataFrame(rows)
    best = table["elpd_loo"].max()
    table["delta_elpd_loo"] = table["elpd_loo"] - best
    ceiling = split_half_reliability(responses, seed=seed)
    table = pd.concat([table, pd.DataFrame([{"model": "noise ceiling (split-half)", "free_parameters": "",
                                             "r": ceiling["r"], "r_kfold": math.nan}])], ignore_index=True)
    return table[[c for c in COMPARISON_COLUMNS if c in table.columns]]


def _fmt(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.3g}"


def plot_comparison(table: pd.DataFrame, path) -> Path:
    """Bar chart of held-out r per model, with the noise ceiling as a band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..render import save_figure

    models = table[~table["model"].str.startswith("noise ceiling")]
    ceiling = table.loc[table["model"].str.startswith("noise ceiling"), "r"]
    fig, ax = plt.subplots(figsize=(6.4, 0.5 * len(models) + 1.4))
    y = np.arange(len(models))[::-1]
    ax.barh(y, models["r_kfold"].fillna(0), color=["C3" if m.startswith("IPE") else "0.6" for m in models["model"]])
    ax.scatter(models["r"], y, color="k", s=12, zorder=3, label="r, all stimuli (in sample)")
    if len(ceiling) and np.isfinite(ceiling.iloc[0]):
        ax.axvline(float(ceiling.iloc[0]), color="C0", ls="--", label="noise ceiling (split-half)")
    ax.set_yticks(y)
    ax.set_yticklabels(models["model"])
    ax.set_xlabel("correlation with human mean responses (bars: held-out stimuli, k-fold)")
    ax.set_xlim(min(0.0, float(np.nanmin(models["r_kfold"].to_numpy(dtype=float))) - 0.05), 1.0)
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    fig.tight_layout()
    from pathlib import Path

    p = save_figure(fig, Path(path))
    plt.close(fig)
    return p
