"""What a task returns to XCom: the ``fields`` projection, the ``max_xcom_bytes`` bound and the size warning."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow_provider_browsersessions.exceptions import InvalidQueryError, XComTooLargeError
from airflow_provider_browsersessions.sessions import RECORD_FIELDS

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_provider_browsersessions.warning_log import WarningLog

__all__ = ["XCOM_ADVICE", "XCOM_WARN_BYTES", "XComRecords", "parse_fields", "parse_positive_int"]

#: Above this many bytes of JSON the return value gets a warning: XCom lives in the metadata database.
XCOM_WARN_BYTES = 1_000_000

#: What a DAG author can do about a large return value (a task adds its own means, e.g. ``max_results``).
XCOM_ADVICE = (
    "keep it small with fields=[...] (only the keys you read) or narrower filters, "
    "or return nothing with do_xcom_push=False"
)


def parse_fields(fields: Sequence[str] | str | None) -> tuple[str, ...] | None:
    """
    The projection a ``fields`` argument asks for: None (whole records) or known record keys.

    :param fields: A list of keys, or a rendered template's comma-separated text.
    :raises InvalidQueryError: for an empty list or a key a record does not have.
    """
    if fields is None or fields == "":
        return None
    if isinstance(fields, str):
        fields = [part.strip() for part in fields.split(",") if part.strip()]
    unknown = [name for name in fields if name not in RECORD_FIELDS]
    if unknown or not fields:
        allowed = ", ".join(RECORD_FIELDS)
        raise InvalidQueryError("fields", f"a non-empty list drawn from {allowed}; got {list(fields)!r}")
    return tuple(fields)


def parse_positive_int(name: str, value: int | str | None) -> int | None:
    """
    A positive integer argument, or None; a rendered template's digits are accepted.

    :param name: The parameter named in the error.
    :param value: The value given.
    """
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():  # a rendered template
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidQueryError(name, f"a positive integer or None, not {value!r}")
    return value


def size_text(num_bytes: int) -> str:
    """A byte count for people: megabytes from 100 kB up, bytes below."""
    return f"{num_bytes / 1_000_000:.1f} MB" if num_bytes >= 100_000 else f"{num_bytes} bytes"


class XComRecords:
    """
    The records a task returns, projected and counted one by one as they come: the size is known without a
    second pass, and a bound is enforced before more than one record past it is held.

    :param fields: The ``fields`` argument as given (validated here).
    :param max_xcom_bytes: The ``max_xcom_bytes`` argument as given (validated here).
    :param what: Whose return value it is, for messages (``"The listing's"``).
    :param advice: What the user can do about a large return value, in that task's words.
    :raises InvalidQueryError: for a bad ``fields`` or ``max_xcom_bytes``, before any record.
    """

    def __init__(
        self,
        *,
        fields: Sequence[str] | str | None,
        max_xcom_bytes: int | str | None,
        what: str,
        advice: str = XCOM_ADVICE,
    ) -> None:
        self.projection = parse_fields(fields)
        self.max_bytes = parse_positive_int("max_xcom_bytes", max_xcom_bytes)
        self.what = what
        self.advice = advice
        self.records: list[dict[str, Any]] = []
        self.size = 2  # "[]"

    def add(self, record: Mapping[str, Any]) -> None:
        """
        Keep one record (projected), counting its JSON.

        :raises XComTooLargeError: once the records pass ``max_xcom_bytes``; nothing is pushed then.
        """
        # A record without a projected key (a wait's "missing" id has no times) keeps the keys it has.
        kept = dict(record) if self.projection is None else {k: record[k] for k in self.projection if k in record}
        # The size the XCom backend will store: the list's JSON, counted record by record.
        self.size += len(json.dumps(kept).encode()) + (2 if self.records else 0)
        if self.max_bytes is not None and self.size > self.max_bytes:
            raise XComTooLargeError(
                f"{self.what} return value passed max_xcom_bytes={self.max_bytes} after "
                f"{len(self.records) + 1} session(s) ({self.size} bytes of JSON so far); nothing was "
                f"pushed. Raise max_xcom_bytes, or {self.advice}."
            )
        self.records.append(kept)

    def warn_if_large(self, log: WarningLog) -> None:
        """Log a warning when the records are above ``XCOM_WARN_BYTES`` of JSON (no bound was set to stop them)."""
        if self.size > XCOM_WARN_BYTES:
            log.warning(
                "The return value is %s of JSON (%d session(s)), above %s: XCom is stored in the "
                "metadata database. Please %s; max_xcom_bytes=N makes the task fail instead.",
                size_text(self.size),
                len(self.records),
                size_text(XCOM_WARN_BYTES),
                self.advice,
            )
