"""The one shape of logger this provider writes its warnings through: ``WarningLog``."""

from __future__ import annotations

from typing import Any, Protocol


class WarningLog(Protocol):
    """
    Anything that logs a warning the ``logging`` way: a stdlib logger, an Airflow hook's ``log``, or Airflow 3's
    task and trigger loggers. The walk's odd-value warnings, the poll loops' skipped polls and the XCom size
    warning all go through one.
    """

    def warning(self, msg: Any, /, *args: Any) -> Any:
        """Log ``msg % args`` as a warning."""
