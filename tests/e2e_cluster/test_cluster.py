"""
The provider on Airflow's distributed parts: CeleryExecutor with two workers, two triggerers, PostgreSQL.

One cluster serves the whole module; the tests run in file order, and each one that kills a component
starts a replacement before it ends, so the next test finds two workers and two triggerers again.
"""

from __future__ import annotations

import time

import cluster
import cluster_many_waits as waits
import cluster_rate_budget as budget
import cluster_worker_loss as worker_loss
import deployment as deploy
import example_brightdata_zone_gate as gate
import pytest
import test_dags as single_node  # the single-node suite's helpers for asset events and watcher runs
from cluster_checks import kill, replace, with_deadline

from airflow_provider_browsersessions.triggers import events

SESSIONS_TRIGGER = "BrowserSessionsTrigger"
EVENT_TRIGGER = "BrowserSessionEventTrigger"
# Generous: a triggerer is taken for dead after the health-check threshold; adoption follows within a loop.
ADOPTION_TIMEOUT = 10 * cluster.TRIGGERER_HEALTH_CHECK_THRESHOLD


def task_instances(api, dag_id: str, run_id: str) -> list[dict]:
    return list(
        api.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000})["task_instances"]
    )


def start_run(api, dag_id: str, *, conf: dict | None = None) -> str:
    api.unpause(dag_id)
    return str(
        api.call("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})["dag_run_id"]
    )


def finished_run(api, dag_id: str, run_id: str, *, timeout: float = 600) -> list[dict]:
    """Wait for a run; fail with the states of its tasks unless it succeeds; return its task instances."""
    run, _ = api.wait_for_run(dag_id, run_id, timeout=timeout)
    tis = task_instances(api, dag_id, run_id)
    states = {f"{ti['task_id']}[{ti['map_index']}]": ti["state"] for ti in tis}
    assert run["state"] == "success", f"{dag_id} run {run_id} ended {run['state']}: {states}"
    return tis


@pytest.mark.parametrize("conn_id", [deploy.BRIGHTDATA_CONN_ID, deploy.CLOUDFLARE_CONN_ID])
def test_the_stored_connections_test_green_on_the_cluster(api, conn_id):
    # What the UI's Test button asks: the API server (on PostgreSQL here) runs the hook's test_connection.
    stored = api.call("GET", f"/connections/{conn_id}")
    answer = api.call("POST", "/connections/test", json={"connection_id": conn_id, "conn_type": stored["conn_type"]})
    assert answer["status"] is True, answer
    assert "credentials accepted" in answer["message"]


def test_the_example_dags_succeed_and_their_tasks_run_on_both_workers(api, live_emulator):
    # The gate drains its zone: end what runs there so it opens within the test.
    for record in live_emulator.sessions("brightdata"):
        if record["status"] == "running" and record["api_name"] == gate.ZONE:
            live_emulator.end_session("brightdata", record["session_id"])
    examples = (
        single_node.REPORT,
        single_node.GATE,
        "example_brightdata_failed_triage",
        "example_cloudflare_housekeeping",
    )
    runs = {dag_id: start_run(api, dag_id) for dag_id in examples}  # all at once, as a scheduler would have them
    hostnames: dict[str, set[str]] = {}
    for dag_id, run_id in runs.items():
        tis = finished_run(api, dag_id, run_id)
        assert all(ti["state"] == "success" for ti in tis), [(ti["task_id"], ti["state"]) for ti in tis]
        for ti in tis:
            hostnames.setdefault(ti["hostname"], set()).add(f"{dag_id}.{ti['task_id']}")
    print(f"tasks by worker: { {name: len(tasks) for name, tasks in hostnames.items()} }")
    # Airflow's own record of where each task instance ran: both workers took tasks, no one else did.
    assert set(hostnames) == set(cluster.WORKERS), hostnames


def test_a_lost_worker_s_tasks_are_retried_and_the_run_succeeds(api, live, live_emulator):
    zone_session = live_emulator.add_session("brightdata", duration=None, api_name=worker_loss.ZONE)["session_id"]
    # Each platform answers its first calls slowly, so both tasks are certainly running when the worker dies.
    slow = [{"kind": "latency", "seconds": 25}] * 2
    live_emulator.script_faults(slow, platform="brightdata")
    live_emulator.script_faults(slow, platform="cloudflare")
    api.unpause(worker_loss.dag.dag_id)
    run_id = api.trigger(worker_loss.dag.dag_id)

    def both_running() -> dict[str, str] | None:
        tis = {ti["task_id"]: ti for ti in task_instances(api, worker_loss.dag.dag_id, run_id)}
        if all(
            tis[task]["state"] == "running" and tis[task]["hostname"] for task in (worker_loss.SENSOR, worker_loss.LIST)
        ):
            return {task: tis[task]["hostname"] for task in (worker_loss.SENSOR, worker_loss.LIST)}
        return None

    ran_on = with_deadline(both_running, timeout=300, what="both tasks running on a worker")
    victims = sorted(set(ran_on.values()))
    for name in victims:
        kill(live, name)
    if len(victims) == len(cluster.WORKERS):
        for name in victims:  # no survivor: replacements take the retries
            replace(live, name, api)
    live_emulator.end_session("brightdata", zone_session)

    run, _ = api.wait_for_run(worker_loss.dag.dag_id, run_id, timeout=900)
    tis = {ti["task_id"]: ti for ti in task_instances(api, worker_loss.dag.dag_id, run_id)}
    print(f"killed {victims} while running {ran_on}; retries ran on {[ti['hostname'] for ti in tis.values()]}")
    assert run["state"] == "success", {task: ti["state"] for task, ti in tis.items()}
    for task in (worker_loss.SENSOR, worker_loss.LIST):
        assert tis[task]["state"] == "success"
        assert tis[task]["try_number"] == 2, f"{task} was not retried: try {tis[task]['try_number']}"
        tries = api.call("GET", f"/dags/{worker_loss.dag.dag_id}/dagRuns/{run_id}/taskInstances/{task}/tries")
        first = next(t for t in tries["task_instances"] if t["try_number"] == 1)
        # Failed by the scheduler once the dead worker's heartbeats stopped, then retried.
        assert first["state"] in ("failed", "up_for_retry"), first
        assert first["hostname"] == ran_on[task]
    for name in victims:
        if len(victims) < len(cluster.WORKERS):
            replace(live, name, api)


def _zone_polls(log: list[dict]) -> list[float]:
    """Times of the running-list polls for the waits' zone (first pages only)."""
    return single_node._polls(log, api_name=waits.ZONE)


def test_200_deferred_waits_share_a_poll_per_triggerer_and_survive_the_loss_of_one(api, live, live_emulator, metadata):
    running = [
        live_emulator.add_session("brightdata", duration=None, api_name=waits.ZONE)["session_id"] for _ in range(3)
    ]
    api.unpause(waits.dag.dag_id)
    run_id = api.trigger(waits.dag.dag_id)
    dag_id = waits.dag.dag_id
    with_deadline(
        lambda: metadata.task_states(dag_id, run_id) == {"deferred": waits.WAITS},
        timeout=1200,
        every=5,
        what=f"{waits.WAITS} deferred waits (now {metadata.task_states(dag_id, run_id)})",
    )
    # Each triggerer picks up unassigned triggers in its own loop: both hold a share. A task counts as deferred
    # once its trigger row exists, which a triggerer takes a loop later (seen: 2 of 200 not yet taken).
    split = with_deadline(
        lambda: None not in (held := metadata.triggers_by_triggerer(SESSIONS_TRIGGER)) and held,
        timeout=120,
        what=f"a triggerer for each of the {waits.WAITS} waits",
    )
    print(f"waits per triggerer: {split}")
    assert set(split) == set(cluster.TRIGGERERS), split
    assert sum(split.values()) == waits.WAITS

    # One running-list poll per interval per triggerer, for all 200 waits.
    live_emulator.clear_log()
    window_start = time.time()
    time.sleep(4 * waits.POLL_INTERVAL + 5)
    window = time.time() - window_start
    polls = _zone_polls(live_emulator.request_log(platform="brightdata"))
    intervals = window / waits.POLL_INTERVAL
    print(f"{len(polls)} polls in {window:.0f} s ({intervals:.1f} intervals) for {waits.WAITS} waits on 2 triggerers")
    assert len(polls) <= len(cluster.TRIGGERERS) * (int(intervals) + 1), (len(polls), window)
    assert len(polls) >= int(intervals) - 1, (len(polls), window)

    # The triggerer holding most of the waits dies: the survivor adopts every one once the threshold passes.
    victim = max(cluster.TRIGGERERS, key=lambda name: split.get(name, 0))
    (survivor,) = set(cluster.TRIGGERERS) - {victim}
    killed_at = kill(live, victim)
    with_deadline(
        lambda: metadata.triggers_by_triggerer(SESSIONS_TRIGGER) == {survivor: waits.WAITS},
        timeout=ADOPTION_TIMEOUT,
        every=0.5,
        what=f"{survivor} to adopt the waits of {victim} (now {metadata.triggers_by_triggerer(SESSIONS_TRIGGER)})",
    )
    adopted_after = time.monotonic() - killed_at
    print(
        f"{survivor} adopted {split[victim]} waits {adopted_after:.1f} s after {victim} was killed "
        f"(health-check threshold {cluster.TRIGGERER_HEALTH_CHECK_THRESHOLD} s)"
    )
    assert metadata.task_states(dag_id, run_id) == {"deferred": waits.WAITS}  # nothing lost, nothing failed
    live_emulator.clear_log()
    window_start = time.time()
    time.sleep(2 * waits.POLL_INTERVAL + 5)
    survivor_polls = _zone_polls(live_emulator.request_log(platform="brightdata"))
    intervals = (time.time() - window_start) / waits.POLL_INTERVAL
    print(f"{len(survivor_polls)} polls in {intervals:.1f} intervals with one triggerer left")
    assert 1 <= len(survivor_polls) <= int(intervals) + 1, survivor_polls

    # The zone drains: every wait completes, on the survivor's polls.
    for session_id in running:
        live_emulator.end_session("brightdata", session_id)
    with_deadline(
        lambda: metadata.task_states(dag_id, run_id) == {"success": waits.WAITS},
        timeout=1200,
        every=5,
        what=f"all {waits.WAITS} waits to succeed (now {metadata.task_states(dag_id, run_id)})",
    )
    for map_index in (0, waits.WAITS - 1):
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/wait_for_zone_idle/xcomEntries/return_value"
        ended = api.call("GET", path, params={"map_index": map_index})["value"]
        assert {session["session_id"] for session in ended} >= set(running), ended
    replace(live, victim, api)


def remembered(metadata, part: str, session_ids: set[str], *, what: str) -> None:  # type: ignore[no-untyped-def]
    """Wait until both sibling watchers keep ``session_ids`` in that part of their stored memory."""
    single_node.remembered(lambda asset: metadata.watcher_memory(asset, events.STATE_KEY), part, session_ids, what=what)


def test_sibling_watchers_deliver_exactly_once_across_the_loss_of_their_triggerer(api, live, live_emulator, metadata):
    error = {"code": "blocked", "message": "Blocked by the target"}
    before = live_emulator.add_session("brightdata", duration=None, api_name="e2e_cluster_watch")["session_id"]
    during = live_emulator.add_session("brightdata", duration=None, api_name="e2e_cluster_watch")["session_id"]
    api.unpause(single_node.TRIAGE)
    api.unpause(single_node.AUDIT)
    with_deadline(
        lambda: None not in (held := metadata.triggers_by_triggerer(EVENT_TRIGGER)) and sum(held.values()) == 2,
        timeout=300,
        what="the two watchers running in a triggerer",
    )
    # Evidence, not sleeps: each watcher's memory in the asset state store (PostgreSQL) shows what it saw.
    remembered(metadata, "tracked", {before, during}, what="both sessions seen running")
    live_emulator.end_session("brightdata", before, status="failed", error=error)
    single_node._wait_for_triage_run(api, before, intervals=6)
    assert single_node._events_for(api, single_node.TRIAGE, before)[0] == 1
    remembered(metadata, "ended", {before}, what=f"{before} reported")  # state v2 (watching.EndWatch.to_state)

    ((victim,),) = metadata.rows(
        "SELECT job.hostname FROM asset_watcher JOIN trigger ON trigger.id = asset_watcher.trigger_id "
        "JOIN job ON job.id = trigger.triggerer_id WHERE asset_watcher.name = %s",
        "brightdata_failed_sessions_watcher",
    )
    (survivor,) = set(cluster.TRIGGERERS) - {victim}
    print(f"watchers per triggerer: {metadata.triggers_by_triggerer(EVENT_TRIGGER)}; killing {victim}")
    killed_at = kill(live, victim)
    live_emulator.end_session("brightdata", during, status="failed", error=error)  # while nobody watches
    with_deadline(
        lambda: metadata.triggers_by_triggerer(EVENT_TRIGGER) == {survivor: 2},
        timeout=ADOPTION_TIMEOUT,
        what=f"{survivor} to adopt the watchers",
    )
    print(f"{survivor} adopted the watchers {time.monotonic() - killed_at:.1f} s after {victim} was killed")

    single_node._wait_for_triage_run(api, during, intervals=8)
    reported_at = time.time()

    def polls_since_report() -> int:
        return sum(1 for t in single_node._polls(live_emulator.request_log(platform="brightdata")) if t > reported_at)

    # Two more polls of the survivor: a repeat of `before` after the adoption would show up by then.
    with_deadline(
        lambda: polls_since_report() >= 2,
        timeout=4 * single_node.WATCH_INTERVAL,
        every=2,
        what="two polls of the surviving watchers after the second report",
    )
    # The survivor resumed each watcher from its memory in the asset state store (PostgreSQL): the session
    # that failed while no triggerer watched is reported once, the one reported before is not reported again.
    for session_id in (before, during):
        assert single_node._events_for(api, single_node.TRIAGE, session_id)[0] == 1, session_id
        assert single_node._asset_events(api, "brightdata_failed_sessions", session_id) == 1, session_id
        assert single_node._asset_events(api, "brightdata_ended_sessions", session_id) == 1, session_id
    api.call("PATCH", f"/dags/{single_node.TRIAGE}", json={"is_paused": True})
    api.call("PATCH", f"/dags/{single_node.AUDIT}", json={"is_paused": True})
    replace(live, victim, api)


def test_poke_sensors_and_list_tasks_on_both_workers_stay_within_one_token_s_rate_budget(api, live_emulator):
    # Sessions of a minute: the six sensors poke at 6 a second together for most of it, over the 4 a second
    # the scaled-down budget allows.
    sessions = [live_emulator.add_session("cloudflare", duration=60)["sessionId"] for _ in range(budget.SENSORS)]
    live_emulator.set_lockout(budget=120, window=30)
    live_emulator.clear_log()
    try:
        run_id = start_run(api, budget.dag.dag_id, conf={"sessions": sessions})
        tis = finished_run(api, budget.dag.dag_id, run_id, timeout=900)
        log = live_emulator.request_log(platform="cloudflare")
    finally:
        live_emulator.set_lockout(budget=None)
    by_worker: dict[str, int] = {}
    for ti in tis:
        by_worker[ti["hostname"]] = by_worker.get(ti["hostname"], 0) + 1
    times = sorted(entry["time"] for entry in log)
    busiest = max(sum(1 for t in times if start <= t < start + 30) for start in times) if times else 0
    lockouts = [entry for entry in log if entry["fault"] == "lockout"]
    print(
        f"{len(log)} Cloudflare requests, at most {busiest} in 30 s; {len(lockouts)} locked out; "
        f"tasks by worker {by_worker}"
    )
    assert set(by_worker) == set(cluster.WORKERS), by_worker
    assert not lockouts, f"{len(lockouts)} of {len(log)} requests were locked out (at most {busiest} in a 30 s window)"
