"""Sphinx configuration: MyST Markdown pages, API reference from the package's docstrings."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# autodoc imports the package, which imports Airflow; give Airflow a throwaway home instead of ~/airflow.
_home = tempfile.mkdtemp(prefix="browsersessions-docs-airflow-")
os.environ.setdefault("AIRFLOW_HOME", _home)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{_home}/airflow.db")

from airflow_provider_browsersessions import __version__  # noqa: E402

project = "airflow-provider-browsersessions"
author = "airflow-provider-browsersessions developers"
copyright = "2026, airflow-provider-browsersessions developers"
release = version = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_default_options = {"members": True, "show-inheritance": True, "member-order": "bysource"}
autodoc_typehints = "description"
autodoc_class_signature = "separated"
# Airflow's own classes are documented by Airflow; don't fail the build on references we can't resolve there.
nitpicky = False

html_theme = "furo"
html_title = f"airflow-provider-browsersessions {release}"
