"""Apache Airflow provider for hosted headless-browser sessions: Cloudflare Browser Rendering, Bright Data."""

from __future__ import annotations

from typing import Any

__all__ = ["get_provider_info"]

__version__ = "0.1.0"

PACKAGE_NAME = "airflow-provider-browsersessions"

# Extras every connection type of this provider understands; the hooks read them through
# ``hooks.base.ConnectionSettings``. Declared once here so the UI form (Airflow 3 ``conn-fields``)
# and the hooks never disagree about a name.
_COMMON_CONN_FIELDS: dict[str, dict[str, Any]] = {
    "timeout": {
        "label": "Read timeout (seconds)",
        "description": "Seconds to wait for a response before retrying. Default 30.",
        "schema": {"type": ["number", "null"], "minimum": 0},
    },
    "connect_timeout": {
        "label": "Connect timeout (seconds)",
        "description": "Seconds to wait for a TCP/TLS connection. Default 10.",
        "schema": {"type": ["number", "null"], "minimum": 0},
    },
    "max_retries": {
        "label": "Max retries",
        "description": "Retries after the first attempt on 429, 5xx and connection errors. Default 5.",
        "schema": {"type": ["integer", "null"], "minimum": 0},
    },
    "max_retry_wait": {
        "label": "Max total retry wait (seconds)",
        "description": "Upper bound on the time spent waiting between retries of one request. Default 300.",
        "schema": {"type": ["number", "null"], "minimum": 0},
    },
    "verify": {
        "label": "Verify TLS certificates",
        "description": "Set to false only for a trusted proxy with a self-signed certificate (a warning is logged). "
        "Default true.",
        "schema": {"type": ["boolean", "null"]},
    },
    "request_deadline": {
        "label": "Request deadline (seconds)",
        "description": "Seconds one attempt may take end to end: connect, headers and the whole body. Default 60.",
        "schema": {"type": ["number", "null"], "exclusiveMinimum": 0},
    },
    "max_response_bytes": {
        "label": "Max response size (bytes)",
        "description": "Decompressed bytes one answer may have; larger ones fail clearly. Default 33554432 (32 MiB).",
        "schema": {"type": ["integer", "null"], "exclusiveMinimum": 0},
    },
    "pace": {
        "label": "Pace requests by the rate-limit headers",
        "description": "Slow down as the platform's Ratelimit headers say the budget runs out. Default true.",
        "schema": {"type": ["boolean", "null"]},
    },
    "allow_insecure_http": {
        "label": "Allow http:// to a non-loopback host",
        "description": "Send the credentials in clear text to an http:// Base URL that is not loopback. Default false.",
        "schema": {"type": ["boolean", "null"]},
    },
    "max_pages": {
        "label": "Max pages per listing",
        "description": "The most pages one listing fetches before it stops with an error naming this bound. "
        "Default 2000 (200,000 Bright Data sessions).",
        "schema": {"type": ["integer", "null"], "minimum": 1},
    },
    "pages_in_flight": {
        "label": "List pages in flight",
        "description": "How many list pages a listing fetches at once when the walk already knows they are "
        "needed (Bright Data: from the server's total). 1 fetches one page at a time. Default 4.",
        "schema": {"type": ["integer", "null"], "minimum": 1},
    },
}

CONNECTION_TYPES: list[dict[str, Any]] = [
    {
        "hook-class-name": ("airflow_provider_browsersessions.hooks.cloudflare.CloudflareBrowserRenderingHook"),
        "hook-name": "Cloudflare Browser Run (formerly Browser Rendering)",
        "connection-type": "cloudflare_browser_rendering",
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "port"],
            "relabeling": {
                "host": "Base URL",
                "login": "Email (legacy Global API key only)",
                "password": "API token (or Global API key)",
            },
            "placeholders": {
                "host": "https://api.cloudflare.com/client/v4 (default)",
                "login": "Leave empty when the password is an API token",
                "password": "API token with Browser Rendering Read permission",
                "extra": '{"account_id": "<your account id>"}',
            },
        },
        "conn-fields": {
            "account_id": {
                "label": "Account ID",
                "description": "Cloudflare account id (required): the {account_id} in every API path.",
                "schema": {"type": ["string", "null"]},
            },
            **_COMMON_CONN_FIELDS,
        },
    },
    {
        "hook-class-name": "airflow_provider_browsersessions.hooks.brightdata.BrightDataBrowserHook",
        "hook-name": "Bright Data Browser API",
        "connection-type": "brightdata",
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "port", "login"],
            "relabeling": {"host": "Base URL", "password": "API key"},
            "placeholders": {
                "host": "https://api.brightdata.com (default)",
                "password": "Bright Data API key (sent as a Bearer token)",
                "extra": '{"timeout": 30, "max_retries": 5}',
            },
        },
        "conn-fields": dict(_COMMON_CONN_FIELDS),
    },
    {
        "hook-class-name": "airflow_provider_browsersessions.hooks.browserbase.BrowserbaseHook",
        "hook-name": "Browserbase",
        "connection-type": "browserbase",
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "port", "login"],
            "relabeling": {"host": "Base URL", "password": "API key"},
            "placeholders": {
                "host": "https://api.browserbase.com (default)",
                "password": "Browserbase API key (sent as X-BB-API-Key)",
                "extra": '{"timeout": 30, "max_retries": 5}',
            },
        },
        "conn-fields": dict(_COMMON_CONN_FIELDS),
    },
]


def get_provider_info() -> dict[str, Any]:
    """Describe this provider to Airflow's ProvidersManager (entry point ``apache_airflow_provider``)."""
    integration = "Browser Sessions"
    return {
        "package-name": PACKAGE_NAME,
        "name": "Browser Sessions (Cloudflare Browser Rendering, Bright Data Browser API)",
        "description": "Watch hosted headless-browser sessions from Airflow: list, filter, wait, react.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": integration,
                "external-doc-url": "https://developers.cloudflare.com/browser-rendering/",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": integration,
                # The hook modules are those the connection types name: one list, CONNECTION_TYPES.
                "python-modules": [entry["hook-class-name"].rpartition(".")[0] for entry in CONNECTION_TYPES],
            }
        ],
        "operators": [
            {
                "integration-name": integration,
                "python-modules": ["airflow_provider_browsersessions.operators.sessions"],
            }
        ],
        "sensors": [
            {
                "integration-name": integration,
                "python-modules": ["airflow_provider_browsersessions.sensors.sessions"],
            }
        ],
        "triggers": [
            {
                "integration-name": integration,
                "python-modules": [
                    "airflow_provider_browsersessions.triggers.sessions",
                    "airflow_provider_browsersessions.triggers.events",
                ],
            }
        ],
        "connection-types": CONNECTION_TYPES,
        # Airflow 3's "Browser sessions" view; the airflow.plugins entry point (pyproject.toml) loads the same
        # class with default settings, this entry when [core] lazy_discover_providers is False. Airflow 2.11
        # finds None there and skips it.
        "plugins": [
            {
                "name": "browser_sessions",
                "plugin-class": (
                    "airflow_provider_browsersessions.plugins.browser_sessions_plugin.BrowserSessionsPlugin"
                ),
            }
        ],
    }
