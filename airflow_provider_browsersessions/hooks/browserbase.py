"""Hook for Browserbase sessions (connection type ``browserbase``)."""

from __future__ import annotations

from typing import ClassVar

from airflow_provider_browsersessions.hooks.base import BrowserSessionsHook
from airflow_provider_browsersessions.platforms.browserbase import DEFAULT_BASE_URL, BrowserbasePlatform

__all__ = ["BrowserbaseHook"]


class BrowserbaseHook(BrowserSessionsHook):
    """
    Lists, reads and releases Browserbase sessions (Sessions API).

    The connection's Password is the API key (sent as ``X-BB-API-Key``; the key implies the project); Host,
    when set, replaces the base URL ``https://api.browserbase.com``. ``status`` and ``metadata`` are
    filtered by the server; time, duration, bandwidth and error filters are applied to the normalized
    sessions; zone, URL and captcha filters are refused. The list does not page: one answer holds every
    matching session, bounded by the connection's ``max_response_bytes``.

    :param conn_id: The ``browserbase`` connection id.
    :param page_size: Accepted for symmetry with the other platforms; the API does not page.
    :param retry: Retry policy overriding the connection's extras.
    """

    default_conn_name: ClassVar[str] = "browserbase_default"
    conn_type: ClassVar[str] = "browserbase"
    hook_name: ClassVar[str] = "Browserbase"
    default_base_url: ClassVar[str] = DEFAULT_BASE_URL
    credential_name: ClassVar[str] = "API key"

    def auth_headers(self) -> tuple[dict[str, str], tuple[str, ...]]:
        """``X-BB-API-Key: <API key>``."""
        key = (self.connection.password or "").strip()
        if not key:
            raise self.config_problem("no API key: put the Browserbase API key in the Password field")
        self.header_credential(key, field="Password")
        return {"X-BB-API-Key": key}, (key,)

    def build_platform(self) -> BrowserbasePlatform:
        """Browserbase needs nothing from the connection beyond the key (it implies the project)."""
        return BrowserbasePlatform()

    def auth_fix(self) -> str:
        """Point at the API key."""
        return "Check the Password field: it must hold an API key from your Browserbase project settings."
