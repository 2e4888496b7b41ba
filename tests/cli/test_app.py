"""The ``ipe`` application: ``--help`` on every command, ``--version``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import ipe.cli
from ipe.cli import main


@pytest.mark.parametrize("cmd", [[], ["stimuli"], ["stimuli", "towers"], ["predict"], ["render"], ["validate"],
                                 ["demo"]])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_works_on_every_command(cmd, flag, capsys):
    assert main(cmd + [flag]) == 0
    out = capsys.readouterr().out
    assert "Usage" in out
    if cmd:
        assert cmd[-1] in out


def test_version(capsys):
    import ipe

    rc = main(["--version"])
    cap = capsys.readouterr()
    out, err = cap.out, cap.err
    assert rc == 0 and err == ""
    assert re.fullmatch(rf"ipe {re.escape(ipe.__version__)} \(Python \d+\.\d+\.\d+, pymunk \S+, torch \S+, "
                        r"pyro-ppl \S+\)\n", out), out



CLI = Path(ipe.cli.__file__).parent


def _cli_imports(path: Path) -> set[str]:
    """The ``ipe.cli`` modules ``path`` imports (``from . import x``, ``from .x import y``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module} if node.module else {a.name for a in node.names}
    return found


def test_the_cli_package_has_no_import_cycle():
    """Only ``ipe/cli/__init__.py`` imports the command modules; no module imports the package itself, and the
    modules' imports of each other form no cycle (it used to: __init__ -> register -> fit -> __init__)."""
    graph = {p.stem: _cli_imports(p) for p in CLI.glob("*.py") if p.stem not in ("__init__", "__main__")}
    for name, deps in graph.items():
        assert "__init__" not in deps and not deps - set(graph), (name, deps)
    seen: dict[str, int] = {}

    def visit(node: str) -> None:  # depth-first search: 1 = on the stack, 2 = done
        seen[node] = 1
        for dep in graph[node]:
            assert seen.get(dep) != 1, f"import cycle through ipe.cli.{node} -> ipe.cli.{dep}"
            if dep not in seen:
                visit(dep)
        seen[node] = 2

    for node in graph:
        if node not in seen:
            visit(node)


def test_help_lists_the_commands_in_their_order(capsys):
    assert main(["--help"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.split("Commands:")[1].strip().splitlines()]
    assert listed == ["predict", "render", "validate", "demo", "fit", "compare", "fit-landing", "sweep", "stimuli",
                      "cache", "infer", "humans", "datasets", "experiment", "video", "plot"]
