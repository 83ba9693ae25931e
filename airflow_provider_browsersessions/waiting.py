"""Is this wait over, and how did it end: one pure decision that poke mode and the trigger both call.

A poll is: one walk of the *running* sessions matching the filters (on Bright Data a single
``status=running`` list call answers any number of watched ids), then a read of each watched id that
left the running set and whose final state is not known yet. ``WaitPlan`` says what to fetch;
``WaitPlan.evaluate`` turns the answers into a ``WaitOutcome``. Neither performs I/O.
"""

from __future__ import annotations

import ast
import dataclasses
import json
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_browsersessions.exceptions import BrowserSessionsError, InvalidQueryError
from airflow_provider_browsersessions.sessions import BrowserSession, SessionQuery, SessionStatus


class MissingPolicy(StrEnum):
    """What a watched id that the platform no longer knows counts as (Cloudflare forgets closed sessions)."""

    FINISHED = "finished"
    FAILED = "failed"
    WAIT = "wait"


class SessionsFailedError(BrowserSessionsError, AirflowFailException):
    """Watched sessions ended ``failed``; the gate fails without retries (``soft_fail`` skips instead)."""


def normalize_session_ids(value: Any) -> tuple[str, ...] | None:
    """
    Accept what a DAG author passes as ``session_ids``.

    A list of ids; the list of session dicts an upstream ``ListBrowserSessionsOperator`` returned; or
    that list rendered into text by a template (JSON or Python literal), or comma-separated ids.
    None means "no ids: wait until no running session matches the filters".
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        parsed: Any = None
        for parse in (json.loads, ast.literal_eval):
            try:
                parsed = parse(text)
                break
            except (ValueError, SyntaxError):
                continue
        value = parsed if isinstance(parsed, list | tuple) else [p.strip() for p in text.split(",") if p.strip()]
    if isinstance(value, Mapping) or not isinstance(value, Iterable):
        raise InvalidQueryError("session_ids", f"a list of ids or of session dicts, not {type(value).__name__}")
    ids: list[str] = []
    for item in value:
        if isinstance(item, Mapping):
            item = item.get("session_id")
        if not isinstance(item, str) or not item.strip():
            raise InvalidQueryError(
                "session_ids", f"ids as non-empty strings (or dicts with 'session_id'), not {item!r}"
            )
        if item not in ids:
            ids.append(item)
    return tuple(ids)


@dataclasses.dataclass(frozen=True, slots=True)
class WaitOutcome:
    """
    The state of a wait after one poll.

    :param done: No watched session is running any more (and none is awaited as missing).
    :param running: Watched ids still running.
    :param finished: Watched sessions that ended ``finished`` (or missing, counted as finished).
    :param failed: Watched sessions that ended ``failed`` (or missing, counted as failed).
    :param missing: Watched ids the platform does not know (any policy).
    :param records: Final state of every watched session that ended, JSON-safe (the XCom).
    """

    done: bool
    running: tuple[str, ...]
    finished: tuple[str, ...]
    failed: tuple[BrowserSession | str, ...]
    missing: tuple[str, ...]
    records: tuple[dict[str, Any], ...]

    def failure_message(self) -> str:
        """Names the failed sessions and their errors."""
        parts = []
        for item in self.failed:
            if isinstance(item, str):
                parts.append(f"{item} (unknown to the platform, counted as failed)")
            else:
                reason = ": ".join(p for p in (item.error_code, item.error_message) if p) or "no error given"
                parts.append(f"{item.session_id} ({reason})")
        return f"{len(self.failed)} watched session(s) failed: " + "; ".join(parts)

    def progress_message(self) -> str:
        """How many still run, which ended."""
        return (
            f"{len(self.running)} watched session(s) still running, {len(self.finished)} finished, "
            f"{len(self.failed)} failed, {len(self.missing)} unknown to the platform"
        )


class WaitPlan:
    """
    What one sensor waits for, and its memory across polls within one process.

    :param query: Filters: the running list is walked with these plus ``status=running``.
    :param session_ids: Watched ids; None waits until no running session matches ("drain"), and then
        reports every session it saw running.
    :param missing: Policy for watched ids the platform no longer knows.
    :param seen_running: Drain only: ids an earlier process of the same wait saw running (a sensor's
        first poke, handed to its trigger), so that one ending in between is still reported.
    """

    def __init__(
        self,
        *,
        query: SessionQuery,
        session_ids: tuple[str, ...] | None,
        missing: MissingPolicy | str = MissingPolicy.FINISHED,
        seen_running: Iterable[str] = (),
    ) -> None:
        try:
            self.missing = MissingPolicy(str(missing).lower())
        except ValueError:
            raise InvalidQueryError("missing", f"one of finished, failed, wait; got {missing!r}") from None
        if query.where is not None:
            raise InvalidQueryError("where", "None for waits: a callable cannot be sent to the triggerer")
        self.query = query
        self.session_ids = session_ids
        self.running_query = query.replace(status="running", sort=None, order=None)
        # Terminal states never change, so what was learned once is kept (None: the platform forgot it).
        self.final: dict[str, BrowserSession | None] = {}
        self._seen_running: dict[str, None] = dict.fromkeys(seen_running) if session_ids is None else {}

    @property
    def watched(self) -> tuple[str, ...]:
        """The ids this wait reports on: the given ones, or (drain) every one seen running so far."""
        return self.session_ids if self.session_ids is not None else tuple(self._seen_running)

    def reads_suffice(self) -> bool:
        """
        True when reading the watched ids one by one costs no more than walking the running list.

        A walk is at least one request, however few ids it answers; one unresolved id is one read. With
        a single id left, poke mode reads it directly instead of paging through every running session.
        """
        return self.session_ids is not None and len(self.ids_to_read(())) <= 1

    def ids_to_read(self, running_ids: Iterable[str]) -> list[str]:
        """Watched ids that left the running set and whose final state is not known yet."""
        running = set(running_ids)
        if self.session_ids is None:
            self._seen_running.update(dict.fromkeys(running))
        # An id the platform forgot is asked again only when the policy is to wait for it to come back.
        recheck_missing = self.missing is MissingPolicy.WAIT
        return [
            sid
            for sid in self.watched
            if sid not in running and (sid not in self.final or (recheck_missing and self.final[sid] is None))
        ]

    def evaluate(self, running: Iterable[BrowserSession], reads: Mapping[str, BrowserSession | None]) -> WaitOutcome:
        """
        Decide from one poll's answers: the walk of running sessions and the reads of the ids that left it.

        A read that says "still running" (the session raced the list) keeps it running.
        """
        running_ids = {session.session_id for session in running}
        for session_id, session in reads.items():
            if session is not None and session.status is SessionStatus.RUNNING:
                running_ids.add(session_id)
            else:
                self.final[session_id] = session
        still_running: list[str] = []
        missing: list[str] = []
        finished: list[BrowserSession | str] = []
        failed: list[BrowserSession | str] = []
        records: list[dict[str, Any]] = []
        for sid in self.watched:
            if sid in running_ids:
                still_running.append(sid)
                continue
            if sid not in self.final:
                continue
            session = self.final[sid]
            if session is None:
                missing.append(sid)
                records.append({"session_id": sid, "status": "missing", "counted_as": self.missing.value})
                if self.missing is MissingPolicy.FAILED:
                    failed.append(sid)
                elif self.missing is MissingPolicy.FINISHED:
                    finished.append(sid)
                continue
            records.append(session.to_dict())
            (failed if session.status is SessionStatus.FAILED else finished).append(session)
        awaiting_missing = self.missing is MissingPolicy.WAIT and self.session_ids is not None and missing
        done = not still_running and not awaiting_missing
        if self.session_ids is None:
            # Drain: done once nothing matching runs, whatever was seen before.
            done = not running_ids
        return WaitOutcome(
            done=done,
            running=tuple(still_running),
            finished=tuple(s if isinstance(s, str) else s.session_id for s in finished),
            failed=tuple(failed),
            missing=tuple(missing),
            records=tuple(records),
        )
