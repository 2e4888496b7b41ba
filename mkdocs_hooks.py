"""MkDocs hook: links from a docs page to a repository file outside ``docs/``.

Pages are written to read well on GitHub too, where a link such as
``[benchmarks](../benchmarks/README.md)`` opens the repository file. The site
has no such page, so ``mkdocs build --strict`` would stop on it. This hook
rewrites only links whose target **exists** in the repository outside
``docs/`` into the link text followed by the file's path in code
(``benchmarks (`benchmarks/README.md` in the repository)``). A link to a file
that does not exist is left alone, so strict mode still reports it.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DOCS = ROOT / "docs"
LINK = re.compile(r"(?<!!)\[([^\]\n]+)\]\(([^)\s#]+)(#[^)\s]*)?\)")
FENCE = re.compile(r"^( *)(```|~~~)")


def _rewrite(line: str, page_dir: Path) -> str:
    def sub(m: re.Match) -> str:
        text, target = m.group(1), m.group(2)
        if "://" in target or target.startswith(("/", "mailto:")):
            return m.group(0)
        path = (page_dir / target).resolve()
        try:
            rel = path.relative_to(ROOT)
        except ValueError:
            return m.group(0)
        if path.is_relative_to(DOCS) or not path.exists():
            return m.group(0)
        return f"{text} (`{rel.as_posix()}` in the repository)"

    return LINK.sub(sub, line)


def on_page_markdown(markdown: str, page, config, files) -> str:
    page_dir = (DOCS / page.file.src_uri).parent
    out, fenced = [], False
    for line in markdown.split("\n"):
        if FENCE.match(line):
            fenced = not fenced
        out.append(line if fenced else _rewrite(line, page_dir))
    return "\n".join(out)
