"""``BrowserSessionsTrigger``: a deferred ``BrowserSessionsSensor``'s wait, run in the triggerer."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_browsersessions.exceptions import ApiError, BrowserSessionsError
from airflow_provider_browsersessions.hooks.base import BrowserSessionsHook, aget_browser_sessions_hook
from airflow_provider_browsersessions.sessions import BrowserSession, SessionQuery
from airflow_provider_browsersessions.triggers.shared_poll import shared_read, subscribe
from airflow_provider_browsersessions.waiting import MissingPolicy, WaitOutcome, WaitPlan

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


class BrowserSessionsTrigger(BaseTrigger):
    """
    Poll until the watched sessions end (or no running session matches), then fire one event.

    The running-list walk is shared with every other trigger in this triggerer that waits on the same
    connection, filters and interval: the API sees one list walk per interval however many tasks wait.
    Reads of ended sessions are shared as well. The decision is ``waiting.WaitPlan.evaluate``, the
    same function the sensor's poke mode calls.

    Events: ``{"status": "success" | "failed" | "timeout" | "error", "message": str,
    "sessions": [final states]}``.

    :param conn_id: A ``brightdata`` or ``cloudflare_browser_rendering`` connection.
    :param session_ids: Watched ids; None waits until no running session matches ``filters``.
    :param filters: ``SessionQuery.to_dict()`` of the filters.
    :param missing: ``finished``, ``failed`` or ``wait``: what an id the platform forgot counts as.
    :param fail_on_failed: Fire a ``failed`` event as soon as a watched session failed.
    :param poll_interval: Seconds between polls.
    :param end_time: Epoch seconds after which a ``timeout`` event fires (None: no limit).
    :param seen_running: Drain only: ids the sensor already saw running before it deferred. A session
        that ends before the trigger's first poll is still read and reported, never dropped.
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
    ) -> None:
        super().__init__()
        self.conn_id = conn_id
        self.session_ids = None if session_ids is None else list(session_ids)
        self.filters = dict(filters)
        self.missing = str(missing)
        self.fail_on_failed = fail_on_failed
        self.poll_interval = float(poll_interval)
        self.end_time = end_time
        self.seen_running = list(seen_running or [])

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Classpath and exactly the constructor's arguments (a connection id, never a secret)."""
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
            },
        )

    def _plan(self) -> WaitPlan:
        session_ids = None if self.session_ids is None else tuple(self.session_ids)
        return WaitPlan(
            query=SessionQuery.build(**self.filters),
            session_ids=session_ids,
            missing=self.missing,
            seen_running=self.seen_running,
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll through the shared loop until the wait is over; errors become events."""
        hook: BrowserSessionsHook | None = None
        try:
            plan = self._plan()
            hook = await aget_browser_sessions_hook(self.conn_id)
            async with subscribe(
                conn_id=self.conn_id, running_query=plan.running_query, interval=self.poll_interval
            ) as subscription:
                while True:
                    event = await self._poll_once(plan, hook, subscription.next)
                    if event is not None:
                        yield event
                        return
        except BrowserSessionsError as err:
            yield TriggerEvent({"status": "error", "message": str(err), "sessions": []})
        finally:
            if hook is not None:
                await hook.aclose()

    async def _poll_once(self, plan: WaitPlan, hook: BrowserSessionsHook, next_snapshot: Any) -> TriggerEvent | None:
        try:
            running = await next_snapshot()
            reads = {sid: await self._read(hook, sid) for sid in plan.ids_to_read(s.session_id for s in running)}
        except ApiError as err:
            if not err.retryable:
                raise
            # Rate limits and outages outlive one request's retries; the wait outlives them too.
            self.log.warning("Poll failed (%s); trying again at the next poll", err)
            return self._timeout_event(plan, None)
        outcome = plan.evaluate(running, reads)
        if outcome.failed and self.fail_on_failed:
            return self._event("failed", outcome.failure_message(), outcome)
        if outcome.done:
            return self._event("success", f"Wait over: {outcome.progress_message()}", outcome)
        self.log.info("%s; next poll in %g s", outcome.progress_message(), self.poll_interval)
        return self._timeout_event(plan, outcome)

    def _timeout_event(self, plan: WaitPlan, outcome: WaitOutcome | None) -> TriggerEvent | None:
        if self.end_time is None or time.time() < self.end_time:
            return None
        still = f"{len(outcome.running)} watched session(s) still running" if outcome else "the last poll failed"
        message = f"Timed out waiting for browser sessions: {still}"
        return TriggerEvent(
            {"status": "timeout", "message": message, "sessions": list(outcome.records) if outcome else []}
        )

    async def _read(self, hook: BrowserSessionsHook, session_id: str) -> BrowserSession | None:
        return await shared_read(self.conn_id, session_id, lambda: hook.aget_session(session_id))

    @staticmethod
    def _event(status: str, message: str, outcome: WaitOutcome) -> TriggerEvent:
        return TriggerEvent({"status": status, "message": message, "sessions": list(outcome.records)})
