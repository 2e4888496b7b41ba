"""Every code block in the tutorials and how-to guides runs.

* ```python blocks of each page run in order in one namespace (a reader
  pasting them into one session), in a temporary directory (the
  first-experiment tutorial, which fits with NUTS, only with ``pytest -m slow``;
  by default its blocks are compiled);
* ```bash blocks that run an experiment script must name a script in
  ``experiments/`` with options it accepts (the scripts themselves are run by
  ``tests/studies/test_experiments.py``); other ```bash blocks must be ``ipe``
  commands whose subcommand exists.

The block extraction is ``blocks`` in ``tests/docs_helpers.py``, shared with ``tests/docs/test_examples.py``.
"""

from __future__ import annotations

import contextlib
import io
import shlex
import subprocess
import sys

import pytest

from docs_helpers import DOCS, blocks

ROOT = DOCS.parent
PAGES = sorted(str(p.relative_to(DOCS)) for d in ("tutorials", "how-to") for p in (DOCS / d).glob("*.md"))
PYTHON_PAGES = [p for p in PAGES if blocks(DOCS / p, "python")]
# Pages whose blocks fit the noise with NUTS and compare models: a minute or more even at the tutorial's tiny
# sizes, so they run with `pytest -m slow`; by default they are only compiled.
SLOW_PAGES = {"tutorials/first-experiment.md"}


def test_pages_found():
    assert "tutorials/first-experiment.md" in PYTHON_PAGES


@pytest.mark.parametrize("page", PYTHON_PAGES)
def test_python_blocks_compile(page):
    for i, src in enumerate(blocks(DOCS / page, "python")):
        compile(src, f"{page}[python block {i}]", "exec")


@pytest.mark.parametrize("page", [pytest.param(p, marks=pytest.mark.slow) if p in SLOW_PAGES else p
                                  for p in PYTHON_PAGES])
def test_python_blocks_run(page, tmp_path, monkeypatch):
    monkeypatch.setenv("IPE_NO_PROGRESS", "1")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    for i, src in enumerate(blocks(DOCS / page, "python")):
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(src, f"{page}[python block {i}]", "exec"), namespace)


def _commands(page: str) -> list[list[str]]:
    out = []
    for src in blocks(DOCS / page, "bash"):
        for line in src.splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#"):
                out.append(shlex.split(line))
    return out


@pytest.mark.parametrize("page", PAGES)
def test_bash_blocks_name_real_commands(page):
    from typer.testing import CliRunner

    from ipe.cli import app

    for argv in _commands(page):
        if argv[0] == "python" and argv[1].startswith("experiments/"):
            script = ROOT / argv[1]
            assert script.is_file(), f"{page}: {argv[1]} does not exist"
            if len(argv) > 2:
                helptext = subprocess.run([sys.executable, str(script), "--help"], capture_output=True,
                                          text=True, timeout=120).stdout
                for opt in argv[2:]:
                    if opt.startswith("--"):
                        assert opt.split("=")[0] in helptext, f"{page}: {argv[1]} has no option {opt}"
        elif argv[0] == "ipe":
            words = argv[1:3]
            words = words[:next((i for i, w in enumerate(words) if w.startswith("-")), len(words))]
            res = CliRunner().invoke(app, [*words, "--help"])
            assert res.exit_code == 0, f"{page}: `{' '.join(argv[:3])}` is not an ipe command: {res.output}"
        elif argv[0] == "pip":
            continue
        else:
            pytest.fail(f"{page}: unexpected command in a bash block: {' '.join(argv)}")
