"""``ipe stimuli towers|plinko``: generated stimulus sets, written as stimulus-set JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..validation import POSITIVE_NUMBER, check
from .app import group
from .common import SeedOption, check_out, note

stimuli_app = group("stimuli", "Generate stimulus sets.")


@stimuli_app.command("towers")
def stimuli_towers(
    out: Annotated[Path, typer.Option("--out", "-o", help="Stimulus-set JSON file to write.")],
    n: Annotated[int, typer.Option("--n", min=1, help="Number of stimuli.")] = 20,
    seed: SeedOption = 0,
    blocks: Annotated[int, typer.Option("--blocks", min=1, help="Blocks per tower.")] = 10,
    same_height: Annotated[bool, typer.Option("--same-height", help="Make every tower equally tall.")] = False,
    height: Annotated[Optional[float], typer.Option("--height", help="Height (m) for --same-height.")] = None,
    mass_variants: Annotated[bool, typer.Option(
        "--mass-variants", help="Heavy/light blocks (10:1), each tower in both assignments.")] = False,
    balanced: Annotated[bool, typer.Option(
        "--balanced", help="Half stable, half falling under the no-noise model.")] = False,
    query: Annotated[str, typer.Option("--query", help="Query every stimulus asks.")] = "fall",
) -> None:
    """Generate Battaglia-Hamrick-Tenenbaum style block towers."""
    from ..scenefile import save_stimuli
    from ..stimuli.towers import generate_towers

    check_out(out)
    sh: bool | float = same_height if height is None else check("--height", height, POSITIVE_NUMBER)
    stimuli = generate_towers(n, seed=seed, n_blocks=blocks, same_height=sh, mass_variants=mass_variants,
                              balanced=balanced, query=query)
    save_stimuli(stimuli, out)
    n_stable = sum(bool(s.metadata.get("stable")) for s in stimuli)
    note(f"wrote {len(stimuli)} stimuli ({n_stable} stable under the no-noise model) to {out}")


@stimuli_app.command("plinko")
def stimuli_plinko(
    out: Annotated[Path, typer.Option("--out", "-o", help="Stimulus-set JSON file to write.")],
    n: Annotated[int, typer.Option("--n", min=1, help="Number of stimuli.")] = 12,
    seed: SeedOption = 0,
    obstacles: Annotated[int, typer.Option("--obstacles", min=1, max=6, help="Polygon obstacles per world.")] = 3,
) -> None:
    """Generate Plinko worlds (pixel units): a ball drops through a hole in a box's lid among polygon obstacles."""
    from ..scenefile import save_stimuli
    from ..stimuli.plinko import PlinkoOptions, generate_plinko

    check_out(out)
    stimuli = generate_plinko(n, seed=seed, options=PlinkoOptions(n_obstacles=obstacles))
    save_stimuli(stimuli, out, name=stimuli.name)
    note(f"wrote {len(stimuli)} Plinko stimuli to {out}")
