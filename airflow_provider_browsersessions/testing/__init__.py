"""Offline test support: an emulator of both session APIs, its CLI and a pytest plugin.

Importing this package is cheap; the emulator loads on first use of one of its names.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = (
    "DEFAULT_BRIGHTDATA_API_KEY",
    "DEFAULT_CLOUDFLARE_ACCOUNT_ID",
    "DEFAULT_CLOUDFLARE_API_TOKEN",
    "DEFAULT_CLOUDFLARE_EMAIL",
    "DEFAULT_CLOUDFLARE_GLOBAL_KEY",
    "Emulator",
    "EmulatorClient",
)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        from airflow_provider_browsersessions.testing import emulator

        return getattr(emulator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    # The lazy names are part of the module's surface (``dir()``, autodoc) before their first use.
    return sorted([*globals(), *_EXPORTS])


__all__ = list(_EXPORTS)
