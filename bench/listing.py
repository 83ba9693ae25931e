"""Scenario 1, listing cost: the sessions matching a filter out of N, our hook against HttpOperator's pagination."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from functools import partial
from typing import Any

from bench.common import HTTP_BRIGHTDATA, HTTP_BROWSERBASE, HTTP_CLOUDFLARE, table, traffic, verdict

BRIGHTDATA_PAGE, CLOUDFLARE_PAGE = 100, 200
#: Browserbase's failed sessions: one request per wire status (its list takes one status and has no paging).
BROWSERBASE_FAILED = ("ERROR", "TIMED_OUT")


def _brightdata_next_page(response: Any) -> dict[str, Any] | None:
    pagination = response.json()["pagination"]
    return {"data": {"offset": pagination["next_offset"]}} if pagination["has_more"] else None


def _cloudflare_next_page(response: Any) -> dict[str, Any] | None:
    sessions = response.json()
    if len(sessions) < CLOUDFLARE_PAGE:
        return None
    offset = int(response.request.url.split("offset=")[1].split("&")[0])
    return {"data": {"offset": offset + CLOUDFLARE_PAGE}}


def http_provider_list(
    platform: str,
    account_id: str,
    started_after_ms: int | None,
    *,
    default_page: bool = False,
    all_statuses: bool = False,
) -> list[dict[str, Any]]:
    """What a DAG author writes without this package: HttpOperator, a pagination_function, a response_filter.

    ``default_page`` leaves Bright Data's ``limit`` out, as an author who does not read its maximum would;
    ``all_statuses`` lists every Bright Data session rather than the failed ones.
    """
    from airflow.providers.http.operators.http import HttpOperator

    if platform == "browserbase":
        # One plain GET per failed wire status: a bare JSON array each, no paging to follow.
        found: list[dict[str, Any]] = []
        for status in BROWSERBASE_FAILED:
            operator = HttpOperator(
                task_id=f"list_{status.lower()}",
                http_conn_id=HTTP_BROWSERBASE,
                method="GET",
                endpoint="/v1/sessions",
                data={"status": status},
                response_filter=lambda response: response.json(),
            )
            found += operator.execute(context={})
        return found
    if platform == "brightdata":
        page = {} if default_page else {"limit": BRIGHTDATA_PAGE}
        operator = HttpOperator(
            task_id="list_failed",
            http_conn_id=HTTP_BRIGHTDATA,
            method="GET",
            endpoint="/browser_sessions",
            data={**({} if all_statuses else {"status": "failed"}), **page, "offset": 0},
            pagination_function=_brightdata_next_page,
            response_filter=lambda responses: [s for r in responses for s in r.json()["sessions"]],
        )
    else:
        operator = HttpOperator(
            task_id="list_recent",
            http_conn_id=HTTP_CLOUDFLARE,
            method="GET",
            endpoint=f"/client/v4/accounts/{account_id}/browser-rendering/devtools/session",
            data={"limit": CLOUDFLARE_PAGE, "offset": 0},
            pagination_function=_cloudflare_next_page,
            response_filter=lambda responses: [
                s for r in responses for s in r.json() if (s.get("startTime") or 0) >= (started_after_ms or 0)
            ],
        )
    return list(operator.execute(context={}))


def our_list(platform: str, started_after: float | None) -> list[Any]:
    from airflow_provider_browsersessions.hooks.base import get_browser_sessions_hook

    if platform == "brightdata":
        hook = get_browser_sessions_hook("brightdata_default")
        result = list(hook.iter_sessions(status="failed"))
    elif platform == "browserbase":
        hook = get_browser_sessions_hook("browserbase_default")
        result = list(hook.iter_sessions(status="failed"))
    else:
        hook = get_browser_sessions_hook("cloudflare_browser_rendering_default")
        after = None if started_after is None else datetime.fromtimestamp(started_after, UTC)
        result = list(hook.iter_sessions(started_after=after))
    hook.close()
    return result


def _measure(emulator: Any, call: Any) -> tuple[int, int, float, int]:
    since = len(emulator.request_log())
    started = time.perf_counter()
    found = len(call())
    seconds = time.perf_counter() - started
    requests, received = traffic(emulator, since)
    return requests, received, seconds, found


def run(
    emulator: Any, *, brightdata_sizes: list[int], cloudflare_sizes: list[int], browserbase_sizes: list[int]
) -> str:
    # Warm up both sides once (imports, Airflow's connection lookup, connection pools): steady state is measured.
    emulator.reset()
    for platform in ("brightdata", "cloudflare", "browserbase"):
        our_list(platform, None)
        http_provider_list(platform, emulator.cloudflare_account_id, None)
    rows = []
    sized = (("brightdata", brightdata_sizes), ("cloudflare", cloudflare_sizes), ("browserbase", browserbase_sizes))
    for platform, sizes in sized:
        for size in sizes:
            emulator.reset()
            started_after = None
            if platform == "brightdata":
                emulator.seed_sessions(platform="brightdata", count=size, seed=size)
                expected = sum(1 for r in emulator.sessions("brightdata") if r["status"] == "failed")
                minimum = max(1, math.ceil(expected / BRIGHTDATA_PAGE))
                what = f"status=failed of {size:,}"
            elif platform == "browserbase":
                emulator.seed_sessions(platform="browserbase", count=size, seed=size)
                expected = sum(1 for r in emulator.sessions("browserbase") if r["status"] in BROWSERBASE_FAILED)
                minimum = len(BROWSERBASE_FAILED)
                what = f"status=failed of {size:,}"
            else:
                # Cloudflare lists active sessions only and filters nothing server-side: all N are running,
                # and the filter (started in the last half of the hour) is applied by the client.
                now = emulator.now()
                for index in range(size):
                    emulator.add_session("cloudflare", duration=None, started_at=now - 3600 * index / size)
                started_after = float(math.floor(now - 1800))  # whole seconds: both sides compare exactly
                expected = sum(1 for r in emulator.sessions("cloudflare") if r["startTime"] >= started_after * 1000)
                minimum = max(1, math.ceil(size / CLOUDFLARE_PAGE) + (size % CLOUDFLARE_PAGE == 0))
                what = f"started in the last 30 min, of {size:,} active"
            after_ms = None if started_after is None else int(started_after * 1000)
            ours_call = partial(our_list, platform, started_after)
            theirs_call = partial(http_provider_list, platform, emulator.cloudflare_account_id, after_ms)
            # Each side twice, alternating; the second runs are reported, so neither pays for the emulator
            # building its sorted answer to the query the first time it is asked.
            _measure(emulator, ours_call)
            _measure(emulator, theirs_call)
            ours = _measure(emulator, ours_call)
            theirs = _measure(emulator, theirs_call)
            assert ours[3] == expected, f"our listing found {ours[3]} of {expected}"
            assert theirs[3] == expected, f"the HTTP provider found {theirs[3]} of {expected}"
            default_page = "n/a"
            if platform == "brightdata":  # requests are exact: one run says it
                naive = _measure(emulator, partial(http_provider_list, platform, "", None, default_page=True))
                assert naive[3] == expected, f"the HTTP provider (default page) found {naive[3]} of {expected}"
                default_page = str(naive[0])
            rows.append(
                [
                    platform,
                    what,
                    f"{expected:,}",
                    minimum,
                    ours[0],
                    theirs[0],
                    default_page,
                    f"{ours[1] / 1e6:.2f} / {theirs[1] / 1e6:.2f}",
                    f"{ours[2]:.2f} / {theirs[2]:.2f}",
                    f"{theirs[2] / ours[2]:.2f}x",
                    verdict(ours[0] == minimum),
                ]
            )
    note = (
        "Requests and bytes counted in the emulator's request log; wall time of the whole listing. "
        "Baseline: `HttpOperator` with a `pagination_function` following `has_more`/`next_offset` (Bright Data) "
        "or short pages (Cloudflare) and a `response_filter` that flattens the pages, at the same page sizes "
        "(100 and 200, the APIs' maximum); on Browserbase, one `HttpOperator` per failed wire status "
        "(`ERROR`, `TIMED_OUT`: its list takes one status and answers a bare array, no paging). "
        "Minimum: ceil(matches / 100) on Bright Data (filters pushed down); two on Browserbase (one per status); "
        "on Cloudflare, which filters nothing server-side, every active session must be fetched: "
        "ceil(N / 200), plus one empty page when N is a multiple of 200 (a short page is the only end signal). "
        "*Default page size*: the same baseline without `limit`, so Bright Data's documented default of 50 applies; "
        "not measured on Cloudflare, whose default is undocumented, so a short page cannot be recognised without "
        "passing `limit`."
    )
    headers = [
        "platform",
        "listing",
        "matches",
        "minimum requests",
        "our requests",
        "HTTP-provider requests",
        "HTTP-provider requests, default page size",
        "MB received (ours / HTTP)",
        "seconds (ours / HTTP)",
        "HTTP ÷ ours (time)",
        "target: requests = minimum",
    ]
    return table("1. Listing cost", headers, rows, note)
