"""A Physion-style probe: does a model's internal representation carry the judgment?

Physion (Bear et al., 2021) asks whether a model *represents* a physical
outcome by fitting a simple readout on its frozen features and testing it on
held-out scenes. Here the features come from ipe's own models (no pretrained
video encoder ships its weights with a package ipe depends on):

* ``video`` (:class:`~ipe.video.models.SimVPPredictor`): its translator's
  output after seeing the conditioning frames, averaged and max-pooled over
  space (the model was trained to predict frames, never told about falls);
* ``slots`` (:class:`~ipe.video.slots.SlotPredictor`): the object-centric
  predictor's latent slot states at t = 0 (after its message rounds), mean-
  and max-pooled over the blocks (trained to predict motion one step ahead,
  never told about falls);
* ``cnn`` (:class:`~ipe.video.models.PhysNetCNN`): its 128 penultimate
  units on the first frame (trained on falls: an upper reference).

The readout is an L2-regularised logistic regression (standardised
features, full-batch L-BFGS in torch, deterministic), fitted on training
towers and scored on held-out towers against the no-noise outcome ("does
any block fall"): accuracy, AUC, and the majority-class rate beside them.
``experiments/video_probe.py`` runs the study for all three models
(numbers in ``docs/tutorials/video-end-to-end.md``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import InputError
from .models import VideoConfig, _image_tensor, first_frame, tower_labels, video_clip


def video_features(model, stimuli, config: dict) -> np.ndarray:
    """``(N, 2 × translator)``: the frozen SimVP translator's output on each stimulus's conditioning frames."""

    from dataclasses import replace

    keys = ("size", "cond_frames", "n_future", "hidden", "translator", "n_blocks", "cond_fps", "future_fps")
    cfg = replace(VideoConfig(), **{k: config[k] for k in keys if k in config})
    model.eval()
    out = []
    with torch.no_grad():
        for s in stimuli:
            cond, _ = video_clip(s, cfg)
            cls = torch.as_tensor(cond[None], dtype=torch.long)
            B, T, H, W = cls.shape
            x = torch.nn.functional.one_hot(cls.clamp(0, model.n_classes - 1), model.n_classes)
            x = x.permute(0, 1, 4, 2, 3).float().reshape(B * T, model.n_classes, H, W)
            z = model.enc(model.embed(x))
            z = z.reshape(B, T * z.shape[1], z.shape[2], z.shape[3])
            t = model.blocks(model.t_in(z))
            out.append(torch.cat([t.mean((2, 3)), t.amax((2, 3))], 1)[0].numpy())
    return np.stack(out).astype(np.float64)


def slot_features(model, stimuli) -> np.ndarray:
    """``(N, 2 × hidden)``: the frozen slot predictor's latent slot states at t = 0, mean- and max-pooled."""
    from .slots import _slot_tensors, features, read_slots

    model.eval()
    out = []
    with torch.no_grad():
        for s in stimuli:
            sl = read_slots(s)
            size, mask, ground = _slot_tensors([sl])
            pos = torch.as_tensor(sl.pose[None, :, :2] / sl.scale, dtype=torch.float32)
            ang = torch.as_tensor(sl.pose[None, :, 2], dtype=torch.float32)
            n = len(sl.size)
            node, edge, nbr = features(pos, ang, torch.zeros(1, n, 2), torch.zeros(1, n), size.float(),
                                       ground.float(), mask)
            h = model.embed(node, edge, nbr, mask)[0]
            out.append(torch.cat([h.mean(0), h.amax(0)]).numpy())
    return np.stack(out).astype(np.float64)


def cnn_features(model, stimuli) -> np.ndarray:
    """``(N, 128)``: the frozen CNN's penultimate units on each stimulus's first frame."""

    model.eval()
    frames = np.stack([first_frame(s, model.size) for s in stimuli])
    with torch.no_grad():
        h = torch.cat([_image_tensor(frames), model.coords.expand(len(frames), -1, -1, -1)], 1)
        for st in model.stages:
            h = st(h)
        z = model.fc(h)
    return z.numpy().astype(np.float64)


class LogisticProbe:
    """L2-regularised logistic regression on standardised features (``l2`` per weight, mean over examples)."""

    def __init__(self, l2: float = 1e-2, max_iter: int = 200):
        self.l2, self.max_iter = l2, max_iter

    def fit(self, X, y) -> "LogisticProbe":
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if X.ndim != 2 or len(X) != len(y) or len(X) < 2:
            raise InputError(f"probe: need features (N, D) and N labels, N >= 2; got {X.shape} and {y.shape}")
        self.mean_ = X.mean(0)
        self.scale_ = X.std(0) + 1e-8
        Xt = torch.as_tensor((X - self.mean_) / self.scale_)
        yt = torch.as_tensor(y)
        w = torch.zeros(X.shape[1], dtype=torch.float64, requires_grad=True)
        b = torch.zeros((), dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([w, b], max_iter=self.max_iter, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(Xt @ w + b, yt) + self.l2 * (w * w).sum()
            loss.backward()
            return loss

        opt.step(closure)
        self.coef_, self.intercept_ = w.detach().numpy(), float(b.detach())
        return self

    def predict_proba(self, X) -> np.ndarray:
        Xt = (np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_
        return 1.0 / (1.0 + np.exp(-(Xt @ self.coef_ + self.intercept_)))


def _auc(p: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import rankdata

    pos, neg = (y == 1).sum(), (y == 0).sum()
    if not pos or not neg:
        return math.nan
    r = rankdata(p)
    return float((r[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def probe_study(kind: str, model, train_stimuli, test_stimuli, config: dict | None = None, l2: float = 1e-2
                ) -> dict:
    """Fit the probe on ``train_stimuli``'s features, score it on ``test_stimuli`` (labels: the no-noise outcome)."""

    if kind == "video":
        feats = lambda st: video_features(model, st, config or {})  # noqa: E731
    elif kind == "cnn":
        feats = lambda st: cnn_features(model, st)  # noqa: E731
    elif kind == "slots":
        feats = lambda st: slot_features(model, st)  # noqa: E731
    else:
        raise InputError(f"unknown model kind {kind!r}; expected video, slots or cnn")
    Xtr, Xte = feats(list(train_stimuli)), feats(list(test_stimuli))
    ytr, _ = tower_labels(train_stimuli)
    yte, _ = tower_labels(test_stimuli)
    probe = LogisticProbe(l2=l2).fit(Xtr, ytr)
    p = probe.predict_proba(Xte)
    return {"kind": kind, "n_features": int(Xtr.shape[1]), "n_train": len(ytr), "n_test": len(yte),
            "train_accuracy": float(((probe.predict_proba(Xtr) >= 0.5) == ytr).mean()),
            "test_accuracy": float(((p >= 0.5) == yte).mean()), "test_auc": _auc(p, yte),
            "majority_baseline": float(max(yte.mean(), 1 - yte.mean())) if len(yte) else math.nan}
