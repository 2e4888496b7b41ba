"""The documentation site builds with ``mkdocs build --strict``: no warnings (broken links, bad anchors,
pages missing from the nav, docstrings mkdocstrings cannot render).

Skipped when mkdocs (the ``dev`` extra: mkdocs-material, mkdocstrings[python]) is not installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("mkdocs")
pytest.importorskip("mkdocstrings")
pytest.importorskip("material")


def build(site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)


def test_mkdocs_build_strict(tmp_path):
    site = tmp_path / "site"
    proc = build(site)
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith(("WARNING", "ERROR"))]
    assert proc.returncode == 0 and not warnings, "\n".join(warnings) or proc.stderr[-3000:]
    # The pages exist, and the API reference was rendered from the docstrings.
    for page in ("index.html", "getting-started/index.html", "concepts/index.html", "scene-format/index.html",
                 "data-format/index.html", "fitting/index.html", "mental-jenga/index.html",
                 "reference/model/index.html", "tutorials/first-experiment/index.html"):
        assert (site / page).is_file(), page
    model_page = (site / "reference" / "model" / "index.html").read_text(encoding="utf-8")
    assert "ground_truth" in model_page and "A noisy-simulation observer" in model_page


def test_repository_links_are_rewritten_only_when_the_file_exists():
    sys.path.insert(0, str(ROOT))
    import mkdocs_hooks

    docs = ROOT / "docs"
    assert mkdocs_hooks._rewrite("see [the README](../README.md#install).", docs) == \
        "see the README (`README.md` in the repository)."
    for line in ("[gone](../no_such_file.md)", "[page](concepts.md#seeding)", "[web](https://example.org/x.md)",
                 "![img](images/demo.png)"):
        assert mkdocs_hooks._rewrite(line, docs) == line
