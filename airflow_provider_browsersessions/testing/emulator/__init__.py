"""A loopback emulator of Bright Data's and Cloudflare's browser session APIs (one module per platform)."""

from __future__ import annotations

from airflow_provider_browsersessions.testing.emulator.brightdata_api import DEFAULT_BRIGHTDATA_API_KEY
from airflow_provider_browsersessions.testing.emulator.client import EmulatorClient
from airflow_provider_browsersessions.testing.emulator.cloudflare_api import (
    DEFAULT_CLOUDFLARE_ACCOUNT_ID,
    DEFAULT_CLOUDFLARE_API_TOKEN,
    DEFAULT_CLOUDFLARE_EMAIL,
    DEFAULT_CLOUDFLARE_GLOBAL_KEY,
)
from airflow_provider_browsersessions.testing.emulator.server import Emulator

__all__ = [
    "DEFAULT_BRIGHTDATA_API_KEY",
    "DEFAULT_CLOUDFLARE_ACCOUNT_ID",
    "DEFAULT_CLOUDFLARE_API_TOKEN",
    "DEFAULT_CLOUDFLARE_EMAIL",
    "DEFAULT_CLOUDFLARE_GLOBAL_KEY",
    "Emulator",
    "EmulatorClient",
]
