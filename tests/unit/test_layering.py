"""Which module may know which: the hooks build the sessions client, never the other way round."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[2] / "airflow_provider_browsersessions"


def test_the_client_module_imports_nothing_of_the_hooks():
    # One direction between hook and client: the hooks build the client, never the other way round, not
    # even for type checking.
    tree = ast.parse((PACKAGE / "client.py").read_text())
    imported = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert imported, "the scan sees the module's imports"
    assert [name for name in imported if "hooks" in name.split(".")] == []
