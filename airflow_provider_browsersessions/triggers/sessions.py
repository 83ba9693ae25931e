"""``BrowserSessionsTrigger``: a deferred ``BrowserSessionsSensor``'s wait, run in the triggerer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_browsersessions import metrics
from airflow_provider_browsersessions.exceptions import ApiError, BrowserSessionsError, InvalidQueryError, cut_text
from airflow_provider_browsersessions.sessions import BrowserSession, SessionQuery
from airflow_provider_browsersessions.triggers.shared_hook import HookLease
from airflow_provider_browsersessions.triggers.shared_poll import shared_read, subscribe
from airflow_provider_browsersessions.waiting import (
    DEFAULT_UNREACHABLE_TIMEOUT,
    FINAL_CHECK_SECONDS,
    MissingPolicy,
    WaitOutcome,
    WaitPlan,
    check_seconds,
    check_unreachable_timeout,
    name_ids,
    refuse_callable_filters,
    trigger_repr,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

    from airflow_provider_browsersessions.hooks.base import BrowserSessionsHook

#: Distinct queries kept by ``_shared_query``; past it the table starts over (equal queries are then two objects).
_SHARED_QUERIES_MAX = 1024
_shared_queries: dict[SessionQuery, SessionQuery] = {}


def _shared_query(query: SessionQuery) -> SessionQuery:
    """
    One object for equal queries across the waits of a process (a query is frozen, so sharing it is safe).

    10,000 waits on a few zones parse a few distinct filter sets: keeping one ``SessionQuery`` (and its
    frozensets) per distinct set, not two per wait, saves about half a kilobyte a wait.
    """
    if query.where is not None:  # compared out of equality: never shared
        return query
    shared = _shared_queries.get(query)
    if shared is None:
        if len(_shared_queries) >= _SHARED_QUERIES_MAX:
            _shared_queries.clear()
        shared = _shared_queries[query] = query
    return shared


__all__ = ["BrowserSessionsTrigger"]


class BrowserSessionsTrigger(BaseTrigger):
    """
    Poll until the watched sessions end (or no running session matches), then fire one event.

    The running-list walk is shared with every other trigger in this triggerer that waits on the same
    connection, filters and interval: the API sees one list walk per interval however many tasks wait.
    Reads of ended sessions are shared as well. The decision is ``waiting.WaitPlan.evaluate``, the
    same function the sensor's poke mode calls.

    Events: ``{"status": "success" | "failed" | "timeout" | "error" | "checkpoint", "message": str,
    "sessions": [final states]}``. An ``error`` event says whether a retry could help (``"fail_fast"``) and
    names the error's class (``"error"``). With ``checkpoints``, a drain fires ``checkpoint`` (with ``"memory"``, its
    ``WaitPlan.to_state()``, and ``"end_time"``) as soon as it sees a session running that its arguments do not
    name yet: the sensor saves that memory and defers again with it, so a restarted or failed-over triggerer,
    which rebuilds the trigger from its arguments, still watches every session seen running.

    :param conn_id: A ``brightdata``, ``cloudflare_browser_rendering`` or ``browserbase`` connection.
    :param session_ids: Watched ids; None waits until no running session matches ``filters``.
    :param filters: ``SessionQuery.to_dict()`` of the filters.
    :param missing: ``finished``, ``failed`` or ``wait``: what an id the platform forgot counts as.
    :param fail_on_failed: Fire a ``failed`` event as soon as a watched session failed.
    :param poll_interval: Seconds between polls.
    :param end_time: Epoch seconds at which the wait makes its final check and, if sessions still run,
        fires a ``timeout`` event naming them (None: no limit).
    :param seen_running: Drain only: ids the sensor already saw running before it deferred. A session
        that ends before the trigger's first poll is still read and reported, never dropped.
    :param memory: The wait's memory so far (``WaitPlan.to_state()``): ids seen running and final states.
    :param unreachable_timeout: Seconds the wait goes on while the API host gives no usable answer at all
        (None: until ``end_time``).
    :param checkpoints: Fire ``checkpoint`` events (the sensor sets it and handles them). Off by default, so
        a caller that expects only a final event gets nothing else.
    """

    def __init__(
        self,
        *,
        conn_id: str,
        session_ids: list[str] | None,
        filters: dict[str, Any],
        missing: str = MissingPolicy.FINISHED.value,
        fail_on_failed: bool = True,
        poll_interval: float = 60.0,
        end_time: float | None = None,
        seen_running: list[str] | None = None,
        memory: dict[str, Any] | None = None,
        unreachable_timeout: float | None = DEFAULT_UNREACHABLE_TIMEOUT,
        checkpoints: bool = False,
    ) -> None:
        super().__init__()
        # Never raises, whatever Airflow hands back: an argument that is not allowed is kept as given (so
        # serialize() round-trips) and ``problem`` names it; run() then fires an error event, and only this
        # wait's task fails.
        self.conn_id = conn_id
        self.session_ids: Any = list(session_ids) if isinstance(session_ids, list | tuple) else session_ids
        self.filters: Any = dict(filters) if isinstance(filters, Mapping) else filters
        self.missing = missing if isinstance(missing, str) else str(missing)
        self.fail_on_failed = fail_on_failed
        self.poll_interval: Any = poll_interval
        self.end_time: Any = end_time
        self.seen_running: Any = (
            list(seen_running)
            if isinstance(seen_running, list | tuple)
            else []
            if seen_running is None
            else seen_running
        )
        self.memory = memory
        self.unreachable_timeout = unreachable_timeout
        self.checkpoints = checkpoints
        self.problem: BrowserSessionsError | None = None
        try:
            self.poll_interval, self.end_time = self._check_arguments()
        except BrowserSessionsError as err:
            self.problem = err
        # The class's logger (same name, so the same lines), not one of its own per wait: the triggerer routes
        # a line to its trigger's log by context variables (trigger_id), and under Airflow 3 a logger per
        # wait costs about 1 KB, 10 MB for 10,000 waits.
        self._log = type(self).logger()

    def _check_arguments(self) -> tuple[float, float | None]:
        """The interval and deadline as numbers; InvalidQueryError naming the first argument not allowed."""
        if not isinstance(self.conn_id, str) or not self.conn_id:
            raise InvalidQueryError("conn_id", f"a connection id (text), not {cut_text(repr(self.conn_id), 100)}")
        for name in ("session_ids", "seen_running"):
            value = getattr(self, name)
            if not (value is None and name == "session_ids") and (
                not isinstance(value, list) or not all(isinstance(item, str) for item in value)
            ):
                raise InvalidQueryError(name, f"a list of session ids, not {cut_text(repr(value), 100)}")
        if not isinstance(self.filters, dict) or not all(isinstance(name, str) for name in self.filters):
            raise InvalidQueryError("filters", f"a dict of filters by name, not {cut_text(repr(self.filters), 100)}")
        if not isinstance(self.fail_on_failed, bool):
            raise InvalidQueryError("fail_on_failed", f"True or False, not {cut_text(repr(self.fail_on_failed), 100)}")
        interval = check_seconds("poll_interval", self.poll_interval)
        end_time = None if self.end_time is None else check_seconds("end_time", self.end_time)
        return interval, end_time

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """
        Classpath and exactly the constructor's arguments (a connection id, never a secret).

        :raises InvalidQueryError: for a callable in ``filters``, which cannot reach the triggerer (the
            deferring task fails, naming it; the triggerer never holds one).
        """
        refuse_callable_filters(self.filters, owner=type(self).__name__)
        return self._classpath_and_kwargs()

    def _classpath_and_kwargs(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "conn_id": self.conn_id,
                "session_ids": self.session_ids,
                "filters": self.filters,
                "missing": self.missing,
                "fail_on_failed": self.fail_on_failed,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
                "seen_running": self.seen_running,
                "memory": self.memory,
                "unreachable_timeout": self.unreachable_timeout,
                "checkpoints": self.checkpoints,
            },
        )

    def __repr__(self) -> str:
        # Airflow's repr calls serialize(), which refuses a callable: a repr never raises.
        return trigger_repr(*self._classpath_and_kwargs())

    def _plan(self) -> WaitPlan:
        if self.problem is not None:
            raise self.problem  # run() turns it into this wait's error event
        session_ids = None if self.session_ids is None else tuple(self.session_ids)
        plan = WaitPlan(
            query=_shared_query(SessionQuery.build(**self.filters)),
            session_ids=session_ids,
            missing=self.missing,
            seen_running=self.seen_running,
            # Checked here, not in __init__ (which must take whatever a trigger row holds): a bad value ends
            # this wait with an error event.
            unreachable_timeout=check_unreachable_timeout(self.unreachable_timeout),
        )
        plan.running_query = _shared_query(plan.running_query)
        if self.memory is not None:
            plan.restore(self.memory)  # a memory of another wait (changed filters) is ignored, as in poke mode
            # A trigger counts polls without an answer from its own start: a count carried from an earlier
            # process (the worker's first poke) may be long over, with answered polls in between.
            plan.unreachable_since, plan.unanswered_polls = None, 0
        return plan

    @metrics.reports_deferred_wait
    async def run(self) -> AsyncIterator[TriggerEvent]:
        """
        Poll through the shared loop until the wait is over or its deadline comes; errors become events.

        The trigger waits for the next shared snapshot *or* its own ``end_time``, whichever comes first: a
        long interval, or a shared poll parked by a ``Retry-After``, never holds a deadline. At the deadline
        it makes one final check of its own (bounded by ``FINAL_CHECK_SECONDS``), so a session that ended
        since the last poll still gives ``success``; otherwise the ``timeout`` event names what still runs.
        """
        try:
            plan = self._plan()
            # What a restarted triggerer would know: the ids in this trigger's own arguments.
            kept = set(plan.watched) if self.session_ids is None and self.checkpoints else None
            # The loop's one hook for this connection, shared with every other wait on it (shared_hook).
            async with HookLease(conn_id=self.conn_id) as hook:
                last: WaitOutcome | None = None
                async with subscribe(
                    conn_id=self.conn_id, running_query=plan.running_query, interval=self.poll_interval
                ) as subscription:
                    while (remaining := self._remaining()) is None or remaining > 0:
                        # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancel that arrives as
                        # the poll completes, and the triggerer's cancel (task cleared, trigger moved) is lost.
                        try:
                            async with asyncio.timeout(remaining):
                                outcome = await self._poll(plan, hook, subscription.next)
                        except TimeoutError:
                            break  # the deadline came first
                        if outcome is None:
                            continue
                        last = outcome
                        event = self._decide(plan, outcome) or self._checkpoint(plan, kept)
                        if event is not None:
                            yield event
                            return
                yield await self._final_check(plan, hook, last)
        except BrowserSessionsError as err:
            yield TriggerEvent(
                {
                    "status": "error",
                    "message": str(err),
                    "sessions": [],
                    "error": type(err).__name__,
                    # A rejected key or a bad parameter fails the task without retries, as it does in a poke.
                    "fail_fast": isinstance(err, AirflowFailException),
                }
            )

    def _checkpoint(self, plan: WaitPlan, kept: set[str] | None) -> TriggerEvent | None:
        """
        A drain that saw a session running its arguments do not name hands its memory to the sensor.

        Only this trigger's process knew that session: a triggerer restart or failover between its failure and
        the next poll would rebuild the trigger without it, and the gate would open on a failed session. The
        sensor saves the memory (Airflow 3.3's task state store) and defers again with it in the arguments.
        """
        if kept is None or not (new := [sid for sid in plan.watched if sid not in kept]):
            return None
        try:
            memory = plan.to_state()
        except BrowserSessionsError as err:
            # Too many to carry: the wait goes on with its memory in this process only, as before.
            self.log.warning("%s. The wait goes on; a triggerer restart would lose what it saw since", err)
            kept.update(new)
            return None
        message = f"Saw {len(new)} more session(s) running ({name_ids(new)}): saving the wait's memory"
        self.log.info("%s", message)
        return TriggerEvent(
            {"status": "checkpoint", "message": message, "sessions": [], "memory": memory, "end_time": self.end_time}
        )

    def _remaining(self) -> float | None:
        return None if self.end_time is None else self.end_time - time.time()

    async def _poll(
        self,
        plan: WaitPlan,
        hook: BrowserSessionsHook,
        running_sessions: Callable[[], Awaitable[Sequence[BrowserSession]]],
    ) -> WaitOutcome | None:
        """One poll: the running sessions, then reads of the ids that left them. None: the poll was skipped."""
        try:
            running = await running_sessions()
            reads = {
                sid: await self._read(hook, sid)
                for sid in plan.record_running_and_ids_to_read(s.session_id for s in running)
            }
        except ApiError as err:
            if not plan.poll_failed(err, log=self.log, now=time.time()):
                raise
            return None
        return plan.evaluate(running, reads)

    def _decide(self, plan: WaitPlan, outcome: WaitOutcome) -> TriggerEvent | None:
        if outcome.failed and self.fail_on_failed:
            return self._event("failed", outcome.failure_message(), outcome)
        if outcome.done:
            return self._event("success", f"Wait over: {outcome.progress_message()}", outcome)
        self.log.info("%s; next poll in %g s", plan.progress_message(outcome), self.poll_interval)
        return None

    async def _final_check(self, plan: WaitPlan, hook: BrowserSessionsHook, last: WaitOutcome | None) -> TriggerEvent:
        """At the deadline: one walk of our own (not the shared poll's schedule), then success or timeout."""

        async def walk() -> Sequence[BrowserSession]:
            if plan.can_skip_running_walk():
                return []  # one id left: reading it is the whole check
            return [s async for s in hook.aiter_sessions(plan.running_query)]

        try:
            async with asyncio.timeout(FINAL_CHECK_SECONDS):
                outcome = await self._poll(plan, hook, walk)
        except TimeoutError:
            self.log.warning(
                "The final check at the deadline took over %g s; reporting the last poll", FINAL_CHECK_SECONDS
            )
            outcome = None
        if outcome is not None:
            event = self._decide(plan, outcome)
            if event is not None:
                return event
            last = outcome
        message = plan.timeout_message(last)
        return TriggerEvent({"status": "timeout", "message": message, "sessions": list(last.records) if last else []})

    async def _read(self, hook: BrowserSessionsHook, session_id: str) -> BrowserSession | None:
        return await shared_read(self.conn_id, session_id, lambda: hook.aget_session(session_id))

    @staticmethod
    def _event(status: str, message: str, outcome: WaitOutcome) -> TriggerEvent:
        return TriggerEvent({"status": status, "message": message, "sessions": list(outcome.records)})
