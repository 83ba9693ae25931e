"""The hook registry is CONNECTION_TYPES: one list names each connection type's hook class."""

from __future__ import annotations

import pytest

from airflow_provider_browsersessions import CONNECTION_TYPES, get_provider_info
from airflow_provider_browsersessions.exceptions import InvalidQueryError
from airflow_provider_browsersessions.hooks.base import hook_class_for_conn_type


@pytest.mark.parametrize("entry", CONNECTION_TYPES, ids=lambda e: e["connection-type"])
def test_each_connection_type_resolves_to_the_hook_it_names(entry):
    hook = hook_class_for_conn_type(entry["connection-type"])
    assert f"{hook.__module__}.{hook.__qualname__}" == entry["hook-class-name"]
    assert hook.conn_type == entry["connection-type"]


def test_the_provider_info_lists_the_hook_modules_of_the_connection_types():
    (hooks,) = get_provider_info()["hooks"]
    assert sorted(hooks["python-modules"]) == sorted(e["hook-class-name"].rpartition(".")[0] for e in CONNECTION_TYPES)


def test_another_connection_type_is_refused_naming_the_allowed_ones():
    with pytest.raises(
        InvalidQueryError, match="brightdata or browserbase or cloudflare_browser_rendering, not 'http'"
    ):
        hook_class_for_conn_type("http")
