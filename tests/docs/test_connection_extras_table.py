"""docs/connections.md's table of common extras lists the code's table: the same names, order and defaults."""

from __future__ import annotations

import re
from pathlib import Path

from airflow_provider_browsersessions.connection_extras import COMMON_EXTRAS

PAGE = Path(__file__).parents[2] / "docs" / "connections.md"
ROW = re.compile(r"^\| `(\w+)` \| `([^`]+)`[^|]* \|", re.MULTILINE)


def _documented() -> list[tuple[str, str]]:
    text = PAGE.read_text()
    section = text.split("## Extras common to all", 1)[1].split("\n## ", 1)[0]
    return ROW.findall(section)


def test_the_docs_table_of_extras_is_the_codes_table():
    documented = _documented()
    assert documented, "the table was found"
    assert documented == [(name, extra.default_text) for name, extra in COMMON_EXTRAS.items()]
