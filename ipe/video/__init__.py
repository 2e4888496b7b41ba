"""Video models on the same stimuli as people and the IPE.

* :mod:`ipe.video.frames` — flat-colour MP4 renders with a fixed camera and a ``colours.json`` sidecar;
* :mod:`ipe.video.readout` — any video → body tracks → the IPE's judgments (same table as ``ipe predict``);
* :mod:`ipe.video.external` — judgments made elsewhere (a CSV, or a folder of generated videos);
* :mod:`ipe.video.models` — torch baselines: a PhysNet-style CNN and a small SimVP-style video predictor;
* :mod:`ipe.video.slots` — an object-centric stochastic video predictor (learned dynamics over block slots).

See ``docs/video-models.md``.
"""

from __future__ import annotations

from .frames import Camera, body_colours, render_videos, video_palette

__all__ = ["Camera", "body_colours", "render_videos", "video_palette"]
