"""Small things a newcomer reaches for (issue 24): the fit-your-data page's example files, and a README that
installs CPU torch first and says how big the install is. (The CLI's parts are in tests/cli/.)"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ipe.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "how-to" / "examples"


def test_fit_your_data_ships_its_example_files(capsys):
    from ipe.humans import load_responses, validate_responses
    from ipe.scenefile import load_stimuli

    page = (EXAMPLES.parent / "fit-your-data.md").read_text()
    for name in ("my_export.csv", "my_export_semicolon.csv", "bad.json"):
        assert (EXAMPLES / name).is_file() and name in page
    demo = load_stimuli(EXAMPLES.parent.parent.parent / "data" / "demo_towers.json")
    mapping = {"participant": "subject", "stimulus_id": "item", "response": "answer"}
    a = validate_responses(load_responses(EXAMPLES / "my_export.csv", mapping), stimuli=demo)
    b = validate_responses(load_responses(EXAMPLES / "my_export_semicolon.csv", mapping), stimuli=demo)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 8 and a["participant"].nunique() == 2
    rc = main(["validate", str(EXAMPLES / "bad.json")])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.splitlines()) == 1 and "stimulus 'tower_001'" in err and "overlap" in err


def test_readme_installs_cpu_torch_first_and_says_how_big():
    root = EXAMPLES.parent.parent.parent
    readme = (root / "README.md").read_text()
    block = readme.split("## Install and run the demo", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    lines = [x.strip() for x in block.strip().splitlines()]
    assert lines[0] == "pip install torch --index-url https://download.pytorch.org/whl/cpu"
    assert lines[1] == "pip install -e ."  # the user's install; the developers' one follows it
    assert re.search(r"\*\*\d\.\d GB\*\* with `pip install -e \.`", readme)
    dev = readme.split("## Develop and test", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    assert [x.strip() for x in dev.strip().splitlines()][:2] == [lines[0], 'pip install -e ".[dev]"']
    lab = (root / "docs" / "tutorials" / "course-lab.md").read_text()
    assert lab.index("--index-url https://download.pytorch.org/whl/cpu") < lab.index("pip install -e .")

