"""The examples in the documentation are real.

* Every ```json block in ``docs/scene-format.md`` is a complete stimulus-set
  file: it must load with :func:`ipe.load_stimuli` (all validation, overlaps
  included) and simulate under the no-noise model. Fragments on that page are
  marked ```jsonc; they must at least be valid JSON.
* The ```python blocks in ``docs/getting-started.md`` run, in order, in one
  namespace (as a reader would paste them into one session), inside a
  temporary directory.
"""

from __future__ import annotations

import contextlib
import io
import json

import pytest

import ipe
from docs_helpers import DOCS, blocks

# What the text of scene-format.md says each example does under the no-noise model.
NO_NOISE_OUTCOME = {"three_blocks": 0.0, "ball_on_ramp": 1.0, "pull_two_legs": 1.0}


SCENE_JSON = blocks(DOCS / "scene-format.md", "json")


def test_scene_format_has_examples():
    assert len(SCENE_JSON) >= 2
    kinds = {b.get("type", "block") for s in SCENE_JSON for st in json.loads(s)["stimuli"]
             for b in st["scene"]["bodies"]}
    statics = {x["type"] for s in SCENE_JSON for st in json.loads(s)["stimuli"] for x in st["scene"].get("statics", [])}
    assert {"block", "ball"} <= kinds
    assert {"box", "segment"} <= statics


@pytest.mark.parametrize("index", range(len(SCENE_JSON)))
def test_scene_format_json_examples_load_and_run(index, tmp_path, monkeypatch):
    monkeypatch.setenv("IPE_NO_PROGRESS", "1")
    path = tmp_path / f"example_{index}.json"
    path.write_text(SCENE_JSON[index], encoding="utf-8")
    stimuli = ipe.load_stimuli(path)
    assert len(stimuli) >= 1
    # The same document through the in-memory parser.
    from ipe.scenefile import parse_stimulus_set

    assert parse_stimulus_set(json.loads(SCENE_JSON[index])) == stimuli
    table = ipe.IPE.ground_truth(seed=0).predict(stimuli)
    assert list(table["stimulus_id"]) == stimuli.ids
    for sid, mean in zip(table["stimulus_id"], table["mean"]):
        if sid in NO_NOISE_OUTCOME:
            assert mean == NO_NOISE_OUTCOME[sid], sid


def test_scene_format_fragments_are_json():
    for frag in blocks(DOCS / "scene-format.md", "jsonc"):
        json.loads("{" + frag + "}" if not frag.lstrip().startswith("{") else frag)


def test_getting_started_python_blocks_run(tmp_path, monkeypatch):
    monkeypatch.setenv("IPE_NO_PROGRESS", "1")
    monkeypatch.chdir(tmp_path)
    code = blocks(DOCS / "getting-started.md", "python")
    assert code, "no ```python blocks found"
    namespace: dict = {"__name__": "__docs__"}
    for i, src in enumerate(code):
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(src, f"getting-started.md[python block {i}]", "exec"), namespace)
