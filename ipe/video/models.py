"""Torch baselines on the video renders, trainable in minutes on a CPU.

:class:`PhysNetCNN`
    A PhysNet-style convolutional network (Lerer, Gross & Fergus 2016): a
    small conv trunk over the **first frame** and two heads, one for
    "falls / stands" (a logit) and one for how many bodies fall (a
    categorical over 0…``max_count``). Its judgment in a query's unit is
    the expected count (``count_fallen``), the expected fraction
    (``fall``) or P(falls) (probabilities).

:class:`SimVPPredictor`
    A small SimVP-style video predictor (Gao et al. 2022; ≤ 2M parameters):
    a shared per-frame conv encoder over the ``cond_frames`` conditioning
    frames, a conv translator over the stacked features, and a shared
    decoder that writes ``n_future`` frames at once, with a skip connection
    from the last conditioning frame. Frames are handled as maps of palette
    classes (background, statics, body 0, body 1, … in the colours of
    :func:`ipe.video.frames.video_palette`): inputs are segmented by colour,
    outputs are per-pixel categorical logits, and generated frames are the
    most likely class painted in its colour. Its videos are judged by the
    same readout as any other video.

Both are trained on towers from :func:`ipe.stimuli.towers.generate_towers`
with a training seed; :func:`disjoint_check` verifies that no training tower
is also a test tower (same geometry). Everything random — the towers, the
initialisation, the shuffling — derives from the user seed through
the named streams ``"ipe.video.baselines:<part>"`` of :func:`ipe.seeding.stream_int`. Weights are saved with their
configuration and training log (:func:`save_model` / :func:`load_model`).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import InputError
from ..fileio import atomic_write
from ..humans import n_countable
from ..montecarlo import run_sample
from ..noise import NoiseParams
from ..queries import fallen_mask
from ..scene import Stimulus
from ..scenefile import as_stimulus_set
from ..seeding import stream_int
from ..stimuli.towers import generate_towers
from .frames import (BACKGROUND, STATIC_COLOUR, Camera, colours_entry, draw_frame, hex_to_rgb, render_frames,
                     video_palette, write_colours, write_mp4)
from .readout import VideoError, read_video, segment

MAX_BODIES = 24
N_CLASSES = 2 + MAX_BODIES


def _seed(seed: int, name: str) -> int:
    # The stream names keep the module's old name, so trained weights repeat bit for bit.
    return stream_int(seed, "ipe.video.baselines:" + name)


def _rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng(_seed(seed, name))


def _progress(iterable, progress: bool | None, desc: str, total: int | None = None):
    from tqdm.auto import tqdm

    disable = (not sys.stderr.isatty()) if progress is None else not progress
    if os.environ.get("IPE_NO_PROGRESS"):
        disable = True
    return tqdm(iterable, desc=desc, total=total, disable=disable, leave=False)


def scene_hash(stim: Stimulus) -> str:
    """A hash of a stimulus's bodies' geometry (ids and names ignored), to check train/test disjointness."""
    parts = [f"{type(b).__name__}:{b.position[0]:.6f},{b.position[1]:.6f},{b.angle:.6f},"
             f"{getattr(b, 'width', 0):.6f},{getattr(b, 'height', 0):.6f},{getattr(b, 'radius', 0):.6f}"
             for b in stim.scene.bodies]
    return hashlib.sha256("|".join(sorted(parts)).encode()).hexdigest()[:16]


def disjoint_check(train, test) -> int:
    """Raise :class:`InputError` if a training stimulus has the geometry of a test stimulus; returns the overlap (0)."""
    a = {scene_hash(s) for s in as_stimulus_set(train)}
    b = {scene_hash(s) for s in as_stimulus_set(test)}
    both = a & b
    if both:
        raise InputError(f"{len(both)} training tower(s) are also test towers; use another training seed")
    return 0


# --------------------------------------------------------------------------- images


def first_frame(stim: Stimulus, size: int = 64) -> np.ndarray:
    """The first frame of ``stim``'s video (the same picture ``ipe render --video`` writes), ``(H, W, 3)`` uint8."""
    states = np.array([(b.position[0], b.position[1], b.angle) for b in stim.scene.bodies])
    removed = {b for iv in stim.interventions if iv.type == "remove" and iv.time <= 0 for b in iv.bodies}
    visible = np.array([b.id not in removed for b in stim.scene.bodies])
    return draw_frame(stim, states, visible, Camera.for_stimulus(stim, size))


def resize_frame(frame: np.ndarray, size: int) -> np.ndarray:
    """Resize an RGB frame to ``size × size`` with a box filter (no-op when it already is)."""
    if frame.shape[0] == size and frame.shape[1] == size:
        return frame
    from PIL import Image

    return np.asarray(Image.fromarray(frame).resize((size, size), Image.BOX), dtype=np.uint8)


def _image_tensor(frames: np.ndarray) -> torch.Tensor:
    """``(N, H, W, 3)`` uint8 → ``(N, 3, H, W)`` float in [-1, 1] (white background → 1)."""
    t = torch.as_tensor(np.ascontiguousarray(frames), dtype=torch.float32).permute(0, 3, 1, 2)
    return t / 127.5 - 1.0


def _refs(n_bodies: int = MAX_BODIES) -> np.ndarray:
    return np.array([hex_to_rgb(BACKGROUND), hex_to_rgb(STATIC_COLOUR)]
                    + [hex_to_rgb(c) for c in video_palette(n_bodies)], dtype=float)


def frames_to_classes(frames: np.ndarray) -> np.ndarray:
    """RGB frames ``(..., H, W, 3)`` → palette classes ``(..., H, W)`` (unmatched pixels → background)."""

    refs = _refs()
    shape = frames.shape[:-1]
    flat = frames.reshape(-1, *frames.shape[-3:])
    lab = np.stack([segment(f, refs, tolerance=200.0) for f in flat])
    lab[lab < 0] = 0
    return lab.reshape(shape).astype(np.int64)


def classes_to_frames(classes: np.ndarray) -> np.ndarray:
    """Palette classes ``(..., H, W)`` → RGB frames ``(..., H, W, 3)`` uint8."""
    lut = _refs().astype(np.uint8)
    return lut[np.asarray(classes, dtype=np.int64)]


# --------------------------------------------------------------------------- models


class PhysNetCNN(nn.Module):
    """A PhysNet-style CNN: first frame → (fall logit, count logits over 0…max_count), plus a mask head.

    Like PhysNet's mask branch, :meth:`forward_all` also predicts, at a
    quarter of the input resolution, which of the pictured bodies will fall
    (one logit per cell), trained on the bodies' pixels: a dense target, more
    signal per tower than the two scalar heads alone.
    """

    def __init__(self, size: int = 64, width: int = 16, max_count: int = 10):
        super().__init__()
        self.size, self.width, self.max_count = size, width, max_count
        w = width
        stages, cin = [], 5
        for cout in (w, 2 * w, 4 * w, 4 * w):
            stages.append(nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout),
                                        nn.ReLU(inplace=True), nn.MaxPool2d(2)))
            cin = cout
        self.stages = nn.ModuleList(stages)
        side = size // 16
        self.fc = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(4 * w * side * side, 128),
                                nn.ReLU(inplace=True))
        self.fall_head = nn.Linear(128, 1)
        self.count_head = nn.Linear(128, max_count + 1)
        self.mask_head = nn.Sequential(nn.Conv2d(4 * w + 2 * w, 2 * w, 3, padding=1), nn.ReLU(inplace=True),
                                       nn.Conv2d(2 * w, 1, 1))
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
        self.register_buffer("coords", torch.stack([xs, ys])[None], persistent=False)

    def forward_all(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(fall logits (B,), count logits (B, max_count+1), mask logits (B, S/4, S/4))``."""
        h = torch.cat([x, self.coords.expand(len(x), -1, -1, -1)], 1)
        feats = []
        for st in self.stages:
            h = st(h)
            feats.append(h)
        z = self.fc(h)
        up = F.interpolate(h, size=feats[1].shape[-2:], mode="nearest")
        mask = self.mask_head(torch.cat([up, feats[1]], 1))[:, 0]
        return self.fall_head(z)[:, 0], self.count_head(z), mask

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fall, count, _ = self.forward_all(x)
        return fall, count


class _Block(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.norm = nn.GroupNorm(8, c)

    def forward(self, x):
        return x + F.silu(self.norm(self.conv(x)))


class SimVPPredictor(nn.Module):
    """A small SimVP-style predictor: ``cond_frames`` class maps → logits of ``n_future`` class maps."""

    def __init__(self, size: int = 64, cond_frames: int = 4, n_future: int = 5, hidden: int = 32,
                 translator: int = 96, n_classes: int = N_CLASSES, n_blocks: int = 3):
        super().__init__()
        self.size, self.cond_frames, self.n_future = size, cond_frames, n_future
        self.hidden, self.translator_width, self.n_classes, self.n_blocks = hidden, translator, n_classes, n_blocks
        h = hidden
        self.embed = nn.Conv2d(n_classes, h // 4, 3, padding=1)
        self.enc = nn.Sequential(nn.SiLU(), nn.Conv2d(h // 4, h // 2, 3, stride=2, padding=1), nn.GroupNorm(4, h // 2),
                                 nn.SiLU(), nn.Conv2d(h // 2, h, 3, stride=2, padding=1), nn.GroupNorm(8, h), nn.SiLU())
        self.t_in = nn.Conv2d(cond_frames * h, translator, 1)
        self.blocks = nn.Sequential(*[_Block(translator) for _ in range(n_blocks)])
        self.t_out = nn.Conv2d(translator, n_future * h, 1)
        self.dec = nn.Sequential(nn.ConvTranspose2d(h, h // 2, 4, stride=2, padding=1), nn.GroupNorm(4, h // 2),
                                 nn.SiLU(), nn.ConvTranspose2d(h // 2, h // 2, 4, stride=2, padding=1), nn.SiLU())
        self.head = nn.Conv2d(h // 2 + h // 4, n_classes, 1)

    def forward(self, classes: torch.Tensor) -> torch.Tensor:
        """``(B, cond_frames, H, W)`` long → ``(B, n_future, n_classes, H, W)`` logits."""
        B, T, H, W = classes.shape
        x = F.one_hot(classes.clamp(0, self.n_classes - 1), self.n_classes).permute(0, 1, 4, 2, 3).float()
        e0 = self.embed(x.reshape(B * T, self.n_classes, H, W))
        z = self.enc(e0)
        z = z.reshape(B, T * z.shape[1], z.shape[2], z.shape[3])
        z = self.t_out(self.blocks(self.t_in(z)))
        z = z.reshape(B * self.n_future, self.hidden, z.shape[2], z.shape[3])
        d = self.dec(z)
        skip = e0.reshape(B, T, -1, H, W)[:, -1:].expand(-1, self.n_future, -1, -1, -1).reshape(
            B * self.n_future, -1, H, W)
        out = self.head(torch.cat([d, skip], 1))
        return out.reshape(B, self.n_future, self.n_classes, H, W)


def n_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# --------------------------------------------------------------------------- saving


def save_model(model: nn.Module, path: str | Path, kind: str, config: dict, log: dict) -> Path:
    """Save weights, configuration and training log in one ``.pt`` file (atomically), and the log as JSON beside it."""
    path = Path(path)
    buf = io.BytesIO()
    torch.save({"format": "ipe-video-baseline", "kind": kind, "config": config, "log": log,
                "state_dict": model.state_dict()}, buf)
    atomic_write(path, lambda fh: fh.write(buf.getvalue()), mode="wb")
    atomic_write(path.with_suffix(".json"), lambda fh: fh.write(json.dumps({"kind": kind, "config": config,
                                                                             "log": log}, indent=2) + "\n"))
    return path


def load_model(path: str | Path) -> tuple[str, nn.Module, dict]:
    """``(kind, model in eval mode, saved dict)`` from a file written by :func:`save_model`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is bad input
        raise InputError(f"{path}: not a saved ipe baseline ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != "ipe-video-baseline":
        raise InputError(f"{path}: not a saved ipe baseline")
    kind, cfg = data["kind"], data["config"]
    if kind == "cnn":
        model: nn.Module = PhysNetCNN(size=cfg["size"], width=cfg["width"], max_count=cfg["max_count"])
    elif kind == "video":
        model = SimVPPredictor(size=cfg["size"], cond_frames=cfg["cond_frames"], n_future=cfg["n_future"],
                               hidden=cfg["hidden"], translator=cfg["translator"], n_blocks=cfg["n_blocks"])
    elif kind == "slots":
        from .slots import SlotPredictor

        model = SlotPredictor(hidden=cfg["hidden"], rounds=cfg["rounds"])
    else:
        raise InputError(f"{path}: unknown baseline kind {kind!r}")
    model.load_state_dict(data["state_dict"])
    model.eval()
    return kind, model, data


# --------------------------------------------------------------------------- CNN: data, training, prediction


@dataclass(frozen=True)
class CNNConfig:
    """Training settings of :func:`train_cnn`."""

    n_train: int = 2000
    n_test: int = 400
    size: int = 64
    width: int = 16
    epochs: int = 10
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    count_weight: float = 0.5
    mask_weight: float = 1.0
    seed: int = 0
    train_seed: int = 1001
    test_seed: int = 2002
    n_blocks: int = 10
    balanced: bool = True


def tower_labels(stimuli) -> tuple[np.ndarray, np.ndarray]:
    """``(falls (N,), count (N,))`` of generated towers, from their ``metadata`` (no-noise simulation)."""
    st = as_stimulus_set(stimuli)
    falls = np.array([0.0 if s.metadata.get("stable") else 1.0 for s in st], dtype=np.float32)
    count = np.array([int(s.metadata.get("n_fallen_no_noise", 0)) for s in st], dtype=np.int64)
    return falls, count


def fall_maps(stimuli, frames: np.ndarray, progress: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Dense targets for the mask head: ``(falls (N, S/4, S/4), weight (N, S/4, S/4))``.

    Per 4 × 4 cell of each first frame, the share of its body pixels whose
    body falls in the no-noise simulation, and the share of the cell that is
    body pixels (the weight).
    """

    st = list(as_stimulus_set(stimuli))
    cls = frames_to_classes(frames)
    N, H, W = cls.shape
    target = np.zeros((N, H // 4, W // 4), dtype=np.float32)
    weight = np.zeros_like(target)
    for k, s in enumerate(_progress(st, progress, "labelling towers")):
        _, res = run_sample(s, NoiseParams(), 0, 0, [])
        fell = np.concatenate([[0.0, 0.0], fallen_mask(res, s).astype(float), np.zeros(MAX_BODIES)])
        body = cls[k] >= 2
        f = fell[np.minimum(cls[k], len(fell) - 1)] * body
        b = body.reshape(H // 4, 4, W // 4, 4).mean((1, 3))
        fsum = f.reshape(H // 4, 4, W // 4, 4).mean((1, 3))
        weight[k] = b
        target[k] = np.where(b > 0, fsum / np.maximum(b, 1e-9), 0.0)
    return target, weight


def _images(stimuli, size: int, progress: bool | None, desc: str) -> np.ndarray:
    st = list(as_stimulus_set(stimuli))
    return np.stack([first_frame(s, size) for s in _progress(st, progress, desc)])


def _cnn_towers(cfg: "CNNConfig", train_stimuli, test_stimuli):
    """The training and test towers: generated from the config's seeds unless given; checked disjoint."""
    if train_stimuli is None:
        train_stimuli = generate_towers(cfg.n_train, seed=cfg.train_seed, n_blocks=cfg.n_blocks, balanced=cfg.balanced)
    if test_stimuli is None and cfg.n_test > 0:
        test_stimuli = generate_towers(cfg.n_test, seed=cfg.test_seed, n_blocks=cfg.n_blocks, balanced=cfg.balanced)
    if test_stimuli is not None:
        disjoint_check(train_stimuli, test_stimuli)
    return train_stimuli, test_stimuli


def _cnn_epoch(model: "PhysNetCNN", opt, sched, rng: np.random.Generator, cfg: "CNNConfig", X: torch.Tensor,
               yf: torch.Tensor, yc: torch.Tensor, ym: torch.Tensor, wm: torch.Tensor) -> float:
    """One epoch over shuffled, randomly mirrored batches; returns the mean loss per image."""
    model.train()
    perm = rng.permutation(len(X))
    flips = rng.random(len(X)) < 0.5
    total = 0.0
    for b in range(0, len(X), cfg.batch_size):
        idx = perm[b:b + cfg.batch_size]
        xb = X[idx]
        fl = torch.as_tensor(flips[idx])
        xb = torch.where(fl[:, None, None, None], xb.flip(-1), xb)  # mirror image: same outcome
        mt = torch.where(fl[:, None, None], ym[idx].flip(-1), ym[idx])
        mw = torch.where(fl[:, None, None], wm[idx].flip(-1), wm[idx])
        lf, lc, lm = model.forward_all(xb)
        mask_loss = (F.binary_cross_entropy_with_logits(lm, mt, reduction="none") * mw).sum() / mw.sum().clamp_min(1.0)
        loss = (F.binary_cross_entropy_with_logits(lf, yf[idx]) + cfg.count_weight * F.cross_entropy(lc, yc[idx])
                + cfg.mask_weight * mask_loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        total += float(loss.detach()) * len(idx)
    return total / len(X)


def train_cnn(cfg: CNNConfig = CNNConfig(), train_stimuli=None, test_stimuli=None, threads: int | None = None,
              progress: bool | None = None) -> tuple[PhysNetCNN, dict]:
    """Train :class:`PhysNetCNN` on generated towers; returns ``(model, log)``.

    Training and test towers come from :func:`~ipe.stimuli.towers.generate_towers`
    with ``cfg.train_seed`` and ``cfg.test_seed`` (or are given); their
    disjointness is checked. The log holds the seeds, the losses per epoch
    and the held-out accuracy (``test_accuracy``: falls/stands; also the
    count's exact accuracy and the majority-class baseline).
    """
    if threads:
        torch.set_num_threads(int(threads))
    t0 = time.perf_counter()
    train_stimuli, test_stimuli = _cnn_towers(cfg, train_stimuli, test_stimuli)
    x_tr = _images(train_stimuli, cfg.size, progress, "rendering training towers")
    f_tr, c_tr = tower_labels(train_stimuli)
    max_count = max(cfg.n_blocks, int(c_tr.max()) if len(c_tr) else 0)
    torch.manual_seed(_seed(cfg.seed, "cnn:init"))
    model = PhysNetCNN(size=cfg.size, width=cfg.width, max_count=max_count)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = max(1, cfg.epochs * math.ceil(len(x_tr) / cfg.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    rng = _rng(cfg.seed, "cnn:shuffle")
    X = _image_tensor(x_tr)
    yf = torch.as_tensor(f_tr)
    yc = torch.as_tensor(np.minimum(c_tr, max_count))
    m_t, m_w = fall_maps(train_stimuli, x_tr, progress)
    ym, wm = torch.as_tensor(m_t), torch.as_tensor(m_w)
    losses = [_cnn_epoch(model, opt, sched, rng, cfg, X, yf, yc, ym, wm)
              for _ in _progress(range(cfg.epochs), progress, "training CNN (epochs)")]
    log = {"config": asdict(cfg), "n_parameters": n_parameters(model), "train_loss": losses,
           "n_train": len(x_tr), "train_fall_rate": float(f_tr.mean()) if len(f_tr) else math.nan,
           "torch_seed": _seed(cfg.seed, "cnn:init"), "train_seconds": time.perf_counter() - t0}
    if test_stimuli is not None:
        ev = evaluate_cnn(model, test_stimuli, size=cfg.size, progress=progress)
        log.update(ev)
    log["total_seconds"] = time.perf_counter() - t0
    return model, log


@torch.no_grad()
def cnn_outputs(model: PhysNetCNN, frames: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """``(P(falls) (N,), P(count) (N, max_count+1))`` for first frames ``(N, H, W, 3)`` uint8."""
    model.eval()
    frames = np.stack([resize_frame(f, model.size) for f in frames])
    ps, pc = [], []
    for b in range(0, len(frames), batch_size):
        x = _image_tensor(frames[b:b + batch_size])
        # average over the image and its mirror image (the outcome does not depend on handedness)
        lf1, lc1 = model(x)
        lf2, lc2 = model(x.flip(-1))
        ps.append(((torch.sigmoid(lf1) + torch.sigmoid(lf2)) / 2).numpy())
        pc.append(((F.softmax(lc1, -1) + F.softmax(lc2, -1)) / 2).numpy())
    return np.concatenate(ps), np.concatenate(pc)


def evaluate_cnn(model: PhysNetCNN, stimuli, size: int | None = None, progress: bool | None = None) -> dict:
    """Held-out scores of the CNN on generated towers: falls/stands accuracy, count accuracy, majority baseline."""
    st = as_stimulus_set(stimuli)
    frames = _images(st, size or model.size, progress, "rendering test towers")
    p, pc = cnn_outputs(model, frames)
    falls, count = tower_labels(st)
    pred = (p >= 0.5).astype(float)
    return {"n_test": len(st), "test_accuracy": float((pred == falls).mean()),
            "test_count_accuracy": float((pc.argmax(1) == count).mean()),
            "test_count_within_1": float((np.abs(pc.argmax(1) - count) <= 1).mean()),
            "test_majority_baseline": float(max(falls.mean(), 1 - falls.mean())), "test_fall_rate": float(falls.mean())}


#: The queries the CNN's two outputs (P(some block falls), how many fall) can answer.
CNN_QUERIES = ("fall", "count_fallen", "off_table", "body_falls")


def cnn_judgments(model: PhysNetCNN, stimuli, frames: Sequence[np.ndarray] | None = None) -> pd.DataFrame:
    """The CNN's judgments of each stimulus's own query, as an ``ipe predict`` table.

    ``frames`` are the first frames (e.g. the PNGs of ``ipe render
    --video``); by default they are drawn from the stimuli. ``fall`` → the
    expected fraction of bodies that fall (expected count / bodies);
    ``count_fallen``, ``off_table`` → the expected count; other queries →
    P(falls). ``sd`` is the predictive s.d. of the count (of the yes/no for
    probabilities); ``se`` is 0 (a deterministic network); ``p_falls`` is
    the fall head's P(falls).
    """

    st = as_stimulus_set(stimuli)
    if frames is None:
        frames = [first_frame(s, model.size) for s in st]
    p, pc = cnn_outputs(model, np.stack([resize_frame(np.asarray(f)[..., :3], model.size) for f in frames]))
    k = np.arange(pc.shape[1])
    ec = pc @ k
    sdc = np.sqrt(np.maximum(pc @ k ** 2 - ec ** 2, 0.0))
    rows = []
    for s, pf, e, sd in zip(st, p, ec, sdc):
        if s.query.name not in CNN_QUERIES:
            raise InputError(f"stimulus {s.id!r}: the CNN judges whether blocks fall and how many; it cannot answer "
                             f"{s.query.key!r} (it answers {', '.join(CNN_QUERIES)})")
        n = max(n_countable(s), 1)
        name = s.query.name
        if name == "fall":
            mean, sdv = min(e / n, 1.0), sd / n
        elif name in ("count_fallen", "off_table"):
            mean, sdv = min(e, n), sd
        else:
            mean, sdv = float(pf), math.sqrt(pf * (1 - pf))
        rows.append((s.id, s.query.key, 1, float(mean), float(sdv), 0.0, 1, float(pf)))
    return pd.DataFrame(rows, columns=["stimulus_id", "query", "n_samples", "mean", "sd", "se", "n_valid", "p_falls"])


# --------------------------------------------------------------------------- video predictor


@dataclass(frozen=True)
class VideoConfig:
    """Training settings of :func:`train_video_model`.

    The model sees ``cond_frames`` frames at ``cond_fps`` (the conditioning
    clip of ``ipe render --video --fps 30``) and predicts ``n_future``
    frames every ``1 / future_fps`` s after the start (by default 0.4, 0.8,
    …, 2.0 s).
    """

    n_train: int = 300
    size: int = 64
    cond_frames: int = 4
    cond_fps: float = 30.0
    n_future: int = 5
    future_fps: float = 2.5
    hidden: int = 32
    translator: int = 96
    n_blocks: int = 3
    epochs: int = 5
    batch_size: int = 16
    lr: float = 2e-3
    body_weight: float = 4.0
    seed: int = 0
    train_seed: int = 1001
    n_blocks_tower: int = 10
    early_stop: bool = True


def video_clip(stim: Stimulus, cfg: VideoConfig) -> tuple[np.ndarray, np.ndarray]:
    """Conditioning and future class maps of the no-noise rollout: ``((cond, H, W), (future, H, W))``.

    With ``cfg.early_stop`` off, the rollout runs to the horizon even when the scene comes to rest.
    """
    from .slots import rollout_states

    fps = cfg.cond_fps
    states, visible = rollout_states(stim, fps, NoiseParams(), 0, 0, early_stop=cfg.early_stop)
    cam = Camera.for_stimulus(stim, cfg.size)
    cond_idx = list(range(cfg.cond_frames))
    fut_idx = [min(int(round((i + 1) * fps / cfg.future_fps)), len(states) - 1) for i in range(cfg.n_future)]
    frames = [draw_frame(stim, states[i], visible[i], cam) for i in cond_idx + fut_idx]
    cls = frames_to_classes(np.stack(frames))
    return cls[:cfg.cond_frames], cls[cfg.cond_frames:]


def train_video_model(cfg: VideoConfig = VideoConfig(), train_stimuli=None, threads: int | None = None,
                      progress: bool | None = None) -> tuple[SimVPPredictor, dict]:
    """Train :class:`SimVPPredictor` on no-noise rollouts of generated towers; returns ``(model, log)``."""

    if threads:
        torch.set_num_threads(int(threads))
    t0 = time.perf_counter()
    if train_stimuli is None:
        train_stimuli = generate_towers(cfg.n_train, seed=cfg.train_seed, n_blocks=cfg.n_blocks_tower)
    st = list(as_stimulus_set(train_stimuli))
    clips = [video_clip(s, cfg) for s in _progress(st, progress, "rendering training videos")]
    C = torch.as_tensor(np.stack([c for c, _ in clips]))
    Y = torch.as_tensor(np.stack([f for _, f in clips]))
    torch.manual_seed(_seed(cfg.seed, "video:init"))
    model = SimVPPredictor(size=cfg.size, cond_frames=cfg.cond_frames, n_future=cfg.n_future, hidden=cfg.hidden,
                           translator=cfg.translator, n_blocks=cfg.n_blocks)
    weight = torch.ones(N_CLASSES)
    weight[2:] = cfg.body_weight
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    steps = max(1, cfg.epochs * math.ceil(len(C) / cfg.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    rng = _rng(cfg.seed, "video:shuffle")
    losses = []
    for epoch in _progress(range(cfg.epochs), progress, "training video model (epochs)"):
        model.train()
        perm = rng.permutation(len(C))
        total = 0.0
        for b in range(0, len(C), cfg.batch_size):
            idx = perm[b:b + cfg.batch_size]
            logits = model(C[idx])
            loss = F.cross_entropy(logits.permute(0, 2, 1, 3, 4), Y[idx], weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(C))
    log = {"config": asdict(cfg), "n_parameters": n_parameters(model), "train_loss": losses, "n_train": len(C),
           "torch_seed": _seed(cfg.seed, "video:init"), "train_seconds": time.perf_counter() - t0}
    return model, log


@torch.no_grad()
def generate_video(model: SimVPPredictor, cond: np.ndarray) -> np.ndarray:
    """Frames of a generated video from conditioning RGB frames ``(k, H, W, 3)``: ``(1 + n_future, S, S, 3)`` uint8.

    The output starts with the first conditioning frame (t = 0) and goes on
    with the predicted frames, so at ``future_fps`` it is a video of the
    whole rollout. Fewer conditioning frames than the model takes are padded
    by repeating the last one; more are cut.
    """
    model.eval()
    cond = np.stack([resize_frame(np.asarray(f)[..., :3], model.size) for f in cond])
    if len(cond) < model.cond_frames:
        cond = np.concatenate([cond, np.repeat(cond[-1:], model.cond_frames - len(cond), 0)])
    cls = frames_to_classes(cond[:model.cond_frames])
    logits = model(torch.as_tensor(cls)[None])[0]
    pred = logits.argmax(1).numpy()
    frames = classes_to_frames(np.concatenate([cls[:1], pred]))
    return frames


def generate_videos(model: SimVPPredictor, config: dict, stimuli, out_dir: str | Path, cond_dir: str | Path | None = None,
                    progress: bool | None = None) -> pd.DataFrame:
    """Generate one video per stimulus from its conditioning clip; write MP4s and a ``colours.json``.

    ``cond_dir`` holds the conditioning clips (``<id>.mp4``, as in the
    ``cond/`` folder of ``ipe render --video``); without it the clips are
    drawn from the stimuli (no-noise rollout, ``config["cond_fps"]``; to the horizon when
    ``config["early_stop"]`` is false). A
    clip that cannot be read is reported in the returned table
    (``status = unreadable``) and skipped. Videos are written as
    ``<out>/<id>__s000.mp4`` at ``future_fps`` frames per second (the first
    frame is t = 0), with ``<out>/colours.json`` (the same cameras at the
    model's size).
    """

    st = as_stimulus_set(stimuli)
    out = Path(out_dir)
    fps_c = float(config.get("cond_fps", 30.0))
    fps_f = float(config.get("future_fps", 2.5))
    rows, entries = [], {}
    for s in _progress(list(st), progress, "generating videos"):
        note = ""
        if cond_dir is not None:
            p = Path(cond_dir) / f"{s.id}.mp4"
            try:
                if not p.is_file():
                    raise VideoError("no conditioning clip")
                cond = read_video(p)
            except VideoError as exc:
                rows.append((s.id, "", "unreadable", f"{p}: {exc}"))
                continue
        else:
            from .slots import rollout_states

            states, visible = rollout_states(s, fps_c, NoiseParams(), 0, 0,
                                             early_stop=bool(config.get("early_stop", True)))
            cam = Camera.for_stimulus(s, model.size)
            cond = render_frames(s, states[:model.cond_frames], visible[:model.cond_frames], cam)
        if len(s.scene.bodies) > MAX_BODIES:
            rows.append((s.id, "", "skipped", f"more than {MAX_BODIES} bodies"))
            continue
        frames = generate_video(model, cond)
        path = write_mp4(out / f"{s.id}__s000.mp4", frames, fps_f)
        entries[s.id] = colours_entry(s, Camera.for_stimulus(s, model.size), len(frames))
        rows.append((s.id, str(path), "ok", note))
    write_colours(out / "colours.json", entries, fps_f, model.size, model.cond_frames)
    return pd.DataFrame(rows, columns=["stimulus_id", "video", "status", "note"])
