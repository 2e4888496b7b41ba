"""``ipe render``: a picture of every stimulus's first frame, or with ``--video`` the videos for video models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputError
from .app import app
from .common import NoEarlyStopOption, ProgressOption, check_out_dir, note
from .noise import check_noise


@app.command("render")
def render(
    stimuli: Annotated[Path, typer.Argument(help="Stimulus-set JSON file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for one PNG per stimulus.")],
    size: Annotated[int, typer.Option("--size", min=16, max=4096, help="Image size in pixels.")] = 400,
    video: Annotated[bool, typer.Option(
        "--video", help="Videos for video models: first-frame PNG, conditioning clip, MP4 rollouts, colours.json "
                        "(see docs/video-models.md).")] = False,
    samples: Annotated[int, typer.Option("--samples", "-n", min=0, help="With --video: noisy rollouts per stimulus.")] = 0,
    sigma: Annotated[float, typer.Option("--sigma", help="With --video: perceptual noise σ of the samples.")] = 0.0,
    phi: Annotated[float, typer.Option("--phi", help="With --video: force noise φ of the samples.")] = 0.0,
    mu: Annotated[float, typer.Option("--mu", help="With --video: mass noise μ of the samples.")] = 0.0,
    fps: Annotated[float, typer.Option("--fps", help="With --video: frames per second (must divide the physics "
                                                     "rate, 240 by default).")] = 30.0,
    cond_frames: Annotated[int, typer.Option("--cond-frames", min=1, help="With --video: frames in the "
                                                                          "conditioning clip.")] = 4,
    seed: Annotated[int, typer.Option("--seed", min=0, help="With --video: seed of the noisy samples.")] = 0,
    no_early_stop: NoEarlyStopOption = False,
    progress: ProgressOption = None,
) -> None:
    """Render the first frame of every stimulus as <out>/<id>.png (with --video: videos for video models)."""
    from ..render import render_stimuli
    from ..scenefile import load_stimuli

    check_out_dir(out)
    if not video and (samples or sigma or phi or mu or no_early_stop):
        raise InputError("--samples, --sigma, --phi, --mu and --no-early-stop need --video")
    noise = check_noise({"sigma": sigma, "phi": phi, "mu": mu})
    stim = load_stimuli(stimuli)
    if video:
        from ..video.frames import render_videos

        manifest = render_videos(stim, out, size=size, fps=fps, samples=samples, seed=seed, cond_frames=cond_frames,
                                 progress=progress, early_stop=not no_early_stop, **noise)
        note(f"wrote {len(manifest)} files for {len(stim)} stimuli and colours.json to {out}")
        return
    paths = render_stimuli(stim, out, size=size, progress=progress)
    note(f"wrote {len(paths)} images to {out}")
