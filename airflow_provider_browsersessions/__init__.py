"""Apache Airflow provider for hosted headless-browser sessions: Cloudflare Browser Rendering, Bright Data."""

from __future__ import annotations

from typing import Any

from airflow_provider_browsersessions.connection_extras import COMMON_EXTRAS

__all__ = ["get_provider_info"]

__version__ = "0.1.0"

PACKAGE_NAME = "airflow-provider-browsersessions"

# The extras every connection type of this provider understands, as the UI form (Airflow 3 ``conn-fields``)
# declares them: built from the one table the hooks parse them with (``connection_extras``).
_COMMON_CONN_FIELDS: dict[str, dict[str, Any]] = {name: extra.conn_field() for name, extra in COMMON_EXTRAS.items()}

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
        # Airflow finds a task's extra links by these names when it reads a serialized DAG.
        "extra-links": [
            "airflow_provider_browsersessions.links.BrowserSessionsViewLink",
            "airflow_provider_browsersessions.links.PlatformConsoleLink",
        ],
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
