"""Helpers shared by the tests that run the documentation's code blocks (tests/docs/, tests/studies/test_course_lab.py).

A test module never imports another test module; what several of them need lives here.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"


def blocks(path: Path, lang: str) -> list[str]:
    """The bodies of the fenced blocks of one language, in order (indented fences included)."""
    text = path.read_text(encoding="utf-8")
    out = []
    for m in re.finditer(r"^( *)```(\w*)[^\n]*\n(.*?)^\1```", text, re.MULTILINE | re.DOTALL):
        indent, kind, body = m.group(1), m.group(2), m.group(3)
        if kind == lang:
            out.append("\n".join(line[len(indent):] for line in body.splitlines()))
    return out
