"""Fail when a public class of the package is missing from the built API reference (``make docs`` runs this)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from pathlib import Path

from sphinx.util.inventory import InventoryFile

import airflow_provider_browsersessions

PACKAGE = airflow_provider_browsersessions.__name__


def public_classes() -> set[str]:
    """``module.Class`` for every class defined (not imported) in a module of the package, not underscored."""
    found = set()
    modules = [PACKAGE] + [
        info.name for info in pkgutil.walk_packages(airflow_provider_browsersessions.__path__, prefix=f"{PACKAGE}.")
    ]
    for name in modules:
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if inspect.isclass(value) and value.__module__ == name and not attr.startswith("_"):
                found.add(f"{name}.{attr}")
    return found


def documented(inventory: Path) -> set[str]:
    """Every Python class and exception the built site indexes."""
    with inventory.open("rb") as stream:
        data = InventoryFile.load(stream, "", lambda base, uri: uri)
    return set(data.get("py:class", {})) | set(data.get("py:exception", {}))


def main() -> int:
    build = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/_build/html")
    missing = sorted(public_classes() - documented(build / "objects.inv"))
    if missing:
        print("Public classes missing from the API reference (docs/reference.md):")
        for name in missing:
            print(f"  {name}")
        return 1
    print(f"API reference: all {len(public_classes())} public classes documented.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
