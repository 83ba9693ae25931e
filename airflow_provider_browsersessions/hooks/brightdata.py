"""Hook for Bright Data's Browser API sessions (connection type ``brightdata``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from airflow_provider_browsersessions.hooks.base import BrowserSessionsHook
from airflow_provider_browsersessions.platforms.brightdata import DEFAULT_BASE_URL, BrightDataPlatform

if TYPE_CHECKING:
    from airflow_provider_browsersessions.exceptions import NotFoundError

__all__ = ["BrightDataBrowserHook"]

# The API's own 404 text for an unknown id (its reference: {"error": "Session not found", "session_id": ...}).
_SESSION_NOT_FOUND = "Session not found"


class BrightDataBrowserHook(BrowserSessionsHook):
    """
    Lists and reads Bright Data Browser API sessions (Browser Sessions API).

    The connection's Password is the API key (sent as a Bearer token); Host, when set, replaces the
    base URL ``https://api.brightdata.com``. Every filter the API knows is pushed down to it.

    :param conn_id: The ``brightdata`` connection id.
    :param page_size: Page size for listings, at most 100 (default 100).
    :param retry: Retry policy overriding the connection's extras.
    """

    default_conn_name: ClassVar[str] = "brightdata_default"
    conn_type: ClassVar[str] = "brightdata"
    hook_name: ClassVar[str] = "Bright Data Browser API"
    default_base_url: ClassVar[str] = DEFAULT_BASE_URL
    credential_name: ClassVar[str] = "API key"

    def auth_headers(self) -> tuple[dict[str, str], tuple[str, ...]]:
        """``Authorization: Bearer <API key>``."""
        key = (self.connection.password or "").strip()
        if not key:
            raise self.config_problem("no API key: put the Bright Data API key in the Password field")
        self.header_credential(key, field="Password")
        return {"Authorization": f"Bearer {key}"}, (key,)

    def build_platform(self) -> BrightDataPlatform:
        """Bright Data needs nothing from the connection beyond credentials."""
        return BrightDataPlatform()

    def is_unknown_session(self, error: NotFoundError) -> bool:
        """
        Only the API's own "Session not found" body means the session is unknown.

        A 404 from a proxy, a load balancer or a wrong base URL says nothing about the session: it is
        raised, never read as a watched session that vanished (which a wait would count as ended).
        """
        return error.api_message.strip().casefold() == _SESSION_NOT_FOUND.casefold()

    def auth_fix(self) -> str:
        """Point at the API key."""
        return "Check the Password field: it must hold an API key from your Bright Data account settings."
