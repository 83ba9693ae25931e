"""Fail when a name a public module declares in ``__all__`` is missing from the built API reference (``make docs``)."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

from sphinx.util.inventory import InventoryFile

from airflow_provider_browsersessions import CONNECTION_TYPES

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "reference.md"


def public_modules() -> list[str]:
    """
    The modules users import from: those docs/reference.md documents, and every registered hook module.

    The reference is the one list; internals (the wire logic, transports, paging, the shared poll, the UI
    plugin, the emulator's parts) are left out of it on purpose. A hook module the provider registers but
    the reference leaves out is still checked, so its names show up as missing.
    """
    listed = re.findall(r"^\.\. automodule:: (\S+)$", REFERENCE.read_text(encoding="utf-8"), flags=re.MULTILINE)
    hooks = {entry["hook-class-name"].rpartition(".")[0] for entry in CONNECTION_TYPES}
    return listed + sorted(hooks - set(listed))


def declared(modules: list[str]) -> tuple[set[str], list[str]]:
    """``module.name`` for every name in a public module's ``__all__``, and the public modules without one."""
    names: set[str] = set()
    undeclared: list[str] = []
    for module_name in modules:
        public = getattr(importlib.import_module(module_name), "__all__", None)
        if public is None:
            undeclared.append(module_name)
        else:
            names.update(f"{module_name}.{name}" for name in public)
    return names, undeclared


def documented(inventory: Path) -> set[str]:
    """Every Python object the built site indexes (classes, exceptions, functions, data, ...)."""
    with inventory.open("rb") as stream:
        data = InventoryFile.load(stream, "", lambda base, uri: uri)
    return {name for role, entries in data.items() if role.startswith("py:") for name in entries}


def main() -> int:
    build = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/_build/html")
    modules = public_modules()
    names, undeclared = declared(modules)
    missing = sorted(names - documented(build / "objects.inv"))
    for module_name in undeclared:
        print(f"Public module without __all__: {module_name}")
    if missing:
        print("Names in a public module's __all__ missing from the API reference (docs/reference.md):")
        for name in missing:
            print(f"  {name}")
    if undeclared or missing:
        return 1
    print(f"API reference: all {len(names)} public names of {len(modules)} modules documented.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
