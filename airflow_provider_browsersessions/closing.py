"""What closing a batch of sessions did: each id's outcome, and the error that names the ids not closed."""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from airflow_provider_browsersessions.exceptions import (
    MAX_ERROR_MESSAGE_CHARS,
    SessionsNotClosedError,
    SessionsRefusedError,
    cut_text,
)
from airflow_provider_browsersessions.waiting import name_ids

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = ["MAX_UNANSWERED_IN_A_ROW", "CloseOutcome", "SessionClose", "not_closed_error"]

#: A close batch stops after this many ids in a row got no usable answer, even after their retries: the API
#: is down or locked out, and each further id would spend the retry policy's whole wait (up to 300 s) again.
MAX_UNANSWERED_IN_A_ROW = 3

#: The longest id and error text one outcome carries to XCom and logs.
_MAX_ID_CHARS = 80
_MAX_REASON_CHARS = 300


class CloseOutcome(StrEnum):
    """What became of one session a batch was asked to close."""

    #: The API closed it (or says it was closed already).
    CLOSED = "closed"
    #: The platform no longer knows it: it ended and was forgotten. Nothing to do.
    NOT_FOUND = "not_found"
    #: The API answered an error for this id (a 4xx: its reason is in ``error``).
    REFUSED = "refused"
    #: No usable answer, after the retries (5xx, timeouts, a rate limit that outlasted them).
    FAILED = "failed"
    #: Not sent: the batch stopped before it (the connection was refused, or the API stopped answering).
    NOT_ATTEMPTED = "not_attempted"
    #: A dry run: nothing was sent.
    DRY_RUN = "dry_run"

    def is_done(self) -> bool:
        """Whether nothing is left to do for this session (closed, gone, or only a dry run)."""
        return self in (CloseOutcome.CLOSED, CloseOutcome.NOT_FOUND, CloseOutcome.DRY_RUN)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SessionClose:
    """
    The outcome of closing one session, as it goes to XCom.

    :param session_id: The session.
    :param outcome: What became of it.
    :param answer: The API's own answer (``"closing"``, ``"closed"``); None when none was read.
    :param error: Why it was not closed: the HTTP status and the API's reason, or what went wrong. None otherwise.
    """

    session_id: str
    outcome: CloseOutcome
    answer: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: ``session_id``, ``outcome``, ``answer``, ``error``."""
        return {
            "session_id": self.session_id,
            "outcome": self.outcome.value,
            "answer": self.answer,
            "error": None if self.error is None else cut_text(self.error, _MAX_REASON_CHARS),
        }


def _short(session_id: str) -> str:
    return cut_text(session_id, _MAX_ID_CHARS)


def not_closed_error(closes: Sequence[SessionClose]) -> SessionsNotClosedError | None:
    """
    The error a batch ends with when some sessions were not closed, naming them by outcome; None if all are done.

    ``SessionsRefusedError`` (no retries) when every one of them was refused by the API: a retry would send
    the same ids and be refused again. Otherwise ``SessionsNotClosedError``, which Airflow retries.

    :param closes: Every outcome of the batch, in order.
    """
    left = [close for close in closes if not close.outcome.is_done()]
    if not left:
        return None
    parts = []
    for outcome, label in (
        (CloseOutcome.REFUSED, "refused"),
        (CloseOutcome.FAILED, "no usable answer"),
        (CloseOutcome.NOT_ATTEMPTED, "not attempted"),
    ):
        these = [close for close in left if close.outcome is outcome]
        if not these:
            continue
        # The first one's reason stands for the group: a batch refused for one cause says it once.
        reason = these[0].error or ""
        named = name_ids(_short(close.session_id) for close in these)
        parts.append(f"{label}: {named} (first: {cut_text(reason, _MAX_REASON_CHARS)})")
    message = cut_text(
        f"{len(left)} of {len(closes)} session(s) were not closed; {'; '.join(parts)}. "
        "Every session's outcome is in the XCom 'outcomes'.",
        MAX_ERROR_MESSAGE_CHARS,
    )
    if all(close.outcome is CloseOutcome.REFUSED for close in left):
        return SessionsRefusedError(message)
    return SessionsNotClosedError(message)


def outcome_counts(closes: Iterable[SessionClose]) -> str:
    """``closed 3, not_found 1, refused 1``: the outcomes that occurred, in ``CloseOutcome`` order."""
    closes = list(closes)
    counts = [(outcome, sum(1 for c in closes if c.outcome is outcome)) for outcome in CloseOutcome]
    return ", ".join(f"{outcome.value} {count}" for outcome, count in counts if count) or "nothing to close"
