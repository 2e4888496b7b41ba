"""An object-centric stochastic video predictor, trainable in minutes on a CPU.

Physion's object-centric predictors (Bear et al. 2021: OCP, SGNN / DPI-Net)
and learned graph simulators (Battaglia et al. 2016, *Interaction
Networks*; Sanchez-Gonzalez et al. 2020, *Learning to simulate*) read a
scene into per-object slots, learn the dynamics over the slots, and render
the slots back. :class:`SlotPredictor` is one of them, small enough to train
on two CPU cores:

**Given (not learned).**
    The *encoder*: each slot is one block of the stimulus at t = 0 — its
    centre, angle, width and height (the positions the readout's first-frame
    check verifies in the first frame), and the ground's level. The
    *renderer*: :func:`ipe.video.frames.draw_frame` paints each slot as its
    block in its colour on the static scene, so blocks keep their shape and
    the ground stays by construction (the renderer ``ipe render --video``
    uses). Blocks only: a scene with balls or polygons is refused.

**Learned.**
    The *dynamics*: an interaction network over the slots (message rounds
    from each block's :data:`NEIGHBOURS` nearest blocks, plus each block's
    height above the ground) that outputs, for every block and frame step,
    (a) the probability that the block moves in the next step — else it
    stays exactly where it is, at rest — and (b) a Gaussian over the change of
    its velocity (x, y, angle) if it moves: a mean and a standard deviation
    per component. It is trained by maximum likelihood (Bernoulli + Gaussian
    negative log-likelihood, one step ahead) on ipe's own rollouts of
    generated towers (no noise by default; ``sigma``, ``phi``) sampled at the
    video's frame rate. Three things make its rollouts hold together:

    * rest is a state with a start and an end (:func:`deadband`): a block
      rests until it has moved 1 mm, then follows its trajectory at every
      frame until its final rest — so a moving block keeps moving (labels
      that let slowly tipping blocks jump and stop taught the first version
      to stop its falling blocks dead in mid-air: it gave a moving block a
      chance of 0.15–0.35 per step to keep moving);
    * its training inputs are perturbed as its own rollouts perturb them
      (:func:`add_input_noise`, Sanchez-Gonzalez et al. 2020), with targets
      that pull a block back onto its trajectory;
    * a block at rest wakes only in the first :data:`WAKE_STEPS` steps or
      beside a moving block (:func:`can_move`), as sleeping bodies in a
      physics engine do: a hazard drawn at every one of 60 steps for each of
      10 blocks would topple stable towers by chance alone.

**Prediction.**
    A continuation is a rollout of the learned dynamics from the slots at
    rest: at every frame each block that :func:`can_move` moves or rests by a
    draw from its probability, and a moving block's velocity changes by a
    draw from its Gaussian (semi-implicit Euler, as learned simulators
    integrate). One constraint is given, not learned: a block is never left
    below the ground (its lowest corner is put back on it and its downward
    velocity stopped). pymunk is never called. Several continuations of one
    stimulus differ only in their draws, seeded by the named stream
    ``"ipe.video.slots:rollout"`` keyed by (stimulus id, sample), so a
    readout of them gives a graded P(falls) and the same seed gives the same
    videos.

Seeds: the training towers from ``train_seed``; the initialisation
(``"ipe.video.slots:init"``), the shuffling (``"ipe.video.slots:shuffle"``),
the share of resting steps kept (``"ipe.video.slots:rest"``), the input
noise (``"ipe.video.slots:noise"``) and the rollouts
(``"ipe.video.slots:rollout"``) from ``seed``;
the training rollouts are ipe's own (:func:`ipe.montecarlo.run_sample`
with ``train_seed``).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..errors import InputError
from ..noise import NoiseParams
from ..scene import Block, StaticBox, Stimulus, world_vertices
from ..scenefile import as_stimulus_set
from ..seeding import stream_int
from ..stimuli.towers import generate_towers
from .frames import (Camera, body_colours, colours_entry, draw_frame, frame_times, steps_per_frame, video_trajectory,
                     write_colours, write_mp4)

#: Named seed streams of this module (``ipe.seeding.stream_int(seed, name, *keys)``).
STREAMS = {"init": "ipe.video.slots:init", "shuffle": "ipe.video.slots:shuffle",
           "rollout": "ipe.video.slots:rollout", "rest": "ipe.video.slots:rest", "noise": "ipe.video.slots:noise"}
#: A block is at rest until it has moved this far (in units of the scene's scale; 0.01 = 1 mm for 10 cm blocks) or
#: turned by this much (rad) since it came to rest: below that, pymunk's settling of a stack is not motion.
REST = 0.01
REST_ANGLE = 0.01
MAX_SLOTS = 24
NODE_FEATURES = 8
#: Each block hears from this many nearest blocks.
NEIGHBOURS = 5
EDGE_FEATURES = 26
#: A block at rest can start to move only in the first WAKE_STEPS frame steps (a tower that is not stable starts
#: to tip at once) or while one of its NEIGHBOURS nearest blocks moves (it is hit or loses its support), as bodies
#: asleep in a physics engine wake only when touched; of the wakes in ipe's no-noise rollouts of 40 training towers,
#: 96 % obey this (148 of 244 in the first three steps, 86 later beside a moving block).
WAKE_STEPS = 3
#: Smallest standard deviation of a step (in units of the training targets' spread).
MIN_LOG_SD = math.log(1e-4)


def _seed(seed: int, part: str, *keys) -> int:
    return stream_int(seed, STREAMS[part], *keys)


# --------------------------------------------------------------------------- slots (the given encoder)


@dataclass(frozen=True)
class Slots:
    """A scene read into slots: ``size (n, 2)`` widths and heights (m), ``pose (n, 3)`` x, y, angle at t = 0,
    ``ground`` the level (m) of the ground's top, ``scale`` the unit of lengths (the median short side)."""

    size: np.ndarray
    pose: np.ndarray
    ground: float
    scale: float


def check_blocks(stim: Stimulus) -> None:
    """Raise :class:`InputError` unless ``stim`` is made of 1…MAX_SLOTS blocks over a static ground."""
    bodies = stim.scene.bodies
    if not bodies or len(bodies) > MAX_SLOTS:
        raise InputError(f"stimulus {stim.id!r}: the slot model takes 1 to {MAX_SLOTS} blocks; it has {len(bodies)}")
    other = [b.id for b in bodies if not isinstance(b, Block)]
    if other:
        raise InputError(f"stimulus {stim.id!r}: the slot model takes blocks only; {other[0]!r} is not a block")
    if not any(isinstance(s, StaticBox) for s in stim.scene.statics):
        raise InputError(f"stimulus {stim.id!r}: the slot model needs a static ground box")


def read_slots(stim: Stimulus) -> Slots:
    """The given encoder: ``stim``'s blocks at t = 0 and its ground (the highest static box top below them)."""
    check_blocks(stim)
    bodies = stim.scene.bodies
    size = np.array([(b.width, b.height) for b in bodies], dtype=float)
    pose = np.array([(b.position[0], b.position[1], b.angle) for b in bodies], dtype=float)
    low = min(float(np.min(np.asarray(world_vertices(b))[:, 1])) for b in bodies)
    tops = [float(np.max(np.asarray(world_vertices(s))[:, 1])) for s in stim.scene.statics if isinstance(s, StaticBox)]
    below = [t for t in tops if t <= low + 1e-6]
    ground = max(below) if below else min(tops)
    return Slots(size, pose, ground, float(stim.scene.short_scale))


# --------------------------------------------------------------------------- features


def _corners(pos: torch.Tensor, ang: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """``(B, n, 4, 2)`` corners of rectangles with centres ``(B, n, 2)``, angles ``(B, n)``, sizes ``(B, n, 2)``."""
    sx = torch.tensor([-0.5, 0.5, 0.5, -0.5], dtype=pos.dtype)
    sy = torch.tensor([-0.5, -0.5, 0.5, 0.5], dtype=pos.dtype)
    lx = size[..., 0:1] * sx
    ly = size[..., 1:2] * sy
    c, s = torch.cos(ang)[..., None], torch.sin(ang)[..., None]
    return torch.stack([pos[..., 0:1] + c * lx - s * ly, pos[..., 1:2] + s * lx + c * ly], -1)


def _in_frame(points: torch.Tensor, pos: torch.Tensor, ang: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """Points ``(B, i, j, 4, 2)`` in the body frame of block i (``pos (B, i, 2)``…), over its half sides."""
    d = points - pos[:, :, None, None, :]
    c, s = torch.cos(ang)[:, :, None, None], torch.sin(ang)[:, :, None, None]
    u = (c * d[..., 0] + s * d[..., 1]) / (0.5 * size[:, :, None, None, 0])
    v = (-s * d[..., 0] + c * d[..., 1]) / (0.5 * size[:, :, None, None, 1])
    return torch.stack([u, v], -1)


def features(pos, ang, vel, spin, size, ground, mask) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Node ``(B, n, NODE_FEATURES)`` and edge ``(B, n, k, EDGE_FEATURES)`` features and the senders ``(B, n, k)``.

    ``pos (B, n, 2)``, ``ang (B, n)``, per-step displacement ``vel (B, n, 2)``
    and rotation ``spin (B, n)``, ``size (B, n, 2)`` (lengths in units of the
    scene's scale), ``ground (B,)``, ``mask (B, n)`` (real slots). Each block
    receives messages from its ``k`` = :data:`NEIGHBOURS` nearest blocks
    (centre to centre). An edge carries what block i receives from block j:
    their offset, relative motion, j's orientation and size, and each one's
    corners in the other's frame (inside means |u|, |v| < 1: a contact or an
    overlap).
    """
    corners = _corners(pos, ang, size)
    low = corners[..., 1].amin(-1) - ground[:, None]
    two = 2 * ang
    node = torch.cat([vel, spin[..., None], torch.sin(two)[..., None], torch.cos(two)[..., None], size,
                      low.clamp(-1.0, 5.0)[..., None]], -1)
    B, n = pos.shape[:2]
    k = min(NEIGHBOURS, n - 1)
    d_all = (pos[:, None, :, :] - pos[:, :, None, :]).norm(dim=-1)
    far = ~(mask[:, None, :] & mask[:, :, None]) | torch.eye(n, dtype=torch.bool)[None]
    nbr = d_all.masked_fill(far, math.inf).topk(k, dim=-1, largest=False).indices      # (B, n, k)

    def take(x):  # x (B, n, ...) → the senders' values (B, n, k, ...)
        flat = nbr.reshape(B, n * k)
        g = x.gather(1, flat.view(B, n * k, *([1] * (x.dim() - 2))).expand(-1, -1, *x.shape[2:]))
        return g.view(B, n, k, *x.shape[2:])

    pj, vj, sj, aj, zj, cj = take(pos), take(vel), take(spin), take(ang), take(size), take(corners)
    d = pj - pos[:, :, None, :]
    dist = d.norm(dim=-1, keepdim=True)
    j_in_i = _in_frame(cj, pos, ang, size).clamp(-3.0, 3.0).flatten(-2)
    ci = corners[:, :, None].expand(-1, -1, k, -1, -1)
    i_in_j = _in_frame_each(ci, pj, aj, zj).clamp(-3.0, 3.0).flatten(-2)
    edge = torch.cat([d.clamp(-8.0, 8.0), dist.clamp(max=8.0), vj - vel[:, :, None, :],
                      (sj - spin[:, :, None])[..., None], torch.sin(2 * aj)[..., None], torch.cos(2 * aj)[..., None],
                      zj, j_in_i, i_in_j], -1)
    return node, edge, nbr


def _in_frame_each(points, pos, ang, size) -> torch.Tensor:
    """Points ``(B, i, j, 4, 2)`` in the frames of the blocks ``pos (B, i, j, 2)``… (one frame per pair)."""
    d = points - pos[..., None, :]
    c, s = torch.cos(ang)[..., None], torch.sin(ang)[..., None]
    u = (c * d[..., 0] + s * d[..., 1]) / (0.5 * size[..., None, 0])
    v = (-s * d[..., 0] + c * d[..., 1]) / (0.5 * size[..., None, 1])
    return torch.stack([u, v], -1)


def _mlp(i: int, h: int, o: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(i, h), nn.SiLU(), nn.Linear(h, h), nn.SiLU(), nn.Linear(h, o))


class SlotPredictor(nn.Module):
    """An interaction network: slots' features → a Gaussian over each slot's change of velocity per frame step.

    ``forward(node, edge, nbr, mask)`` → ``(move logit (B, n), mean (B, n, 3),
    log_sd (B, n, 3))``: the chance that the block moves in the next frame
    step (else it stays where it is, at rest), and a Gaussian over its change
    of velocity if it does, in units of the training targets' spread
    (``target_scale``, a buffer).
    """

    def __init__(self, hidden: int = 64, rounds: int = 2):
        super().__init__()
        self.hidden, self.rounds = hidden, rounds
        self.node_in = _mlp(NODE_FEATURES, hidden, hidden)
        self.edges = nn.ModuleList([_mlp(EDGE_FEATURES + 2 * hidden, hidden, hidden) for _ in range(rounds)])
        self.nodes = nn.ModuleList([_mlp(2 * hidden, hidden, hidden) for _ in range(rounds)])
        self.head = _mlp(hidden, hidden, 7)
        self.register_buffer("target_scale", torch.ones(3))

    def embed(self, node: torch.Tensor, edge: torch.Tensor, nbr: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The slots' latent states ``(B, n, hidden)`` after the message rounds (the probe's features)."""
        h = self.node_in(node)
        B, n, k = nbr.shape
        flat = nbr.reshape(B, n * k)
        ok = (mask.gather(1, flat).view(B, n, k) & mask[:, :, None])[..., None]
        for fe, fn in zip(self.edges, self.nodes):
            hi = h[:, :, None, :].expand(-1, -1, k, -1)
            hj = h.gather(1, flat[..., None].expand(-1, -1, h.shape[-1])).view(B, n, k, -1)
            msg = fe(torch.cat([edge, hi, hj], -1)) * ok
            h = h + fn(torch.cat([h, msg.sum(2)], -1))
        return h

    def forward(self, node, edge, nbr, mask):
        """``(move logit (B, n), mean (B, n, 3), log_sd (B, n, 3))``."""
        out = self.head(self.embed(node, edge, nbr, mask))
        return out[..., 0], out[..., 1:4], out[..., 4:].clamp(MIN_LOG_SD, 3.0)


# --------------------------------------------------------------------------- training data


@dataclass(frozen=True)
class SlotConfig:
    """Training settings of :func:`train_slot_model`."""

    n_train: int = 960
    samples: int = 1
    sigma: float = 0.0
    phi: float = 0.0
    fps: float = 30.0
    hidden: int = 48
    rounds: int = 3
    epochs: int = 8
    batch_size: int = 256
    lr: float = 2e-3
    seed: int = 0
    train_seed: int = 1001
    n_blocks_tower: int = 10
    early_stop: bool = True
    rest_keep: float = 1.0
    noise_pos: float = 0.02
    noise_vel: float = 0.01


def rollout_states(stim: Stimulus, fps: float, params: NoiseParams, seed: int, sample: int,
                   early_stop: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Body poses ``(F, n, 3)`` and visibility ``(F, n)`` at every frame of one of ipe's rollouts (seeded as
    ``ipe predict``): :func:`ipe.video.frames.video_trajectory`. With ``early_stop`` (the default) a scene that
    came to rest keeps its resting state; without it pymunk runs every step to the horizon.
    """
    return video_trajectory(stim, fps, sigma=params.sigma, phi=params.phi, mu=params.mu, seed=seed,
                            sample=sample, early_stop=early_stop)


def deadband(poses: np.ndarray, scale: float) -> np.ndarray:
    """Poses ``(F, n, 3)`` with rest made exact, a block's rest lasting until it *starts* to fall and again from
    the moment it has *stopped* for good.

    A block keeps its first pose until it has moved by more than :data:`REST` × ``scale`` or turned by more than
    :data:`REST_ANGLE` from it (pymunk's settling of a stack is not motion); from then on it follows its trajectory
    exactly, however slowly it moves, until the frame from which it never again leaves that band around its pose
    (its final rest), which it then keeps. So a block that tips slowly moves at every frame, as it does in the
    simulation, instead of jumping by a millimetre and stopping again (which taught the model that moving blocks
    stop at random, in mid-air).
    """
    out = poses.copy()
    F = len(poses)
    if F < 2:
        return out

    def beyond(d):
        return (np.abs(d[..., :2]).max(-1) > REST * scale) | (np.abs(d[..., 2]) > REST_ANGLE)

    for i in range(poses.shape[1]):
        p = poses[:, i]
        woke = np.nonzero(beyond(p - p[0]))[0]
        if not len(woke):
            out[:, i] = p[0]
            continue
        w = int(woke[0])
        out[:w, i] = p[0]
        # final rest: the first frame r >= w from which the block never leaves the band around its pose at r
        r = F - 1
        while r - 1 >= w and not beyond(p[r:] - p[r - 1]).any():
            r -= 1
        out[r:, i] = p[r]
    return out


def _slot_tensors(slots: list[Slots]) -> tuple[torch.Tensor, ...]:
    """Padded ``size (B, N, 2)``, ``mask (B, N)``, ``ground (B,)`` and ``scale (B,)`` of several scenes."""
    N = max(len(s.size) for s in slots)
    size = torch.ones(len(slots), N, 2, dtype=torch.float64)
    mask = torch.zeros(len(slots), N, dtype=torch.bool)
    for k, s in enumerate(slots):
        size[k, :len(s.size)] = torch.as_tensor(s.size / s.scale)
        mask[k, :len(s.size)] = True
    ground = torch.tensor([s.ground / s.scale for s in slots], dtype=torch.float64)
    return size, mask, ground


def _far(n_pad: int, n: int) -> np.ndarray:
    """Parking places far from everything for padded slots (masked out anyway)."""
    return np.stack([1e3 + 10.0 * np.arange(n_pad - n), np.full(n_pad - n, 1e3), np.zeros(n_pad - n)], -1)


def training_steps(stimuli, cfg: SlotConfig, progress: bool | None = None) -> dict[str, torch.Tensor]:
    """One-step examples from ipe's rollouts: poses at t−1, t, t+1 of every frame step of every sample.

    Returns tensors ``pos``, ``ang``, ``vel``, ``spin`` (inputs at t, lengths in
    units of the scene's scale), ``target (·, n, 3)`` (velocity change from t
    to t+1), ``moves (·, n)`` (whether the block moves from t to t+1),
    ``size``, ``mask``, ``ground``. Rest is made exact first
    (:func:`deadband`); of the steps in which no block moves, a seeded share
    ``cfg.rest_keep`` is kept (stream ``ipe.video.slots:rest``).
    """
    from .frames import _tqdm

    st = list(as_stimulus_set(stimuli))
    slots = [read_slots(s) for s in st]
    N = max(len(s.size) for s in slots)
    params = NoiseParams(sigma=cfg.sigma, phi=cfg.phi)
    P, S, M, G = [], [], [], []
    size_all, mask_all, ground_all = _slot_tensors(slots)
    for k, (s, sl) in enumerate(zip(_tqdm(st, progress, "simulating training rollouts"), slots)):
        for j in range(cfg.samples):
            poses = deadband(rollout_states(s, cfg.fps, params, cfg.train_seed, j, cfg.early_stop)[0], sl.scale)
            poses = np.concatenate([poses[:1], poses], 0)  # at rest before t = 0: velocity 0 at the first frame
            n = poses.shape[1]
            if n < N:
                poses = np.concatenate([poses, np.repeat(_far(N, n)[None], len(poses), 0)], 1)
            p = poses.copy()
            p[..., :2] /= sl.scale
            P.append(p)
            S.append(size_all[k])
            M.append(mask_all[k])
            G.append(ground_all[k])
    # (samples, F + 1, N, 3) → steps: input at t (with t−1 for velocity), target at t + 1
    ex = {"pos": [], "ang": [], "vel": [], "spin": [], "target": [], "moves": [], "size": [], "mask": [], "ground": [],
          "step": []}
    for p, s, m, g in zip(P, S, M, G):
        p = torch.as_tensor(p)
        prev, cur, nxt = p[:-2], p[1:-1], p[2:]
        v0, v1 = cur - prev, nxt - cur
        T = len(cur)
        ex["pos"].append(cur[..., :2])
        ex["ang"].append(cur[..., 2])
        ex["vel"].append(v0[..., :2])
        ex["spin"].append(v0[..., 2])
        ex["target"].append(v1 - v0)
        ex["moves"].append((v1.abs().amax(-1) > 0))
        ex["size"].append(s[None].expand(T, -1, -1))
        ex["mask"].append(m[None].expand(T, -1))
        ex["ground"].append(g.expand(T))
        ex["step"].append(torch.arange(T))
    data = {k: torch.cat(v).to(torch.float32) if k not in ("mask", "moves", "step") else torch.cat(v)
            for k, v in ex.items()}
    # Steps in which nothing moves are many and alike: keep a seeded share ``rest_keep`` of them.
    moving = ((data["vel"].abs().amax(-1) > 0) | (data["target"].abs().amax(-1) > 0)).any(-1)
    rng = np.random.default_rng(_seed(cfg.seed, "rest"))
    keep = moving | torch.as_tensor(rng.random(len(moving)) < cfg.rest_keep)
    return {k: v[keep] for k, v in data.items()}


def add_input_noise(data: dict, cfg: SlotConfig) -> dict:
    """Training inputs made as imperfect as the model's own rollouts make them (Sanchez-Gonzalez et al. 2020).

    Trained one step ahead on exact states only, a learned simulator meets its
    own errors for the first time when it rolls out, and they compound (blocks
    sink into each other, a tipping stack loses its shape). Here every moving
    block's input position and angle are shifted by Gaussian noise of s.d.
    ``cfg.noise_pos`` (units of the scene's scale; rad) and its velocity by
    ``cfg.noise_vel`` per frame, and its target velocity change is corrected so
    that the step still lands on the true next pose: the model learns to pull
    a perturbed block back onto its trajectory. Blocks at rest are left exact
    (rest is a state, not a place). Seeded by the stream ``ipe.video.slots:noise``.
    """
    if cfg.noise_pos <= 0 and cfg.noise_vel <= 0:
        return data
    live = ((data["vel"].abs().amax(-1) > 0) | (data["spin"].abs() > 0) | data["moves"]) & data["mask"]
    rng = np.random.default_rng(_seed(cfg.seed, "noise"))
    shape = (*data["pos"].shape[:2], 3)
    dp = torch.as_tensor(rng.standard_normal(shape) * cfg.noise_pos, dtype=torch.float32) * live[..., None]
    dv = torch.as_tensor(rng.standard_normal(shape) * cfg.noise_vel, dtype=torch.float32) * live[..., None]
    out = dict(data)
    out["pos"] = data["pos"] + dp[..., :2]
    out["ang"] = data["ang"] + dp[..., 2]
    out["vel"] = data["vel"] + dv[..., :2]
    out["spin"] = data["spin"] + dv[..., 2]
    out["target"] = data["target"] - dp - dv
    return out


def _all_features(data: dict, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    keys = ("pos", "ang", "vel", "spin", "size", "ground", "mask")
    parts = [features(*(data[k][b:b + chunk] for k in keys)) for b in range(0, len(data["pos"]), chunk)]
    return tuple(torch.cat(p) for p in zip(*parts))


def _moving(vel: torch.Tensor, spin: torch.Tensor) -> torch.Tensor:
    return (vel.abs().amax(-1) > 0) | (spin.abs() > 0)


def can_move(vel: torch.Tensor, spin: torch.Tensor, nbr: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """``(B, n)``: which blocks may move in the next step: those moving, those beside a moving block (among their
    ``nbr (B, n, k)``) and, in the first :data:`WAKE_STEPS` steps (``step (B,)``), all. The others stay at rest."""
    moving = _moving(vel, spin)
    B, n, k = nbr.shape
    beside = moving.gather(1, nbr.reshape(B, n * k)).view(B, n, k).any(-1)
    return moving | beside | (step < WAKE_STEPS)[:, None]


def _loss(logit, mean, log_sd, target, moves, mask, free) -> torch.Tensor:
    """Negative log-likelihood per block: Bernoulli (moves or rests) where the block is ``free`` to move
    (:func:`can_move`) + Gaussian velocity change when it moves."""
    z = (target - mean) * torch.exp(-log_sd)
    nll = (0.5 * z * z + log_sd).sum(-1) * moves
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logit, moves, reduction="none") * free
    return ((nll + bce) * mask).sum() / mask.sum().clamp_min(1)


def train_slot_model(cfg: SlotConfig = SlotConfig(), train_stimuli=None, threads: int | None = None,
                     progress: bool | None = None) -> tuple[SlotPredictor, dict]:
    """Train :class:`SlotPredictor` on ipe's noisy rollouts of generated towers; returns ``(model, log)``."""
    from .frames import _tqdm

    if threads:
        torch.set_num_threads(int(threads))
    t0 = time.perf_counter()
    if train_stimuli is None:
        train_stimuli = generate_towers(cfg.n_train, seed=cfg.train_seed, n_blocks=cfg.n_blocks_tower, balanced=True)
    st = list(as_stimulus_set(train_stimuli))
    for s in st:
        check_blocks(s)
        steps_per_frame(s, cfg.fps)
    data = add_input_noise(training_steps(st, cfg, progress), cfg)
    t_sim = time.perf_counter() - t0
    m = (data["mask"] & data["moves"])[..., None].float()
    scale = ((data["target"] ** 2 * m).sum((0, 1)) / m.sum((0, 1)).clamp_min(1)).sqrt().clamp_min(1e-6)
    torch.manual_seed(_seed(cfg.seed, "init"))
    model = SlotPredictor(hidden=cfg.hidden, rounds=cfg.rounds)
    model.target_scale.copy_(scale)
    node, edge, nbr = _all_features(data)
    free = can_move(data["vel"], data["spin"], nbr, data["step"]) & data["mask"]
    # a step in which no block is free to move teaches nothing (every block rests by the rule): leave it out
    useful = (free | data["moves"]).any(-1)
    data = {k: v[useful] for k, v in data.items()}
    node, edge, nbr, free = node[useful], edge[useful], nbr[useful], free[useful].float()
    y = data["target"] / scale
    moves = data["moves"].float()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-5)
    steps = max(1, cfg.epochs * math.ceil(len(y) / cfg.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    rng = np.random.default_rng(_seed(cfg.seed, "shuffle"))
    losses = []
    for _ in _tqdm(range(cfg.epochs), progress, "training slot model (epochs)"):
        model.train()
        perm = torch.as_tensor(rng.permutation(len(y)))
        total = 0.0
        for b in range(0, len(y), cfg.batch_size):
            idx = perm[b:b + cfg.batch_size]
            logit, mean, log_sd = model(node[idx], edge[idx], nbr[idx], data["mask"][idx])
            loss = _loss(logit, mean, log_sd, y[idx], moves[idx], data["mask"][idx], free[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(y))
    model.eval()
    log = {"config": asdict(cfg), "n_parameters": sum(p.numel() for p in model.parameters()),
           "train_loss": losses, "n_train": len(st), "n_steps": int(len(y)), "simulate_seconds": t_sim,
           "torch_seed": _seed(cfg.seed, "init"), "train_seconds": time.perf_counter() - t0}
    return model, log


def model_config(model: SlotPredictor, cfg: SlotConfig) -> dict:
    """What :func:`ipe.video.models.load_model` needs to rebuild the model, and the frame rate it steps at."""
    return {"hidden": model.hidden, "rounds": model.rounds, "fps": float(cfg.fps)}


# --------------------------------------------------------------------------- prediction


def _above_ground(pos, ang, vel, size, ground):
    """The one given constraint: a block whose lowest corner went below the ground is put back on it, its
    downward velocity stopped (the ground is impenetrable; how blocks move and rest is learned)."""
    low = _corners(pos, ang, size)[..., 1].amin(-1)
    under = low < ground[:, None]
    lift = torch.where(under, ground[:, None] - low, torch.zeros_like(low))
    pos = pos + torch.stack([torch.zeros_like(lift), lift], -1)
    vel = torch.stack([vel[..., 0], torch.where(under, vel[..., 1].clamp(min=0.0), vel[..., 1])], -1)
    return pos, vel


@torch.no_grad()
def sample_rollouts(model: SlotPredictor, stim: Stimulus, n_frames: int, samples, seed: int = 0) -> np.ndarray:
    """Continuations of ``stim``: poses ``(len(samples), n_frames, n, 3)`` from the learned dynamics alone.

    ``samples`` is a count (samples 0…k−1) or a list of sample indices. Continuation ``k`` draws its noise
    from the stream ``ipe.video.slots:rollout`` keyed by ``(stim.id, k)``; they are rolled out together, so the
    same seed and the same samples give the same poses, bit for bit.
    """
    ks = list(range(samples)) if isinstance(samples, (int, np.integer)) else [int(k) for k in samples]
    model.eval()
    sl = read_slots(stim)
    n = len(sl.size)
    size, mask, ground = _slot_tensors([sl])
    size, ground = size.to(torch.float32), ground.to(torch.float32)
    B = len(ks)
    size, mask, ground = size.expand(B, -1, -1), mask.expand(B, -1), ground.expand(B)
    pos = torch.as_tensor(sl.pose[:, :2] / sl.scale, dtype=torch.float32)[None].repeat(B, 1, 1)
    ang = torch.as_tensor(sl.pose[:, 2], dtype=torch.float32)[None].repeat(B, 1)
    vel = torch.zeros(B, n, 2)
    spin = torch.zeros(B, n)
    gens = [torch.Generator().manual_seed(_seed(seed, "rollout", stim.id, k)) for k in ks]
    out = np.empty((B, n_frames, n, 3))
    out[:, 0] = sl.pose
    scale = model.target_scale
    for f in range(1, n_frames):
        node, edge, nbr = features(pos, ang, vel, spin, size, ground, mask)
        logit, mean, log_sd = model(node, edge, nbr, mask)
        u = torch.stack([torch.rand(n, generator=g) for g in gens])
        eps = torch.stack([torch.randn(n, 3, generator=g) for g in gens])
        moves = (u < torch.sigmoid(logit)) & can_move(vel, spin, nbr, torch.full((B,), f - 1))
        dv = (mean + torch.exp(log_sd) * eps) * scale
        vel = torch.where(moves[..., None], vel + dv[..., :2], torch.zeros_like(vel))
        spin = torch.where(moves, spin + dv[..., 2], torch.zeros_like(spin))
        pos = pos + vel
        ang = ang + spin
        pos, vel = _above_ground(pos, ang, vel, size, ground)
        out[:, f, :, :2] = pos.numpy() * sl.scale
        out[:, f, :, 2] = ang.numpy()
    return out


def judge_continuations(model: SlotPredictor, stimuli, samples: int = 8, seed: int = 0, fps: float = 30.0,
                        progress: bool | None = None) -> pd.DataFrame:
    """The judgments of ``samples`` continuations per stimulus, read from the slots' poses (no video, no readout).

    ``stimulus_id, sample, count_fallen, falls``: a block has fallen when its
    centre dropped by more than the IPE's fall threshold
    (:func:`ipe.queries.fall_threshold`) between the first and the last frame
    of the stimulus's horizon, the test ``ipe predict`` applies to its rollouts;
    ``falls`` is 1 when any block fell. The continuations are those that
    :func:`generate_slot_videos` renders with the same ``seed``.
    """
    from ..queries import fall_threshold
    from .frames import _tqdm

    st = list(as_stimulus_set(stimuli))
    for s in st:
        check_blocks(s)
    rows = []
    for s in _tqdm(st, progress, "rolling out continuations"):
        n_frames = len(frame_times(s, fps))
        poses = sample_rollouts(model, s, n_frames, samples, seed=seed)
        drop = poses[:, 0, :, 1] - poses[:, -1, :, 1]
        count = (drop > fall_threshold(s.scene)).sum(1)
        rows += [(s.id, k, int(c), int(c > 0)) for k, c in enumerate(count)]
    return pd.DataFrame(rows, columns=["stimulus_id", "sample", "count_fallen", "falls"])


def render_continuation(stim: Stimulus, poses: np.ndarray, camera: Camera) -> np.ndarray:
    """Frames ``(F, H, W, 3)`` of one continuation: every slot drawn as its block, on the static scene."""
    cols = body_colours(stim)
    visible = np.ones(poses.shape[1], dtype=bool)
    return np.stack([draw_frame(stim, p, visible, camera, cols) for p in poses])


def generate_slot_videos(model: SlotPredictor, config: dict, stimuli, out_dir: str | Path, samples: int = 4,
                         size: int = 64, seed: int = 0, progress: bool | None = None) -> pd.DataFrame:
    """Write ``samples`` continuations per stimulus as ``<out>/<id>__s<k>.mp4`` with ``<out>/colours.json``.

    Videos run at the model's frame rate over each stimulus's horizon; the
    returned table lists ``stimulus_id, sample, video, status, note``.
    """
    from .frames import _tqdm

    st = as_stimulus_set(stimuli)
    fps = float(config.get("fps", 30.0))
    for s in st:
        check_blocks(s)
        steps_per_frame(s, fps)
    out = Path(out_dir)
    rows, entries = [], {}
    for s in _tqdm(list(st), progress, "generating continuations"):
        n_frames = len(frame_times(s, fps))
        cam = Camera.for_stimulus(s, size)
        poses = sample_rollouts(model, s, n_frames, samples, seed=seed)
        for k in range(samples):
            path = write_mp4(out / f"{s.id}__s{k:03d}.mp4", render_continuation(s, poses[k], cam), fps)
            rows.append((s.id, k, str(path), "ok", ""))
        entries[s.id] = colours_entry(s, cam, n_frames)
    write_colours(out / "colours.json", entries, fps, size, 1)
    return pd.DataFrame(rows, columns=["stimulus_id", "sample", "video", "status", "note"])


def _resample(poses: np.ndarray, fps_model: float, fps: float, n_frames: int) -> np.ndarray:
    """Poses at ``n_frames`` frames of ``fps`` from poses ``(F, n, 3)`` at ``fps_model`` (linear in time)."""
    t = np.arange(n_frames) / fps * fps_model
    i0 = np.clip(np.floor(t).astype(int), 0, len(poses) - 1)
    i1 = np.clip(i0 + 1, 0, len(poses) - 1)
    w = np.clip(t - i0, 0.0, 1.0)[:, None, None]
    return (1 - w) * poses[i0] + w * poses[i1]


def generate_for_manifest(model: SlotPredictor, config: dict, manifest: str | Path, stimuli, seed: int = 0,
                          overwrite: bool = False, progress: bool | None = None) -> pd.DataFrame:
    """Write a continuation at every row's ``continuation`` path of a prompts manifest (``ipe video prompts``).

    Row ``(stimulus, size, sample k)`` gets continuation ``k`` of its stimulus
    (the same motion at every size), rendered with the camera of that size's
    ``colours.json`` at the row's frame rate and frame count, starting with the
    first frame. Existing continuations are an error unless ``overwrite``.
    """
    from .frames import _tqdm
    from .prompts import read_manifest
    from .readout import load_colours

    mpath = Path(manifest)
    root = mpath if mpath.is_dir() else mpath.parent
    df = read_manifest(mpath)
    by_id = {s.id: s for s in as_stimulus_set(stimuli)}
    unknown = sorted(set(df["stimulus_id"]) - set(by_id))
    if unknown:
        raise InputError(f"{mpath}: stimulus {unknown[0]!r} is not in the stimulus set ({len(unknown)} unknown)")
    for sid in df["stimulus_id"].unique():
        check_blocks(by_id[sid])
    there = [p for p in df["continuation"] if (root / p).exists()]
    if there and not overwrite:
        raise InputError(f"{root / there[0]}: {len(there)} continuation(s) are already there; remove them or "
                         "pass --overwrite")
    fps_model = float(config.get("fps", 30.0))
    colour_files: dict[str, dict] = {}
    rows = []
    for sid, g in _tqdm(list(df.groupby("stimulus_id", sort=False)), progress, "generating continuations"):
        stim = by_id[sid]
        ks = sorted(set(int(k) for k in g["sample"]))
        horizon = stim.scene.simulation.horizon
        n_model = int(math.ceil(horizon * fps_model - 1e-9)) + 1
        poses = dict(zip(ks, sample_rollouts(model, stim, n_model, ks, seed=seed)))
        for r in g.itertuples(index=False):
            if r.colours not in colour_files:
                colour_files[r.colours] = load_colours(root / r.colours)
            entry = colour_files[r.colours]["stimuli"].get(sid)
            if entry is None:
                raise InputError(f"{root / r.colours}: no entry for stimulus {sid!r}")
            cam = Camera.from_dict(entry["camera"])
            frames = render_continuation(stim, _resample(poses[int(r.sample)], fps_model, float(r.fps),
                                                         int(r.n_frames)), cam)
            path = write_mp4(root / r.continuation, frames, float(r.fps))
            rows.append((sid, int(r.sample), r.size, str(path), "ok", ""))
    return pd.DataFrame(rows, columns=["stimulus_id", "sample", "size", "video", "status", "note"])
