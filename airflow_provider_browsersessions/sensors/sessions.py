"""``BrowserSessionsSensor``: gate downstream work on browser sessions finishing, in any sensor mode."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.providers.common.compat.sdk import (
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)

from airflow_provider_browsersessions import metrics
from airflow_provider_browsersessions.compat import is_first_reschedule_poke
from airflow_provider_browsersessions.exceptions import ApiError, BrowserSessionsError, HostUnreachableError
from airflow_provider_browsersessions.links import BrowserSessionsViewLink, PlatformConsoleLink
from airflow_provider_browsersessions.sessions import SessionQuery, check_literal_filters, is_literal
from airflow_provider_browsersessions.waiting import (
    DEFAULT_UNREACHABLE_TIMEOUT,
    FINAL_CHECK_SECONDS,
    MissingPolicy,
    PermanentWaitError,
    SessionsFailedError,
    WaitOutcome,
    WaitPlan,
    check_unreachable_timeout,
    normalize_session_ids,
)
from airflow_provider_browsersessions.xcom import XComRecords, parse_fields, parse_positive_int

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_browsersessions.hooks.base import BrowserSessionsHook

__all__ = [
    "WAIT_FILTERS",
    "BrowserSessionsSensor",
    "MissingPolicy",
    "SessionsFailedError",
]

#: The filters this sensor takes. Only ``sessions.RUNNING_FILTERS`` can describe a running session: the
#: running walk uses those, and a drain refuses ``target_url``/``end_url`` (``WaitPlan``).
WAIT_FILTERS = ("api_name", "started_after", "started_before", "target_url", "end_url", "metadata")

#: The task state store key of a wait's memory (Airflow 3.3+).
STATE_KEY = "browsersessions_wait"

# A timeout of "forever" still gets a retention a datetime can hold.
_LONGEST_RETENTION = timedelta(days=3650)


class BrowserSessionsSensor(BaseSensorOperator):
    """
    Wait until browser sessions finish: given ids, or every running session matching filters.

    One poll costs what the API minimally needs: a walk of the *running* sessions that match the
    filters (on Bright Data one ``status=running`` list call answers any number of watched ids), then
    one read per watched id that left the running set, to learn how it ended. Deferred, the same check
    runs in the triggerer, where waits on the same connection and filters share one poll.

    The return value (XCom) is the final state of every watched session. Without ``session_ids`` the
    sensor waits until no running session matches ("drain") and reports the sessions it saw end.

    .. seealso::
        The how-to guide ``docs/howto/waiting.md``.

    :param conn_id: A ``brightdata``, ``cloudflare_browser_rendering`` or ``browserbase`` connection. (templated)
    :param session_ids: Ids to wait for, or the list of session dicts an upstream
        ``ListBrowserSessionsOperator`` returned (e.g. its ``.output``). None: drain mode. (templated)
    :param api_name: Only sessions of this Bright Data zone. (templated)
    :param started_after: Only sessions started at or after this. (templated)
    :param started_before: Only sessions started at or before this. (templated)
    :param target_url: Bright Data target URL filter. (templated)
    :param end_url: Bright Data end URL filter. (templated)
    :param metadata: Only sessions created with this user metadata (Browserbase), e.g.
        ``{"airflow_run_id": "{{ run_id }}"}`` to wait for exactly the sessions this run started. (templated)
    :param fail_on_failed: Fail the task as soon as a watched session ended ``failed``, naming the
        sessions and their errors (``soft_fail`` skips instead).
    :param missing: What a watched id the platform no longer knows counts as: ``finished``
        (default; Cloudflare forgets closed sessions), ``failed``, or ``wait`` for it. (templated)
    :param deferrable: Wait in the triggerer instead of a worker slot. Defaults to
        ``[operators] default_deferrable``.
    :param fields: Keep only these keys of each returned record, to keep XCom small (a drain returns
        every session it saw end). (templated)
    :param max_xcom_bytes: Fail the task, before anything is pushed, once the returned records exceed this
        many bytes of JSON. Without it, a return value above 1 MB (``XCOM_WARN_BYTES``) only logs a
        warning. (templated)
    :param unreachable_timeout: How long the wait goes on while the API host gives no usable answer at all
        (DNS failure, refused or reset connection, request deadline), in seconds or a ``timedelta``; past it
        the task fails naming the host and the last error (its retries still apply). Default 30 minutes
        (``waiting.DEFAULT_UNREACHABLE_TIMEOUT``); None waits until ``timeout``. Rejected credentials and
        bad parameters fail at once, without retries.
    """

    operator_extra_links = (BrowserSessionsViewLink(), PlatformConsoleLink())
    template_fields: Sequence[str] = ("conn_id", "session_ids", *WAIT_FILTERS, "missing", "fields", "max_xcom_bytes")
    ui_color = "#d6eaf8"

    def __init__(
        self,
        *,
        conn_id: str,
        session_ids: Sequence[str] | Sequence[dict[str, Any]] | str | None = None,
        api_name: str | None = None,
        started_after: datetime | str | None = None,
        started_before: datetime | str | None = None,
        target_url: str | None = None,
        end_url: str | None = None,
        metadata: dict[str, Any] | str | None = None,
        fail_on_failed: bool = True,
        missing: str = MissingPolicy.FINISHED.value,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        fields: Sequence[str] | str | None = None,
        max_xcom_bytes: int | str | None = None,
        unreachable_timeout: float | timedelta | None = DEFAULT_UNREACHABLE_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.session_ids = session_ids
        self.api_name = api_name
        self.started_after = started_after
        self.started_before = started_before
        self.target_url = target_url
        self.end_url = end_url
        self.metadata = metadata
        self.fail_on_failed = fail_on_failed
        self.missing = missing
        self.deferrable = deferrable
        self.fields = fields
        self.max_xcom_bytes = max_xcom_bytes
        self.unreachable_timeout = check_unreachable_timeout(unreachable_timeout)
        # Literal values fail the DAG file's import, not a run; templated ones are checked when rendered.
        check_literal_filters({name: getattr(self, name) for name in WAIT_FILTERS})
        if is_literal(missing):
            WaitPlan(query=SessionQuery(), session_ids=None, missing=missing)
        if is_literal(fields):
            parse_fields(fields)
        if is_literal(max_xcom_bytes):
            parse_positive_int("max_xcom_bytes", max_xcom_bytes)
        self._memory_loaded = False
        self._saved_state: dict[str, Any] | None = None
        self._memory_overflowed = False
        self._last_outcome: WaitOutcome | None = None
        self._wait_started: float | None = None  # time.monotonic() at which the wait began (set by execute)

    @cached_property
    def hook(self) -> BrowserSessionsHook:
        """The platform's hook, chosen by the connection's type."""
        # Imported when a task runs: a DAG file's parse never loads the hooks, transports or HTTP clients.
        from airflow_provider_browsersessions.hooks.base import get_browser_sessions_hook

        return get_browser_sessions_hook(self.conn_id)

    @cached_property
    def plan(self) -> WaitPlan:
        """What to wait for, validated from the rendered arguments; it remembers ended sessions across pokes."""
        query = SessionQuery.build(**{name: getattr(self, name) for name in WAIT_FILTERS})
        self._returned(())  # a bad rendered fields or max_xcom_bytes fails now, not after the wait
        return WaitPlan(
            query=query,
            session_ids=normalize_session_ids(self.session_ids),
            missing=self.missing,
            unreachable_timeout=self.unreachable_timeout,
        )

    def poke(self, context: Context) -> PokeReturnValue:
        """One poll: walk the running sessions (or read a last watched id), read the ids that left them, decide."""
        plan = self.plan
        store = self._state_store(context)
        if not self._memory_loaded:
            self._memory_loaded = True
            self._load_memory(context, plan, store)
        try:
            # A Retry-After or a backoff inside this poke never sleeps past the wait's deadline.
            with self.hook.calls_within(self._time_left()):
                running = (
                    []
                    if plan.can_skip_running_walk()
                    else list(self.hook.iter_sessions(plan.running_query, read_ahead=True))
                )
                to_read = plan.record_running_and_ids_to_read(session.session_id for session in running)
                reads = {session_id: self.hook.get_session(session_id) for session_id in to_read}
        except ApiError as err:
            try:
                if not plan.poll_failed(err, log=self.log, now=time.time()):
                    raise
            finally:
                if store is not None:
                    self._save_memory(plan, store)  # how long the host has been silent, for the next poke
            return PokeReturnValue(is_done=False)
        outcome = self._last_outcome = plan.evaluate(running, reads)
        if store is not None:
            self._save_memory(plan, store)
        return self._conclude(plan, outcome, store)

    def _conclude(self, plan: WaitPlan, outcome: WaitOutcome, store: Any) -> PokeReturnValue:
        if outcome.failed and self.fail_on_failed:
            self._forget(store)
            self._fail(SessionsFailedError(outcome.failure_message()))
        if outcome.done:
            self._forget(store)
            self.log.info("Wait over: %s", outcome.progress_message())
            return PokeReturnValue(is_done=True, xcom_value=self._returned(outcome.records))
        self.log.info("%s; next poll in %s s", plan.progress_message(outcome), self.poke_interval)
        return PokeReturnValue(is_done=False)

    def _returned(self, records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The final states as XCom: projected by ``fields``, bounded by ``max_xcom_bytes``, warned about above 1 MB."""
        returned = XComRecords(fields=self.fields, max_xcom_bytes=self.max_xcom_bytes, what="The wait's")
        for record in records:
            returned.add(record)
        returned.warn_if_large(self.log)
        return returned.records

    # -- memory across pokes and retries (Airflow 3.3's task state store) --------------------------------------

    @staticmethod
    def _state_store(context: Context) -> Any:
        # Airflow 3.3+ puts a per-task-instance store in the context, kept across reschedules and retries.
        getter = getattr(context, "get", None)
        return None if getter is None else getter("task_state_store")

    def _load_memory(self, context: Context, plan: WaitPlan, store: Any) -> None:
        if store is not None:
            if plan.restore(store.get(STATE_KEY)):
                self.log.info(
                    "Resuming the wait from the task state store: %d session(s) seen, %d ended",
                    len(plan.watched),
                    len(plan.final),
                )
            return
        if self.reschedule and plan.session_ids is None and is_first_reschedule_poke(context):
            self.log.warning(
                "This Airflow has no task state store (Airflow 3.3+): a reschedule-mode drain forgets between "
                "pokes which sessions it saw running, so a session that ends (or fails) between two pokes is "
                "neither reported nor able to fail the gate. Use mode='poke' or deferrable=True to see every one."
            )

    def _save_memory(self, plan: WaitPlan, store: Any) -> None:
        try:
            state = plan.to_state()
        except BrowserSessionsError as err:
            if self.reschedule:
                raise  # each poke is a new process: without the store this drain would silently forget
            if not self._memory_overflowed:
                # Poke mode keeps its memory in this process anyway; only a retry would resume from less.
                self.log.warning("%s. The wait goes on; a retry of this task would resume from older memory", err)
                self._memory_overflowed = True
            return
        if state == self._saved_state:
            return
        # Kept well past the sensor's timeout, across every retry; deleted once the wait concludes.
        seconds = min(float(self.timeout) * (1 + int(self.retries or 0)), _LONGEST_RETENTION.total_seconds())
        store.set(STATE_KEY, state, retention=timedelta(seconds=seconds) + timedelta(days=1))
        self._saved_state = state

    def _forget(self, store: Any) -> None:
        # A concluded wait leaves nothing behind: a cleared and re-run task starts a new wait.
        if store is not None:
            store.delete(STATE_KEY)
            self._saved_state = None

    # -- deadlines ---------------------------------------------------------------------------------------------

    def _get_next_poke_interval(
        self, started_at: datetime | float, run_duration: Callable[[], float], poke_count: int
    ) -> float:
        """Airflow's interval, cut so the last sleep (or reschedule) ends at the deadline: one final poke decides."""
        interval = float(super()._get_next_poke_interval(started_at, run_duration, poke_count))
        return max(0.0, min(interval, float(self.timeout) - run_duration()))

    def _fail(self, error: Exception) -> NoReturn:
        if self.soft_fail:
            raise AirflowSkipException(f"Skipped (soft_fail): {error}") from error
        raise error

    def _time_left(self) -> float | None:
        """Seconds until the deadline plus the final check's grace; None when no wait is running (a bare poke)."""
        if self._wait_started is None:
            return None
        return self._wait_started + float(self.timeout) + FINAL_CHECK_SECONDS - time.monotonic()

    def _wait_start(self, context: Context) -> float:
        """When the wait began, on the monotonic clock: now, or in reschedule mode the first poke's start."""
        now = time.monotonic()
        ti = context.get("ti") if self.reschedule else None
        first_reschedule = getattr(ti, "get_first_reschedule_date", None)  # Airflow 3's task instances
        first = first_reschedule(context) if first_reschedule is not None else None
        if not isinstance(first, datetime):
            return now
        return now - max(0.0, (datetime.now(UTC) - first).total_seconds())

    @metrics.reports_wait
    def execute(self, context: Context) -> Any:
        """Poke or reschedule as usual; deferrable: check once, then hand the wait to the triggerer."""
        started = time.time()
        self._wait_started = self._wait_start(context)
        if not self.deferrable:
            return self._poke_until_deadline(context)
        first = self.poke(context)
        if first.is_done:
            return first.xcom_value
        self._defer(end_time=started + float(self.timeout))

    def _defer(self, *, end_time: float) -> NoReturn:
        """Hand the wait, with everything this process learned, to the triggerer until ``end_time``."""
        from airflow_provider_browsersessions.triggers.sessions import BrowserSessionsTrigger

        plan = self.plan
        memory: dict[str, Any] | None = None
        if plan.session_ids is None:
            try:
                memory = plan.to_state()
            except BrowserSessionsError as err:
                # Too many to carry in the trigger's arguments: the ids alone go, as before memory was carried.
                self.log.warning("%s. A triggerer restart would lose the final states seen so far", err)
        self.defer(
            trigger=BrowserSessionsTrigger(
                conn_id=self.conn_id,
                session_ids=None if plan.session_ids is None else list(plan.session_ids),
                filters=plan.query.to_dict(),
                missing=plan.missing.value,
                fail_on_failed=self.fail_on_failed,
                poll_interval=float(self.poke_interval),
                end_time=end_time,
                # Draining: what was seen running so far, or a session ending before the trigger's first poll
                # would never be reported (nor fail the gate).
                seen_running=list(plan.watched) if plan.session_ids is None and memory is None else None,
                memory=memory,
                unreachable_timeout=self.unreachable_timeout,
                checkpoints=True,
            ),
            method_name="execute_complete",
            # The trigger fires its own clear timeout event at the deadline (after a final check of at most
            # FINAL_CHECK_SECONDS); this is the safety net.
            timeout=timedelta(seconds=max(0.0, end_time - time.time()) + FINAL_CHECK_SECONDS + 60),
        )

    def _poke_until_deadline(self, context: Context) -> Any:
        """Airflow's poke/reschedule loop, with a timeout that says what still runs instead of Airflow's generic one."""
        try:
            return super().execute(context)
        except AirflowSensorTimeout as err:
            self._forget(self._state_store(context))
            raise AirflowSensorTimeout(f"{self.plan.timeout_message(self._last_outcome)} ({err})") from None
        except AirflowSkipException as err:
            # Airflow's own soft_fail timeout (a failed session's skip message may say "timed out" too).
            if not str(err).startswith("Sensor has timed out"):
                raise
            self._forget(self._state_store(context))
            raise AirflowSkipException(
                f"Skipped (soft_fail): {self.plan.timeout_message(self._last_outcome)} ({err})"
            ) from None

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Turn the trigger's event into success (the final states), a clear failure, or (a checkpoint) more waiting."""
        store = self._state_store(context)
        if isinstance(event, dict) and event.get("status") == "checkpoint":
            self._resume_deferred_drain(event, store)
        self._forget(store)
        if not isinstance(event, dict) or "status" not in event:
            raise BrowserSessionsError(f"The trigger sent an event this sensor cannot read: {event!r}")
        status, message = event["status"], str(event.get("message", ""))
        if status == "error" and event.get("fail_fast"):
            raise PermanentWaitError(message)
        if status == "error" and event.get("error") == HostUnreachableError.__name__:
            raise HostUnreachableError(message)
        if status == "success":
            self.log.info("%s", message)
            return self._returned(event.get("sessions") or [])
        if status == "failed":
            self._fail(SessionsFailedError(message))
        if status == "timeout":
            self._fail(AirflowSensorTimeout(message))
        raise BrowserSessionsError(f"Waiting for browser sessions failed: {message}")

    def _resume_deferred_drain(self, event: dict[str, Any], store: Any) -> NoReturn:
        """A drain's trigger saw new sessions running: keep its memory where a restart finds it, defer again."""
        plan = self.plan
        if not plan.restore(event.get("memory")):
            raise BrowserSessionsError("The trigger's checkpoint holds a memory of another wait; the wait cannot go on")
        self.log.info("%s; the wait goes on in the triggerer", event.get("message") or "Checkpoint")
        if store is not None:
            self._save_memory(plan, store)  # a retry of this task resumes from it too
        end_time = event.get("end_time")
        if not isinstance(end_time, int | float):
            raise BrowserSessionsError(f"The trigger's checkpoint has no deadline: {end_time!r}")
        self._defer(end_time=float(end_time))
