"""Which module may know which: each layer imports only its own layer and the layers below it.

docs/architecture.md draws these layers; this test keeps the drawing true. Imports under ``TYPE_CHECKING`` and
inside functions count too: a cycle hidden from the interpreter is still a cycle for the reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "airflow_provider_browsersessions"

#: Top to bottom: the second part of each module's dotted name (its file or folder in the package).
LAYERS: list[tuple[str, frozenset[str]]] = [
    ("what Airflow runs", frozenset({"operators", "sensors", "triggers", "plugins", "links"})),
    ("the hooks (the facade)", frozenset({"hooks"})),
    ("the client", frozenset({"client"})),
    ("decisions without I/O", frozenset({"waiting", "watching", "closing", "summary", "xcom"})),
    ("the wire", frozenset({"platforms", "paging", "pacing", "transport", "response_body", "hostnames"})),
    (
        "the model, the errors and the facts",
        frozenset({"sessions", "exceptions", "compat", "warning_log", "connection_extras", "metrics"}),
    ),
]
#: Not in the stack: the provider's entry point (it names the hooks by dotted path only) and the test tooling.
OUTSIDE = frozenset({"__init__", "testing"})


def _rank(module: str) -> int | None:
    """The layer index of one of the package's modules (0 is the top); None for anything else."""
    parts = module.split(".")
    if parts[0] != PACKAGE.name or len(parts) < 2 or parts[1] in OUTSIDE:
        return None
    if not (PACKAGE / parts[1]).is_dir() and not (PACKAGE / f"{parts[1]}.py").is_file():
        return None  # a name of the package's __init__ (``CONNECTION_TYPES``, ``__version__``): outside
    for rank, (_, names) in enumerate(LAYERS):
        if parts[1] in names:
            return rank
    raise AssertionError(f"{module} is in no layer: place it in LAYERS (and in docs/architecture.md's drawing)")


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        dotted = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        found.append((dotted, path))
    return found


def _imports(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text())
    named: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            named += [(node.module, node.lineno)] + [(f"{node.module}.{a.name}", node.lineno) for a in node.names]
        elif isinstance(node, ast.Import):
            named += [(alias.name, node.lineno) for alias in node.names]
    return named


def test_every_module_of_the_package_has_a_layer():
    placed = [module for module, _ in _modules() if _rank(module) is not None]
    assert len(placed) > 30, "the scan sees the package's modules"


@pytest.mark.parametrize(("module", "path"), _modules(), ids=[module for module, _ in _modules()])
def test_a_module_imports_no_layer_above_its_own(module, path):
    own = _rank(module)
    if own is None:
        return
    upward = [
        f"line {line}: {name} ({LAYERS[rank][0]})"
        for name, line in _imports(path)
        if (rank := _rank(name)) is not None and rank < own
    ]
    assert upward == [], f"{module} ({LAYERS[own][0]}) reaches up"


def test_the_client_module_imports_nothing_of_the_hooks():
    # One direction between hook and client: the hooks build the client, never the other way round, not
    # even for type checking.
    imported = [name for name, _ in _imports(PACKAGE / "client.py")]
    assert imported, "the scan sees the module's imports"
    assert [name for name in imported if "hooks" in name.split(".")] == []


def test_the_layer_check_sees_an_upward_import(tmp_path):
    # The check itself can fail: a wire module that imports a hook is reported.
    wire = tmp_path / "transport.py"
    wire.write_text(f"from {PACKAGE.name}.hooks.base import BrowserSessionsHook\n")
    names = [name for name, _ in _imports(wire)]
    assert min(rank for name in names if (rank := _rank(name)) is not None) < _rank(f"{PACKAGE.name}.transport")
