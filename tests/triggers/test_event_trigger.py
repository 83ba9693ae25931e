"""BrowserSessionEventTrigger against the emulator: one event per ended session, shared polls, restarts."""

from __future__ import annotations

import asyncio
import logging

import pytest

from airflow_provider_browsersessions.compat import AIRFLOW_V_3_0_PLUS
from airflow_provider_browsersessions.exceptions import BrowserSessionsError, ConnectionConfigError, InvalidQueryError

needs_airflow3 = pytest.mark.skipif(not AIRFLOW_V_3_0_PLUS, reason="asset watchers are Airflow 3 only")

BD, CF = "brightdata_default", "cloudflare_browser_rendering_default"
INTERVAL = 0.1


def trigger(**kwargs):
    from airflow_provider_browsersessions.triggers.events import BrowserSessionEventTrigger

    return BrowserSessionEventTrigger(**{"conn_id": BD, "poll_interval": INTERVAL, **kwargs})


class MemoryStateStore:
    """Stands in for Airflow 3.3's per-asset state store (``aget``/``aset``), which needs a triggerer."""

    def __init__(self):
        self.values = {}

    async def aget(self, key, default=None):
        return self.values.get(key, default)

    async def aset(self, key, value):
        self.values[key] = value


def logged(caplog, capfd) -> str:
    """Trigger log lines: Airflow 3's structlog writes them to stdout, Airflow 2's logging reaches caplog."""
    out, err = capfd.readouterr()
    return caplog.text + out + err


async def collect(stream, events, *, polls=None):
    async for event in stream:
        events.append(event.payload)


def run_for(coroutines_and_actions):
    """Run consumers while a script of (delay, action) steps plays; return after the last step."""

    async def scenario(consumers, script):
        tasks = [asyncio.create_task(c) for c in consumers]
        for delay, action in script:
            await asyncio.sleep(delay)
            done = action()
            if asyncio.iscoroutine(done):
                await done
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(scenario(*coroutines_and_actions))


def after_first_polls(emulator, *, polls=2):
    """A script step: wait until the watchers made ``polls`` Bright Data history listings (the first is the
    baseline), so that what the script does next is news whatever the machine's load."""

    async def wait():
        while sum(1 for e in emulator.request_log(platform="brightdata") if "status" not in e["query"]) < polls:
            await asyncio.sleep(INTERVAL / 4)

    return wait


@pytest.fixture
def emulator(browsersessions_connections):
    emulator = browsersessions_connections.emulator
    emulator.set_speed(0)
    return emulator


@needs_airflow3
def test_one_event_per_session_that_ends_in_an_on_state(emulator):
    before = emulator.add_session("brightdata", duration=None)
    emulator.end_session("brightdata", before["session_id"], status="failed")  # ended before the watch: not news
    running = [emulator.add_session("brightdata", duration=None)["session_id"] for _ in range(3)]
    events: list[dict] = []
    brief = {}

    def start_and_fail_between_polls():
        brief["id"] = emulator.add_session("brightdata", duration=None)["session_id"]
        emulator.end_session("brightdata", brief["id"], status="failed")

    run_for(
        (
            [collect(trigger(on=["failed"]).run(), events)],
            [
                (0.0, after_first_polls(emulator)),
                (0.1, lambda: emulator.end_session("brightdata", running[0], status="failed")),
                (0.05, lambda: emulator.end_session("brightdata", running[1], status="finished")),
                (0.05, start_and_fail_between_polls),
                (0.6, lambda: None),  # several more polls: nothing is reported twice
            ],
        )
    )
    assert sorted(e["session_id"] for e in events) == sorted([running[0], brief["id"]])
    assert all(e["status"] == "failed" and e["provider"] == "brightdata" for e in events)


@needs_airflow3
def test_filters_choose_what_is_reported(emulator):
    mine = emulator.add_session("brightdata", duration=None, api_name="checkout")["session_id"]
    other = emulator.add_session("brightdata", duration=None, api_name="search")["session_id"]
    events: list[dict] = []
    run_for(
        (
            [collect(trigger(filters={"api_name": "checkout"}).run(), events)],
            [
                (0.3, lambda: emulator.end_session("brightdata", mine)),
                (0.0, lambda: emulator.end_session("brightdata", other)),
                (0.4, lambda: None),
            ],
        )
    )
    assert [e["session_id"] for e in events] == [mine]


@needs_airflow3
def test_cloudflare_ends_are_found_by_the_difference_between_polls(emulator):
    closed, forgotten = (emulator.add_session("cloudflare", duration=None)["sessionId"] for _ in range(2))
    events: list[dict] = []

    def forget():
        emulator.end_session("cloudflare", forgotten)
        emulator.advance(emulator.cloudflare_retention + 1)  # gone before the next poll could read it

    run_for(
        (
            [collect(trigger(conn_id=CF, on="finished").run(), events)],
            [(0.3, lambda: emulator.end_session("cloudflare", closed)), (0.4, forget), (0.5, lambda: None)],
        )
    )
    assert [e["session_id"] for e in events] == [closed]


@needs_airflow3
def test_browserbase_reports_each_ended_session_of_its_metadata_once(emulator):
    def start(tag):
        return emulator.add_session("browserbase", duration=None, userMetadata={"team": tag})["id"]

    mine, mine_ok, other = start("growth"), start("growth"), start("ops")
    events: list[dict] = []

    async def polled_twice():
        while emulator.request_count(platform="browserbase", method="GET") < 2:
            await asyncio.sleep(INTERVAL / 4)

    run_for(
        (
            [collect(trigger(conn_id="browserbase_default", filters={"metadata": {"team": "growth"}}).run(), events)],
            [
                (0.0, polled_twice),
                (0.1, lambda: emulator.end_session("browserbase", mine, status="failed", failure="TIMED_OUT")),
                (0.0, lambda: emulator.end_session("browserbase", mine_ok)),
                (0.0, lambda: emulator.end_session("browserbase", other, status="failed")),
                (0.6, lambda: None),  # several more polls: nothing is reported twice
            ],
        )
    )
    assert sorted((e["session_id"], e["status"]) for e in events) == sorted([(mine, "failed"), (mine_ok, "finished")])
    assert {e["provider"] for e in events} == {"browserbase"}
    assert next(e for e in events if e["session_id"] == mine)["error_code"] == "TIMED_OUT"


@needs_airflow3
def test_sibling_watchers_share_one_poll(emulator):
    from airflow.triggers.shared_stream import SharedStreamManager

    ids = [emulator.add_session("brightdata", duration=None)["session_id"] for _ in range(4)]
    watchers = [trigger(on=["failed"]), trigger(on=["finished"]), trigger(on=["failed", "finished"])]
    assert len({w.shared_stream_key() for w in watchers}) == 1
    events: list[list[dict]] = [[], [], []]
    counts = {}

    async def scenario():
        manager = SharedStreamManager()
        streams = [
            manager.subscribe(trigger_id=i, trigger=w, key=w.shared_stream_key()) for i, w in enumerate(watchers)
        ]
        tasks = [
            asyncio.create_task(collect(w.filter_shared_stream(s), events[i]))
            for i, (w, s) in enumerate(zip(watchers, streams, strict=True))
        ]
        await asyncio.sleep(0.35)
        emulator.end_session("brightdata", ids[0], status="failed")
        emulator.end_session("brightdata", ids[1], status="finished")
        await asyncio.sleep(0.3)
        emulator.clear_log()
        await asyncio.sleep(10 * INTERVAL)
        log = emulator.request_log(platform="brightdata")
        counts["walks"] = sum(1 for e in log if e["query"].get("status") == ["running"])
        counts["history"] = sum(1 for e in log if e["path"] == "/browser_sessions" and "status" not in e["query"])
        counts["reads"] = sum(1 for e in log if e["path"] != "/browser_sessions")
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for i, w in enumerate(watchers):
            await manager.unsubscribe(i, w.shared_stream_key())

    asyncio.run(scenario())
    assert [e["session_id"] for e in events[0]] == [ids[0]]
    assert [e["session_id"] for e in events[1]] == [ids[1]]
    assert sorted(e["session_id"] for e in events[2]) == sorted(ids[:2])
    # One poll per interval for all three watchers: one running walk and one history listing each time.
    # Ten intervals passed; three separate loops would have made about 30 walks.
    assert 1 <= counts["walks"] <= 11
    assert abs(counts["history"] - counts["walks"]) <= 1
    assert counts["reads"] == 0  # ended sessions were in the history listing: nothing read one by one


@needs_airflow3
def test_a_restarted_watcher_resumes_from_its_state_store(emulator):
    store = MemoryStateStore()
    ids = [emulator.add_session("brightdata", duration=None)["session_id"] for _ in range(3)]
    first_events: list[dict] = []
    first = trigger(on=["failed"])
    first.asset_state_store = store
    run_for(
        (
            [collect(first.run(), first_events)],
            [(0.3, lambda: emulator.end_session("brightdata", ids[0], status="failed")), (0.3, lambda: None)],
        )
    )
    assert [e["session_id"] for e in first_events] == [ids[0]]
    assert store.values  # the watch was saved

    # The triggerer is down: a watched session fails, and a new one starts and fails.
    emulator.end_session("brightdata", ids[1], status="failed")
    newcomer = emulator.add_session("brightdata", duration=None)["session_id"]
    emulator.end_session("brightdata", newcomer, status="failed")

    second_events: list[dict] = []
    second = trigger(**first.serialize()[1])
    second.asset_state_store = store
    run_for(([collect(second.run(), second_events)], [(0.6, lambda: None)]))
    assert sorted(e["session_id"] for e in second_events) == sorted([ids[1], newcomer])  # none lost, none twice


@needs_airflow3
@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"on": ["running"]}, "'on'"),
        ({"on": [{"x": 1}]}, "'on'"),
        ({"on": []}, "'on'"),
        ({"filters": {"status": "failed"}}, "'status'"),
        ({"filters": {"where": "lambda s: s.has_error"}}, "'where'"),  # what Airflow stores for a lambda
        ({"filters": {"nope": 1}}, "'nope'"),
        ({"filters": {"started_after": ["2025"]}}, "'started_after'"),
        ({"filters": "api_name=x"}, "'filters'"),
        ({"filters": {1: "x"}}, "'filters'"),
        ({"poll_interval": 0}, "'poll_interval'"),
        ({"poll_interval": "soon"}, "'poll_interval'"),
        ({"poll_interval": float("inf")}, "'poll_interval'"),
        ({"poll_interval": None}, "'poll_interval'"),
        # Too long for Python to write out: its message must not raise on the way.
        pytest.param({"poll_interval": 10**5000}, "'poll_interval'", id="poll_interval-huge-int"),
        ({"conn_id": None}, "'conn_id'"),
    ],
)
def test_bad_arguments_build_a_watcher_that_names_them_and_ends_alone(kwargs, named, caplog, capfd):
    watcher = trigger(**kwargs)  # never raises: the triggerer rebuilds watchers from what Airflow stored
    assert watcher.problem is not None
    assert named in str(watcher.problem)
    assert watcher.shared_stream_key() is None  # never joins (and never breaks) a shared poll
    with pytest.raises(BrowserSessionsError, match=named):
        watcher.serialize()  # in a DAG file: an import error naming the argument
    events: list[dict] = []
    asyncio.run(asyncio.wait_for(collect(watcher.run(), events), 10))
    assert events == []
    assert f"cannot run and stops: Invalid value for {named}" in logged(caplog, capfd)


@needs_airflow3
def test_serializes_exactly_its_arguments():
    original = trigger(on="failed", filters={"api_name": "checkout"})
    classpath, kwargs = original.serialize()
    assert classpath == "airflow_provider_browsersessions.triggers.events.BrowserSessionEventTrigger"
    assert kwargs == {"conn_id": BD, "on": ["failed"], "filters": {"api_name": "checkout"}, "poll_interval": INTERVAL}
    assert trigger(**kwargs).serialize() == (classpath, kwargs)


@pytest.mark.skipif(AIRFLOW_V_3_0_PLUS, reason="only Airflow 2.11 lacks asset watchers")
def test_on_airflow_2_the_trigger_explains_itself():
    watcher = trigger()
    assert isinstance(watcher.problem, ConnectionConfigError)
    assert "Airflow 3.0 or newer" in str(watcher.problem)


@needs_airflow3
def test_a_watcher_back_after_a_long_downtime_fetches_the_gap_itself(emulator):
    store = MemoryStateStore()
    first = trigger(on=["failed"])
    first.asset_state_store = store
    emulator.add_session("brightdata", duration=None)
    run_for(([collect(first.run(), [])], [(0.3, lambda: None)]))

    # Ten minutes pass while the triggerer is down: one session starts and fails early on, and newer ones
    # start later, so a fresh poll's history window (shortly before the newest start) no longer covers it.
    emulator.advance(30)
    early = emulator.add_session("brightdata", duration=None)["session_id"]
    emulator.end_session("brightdata", early, status="failed")
    emulator.advance(600)
    emulator.add_session("brightdata", duration=None)

    events: list[dict] = []
    second = trigger(**first.serialize()[1])
    second.asset_state_store = store
    run_for(([collect(second.run(), events)], [(0.5, lambda: None)]))
    assert [e["session_id"] for e in events] == [early]

    fresh_events: list[dict] = []
    fresh = trigger(on=["failed"])  # no memory: a baseline, nothing from before it is news
    run_for(([collect(fresh.run(), fresh_events)], [(0.4, lambda: None)]))
    assert fresh_events == []


# -- Poison input: what a record, an answer or a DAG file may hold ----------------------------------------------

YEAR_3000 = 32503680000.0  # 3000-01-01T00:00:00Z


def start_and_fail(emulator, ids, **fields):
    """A step of a script: a session that starts and fails before the next poll can see it running."""

    def act():
        session_id = emulator.add_session("brightdata", duration=None, **fields)["session_id"]
        emulator.end_session("brightdata", session_id, status="failed")
        ids.append(session_id)

    return act


@needs_airflow3
def test_on_an_empty_zone_the_first_session_that_starts_and_fails_between_polls_is_reported(emulator):
    events: list[dict] = []
    ids: list[str] = []
    run_for(
        (
            [collect(trigger(on=["failed"]).run(), events)],
            [
                (0.0, after_first_polls(emulator)),
                (0.1, start_and_fail(emulator, ids)),
                (0.35, start_and_fail(emulator, ids)),
                (0.4, lambda: None),
            ],
        )
    )
    assert sorted(e["session_id"] for e in events) == sorted(ids)


@needs_airflow3
def test_a_start_time_in_year_3000_hides_no_later_session(emulator):
    future = emulator.add_session("brightdata", duration=None, started_at=YEAR_3000)["session_id"]
    emulator.end_session("brightdata", future, status="failed")  # ended before the watch: the baseline has it
    store = MemoryStateStore()
    events: list[dict] = []
    ids: list[str] = []
    first = trigger(on=["failed"])
    first.asset_state_store = store
    script = [(0.3, start_and_fail(emulator, ids)) for _ in range(4)]
    run_for(([collect(first.run(), events)], [(0.0, after_first_polls(emulator)), *script, (0.4, lambda: None)]))
    assert sorted(e["session_id"] for e in events) == sorted(ids)
    assert store.values["browsersessions_watch"]["watermark"] < YEAR_3000 - 1e9

    # Restarted from a state an older version saved, with its watermark in year 3000: nothing is hidden either.
    concluded = {future: YEAR_3000, **dict.fromkeys(ids)}
    store.values["browsersessions_watch"] = {"tracked": {}, "concluded": concluded, "watermark": YEAR_3000}
    later: list[dict] = []
    more: list[str] = []
    second = trigger(on=["failed"])
    second.asset_state_store = store
    run_for(([collect(second.run(), later)], [(0.3, start_and_fail(emulator, more)), (0.4, lambda: None)]))
    assert [e["session_id"] for e in later] == more


@needs_airflow3
def test_bright_data_sessions_without_a_start_time_are_reported_once(emulator):
    events: list[dict] = []
    ids: list[str] = []
    script = [(0.3, start_and_fail(emulator, ids, wire={"timestamp": None})) for _ in range(2)]
    polled = after_first_polls(emulator)
    run_for(([collect(trigger(on=["failed"]).run(), events)], [(0.0, polled), *script, (0.5, lambda: None)]))
    assert sorted(e["session_id"] for e in events) == sorted(ids)
    assert all(e["started_at"] is None for e in events)


@needs_airflow3
def test_a_stale_running_answer_after_a_long_session_ended_does_not_report_it_again(emulator):
    long = emulator.add_session("brightdata", duration=None, started_at=emulator.now() - 7200)["session_id"]
    emulator.add_session("brightdata", duration=None)  # a recent start: the history window is now, not 2 h ago
    stored = emulator.store.get("brightdata", long)

    def answer(wire):
        def act():
            stored.fields["wire"] = wire
            emulator.store.changed()

        return act

    events: list[dict] = []
    run_for(
        (
            [collect(trigger(on=["failed"]).run(), events)],
            [
                (0.0, after_first_polls(emulator)),
                (0.1, lambda: emulator.end_session("brightdata", long, status="failed")),
                # A lagging replica lists it as running again for a while, then the truth comes back.
                (0.4, answer({"status": "running", "duration": None, "error": None})),
                (0.4, answer(None)),
                (0.4, lambda: None),
            ],
        )
    )
    assert [e["session_id"] for e in events] == [long]


@needs_airflow3
def test_a_watcher_rebuilt_from_a_lambdas_stored_source_text_builds_and_only_it_ends(emulator, caplog, capfd):
    from airflow.serialization.decoders import smart_decode_trigger_kwargs
    from airflow.serialization.encoders import encode_trigger

    # Exactly what the triggerer gets back for a watcher whose DAG wrote filters={"where": lambda ...}.
    kwargs = {"conn_id": BD, "on": ["failed"], "filters": {"where": lambda s: s.has_error}, "poll_interval": INTERVAL}
    classpath = "airflow_provider_browsersessions.triggers.events.BrowserSessionEventTrigger"
    stored = encode_trigger({"classpath": classpath, "kwargs": kwargs})["kwargs"]
    rebuilt = {name: smart_decode_trigger_kwargs(value) for name, value in stored.items()}
    assert isinstance(rebuilt["filters"]["where"], str)

    broken = trigger(**rebuilt)  # the triggerer died here before: InvalidQueryError out of __init__
    healthy = trigger(on=["failed"])
    running = emulator.add_session("brightdata", duration=None)["session_id"]
    broken_events: list[dict] = []
    events: list[dict] = []
    run_for(
        (
            [collect(broken.run(), broken_events), collect(healthy.run(), events)],
            [
                (0.0, after_first_polls(emulator)),
                (0.1, lambda: emulator.end_session("brightdata", running, status="failed")),
                (0.3, lambda: None),
            ],
        )
    )
    assert broken_events == []
    assert [e["session_id"] for e in events] == [running]  # the other watcher went on
    assert "cannot run and stops: Invalid value for 'where'" in logged(caplog, capfd)


@needs_airflow3
@pytest.mark.parametrize(
    ("argument", "named", "says"),
    [
        ("filters={'where': lambda s: s.api_name == 'checkout'}", "'where'", "cannot be sent to the triggerer"),
        ("on=['running']", "'on'", "one or more of finished, failed"),
    ],
)
def test_a_dag_file_with_a_watcher_argument_that_cannot_work_fails_to_import_naming_it(tmp_path, argument, named, says):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.dag_processing.processor import _serialize_dags

    dag_file = tmp_path / "watcher_with_a_lambda.py"
    dag_file.write_text(
        "from airflow.sdk import DAG, Asset, AssetWatcher, task\n"
        "from airflow_provider_browsersessions.triggers.events import BrowserSessionEventTrigger\n"
        "watched = Asset('failed_checkouts', watchers=[AssetWatcher(name='w', trigger=BrowserSessionEventTrigger(\n"
        f"    conn_id='brightdata_default', {argument}))])\n"
        "with DAG(dag_id='watcher_with_a_lambda', schedule=[watched]):\n"
        "    @task\n"
        "    def triage():\n"
        "        pass\n"
        "    triage()\n"
    )
    bag = DagBag(dag_folder=str(dag_file))
    assert bag.import_errors == {}  # the file runs; what the triggerer would get is the problem
    serialized, errors = _serialize_dags(bag, logging.getLogger("test"))
    assert serialized == []
    (message,) = errors.values()
    assert "InvalidQueryError" in message
    assert named in message
    assert says in message
    with pytest.raises(InvalidQueryError, match="'where'"):
        trigger(filters={"where": lambda s: True}).serialize()
    assert "where" in repr(trigger(filters={"where": lambda s: True}))  # a repr never raises
