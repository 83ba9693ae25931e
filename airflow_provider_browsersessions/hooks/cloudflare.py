"""Hook for Cloudflare Browser Rendering devtools sessions (connection type cloudflare_browser_rendering)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from airflow_provider_browsersessions.hooks.base import BrowserSessionsHook
from airflow_provider_browsersessions.platforms.cloudflare import DEFAULT_BASE_URL, CloudflarePlatform
from airflow_provider_browsersessions.sessions import DOT_SEGMENTS

if TYPE_CHECKING:
    from airflow_provider_browsersessions.exceptions import NotFoundError

__all__ = ["CloudflareBrowserRenderingHook"]

# Cloudflare's "Could not route to /client/v4/accounts/<id>/..." error: the account id is wrong,
# which must not be mistaken for "this session does not exist".
_NO_ROUTE_CODE = "(code 7003)"


class CloudflareBrowserRenderingHook(BrowserSessionsHook):
    """
    Lists, reads and closes Cloudflare Browser Rendering sessions (devtools session API).

    Authentication: an API token in Password (``Authorization: Bearer``), or the legacy pair — an
    email in Login and the Global API key in Password (``X-Auth-Email`` / ``X-Auth-Key``). The extra
    ``account_id`` is required. Host, when set, replaces ``https://api.cloudflare.com/client/v4``.
    The list endpoint holds *active* sessions and has no server-side filters: status and start-time
    bounds are applied to the normalized sessions; zone, URL, captcha, bandwidth and error filters
    are rejected.

    :param conn_id: The ``cloudflare_browser_rendering`` connection id.
    :param page_size: Page size for listings, at most 200 (default 200).
    :param retry: Retry policy overriding the connection's extras.
    """

    default_conn_name: ClassVar[str] = "cloudflare_browser_rendering_default"
    conn_type: ClassVar[str] = "cloudflare_browser_rendering"
    hook_name: ClassVar[str] = "Cloudflare Browser Run (formerly Browser Rendering)"
    default_base_url: ClassVar[str] = DEFAULT_BASE_URL
    default_path_prefix: ClassVar[str] = "/client/v4"

    def auth_headers(self) -> tuple[dict[str, str], tuple[str, ...]]:
        """Bearer token, or ``X-Auth-Email`` + ``X-Auth-Key`` when Login holds an email."""
        secret = (self.connection.password or "").strip()
        email = (self.connection.login or "").strip()
        if not secret:
            raise self.config_problem(
                "no credentials: put an API token in the Password field "
                "(or an email in Login and the Global API key in Password)"
            )
        self.header_credential(secret, field="Password")
        if email:
            self.header_credential(email, field="Login")
            if "@" not in email:
                raise self.config_problem(
                    f"Login must be the account email for a Global API key, got {email!r}; "
                    "leave Login empty to use an API token"
                )
            return {"X-Auth-Email": email, "X-Auth-Key": secret}, (secret,)
        return {"Authorization": f"Bearer {secret}"}, (secret,)

    def build_platform(self) -> CloudflarePlatform:
        """Cloudflare paths need the account id (extra ``account_id``)."""
        account_id = self.extra_value("account_id")
        if not isinstance(account_id, str) or not account_id.strip():
            raise self.config_problem('extra "account_id" is required: {"account_id": "<your account id>"}')
        if account_id.strip() in DOT_SEGMENTS:
            raise self.config_problem(f'extra "account_id" is {account_id.strip()!r}, which no request path can name')
        return CloudflarePlatform(account_id=account_id.strip())

    def is_unknown_session(self, error: NotFoundError) -> bool:
        """A 404 means "unknown session" unless Cloudflare says it cannot route to the account."""
        return _NO_ROUTE_CODE not in error.api_message

    def auth_fix(self) -> str:
        """Point at the token, or at the legacy email + key pair."""
        legacy = bool((self.connection.login or "").strip())
        fields = "Login (email) and Password (Global API key)" if legacy else "Password (API token)"
        return f"Check {fields}; a token needs the 'Browser Rendering Read' permission."

    def not_found_fix(self, error: NotFoundError) -> str:
        """A wrong account id is the usual cause."""
        if _NO_ROUTE_CODE in error.api_message:
            return "Check the extra 'account_id'."
        return super().not_found_fix(error)

    def explain_not_found(self, error: NotFoundError) -> str:
        """A wrong account id is the usual cause."""
        if _NO_ROUTE_CODE in error.api_message:
            return (
                f"Cloudflare does not know account {self.extra_value('account_id')!r} of connection "
                f"{self.conn_id!r} (HTTP 404: {error.api_message}). {self.not_found_fix(error)}"
            )
        return super().explain_not_found(error)
