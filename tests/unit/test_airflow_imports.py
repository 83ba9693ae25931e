"""Version differences stay in one place: the package imports Airflow only through paths both 2.11 and 3.x have."""

from __future__ import annotations

import ast
from pathlib import Path

import airflow_provider_browsersessions

PACKAGE = Path(airflow_provider_browsersessions.__file__).parent
# Paths that exist with the same meaning on Airflow 2.11 and 3.x.
PORTABLE = {"airflow.providers.common.compat.sdk", "airflow.triggers.base"}
# The one module allowed to look at the Airflow version or import anything else from Airflow.
COMPAT_MODULE = PACKAGE / "compat.py"
# The UI view runs only inside Airflow 3's API server, which it extends: its modules use that server's own
# auth manager, security dependencies and models. The plugin module itself is imported by every Airflow
# process, 2.11 included, so it keeps to the portable paths.
API_SERVER_MODULES = {
    path
    for path in (PACKAGE / "plugins").glob("*.py")
    if path.name not in ("browser_sessions_plugin.py", "__init__.py")
}


def airflow_imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [(node.lineno, name) for name in names if name == "airflow" or name.startswith("airflow.")]
    return found


def test_every_module_imports_airflow_only_through_portable_paths():
    offending = [
        f"{path.relative_to(PACKAGE)}:{line} imports {name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != COMPAT_MODULE and path not in API_SERVER_MODULES
        for line, name in airflow_imports(path)
        if name not in PORTABLE
    ]
    assert offending == []


def test_only_the_compat_module_checks_the_airflow_version():
    checks = [
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != COMPAT_MODULE and ("AIRFLOW_V_" in path.read_text() or "__version__ as AIRFLOW" in path.read_text())
    ]
    assert checks == []


def test_the_scan_sees_imports():
    # The scan itself must find what is there, or the two tests above would pass vacuously.
    assert (7, "airflow") in airflow_imports(COMPAT_MODULE)
    assert any(
        name.startswith("airflow.api_fastapi") for path in API_SERVER_MODULES for _, name in airflow_imports(path)
    )
    sensor = PACKAGE / "sensors" / "sessions.py"
    assert any(name == "airflow.providers.common.compat.sdk" for _, name in airflow_imports(sensor))
