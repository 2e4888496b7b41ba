"""One comparison of models and people on the same stimuli: a table, figures and a report.

Inputs are plain tables:

* human responses (``participant, stimulus_id, response``) on a
  :class:`~ipe.humans.ResponseScale`;
* for every model, a judgments table with the columns of ``ipe predict``
  (``stimulus_id, query, n_samples, mean, sd, se``) — the IPE, the no-noise
  model, a video readout, the CNN baseline, imported judgments all look
  alike;
* optionally, feature predictors (one number per stimulus, correlation only).

:func:`compare_judgments` turns them into the summary (one row per model):

``accuracy``
    share of stimuli where the model's yes/no "it falls" judgment equals the
    no-noise simulation's (the ground truth). The yes/no is the majority of
    the model's samples when its table has a ``p_falls`` column (the share of
    samples in which at least one body fell, or a probability ≥ 0.5:
    :func:`p_falls`); otherwise a counting judgment says "falls" when at
    least half a body is expected to fall (expected count ≥ 0.5; for
    ``fall``, fraction × number of bodies ≥ 0.5) and a probability at ≥ 0.5.
``r``, ``r_lo``, ``r_hi``
    Pearson r of the model's per-stimulus value with the human mean
    response, and its percentile bootstrap 95% CI over stimuli.
``kappa``, ``kappa_sd``
    Cohen's κ of the model's yes/no judgment with each participant's
    (:func:`ipe.metrics.binary_responses`), mean and sd over participants
    (Physion's protocol); the ``humans`` row holds the human–human κ.
``rmse``
    root-mean-square difference between the model's value and the human
    mean, both on [0, 1]: counts divided by the number of countable bodies,
    responses by the span of their scale.

``kappa_matched``, ``auc``, ``error_consistency``, ``accuracy_matched`` (each with ``_lo``/``_hi``)
    the fair versions (:mod:`ipe.agreement`): the model's value made yes/no
    by the people's own rule, a threshold-free AUC, Geirhos' error
    consistency; percentile bootstrap intervals over stimuli. Paired
    bootstrap differences between every two models are in
    ``summary.attrs["differences"]`` (``differences.csv``).
``low_quality``
    for a video readout's table (it has a ``quality`` column): the share of
    stimuli read at low quality.

The ``humans`` row carries the split-half noise ceiling in ``r`` (with its
2.5–97.5 % range over splits in ``r_lo``/``r_hi``), the human–human κ and the
accuracy of the majority answer.

:func:`write_report` writes ``summary.csv``, ``per_stimulus.csv``,
``scatter.png`` (model against human means, one panel per model),
``bars.png`` (r with CIs against the ceiling, κ, accuracy) and
``report.md`` / ``report.html``.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from .agreement import (bootstrap_scores, human_human_interval, human_matrix, matched_labels,
                        paired_differences)
from .errors import InputError
from .metrics import (
    accuracy,
    binary_responses,
    human_human_kappa,
    kappa_with_humans,
    normalise_responses,
    pearson_ci,
    rmse,
    split_half_ceiling,
)

SUMMARY_COLUMNS = ["model", "kind", "n_stimuli", "accuracy", "r", "r_lo", "r_hi", "kappa", "kappa_sd", "rmse",
                   "kappa_matched", "kappa_matched_lo", "kappa_matched_hi", "auc", "auc_lo", "auc_hi",
                   "error_consistency", "error_consistency_lo", "error_consistency_hi", "accuracy_matched",
                   "accuracy_matched_lo", "accuracy_matched_hi", "low_quality"]
COUNT_QUERIES = ("count_fallen", "off_table")
#: A video readout whose quality is below this is flagged ``low_quality`` (by :mod:`ipe.video.readout`) and
#: counted in the report's low-quality share. It lives here, below the video package, so that the report
#: does not import video code.
LOW_QUALITY = 0.8
PROBABILITY_QUERIES = ("body_falls", "falls_left")


def judgment_column(judgments: pd.DataFrame, stimuli, name: str = "model") -> pd.Series:
    """The model's value for each stimulus's own query, indexed by ``stimulus_id`` (NaN where missing).

    Rows whose ``query`` is the stimulus's own query key are used; when a
    stimulus has rows of a single other query only, that one is used (for
    tables written without query keys). Unknown stimulus ids are an error.
    """
    from .scenefile import as_stimulus_set

    stimuli = as_stimulus_set(stimuli)
    missing_cols = [c for c in ("stimulus_id", "mean") if c not in judgments.columns]
    if missing_cols:
        raise InputError(f"model {name!r}: judgments need columns stimulus_id and mean (missing "
                         f"{', '.join(missing_cols)})")
    j = judgments.copy()
    j["stimulus_id"] = j["stimulus_id"].astype(str)
    known = set(stimuli.ids)
    unknown = sorted(set(j["stimulus_id"]) - known)
    if unknown:
        raise InputError(f"model {name!r}: unknown stimulus id {unknown[0]!r} ({len(unknown)} unknown)")
    out = {}
    for s in stimuli:
        rows = j[j["stimulus_id"] == s.id]
        if not len(rows):
            out[s.id] = math.nan
            continue
        if "query" in rows.columns:
            own = rows[rows["query"].astype(str) == s.query.key]
            if len(own):
                rows = own
            elif rows["query"].nunique() > 1:
                out[s.id] = math.nan
                continue
        out[s.id] = float(pd.to_numeric(rows["mean"], errors="coerce").mean())
    return pd.Series(out, name=name, dtype=float)


def _n_bodies(stim) -> int:
    from .humans import n_countable

    return max(n_countable(stim), 1)


def normalise_judgment(value: float, stim, scale=None) -> float:
    """A value in the stimulus query's unit mapped to [0, 1].

    Counts are mapped the way people's answers are: on a ``count`` response
    ``scale``, ``(value − low) / (high − low)``, the same map as
    :func:`ipe.metrics.normalise_responses`, so a set whose stimuli have
    different numbers of bodies keeps one unit. Without a count scale a
    count is divided by the stimulus's own number of countable bodies.
    Proportions and probabilities are already on [0, 1].
    """
    if stim.query.name in COUNT_QUERIES:
        if scale is not None and scale.kind == "count":
            return (value - scale.low) / float(scale.high - scale.low)
        return value / _n_bodies(stim)
    return value


def judgment_says_falls(value: float, stim) -> float:
    """1.0 when a judgment in the query's unit says "it falls", 0.0 when not, NaN when undefined."""
    if not math.isfinite(value):
        return math.nan
    name = stim.query.name
    if name == "fall":
        return float(value * _n_bodies(stim) >= 0.5)
    if name in COUNT_QUERIES:
        return float(value >= 0.5)
    if name in PROBABILITY_QUERIES:
        return float(value >= 0.5)
    return math.nan


def p_falls(samples: pd.DataFrame, stimuli) -> pd.Series:
    """Per stimulus, the share of a model's samples that say "it falls" (:func:`judgment_says_falls`).

    ``samples`` has one row per sample: ``stimulus_id`` and ``value`` (in the
    unit of the stimulus's own query; NaN values are left out). For one
    rollout, "falls" means at least one body fell. This is the column
    ``p_falls`` of judgment tables; a model's yes/no judgment is
    ``p_falls >= 0.5``, the majority of its samples.
    """
    from .scenefile import as_stimulus_set

    by_id = {s.id: s for s in as_stimulus_set(stimuli)}
    out = {}
    for sid, g in samples.groupby("stimulus_id", sort=False):
        says = [judgment_says_falls(float(v), by_id[sid]) for v in g["value"] if math.isfinite(float(v))]
        out[sid] = float(np.mean(says)) if says else math.nan
    return pd.Series(out, dtype=float, name="p_falls")


def falls_column(judgments: pd.DataFrame, stimuli) -> pd.Series:
    """``p_falls`` of each stimulus's own query when the table has that column, else NaN (by ``stimulus_id``)."""
    from .scenefile import as_stimulus_set

    stimuli = as_stimulus_set(stimuli)
    if "p_falls" not in judgments.columns:
        return pd.Series(math.nan, index=stimuli.ids, dtype=float)
    j = judgments.assign(stimulus_id=judgments["stimulus_id"].astype(str))
    out = {}
    for s in stimuli:
        rows = j[j["stimulus_id"] == s.id]
        if "query" in rows.columns and (rows["query"].astype(str) == s.query.key).any():
            rows = rows[rows["query"].astype(str) == s.query.key]
        out[s.id] = float(pd.to_numeric(rows["p_falls"], errors="coerce").mean()) if len(rows) else math.nan
    return pd.Series(out, dtype=float)


def compare_judgments(responses: pd.DataFrame, stimuli, models: Mapping[str, pd.DataFrame], scale=None,
                      ground_truth: pd.DataFrame | None = None, features: Mapping[str, pd.Series] | None = None,
                      kinds: Mapping[str, str] | None = None, n_boot: int = 2000, seed: int = 0
                      ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The comparison: ``(summary, per_stimulus)`` (see the module docstring).

    ``models`` maps a row name to a judgments table; ``ground_truth`` is the
    no-noise model's judgments (computed here when not given; it is also a
    row, ``no-noise``, unless ``models`` already has one). ``features`` maps
    a name to a per-stimulus series scored by r only. ``kinds`` labels rows
    (``simulator``, ``baseline``, ``video``, ``external``…).
    """
    from .humans import aggregate, scale_for_stimuli
    from .scenefile import as_stimulus_set

    stimuli = as_stimulus_set(stimuli)
    by_id = {s.id: s for s in stimuli}
    scale = scale or scale_for_stimuli(stimuli)
    kinds = dict(kinds or {})
    resp = responses.copy()
    resp["stimulus_id"] = resp["stimulus_id"].astype(str)
    resp = resp[resp["stimulus_id"].isin(by_id)]
    if resp.empty:
        raise InputError("compare: no responses to any of the stimuli")
    ids = [s.id for s in stimuli if s.id in set(resp["stimulus_id"])]
    stims = [by_id[i] for i in ids]
    means = aggregate(resp).set_index("stimulus_id")["mean"].reindex(ids)
    people = _People(ids, stims, scale, resp, pd.Series(normalise_responses(means.to_numpy(), scale), index=ids),
                     binary_responses(resp, scale))
    people.H = human_matrix(people.binary, ids)
    if ground_truth is None:
        from .model import IPE

        ground_truth = IPE.ground_truth(progress=False).predict(stims)
    gt = judgment_column(ground_truth, stims, "no-noise")
    people.gt_bin = pd.Series([judgment_says_falls(gt[i], by_id[i]) for i in ids], index=ids).to_numpy()
    models = dict(models)
    if "no-noise" not in models:
        models = {"no-noise": ground_truth, **models}
        kinds.setdefault("no-noise", "simulator")
    per = pd.DataFrame({"stimulus_id": ids, "human_mean": means.to_numpy(), "human_01": people.human01.to_numpy(),
                        "ground_truth": gt.reindex(ids).to_numpy(), "ground_truth_falls": people.gt_bin,
                        "humans_say_falls": np.nanmean(people.H, axis=0) if people.H.size else np.nan})
    rows, values01 = [], {}
    for name, table in models.items():
        row, v01 = _model_row(name, table, kinds.get(name, "model"), people, n_boot, seed)
        rows.append(row)
        per[name] = v01
        per[f"{name}: says falls"] = matched_labels(v01, scale)
        values01[name] = v01
    rows += [_feature_row(name, series, people, n_boot, seed) for name, series in (features or {}).items()]
    rows.append(_humans_row(people, seed))
    summary = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    # paired bootstrap differences between models, on the same resampled stimuli
    summary.attrs["differences"] = paired_differences(values01, people.H, people.gt_bin, scale, n_boot=n_boot,
                                                      seed=seed)
    return summary, per


class _People:
    """What every row of :func:`compare_judgments` is scored against: the people's answers on the stimuli
    ``ids`` (mean on [0, 1], yes/no labels, the participant × stimulus matrix ``H``) and the no-noise yes/no."""

    def __init__(self, ids: list[str], stims: list, scale, responses: pd.DataFrame, human01: pd.Series,
                 binary: pd.DataFrame):
        self.ids, self.stims, self.scale, self.responses = ids, stims, scale, responses
        self.human01, self.binary = human01, binary
        self.H: np.ndarray = np.empty((0, 0))
        self.gt_bin: np.ndarray = np.empty(0)


def _model_row(name: str, table: pd.DataFrame, kind: str, people: _People, n_boot: int, seed: int
               ) -> tuple[dict, np.ndarray]:
    """One model's summary row, and its per-stimulus values on [0, 1]."""
    ids, stims = people.ids, people.stims
    col = judgment_column(table, stims, name).reindex(ids)
    v01 = np.array([normalise_judgment(col[s.id], s, people.scale) for s in stims])
    pf = falls_column(table, stims).reindex(ids)
    falls = pd.Series([float(pf[s.id] >= 0.5) if math.isfinite(pf[s.id]) else judgment_says_falls(col[s.id], s)
                       for s in stims], index=ids)
    human01 = people.human01.to_numpy()
    ci = pearson_ci(v01, human01, n_boot=n_boot, seed=seed)
    kap = kappa_with_humans(falls.dropna(), people.binary)
    fair = bootstrap_scores(v01, people.H, people.gt_bin, people.scale, n_boot=n_boot, seed=seed)
    row = {"model": name, "kind": kind, "n_stimuli": int(np.isfinite(col.to_numpy()).sum()),
           "accuracy": accuracy(falls.to_numpy(), people.gt_bin), "r": ci["r"], "r_lo": ci["lo"], "r_hi": ci["hi"],
           "kappa": kap["kappa"], "kappa_sd": kap["kappa_sd"], "rmse": rmse(v01, human01), **fair,
           "low_quality": _low_quality(table, ids)}
    return row, v01


def _low_quality(table: pd.DataFrame, ids: list[str]) -> float:
    """For a video readout's table (it has a ``quality`` column): the share of its stimuli read at low quality."""
    if "quality" not in table.columns:
        return math.nan
    q = table.assign(stimulus_id=table["stimulus_id"].astype(str)).groupby("stimulus_id")["quality"].mean()
    q = pd.to_numeric(q.reindex(ids), errors="coerce")
    return float((q[q.notna()] < LOW_QUALITY).mean()) if q.notna().any() else math.nan


def _feature_row(name: str, series: pd.Series, people: _People, n_boot: int, seed: int) -> dict:
    """A feature predictor's row: r with the human means only."""
    x = pd.Series(series).reindex(people.ids).to_numpy(dtype=float)
    ci = pearson_ci(x, people.human01.to_numpy(), n_boot=n_boot, seed=seed)
    return {"model": name, "kind": "feature", "n_stimuli": int(np.isfinite(x).sum()), "accuracy": math.nan,
            "r": ci["r"], "r_lo": ci["lo"], "r_hi": ci["hi"], "kappa": math.nan, "kappa_sd": math.nan,
            "rmse": math.nan}


def _humans_row(people: _People, seed: int) -> dict:
    """The humans themselves: the noise ceiling, human-human κ, the majority's accuracy."""
    resp, hb, ids = people.responses, people.binary, people.ids
    ceiling = split_half_ceiling(resp, seed=seed) if resp["participant"].nunique() >= 2 else {
        "r": math.nan, "q025": math.nan, "q975": math.nan}
    hh = human_human_kappa(hb, seed=seed)
    majority = hb.groupby("stimulus_id")["label"].mean().reindex(ids)
    maj = (majority > 0.5).astype(float).where(majority.notna())
    hh_lo, hh_hi = human_human_interval(people.H, seed=seed)
    return {"model": "humans (noise ceiling)", "kind": "humans", "n_stimuli": len(ids),
            "accuracy": accuracy(maj.to_numpy(), people.gt_bin), "r": ceiling["r"],
            "r_lo": ceiling.get("q025", math.nan), "r_hi": ceiling.get("q975", math.nan), "kappa": hh["kappa"],
            "kappa_sd": hh["kappa_sd"], "rmse": math.nan, "kappa_matched": hh["kappa"],
            "kappa_matched_lo": hh_lo, "kappa_matched_hi": hh_hi}


# --------------------------------------------------------------------------- figures


def plot_scatter(per: pd.DataFrame, models: list[str], path) -> Path:
    """Model (x) against human mean (y), both on [0, 1], one panel per model, one dot per stimulus."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .metrics import pearson
    from .render import save_figure

    n = max(len(models), 1)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.1 * rows), squeeze=False)
    for ax, name in zip(axes.ravel(), models):
        x = per[name].to_numpy(dtype=float)
        y = per["human_01"].to_numpy(dtype=float)
        c = np.where(per["ground_truth_falls"].to_numpy(dtype=float) > 0.5, "C3", "C0")
        ax.scatter(x, y, s=14, c=c, alpha=0.8, edgecolors="none")
        ax.plot([0, 1], [0, 1], color="0.8", lw=0.8, zorder=0)
        ax.set_xlim(-0.05, 1.05)
        ax.set_ylim(-0.05, 1.05)
        ax.set_title(f"{name}  (r = {pearson(x, y):.2f})", fontsize=9)
        ax.set_xlabel("model (0–1)", fontsize=8)
        ax.set_ylabel("human mean (0–1)", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(models):]:
        ax.axis("off")
    fig.suptitle("per stimulus (red: falls under the no-noise model, blue: stands)", fontsize=9)
    fig.tight_layout()
    p = save_figure(fig, Path(path))
    plt.close(fig)
    return p


def plot_bars(summary: pd.DataFrame, path) -> Path:
    """Three panels: r with bootstrap 95% CIs (noise ceiling as a band), κ with participants' sd, accuracy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .render import save_figure

    models = summary[summary["kind"] != "humans"]
    hum = summary[summary["kind"] == "humans"]
    y = np.arange(len(models))[::-1]
    fig, axes = plt.subplots(1, 3, figsize=(12, 0.45 * len(models) + 1.6), sharey=True)
    colour = ["C3" if k == "simulator" else "C2" if k == "video" else "C1" if k == "baseline" else "0.6"
              for k in models["kind"]]
    r = models["r"].to_numpy(dtype=float)
    lo = models["r_lo"].to_numpy(dtype=float)
    hi = models["r_hi"].to_numpy(dtype=float)
    err = np.vstack([np.nan_to_num(r - lo), np.nan_to_num(hi - r)])
    axes[0].barh(y, np.nan_to_num(r), xerr=err, color=colour, capsize=3)
    if len(hum) and np.isfinite(hum["r"].iloc[0]):
        h = hum.iloc[0]
        axes[0].axvspan(h["r_lo"] if np.isfinite(h["r_lo"]) else h["r"], h["r_hi"] if np.isfinite(h["r_hi"]) else h["r"],
                        color="C0", alpha=0.15)
        axes[0].axvline(h["r"], color="C0", ls="--", label="noise ceiling (split-half)")
        axes[0].legend(frameon=False, fontsize=7, loc="lower right")
    axes[0].set_xlabel("Pearson r with human means (95% bootstrap CI)")
    k = models["kappa"].to_numpy(dtype=float)
    axes[1].barh(y, np.nan_to_num(k), xerr=np.nan_to_num(models["kappa_sd"].to_numpy(dtype=float)), color=colour,
                 capsize=3)
    if len(hum) and np.isfinite(hum["kappa"].iloc[0]):
        axes[1].axvline(hum["kappa"].iloc[0], color="C0", ls="--", label="human–human κ")
        axes[1].legend(frameon=False, fontsize=7, loc="lower right")
    axes[1].set_xlabel("Cohen's κ with each participant (mean ± sd)")
    axes[2].barh(y, np.nan_to_num(models["accuracy"].to_numpy(dtype=float)), color=colour)
    axes[2].set_xlim(0, 1)
    axes[2].set_xlabel("accuracy against the no-noise simulation")
    axes[0].set_yticks(y)
    axes[0].set_yticklabels(models["model"], fontsize=8)
    for ax in axes:
        ax.axvline(0, color="0.3", lw=0.6)
    fig.tight_layout()
    p = save_figure(fig, Path(path))
    plt.close(fig)
    return p


# --------------------------------------------------------------------------- report


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        return "–" if not math.isfinite(v) else f"{v:.3f}"
    return str(v)


def _markdown_table(df: pd.DataFrame) -> str:
    head = "| " + " | ".join(df.columns) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def write_report(out_dir, summary: pd.DataFrame, per_stimulus: pd.DataFrame, title: str = "Model comparison",
                 notes: list[str] | None = None) -> dict[str, Path]:
    """Write ``summary.csv``, ``per_stimulus.csv``, ``scatter.png``, ``bars.png``, ``report.md`` and ``report.html``."""
    from .fileio import write_csv, write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"summary": write_csv(out / "summary.csv", summary),
             "per_stimulus": write_csv(out / "per_stimulus.csv", per_stimulus)}
    if isinstance(summary.attrs.get("differences"), pd.DataFrame):
        paths["differences"] = write_csv(out / "differences.csv", summary.attrs["differences"])
    model_cols = [m for m in summary.loc[~summary["kind"].isin(["humans", "feature"]), "model"]
                  if m in per_stimulus.columns]
    paths["scatter"] = plot_scatter(per_stimulus, model_cols, out / "scatter.png")
    paths["bars"] = plot_bars(summary, out / "bars.png")
    n = len(per_stimulus)
    lines = [f"# {title}", "", f"{n} stimuli. One row per model; the last row is the people themselves.", "",
             _markdown_table(summary), "",
             "* **accuracy**: the model's yes/no \"it falls\" against the no-noise simulation.",
             "* **r** [r_lo, r_hi]: Pearson r with the human mean responses, 95% bootstrap CI over stimuli; "
             "for the humans row, the split-half noise ceiling (Spearman–Brown) and its 2.5–97.5% range over splits.",
             "* **kappa** ± kappa_sd: Cohen's κ of the model's yes/no judgment with each participant's; humans row: "
             "human–human κ.",
             "* **rmse**: model against human means, both on [0, 1].",
             "* **kappa_matched** [lo, hi]: κ with each participant when the model's value is made yes/no by the "
             "people's own rule (its expected answer on their scale; `ipe.agreement`); humans row: human–human κ. "
             "**auc**: the same without any threshold. **error_consistency**: κ of being right or wrong on the same "
             "stimuli. **accuracy_matched**: matched yes/no against the no-noise simulation. Every [lo, hi] is a "
             "95% percentile bootstrap over stimuli; differences between models on the same resamples are in "
             "differences.csv. **low_quality**: share of a video model's stimuli read at low quality.", ""]
    for note in notes or []:
        lines.append(f"* {note}")
    lines += ["", "![bars](bars.png)", "", "![scatter](scatter.png)", ""]
    paths["markdown"] = write_text(out / "report.md", "\n".join(lines))
    table_html = summary.to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="–", border=0)
    notes_html = "".join(f"<li>{html.escape(nn)}</li>" for nn in notes or [])
    doc = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
           "td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}td:first-child{text-align:left}"
           "</style></head><body>"
           f"<h1>{html.escape(title)}</h1><p>{n} stimuli.</p>{table_html}<ul>{notes_html}</ul>"
           "<img src='bars.png' style='max-width:100%'><img src='scatter.png' style='max-width:100%'>"
           "</body></html>\n")
    paths["html"] = write_text(out / "report.html", doc)
    return paths
