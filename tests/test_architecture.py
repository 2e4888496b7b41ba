"""The layering contract of ``docs/architecture.md``: imports point down, and no module is part of an import cycle.

The layers are declared once, in ``pyproject.toml`` (``[tool.importlinter]``); ``lint-imports`` checks them from
the command line, and this test reads the same declaration and checks it with import-linter's contracts on a grimp
import graph (built in Rust: ~30 ms, nothing cached on disk). On top of the contracts it checks that the module
graph has no cycle at all (a package ``__init__`` that imports a submodule which imports the package is a cycle the
``acyclic_siblings`` contract does not see). Imports inside functions count: hiding an import in a function does
not take it out of the graph.

The second half shows that the check can fail: on a copy of the package in a temporary folder (the real tree is
never touched) it reports an upward import, a cycle inside one layer, and a module that no layer names.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import grimp
import importlinter.api  # noqa: F401  (configures import-linter before its contracts are used)
import pytest
from importlinter.contracts.acyclic_siblings import AcyclicSiblingsContract
from importlinter.contracts.forbidden import ForbiddenContract
from importlinter.contracts.independence import IndependenceContract
from importlinter.contracts.layers import LayersContract

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
CONTRACT_TYPES = {"layers": LayersContract, "acyclic_siblings": AcyclicSiblingsContract,
                  "forbidden": ForbiddenContract, "independence": IndependenceContract}

# Imports allowed to break the contract, each with its reason. Empty: the redesign (#22) removed the last ones
# (scene <-> queries <-> world, montecarlo <-> adaptive, the cli package, report <-> video, video.robust <->
# video.readout). The test fails as soon as an entry is no longer needed, so this list can only shrink.
KNOWN_VIOLATIONS: dict[str, str] = {}


def read_contracts() -> tuple[dict, list[dict]]:
    """import-linter's session options and the contracts, as ``lint-imports`` reads them from pyproject.toml."""
    config = importlinter.api.read_configuration(str(PYPROJECT))
    return config["session_options"], config["contracts_options"]


def build_graph() -> grimp.ImportGraph:
    """The import graph of the ``ipe`` that ``import ipe`` would find now (see :func:`package_copy`)."""
    return grimp.build_graph("ipe", cache_dir=None)


def describe_layers(metadata: dict) -> list[str]:
    out = []
    for dep in sorted(metadata["invalid_dependencies"], key=lambda d: (d["importer"], d["imported"])):
        for route in dep["routes"]:
            links = " -> ".join(f"{link['importer']} (l.{','.join(map(str, link['line_numbers']))})"
                                for link in route["chain"])
            out.append(f"upward import: {dep['importer']} may not import {dep['imported']}: "
                       f"{links} -> {route['chain'][-1]['imported']}")
    out += [f"not in any layer: {m} (add it to [tool.importlinter] layers in pyproject.toml)"
            for m in sorted(metadata["undeclared_modules"])]
    return out


def describe_cycle_breakers(metadata: dict) -> list[str]:
    return [f"the children of {package} import each other in a cycle; it would break without "
            + ", ".join(f"{importer} -> {imported}" for importer, imported in sorted(breakers))
            for package, breakers in sorted(metadata["cycle_breakers_by_package"].items())]


def module_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of the module graph with more than one module (Tarjan)."""
    deps = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in deps[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for m in sorted(deps):
        if m not in index:
            visit(m)
    return sorted(cycles)


def check_architecture(allowed=KNOWN_VIOLATIONS) -> list[str]:
    """Every way the package breaks the declared contracts, ``allowed`` imports ignored; [] when it keeps them."""
    session_options, contracts = read_contracts()
    problems = []
    for options in contracts:
        contract_options = {**options, "ignore_imports": [*options.get("ignore_imports", []), *allowed],
                            "unmatched_ignore_imports_alerting": "none"}
        contract = CONTRACT_TYPES[options["type"]](name=options["name"], session_options=session_options,
                                                   contract_options=contract_options)
        result = contract.check(build_graph(), verbose=False)  # a fresh graph: the check removes ignored imports
        if not result.kept:
            describe = describe_layers if options["type"] == "layers" else describe_cycle_breakers
            problems += [f"[{options['name']}] {p}" for p in describe(result.metadata)] or [
                f"[{options['name']}] broken"]
    graph = build_graph()
    for expression in allowed:
        for imp in graph.find_matching_direct_imports(import_expression=expression):
            graph.remove_import(importer=imp["importer"], imported=imp["imported"])
    problems += [f"[no module import cycles] cycle: {' <-> '.join(c)}" for c in module_cycles(graph)]
    return problems


def test_imports_point_down_and_form_no_cycle():
    problems = check_architecture()
    assert not problems, "the layering contract (docs/architecture.md) is broken:\n" + "\n".join(problems)


def test_known_violations_are_still_needed():
    """An allow-list entry that the package no longer needs must go: the list only ever shrinks."""
    unneeded = [e for e in KNOWN_VIOLATIONS
                if not check_architecture({k: v for k, v in KNOWN_VIOLATIONS.items() if k != e})]
    assert not unneeded, ("remove these entries from KNOWN_VIOLATIONS in tests/test_architecture.py, the package "
                          f"keeps the contract without them: {unneeded}")


# --- the check fails where it must ------------------------------------------------------------------------------

@pytest.fixture
def package_copy(tmp_path, monkeypatch):
    """A copy of ``ipe/`` in ``tmp_path`` that grimp finds instead of the real package (for this test only)."""
    shutil.copytree(ROOT / "ipe", tmp_path / "ipe", ignore=shutil.ignore_patterns("__pycache__", "static"))
    monkeypatch.delitem(sys.modules, "ipe")  # grimp looks the package up like `import ipe` would
    monkeypatch.syspath_prepend(str(tmp_path))
    assert Path(importlib.util.find_spec("ipe").origin).is_relative_to(tmp_path)
    return tmp_path / "ipe"


def append(path: Path, line: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + "\n" + line + "\n", encoding="utf-8")


def test_copy_keeps_the_contract(package_copy):
    assert check_architecture() == []


def test_an_upward_import_breaks_the_contract(package_copy):
    append(package_copy / "errors.py", "from . import cli  # upward: the foundation imports the command line")
    problems = check_architecture()
    assert any(p.startswith("[ipe: imports point down] upward import: ipe.errors may not import ipe.cli")
               for p in problems), problems


def test_an_upward_import_inside_a_function_breaks_the_contract(package_copy):
    append(package_copy / "scene.py", "def _lazy():\n    from .montecarlo import simulate\n    return simulate")
    problems = check_architecture()
    assert any("ipe.scene may not import ipe.montecarlo" in p for p in problems), problems


def test_a_cycle_within_a_layer_breaks_the_contract(package_copy):
    # errors and progress share the foundation layer, so the layers contract allows either direction; not both.
    append(package_copy / "errors.py", "from . import progress")
    append(package_copy / "progress.py", "from . import errors")
    problems = check_architecture()
    assert any(p.startswith("[ipe: no import cycles between sibling modules] the children of ipe import each other")
               for p in problems), problems
    assert any("cycle: ipe.errors <-> ipe.progress" in p for p in problems), problems


def test_a_module_in_no_layer_breaks_the_contract(package_copy):
    (package_copy / "newconcept.py").write_text('"""A new module that nobody placed in a layer."""\n')
    problems = check_architecture()
    assert any("not in any layer: ipe.newconcept" in p for p in problems), problems
