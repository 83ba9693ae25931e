"""The emulator's reply type: status, JSON body and headers, before any bytes are written."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class Reply:
    """A response to write: ``body`` is JSON-encoded unless it is already bytes."""

    status: int
    body: Any
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
