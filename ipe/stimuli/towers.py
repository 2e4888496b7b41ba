"""Battaglia–Hamrick–Tenenbaum (2013) style block towers, in 2D.

A tower is built one block after another on the ground. Each block (3:1, by
default 0.3 × 0.1 m) is lying or standing, and is dropped at a random x onto
whatever is highest under it. A placement is kept only if the block is
*locally* stable: its own centre of mass lies over the span of what it rests
on (with a small margin). The tower as a whole may still fall, because the
blocks above shift the load: exactly the ambiguity BHT's stimuli were built
on.

Each stimulus records ``metadata.stable``: whether no block falls in the
no-noise simulation (``count_fallen == 0``). Options give same-height sets,
heavy/light mass variants (two colours, 10:1 density, each tower in both
assignments) and sets balanced between stable and falling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from ..errors import InputError
from ..montecarlo import run_sample
from ..noise import NoiseParams
from ..queries import check_query, fall_threshold, parse_query
from ..checks import StimulusSet
from ..scene import Block, Query, Scene, StaticBox, Stimulus
from ..validation import POSITIVE_INT, SEED, validate_params
from ..rollout import plain_rollout

BLOCK_LONG = 0.3
BLOCK_SHORT = 0.1
GROUND_ID = "ground"
PALETTE = [
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45",
    "#fabed4", "#469990", "#dcbeff", "#9a6324", "#fffac8", "#800000", "#aaffc3", "#808000",
    "#ffd8b1", "#000075", "#a9a9a9", "#ffe119",
]
HEAVY_COLOR = "#5a3a1a"
LIGHT_COLOR = "#e8c88a"
HEAVY_DENSITY = 10.0
LIGHT_DENSITY = 1.0


@dataclass(frozen=True)
class TowerOptions:
    """How towers are built. Lengths in metres."""

    n_blocks: int = 10
    block_long: float = BLOCK_LONG
    block_short: float = BLOCK_SHORT
    p_standing: float = 0.3
    half_width: float = 0.2
    support_margin: float = 0.1  # fraction of the block's own width kept clear of the support edge
    max_tries: int = 200


def _rest_height(placed: list[tuple[float, float, float, float]], x0: float, x1: float, eps: float = 1e-9):
    """Height a block spanning [x0, x1] comes to rest at, and the x-span of its supports."""
    top = 0.0
    for (a0, a1, _b, t) in placed:
        if min(a1, x1) - max(a0, x0) > eps:
            top = max(top, t)
    if top == 0.0:
        return 0.0, (x0, x1)
    lo, hi = math.inf, -math.inf
    for (a0, a1, _b, t) in placed:
        ov0, ov1 = max(a0, x0), min(a1, x1)
        if ov1 - ov0 > eps and abs(t - top) < 1e-9:
            lo, hi = min(lo, ov0), max(hi, ov1)
    return top, (lo, hi)


def build_tower(rng: np.random.Generator, opts: TowerOptions = TowerOptions()) -> list[Block]:
    """Place ``opts.n_blocks`` blocks, each locally stable when placed."""
    placed: list[tuple[float, float, float, float]] = []  # x0, x1, bottom, top
    blocks: list[Block] = []
    for i in range(opts.n_blocks):
        for _ in range(opts.max_tries):
            standing = rng.random() < opts.p_standing
            w, h = (opts.block_short, opts.block_long) if standing else (opts.block_long, opts.block_short)
            cx = float(rng.uniform(-opts.half_width, opts.half_width))
            cx = round(cx, 6)
            x0, x1 = cx - w / 2, cx + w / 2
            bottom, (lo, hi) = _rest_height(placed, x0, x1)
            margin = opts.support_margin * w
            if lo + margin <= cx <= hi - margin:
                break
        else:  # pragma: no cover - with the defaults a placement is always found
            raise RuntimeError("could not place a locally stable block")
        bottom = round(bottom, 9)
        placed.append((x0, x1, bottom, bottom + h))
        blocks.append(Block(id=f"b{i}", position=(cx, bottom + h / 2), width=w, height=h,
                            density=LIGHT_DENSITY, color=PALETTE[i % len(PALETTE)]))
    return blocks


def tower_scene(blocks: Sequence[Block]) -> Scene:
    """A tower standing on a wide static ground whose top is at y = 0."""
    ground = StaticBox(id=GROUND_ID, position=(0.0, -0.05), width=6.0, height=0.1, color="#808080", label="ground")
    return Scene(bodies=tuple(blocks), statics=(ground,))


def tower_height(scene: Scene) -> float:
    return max(b.position[1] + b.height / 2 for b in scene.bodies if isinstance(b, Block))


def no_noise_fallen(scene: Scene) -> int:
    """Blocks that fall in the no-noise model (early stopping on)."""
    stim = Stimulus(id="_", scene=scene, query=Query("count_fallen"))
    vals, _ = run_sample(stim, NoiseParams(), 0, 0, [Query("count_fallen")])
    return int(vals[0])


def plain_fallen(scene: Scene) -> int:
    """Blocks that fall in a plain pymunk loop over the full horizon (no early stop)."""
    final = plain_rollout(scene)
    initial = np.array([b.position[1] for b in scene.bodies])
    return int(np.sum(initial - final[:, 1] > fall_threshold(scene)))


def _mass_assignment(rng: np.random.Generator, n: int) -> np.ndarray:
    heavy = np.zeros(n, dtype=bool)
    heavy[rng.permutation(n)[: n // 2]] = True
    return heavy


def _with_masses(blocks: Sequence[Block], heavy: np.ndarray) -> list[Block]:
    return [replace(b, density=HEAVY_DENSITY if h else LIGHT_DENSITY, material="heavy" if h else "light",
                    label="heavy" if h else "light", color=HEAVY_COLOR if h else LIGHT_COLOR)
            for b, h in zip(blocks, heavy)]


def _check_set_shape(n: int, n_blocks: int, mass_variants: bool, balanced: bool) -> None:
    """The rules that tie ``n`` to the options (each argument alone is checked by its declared rule)."""
    if mass_variants and n % 2:
        raise InputError(f"with mass variants n must be even (two stimuli per tower), got {n}")
    if mass_variants and n_blocks < 2:
        raise InputError("mass variants need at least 2 blocks")
    if balanced and not mass_variants and n % 2:
        raise InputError(f"a balanced set needs an even n, got {n}")


def _target_height(same_height: bool | float, opts: TowerOptions) -> float | None:
    """The height every tower must have: a number given, or ``None`` (none, or the first tower's)."""
    target: float | None = None if isinstance(same_height, bool) else float(same_height)
    if target is not None:
        lo, hi, step = opts.block_short, opts.n_blocks * opts.block_long, opts.block_short
        ratio = opts.block_long / step  # heights are sums of block sides: multiples of the short side when
        # the long side is one
        off_step = abs(ratio - round(ratio)) < 1e-9 and abs(target / step - round(target / step)) > 1e-6
        if not math.isfinite(target) or target < lo - 1e-9 or target > hi + 1e-9 or off_step:
            raise InputError(f"same height {target:g} m: towers of {opts.n_blocks} blocks are {lo:g} to {hi:g} m "
                             f"tall, in steps of {step:g} m")
    return target


def _check_query_once(q: Query, query: str, scene: Scene) -> None:
    """The query names bodies every tower has (b0…b{n-1}) or none: checking it on the first tower will do."""
    try:
        check_query(q, scene)
    except InputError as exc:
        raise exc.prefixed(f"query {query!r}") from None


def _variants(blocks: list[Block], heavy: np.ndarray | None, idx: int, scene: Scene) -> list[tuple[str, Scene]]:
    """``(stimulus id, scene)`` of one tower: itself, or its two mass assignments ``…_a`` and ``…_b``."""
    if heavy is None:
        return [(f"tower_{idx:03d}", scene)]
    return [(f"tower_{idx:03d}_{tag}", tower_scene(_with_masses(blocks, assignment)))
            for tag, assignment in (("a", heavy), ("b", ~heavy))]


def _no_noise_outcomes(variants: list[tuple[str, Scene]]) -> list[int] | None:
    """Blocks fallen in each variant (no noise), or ``None`` when the outcome depends on solver details
    (early-stopped and plain rollouts disagree on whether anything falls): not a fair stimulus."""
    outcomes = []
    ambiguous = False
    for _, sc in variants:
        fallen = no_noise_fallen(sc)
        if (fallen == 0) != (plain_fallen(sc) == 0):
            ambiguous = True
        outcomes.append(fallen)
    return None if ambiguous else outcomes


def _balance_keeps(outcomes: list[int], mass_variants: bool, n_stable: int, n_fall: int, n: int) -> bool:
    """Whether a balanced set of ``n`` takes this tower: its two mass assignments differ (one stands, one
    falls), or (one stimulus per tower) its side, stable or falling, is not full yet."""
    if mass_variants:
        return (outcomes[0] == 0) != (outcomes[1] == 0)
    want_stable = n // 2
    if outcomes[0] == 0:
        return n_stable < want_stable
    return n_fall < n - want_stable


def _tower_stimulus(sid: str, scene: Scene, q: Query, fallen: int, seed: int, mass_variants: bool) -> Stimulus:
    meta = {"stable": bool(fallen == 0), "n_fallen_no_noise": int(fallen), "height": round(tower_height(scene), 9),
            "n_blocks": len(scene.bodies), "generator": "bht_towers", "seed": int(seed)}
    if mass_variants:
        meta["mass_variant"] = sid[-1]
        meta["pair"] = sid[:-2]
    return Stimulus(id=sid, scene=scene, query=q, metadata=meta)


@validate_params(n=POSITIVE_INT, n_blocks=POSITIVE_INT, seed=SEED)
def generate_towers(n: int, seed: int = 0, n_blocks: int = 10, same_height: bool | float = False,
                    mass_variants: bool = False, balanced: bool = False, query: str = "fall",
                    options: TowerOptions | None = None, max_candidates: int = 100_000) -> StimulusSet:
    """Generate ``n`` tower stimuli.

    Parameters
    ----------
    n:
        Number of stimuli. With ``mass_variants`` each tower gives two stimuli
        (``…_a`` and ``…_b``, heavy and light swapped), so ``n`` must be even.
    seed:
        The generator's seed; the same seed gives the same set, byte for byte.
    same_height:
        ``True`` makes every tower as tall as the first one built; a number
        gives the height in metres.
    mass_variants:
        Half the blocks heavy (density 10, dark) and half light (density 1, pale), in both assignments.
    balanced:
        Half the stimuli stable and half falling under the no-noise model.
        With ``mass_variants`` only towers whose two assignments differ (one
        stands, one falls) are kept, as in BHT's mass experiments.
    query:
        The query every stimulus asks (``fall`` by default).
    """
    _check_set_shape(n, n_blocks, mass_variants, balanced)
    q = parse_query(query)
    opts = replace(options or TowerOptions(), n_blocks=n_blocks)
    rng = np.random.default_rng(seed)  # the root stream of the seed (no spawn key): sets repeat bit for bit
    target = _target_height(same_height, opts)
    stimuli: list[Stimulus] = []
    n_stable = n_fall = rejected_ambiguous = candidates = 0
    while len(stimuli) < n:
        candidates += 1
        if candidates > max_candidates:
            raise InputError(f"could not find {n} towers with these options in {max_candidates} candidates")
        blocks = build_tower(rng, opts)
        heavy = _mass_assignment(rng, len(blocks)) if mass_variants else None
        scene = tower_scene(blocks)
        if candidates == 1:
            _check_query_once(q, query, scene)
        if same_height is not False:  # every tower as tall as the given height, or as the first one built
            target = tower_height(scene) if target is None else target
            if abs(tower_height(scene) - target) > 1e-6:
                continue
        variants = _variants(blocks, heavy, len(stimuli) // (2 if mass_variants else 1), scene)
        outcomes = _no_noise_outcomes(variants)
        if outcomes is None:
            rejected_ambiguous += 1
            continue
        if balanced and not _balance_keeps(outcomes, mass_variants, n_stable, n_fall, n):
            continue
        for (sid, sc), fallen in zip(variants, outcomes):
            n_stable += fallen == 0
            n_fall += fallen != 0
            stimuli.append(_tower_stimulus(sid, sc, q, fallen, seed, mass_variants))
    meta = {"generator": "ipe.stimuli.towers.generate_towers", "seed": seed, "n_blocks": n_blocks,
            "same_height": same_height if isinstance(same_height, bool) else float(same_height),
            "mass_variants": mass_variants, "balanced": balanced, "candidates": candidates,
            "rejected_ambiguous": rejected_ambiguous}
    return StimulusSet(stimuli=tuple(stimuli), name=_set_name(mass_variants, balanced), metadata=meta)


def _set_name(mass_variants: bool, balanced: bool) -> str:
    return "bht_towers" + ("_mass" if mass_variants else "") + ("_balanced" if balanced else "")
