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
import math
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_browsersessions.exceptions import (
    ApiError,
    BrowserSessionsError,
    HostUnreachableError,
    InvalidQueryError,
    MalformedResponseError,
    TransportError,
    is_retryable,
)
from airflow_provider_browsersessions.pacing import MAX_POLL_RETRY_AFTER
from airflow_provider_browsersessions.sessions import (
    RUNNING_FILTERS,
    BrowserSession,
    SessionQuery,
    SessionStatus,
    check_path_value,
)

if TYPE_CHECKING:
    from airflow_provider_browsersessions.warning_log import WarningLog

#: How long the final check a deferred wait makes at its deadline may take, in seconds: if the platform
#: cannot answer by then, the timeout event reports the last poll's state instead.
FINAL_CHECK_SECONDS = 3.0

#: How many sessions a wait remembers across pokes (ids and final states): past it, a clear error.
MAX_REMEMBERED_SESSIONS = 500

#: Ids a log line or a timeout message names before it says "and N more".
IDS_SHOWN = 5

#: How long a wait goes on, by default, while the API host gives no usable answer at all (DNS failure, refused
#: or reset connection, a request deadline), in seconds: past it the wait fails naming the host and the last
#: error. A host that answers, even 429 or 5xx, is reachable: those polls are skipped until the wait's timeout.
DEFAULT_UNREACHABLE_TIMEOUT = 30 * 60.0

#: The version of ``WaitPlan.to_state()``; another version is ignored (the wait starts blind, as before).
_STATE_VERSION = 1


def name_ids(ids: Iterable[str], *, limit: int = IDS_SHOWN) -> str:
    """The first ``limit`` ids and how many more: ``a, b, c and 4 more`` (``none`` when empty)."""
    ids = list(ids)
    if not ids:
        return "none"
    shown = ", ".join(ids[:limit])
    return shown if len(ids) <= limit else f"{shown} and {len(ids) - limit} more"


def skip_failed_poll(error: BaseException, *, log: WarningLog, what: str, watcher: bool = False) -> bool:
    """
    Decide whether a poll that failed with ``error`` is skipped (logged, the wait goes on) or ends the wait.

    Every poll loop calls this one function: the sensor's pokes, the wait trigger and the event trigger.
    A retryable error (429, 5xx, a transport failure, a garbled body) outlived one request's retries: the
    next poll may well succeed, and a wait has a deadline anyway. Anything else (a refused token, a bad
    parameter, a body of the wrong shape, a redirect) ends a wait at once with its clear error, except in a
    ``watcher``: an asset watcher has no deadline and nobody is waiting on it, so dying would stop every
    future event; it skips an odd answer (a redirect, a ``null`` body from a proxy) with a warning too and
    dies only on errors that no later poll can cure (credentials, parameters, a missing account).

    :param error: What the poll raised.
    :param log: Where the warning goes.
    :param what: What failed, for the warning (``"Poll"``, ``"Reading session x"``).
    :param watcher: The caller is a long-lived event watcher.
    :return: True when the poll is skipped; False when the caller re-raises.
    """
    if not isinstance(error, ApiError):
        return False
    transient = is_retryable(error)
    if watcher and not transient:
        redirect = error.status is not None and 300 <= error.status < 400
        transient = redirect or isinstance(error, MalformedResponseError)
    if transient:
        log.warning("%s failed (%s); skipping this poll, the wait goes on", what, error)
    return transient


def next_poll_delay(interval: float, error: BaseException | None = None, *, failures: int = 0) -> float:
    """
    Seconds until a poll loop's next poll: its interval; after failed polls, more.

    ``failures`` polls in a row failed: the delay doubles with each (a server that keeps failing is not
    polled in a tight loop), and a server's ``Retry-After`` is honoured; both are capped at
    ``pacing.MAX_POLL_RETRY_AFTER``, and never shorter than the interval.
    """
    if error is None or failures <= 0:
        return interval
    backoff = min(interval * 2 ** min(failures - 1, 30), MAX_POLL_RETRY_AFTER)
    retry_after = getattr(error, "retry_after", None) or 0.0
    return max(interval, backoff, min(float(retry_after), MAX_POLL_RETRY_AFTER))


def check_seconds(name: str, value: Any, *, zero: bool = False) -> float:
    """
    A duration a DAG author or a serialized trigger gives, in seconds: a number, its text or a ``timedelta``;
    finite (it travels in trigger kwargs and wait state as JSON, which has no infinity), and above 0.

    :param name: The parameter, named in the error.
    :param value: The value given.
    :param zero: 0 is allowed too, where it means something (``unreachable_timeout=0``: fail at the first poll
        without an answer).
    :raises InvalidQueryError: naming ``name``, for anything else (a bool, NaN, infinity, a negative number, a list).
    """
    try:
        if hasattr(value, "total_seconds"):  # a timedelta (or pendulum's Duration)
            seconds = float(value.total_seconds())
        else:
            seconds = math.nan if isinstance(value, bool) else float(value)
    except (TypeError, ValueError, OverflowError):  # a trigger's __init__ calls this: only our error may leave
        seconds = math.nan
    if not (math.isfinite(seconds) and (seconds >= 0 if zero else seconds > 0)):
        # Here, not at the top: a DAG file that builds a watcher or a sensor imports this module, and the wire
        # logic would add about 40 ms to its parse.
        from airflow_provider_browsersessions.platforms.base import quoted_value

        bound = "0 or more" if zero else "above 0"
        raise InvalidQueryError(
            name, f"a finite number of seconds (or a timedelta), {bound}, not {quoted_value(value)}"
        )
    return seconds


def refuse_callable_filters(filters: Any, *, owner: str) -> None:
    """
    Refuse a callable among a trigger's filters, naming it: called by triggers' ``serialize()``.

    A trigger's kwargs reach the triggerer as JSON, and Airflow stores a callable as its source text, which
    the triggerer cannot run. Only a DAG file (a watcher, parsed and serialized) or a task (deferring) can
    hold a callable, so this fails that file's import or that task, never the triggerer.

    :param filters: The trigger's filters.
    :param owner: The trigger class, for the message.
    :raises InvalidQueryError: naming the filter.
    """
    if not isinstance(filters, Mapping):
        return
    name = next((str(name) for name, value in filters.items() if callable(value)), None)
    if name is not None:
        raise InvalidQueryError(
            name,
            "not a callable: a trigger's filters reach the triggerer as JSON",
            message=(
                f"Invalid value for {name!r} in {owner}(filters=...): a callable cannot be sent to the triggerer "
                "(Airflow would store its source text, which cannot run there). Use the named filters."
            ),
        )


def trigger_repr(classpath: str, kwargs: Mapping[str, Any]) -> str:
    """A trigger's repr in Airflow 3's form, built without ``serialize()`` (which refuses a callable filter)."""
    return f"<{classpath} {', '.join(f'{name}={value}' for name, value in kwargs.items())}>"


class MissingPolicy(StrEnum):
    """What a watched id that the platform no longer knows counts as (Cloudflare forgets closed sessions)."""

    FINISHED = "finished"
    FAILED = "failed"
    WAIT = "wait"


class SessionsFailedError(BrowserSessionsError, AirflowFailException):
    """Watched sessions ended ``failed``; the gate fails without retries (``soft_fail`` skips instead)."""


class PermanentWaitError(BrowserSessionsError, AirflowFailException):
    """
    A deferred wait met, in the triggerer, an error no retry can cure (rejected credentials, a bad parameter
    or connection); the task fails without retries, as a poke meeting the same error does.
    """


def check_unreachable_timeout(value: Any) -> float | None:
    """
    The ``unreachable_timeout`` a DAG author gave, in seconds (``check_seconds``, 0 allowed; None: no bound).

    :raises InvalidQueryError: for anything but None and 0 or more seconds.
    """
    return None if value is None else check_seconds("unreachable_timeout", value, zero=True)


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
        check_path_value(item, parameter="session_ids")
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
    :param unreachable_timeout: Seconds the wait goes on while the API host gives no usable answer at all;
        None: until the wait's own timeout (see ``DEFAULT_UNREACHABLE_TIMEOUT``).
    """

    def __init__(
        self,
        *,
        query: SessionQuery,
        session_ids: tuple[str, ...] | None,
        missing: MissingPolicy | str = MissingPolicy.FINISHED,
        seen_running: Iterable[str] = (),
        unreachable_timeout: float | None = DEFAULT_UNREACHABLE_TIMEOUT,
    ) -> None:
        try:
            self.missing = MissingPolicy(str(missing).lower())
        except ValueError:
            raise InvalidQueryError("missing", f"one of finished, failed, wait; got {missing!r}") from None
        if query.where is not None:
            raise InvalidQueryError("where", "None for waits: a callable cannot be sent to the triggerer")
        filters = {name: value for name, value in query.to_dict().items() if value is not None}
        if session_ids is None:
            for name in filters:
                if name not in (*RUNNING_FILTERS, "sort", "order"):
                    # A drain walks running sessions only: a filter they cannot match would find none
                    # and open the gate while sessions still run (issue #21).
                    raise InvalidQueryError(
                        name,
                        f"unset when draining (no session_ids): a running session has no {name} yet, so it "
                        f"cannot say which running sessions to wait for; drain by "
                        f"{', '.join(RUNNING_FILTERS)}, or pass session_ids",
                    )
        self.query = query
        self.session_ids = session_ids
        running = SessionQuery.build(**{k: v for k, v in filters.items() if k in RUNNING_FILTERS})
        self.running_query = running.replace(status="running")
        # Terminal states never change, so what was learned once is kept (None: the platform forgot it).
        self.final: dict[str, BrowserSession | None] = {}
        self._seen_running: dict[str, None] = dict.fromkeys(seen_running) if session_ids is None else {}
        self.unreachable_timeout = unreachable_timeout
        # Epoch seconds (not monotonic: a reschedule-mode poke in another process reads it back) at which the
        # current run of polls without any answer from the host began, and how many polls it holds.
        self.unreachable_since: float | None = None
        self.unanswered_polls = 0

    def describe(self) -> str:
        """What this wait waits on, for log lines and timeout messages (no secrets: filters and ids only)."""
        filters = ", ".join(
            f"{name}={value}"
            for name, value in self.running_query.to_dict().items()
            if value is not None and name in RUNNING_FILTERS
        )
        if self.session_ids is None:
            return f"drain of the running sessions where {filters}" if filters else "drain of every running session"
        return f"{len(self.session_ids)} watched session id(s) ({name_ids(self.session_ids)})"

    def to_state(self) -> dict[str, Any]:
        """
        This wait's memory as JSON (for Airflow 3.3's task state store): ids seen running and final states.

        :raises BrowserSessionsError: The wait remembers more than ``MAX_REMEMBERED_SESSIONS`` sessions.
        """
        remembered = len(set(self._seen_running) | set(self.final))
        if remembered > MAX_REMEMBERED_SESSIONS:
            raise BrowserSessionsError(
                f"This wait has seen {remembered} sessions, more than the {MAX_REMEMBERED_SESSIONS} it can remember "
                f"across pokes ({self.describe()}): narrow the filters (api_name, started_after) or wait on fewer "
                "session_ids"
            )
        return {
            "version": _STATE_VERSION,
            "wait": self._fingerprint(),
            "seen_running": list(self._seen_running),
            "final": {sid: None if session is None else session.to_dict() for sid, session in self.final.items()},
            "unreachable_since": self.unreachable_since,
            "unanswered_polls": self.unanswered_polls,
        }

    def restore(self, state: Any) -> bool:
        """
        Take back the memory an earlier poke of the same wait saved with ``to_state()``.

        A state of another version or another wait (different ids or filters, e.g. the DAG changed before a
        retry) is ignored. :return: True when something was restored.
        """
        if (
            not isinstance(state, dict)
            or state.get("version") != _STATE_VERSION
            or state.get("wait") != self._fingerprint()
        ):
            return False
        try:
            final = {
                str(sid): None if record is None else BrowserSession.from_dict(record)
                for sid, record in dict(state.get("final") or {}).items()
            }
            seen = [str(sid) for sid in state.get("seen_running") or ()]
        except (TypeError, ValueError, KeyError, AttributeError):
            return False
        self.final.update(final)
        if self.session_ids is None:
            self._seen_running.update(dict.fromkeys(seen))
        since, polls = state.get("unreachable_since"), state.get("unanswered_polls")
        if isinstance(since, int | float) and isinstance(polls, int) and not isinstance(since, bool):
            self.unreachable_since, self.unanswered_polls = float(since), polls
        return True

    def poll_failed(self, error: BaseException, *, log: WarningLog, now: float) -> bool:
        """
        A poll raised ``error``: skip it (True) or end the wait (False: the caller re-raises).

        ``skip_failed_poll`` decides, and a host that gave no usable answer at all (a ``TransportError``:
        DNS failure, refused or reset connection, a request deadline) is skipped only until
        ``unreachable_timeout`` has passed since the first such poll in a row. Any answer from the host, even
        a 429 or a 5xx, shows it reachable and starts the count over.

        :param error: What the poll raised.
        :param log: Where the "skipping this poll" warning goes.
        :param now: Epoch seconds.
        :raises HostUnreachableError: past ``unreachable_timeout``, naming the host and the last error.
        """
        if not isinstance(error, TransportError):
            self.unreachable_since, self.unanswered_polls = None, 0
            return skip_failed_poll(error, log=log, what="Poll")
        since = now if self.unreachable_since is None else self.unreachable_since
        self.unreachable_since, self.unanswered_polls = since, self.unanswered_polls + 1
        if self.unreachable_timeout is not None and now - since >= self.unreachable_timeout:
            polls = self.unanswered_polls
            # Counted afresh by whoever polls next (a retry of the task): the host may be back by then.
            self.unreachable_since, self.unanswered_polls = None, 0
            host = error.host or f"of the {error.platform} API"
            raise HostUnreachableError(
                f"No answer from the host {host} for {round(now - since, 1):g} s ({polls} poll(s) in a row), past the "
                f"sensor's unreachable_timeout of {self.unreachable_timeout:g} s, waiting on {self.describe()}. "
                f"Last error: {error}"
            ) from error
        return skip_failed_poll(error, log=log, what="Poll")

    def progress_message(self, outcome: WaitOutcome) -> str:
        """A log line while the wait goes on: what it waits on, and which ids still run (the first few)."""
        return f"Waiting on {self.describe()}: {outcome.progress_message()}; still running: {name_ids(outcome.running)}"

    def timeout_message(self, outcome: WaitOutcome | None) -> str:
        """Why the wait timed out: what it waited on and the ids still running at its last successful poll."""
        if outcome is None:
            still = f"the last poll failed; watched: {name_ids(self.watched)}"
        else:
            still = f"{len(outcome.running)} watched session(s) still running: {name_ids(outcome.running)}"
        return f"Timed out waiting for browser sessions ({self.describe()}): {still}"

    def _fingerprint(self) -> dict[str, Any]:
        return {
            "session_ids": None if self.session_ids is None else list(self.session_ids),
            "running": self.running_query.to_dict(),
        }

    @property
    def watched(self) -> tuple[str, ...]:
        """The ids this wait reports on: the given ones, or (drain) every one seen running so far."""
        return self.session_ids if self.session_ids is not None else tuple(self._seen_running)

    def can_skip_running_walk(self) -> bool:
        """
        True when reading the watched ids one by one costs no more than walking the running list.

        A walk is at least one request, however few ids it answers; one unresolved id is one read. With
        a single id left, poke mode reads it directly instead of paging through every running session.
        """
        return self.session_ids is not None and len(self._unresolved({})) <= 1

    def record_running_and_ids_to_read(self, running_ids: Iterable[str]) -> list[str]:
        """
        Record one poll's running ids, and return the watched ids to read one by one.

        In drain mode every id seen running is remembered (it is watched from then on); the ids returned
        are the watched ones that left the running set and whose final state is not known yet.
        """
        running = dict.fromkeys(running_ids)  # ordered: ids are named in the order the platform listed them
        if self.session_ids is None:
            self._seen_running.update(dict.fromkeys(running))
        return self._unresolved(running)

    def _unresolved(self, running: Mapping[str, None]) -> list[str]:
        """Watched ids not in ``running`` whose final state is not known yet (records nothing)."""
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
        self.unreachable_since, self.unanswered_polls = None, 0  # the host answered this poll
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
