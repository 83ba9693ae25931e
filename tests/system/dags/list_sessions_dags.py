"""DAGs exercising ListBrowserSessionsOperator against the emulator (connection ids from the environment)."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_browsersessions.operators.sessions import ListBrowserSessionsOperator

START = pendulum.datetime(2025, 1, 1, tz="UTC")

with DAG(dag_id="list_brightdata", schedule="@daily", start_date=START, catchup=False) as list_brightdata:
    failed_in_zone = ListBrowserSessionsOperator(
        task_id="failed_in_zone",
        conn_id="brightdata_default",
        status="failed",
        api_name="scraping_browser1",
        fields=["session_id", "status", "api_name", "error_code"],
    )
    local_filters = ListBrowserSessionsOperator(
        task_id="local_filters",
        conn_id="brightdata_default",
        status="finished",
        min_bandwidth=5_000_000,
        captcha=["solved", "detected"],
        where=lambda s: s.navigations is not None and s.navigations >= 5,
    )
    capped = ListBrowserSessionsOperator(task_id="capped", conn_id="brightdata_default", max_results=120)
    in_window = ListBrowserSessionsOperator(
        task_id="in_window",
        conn_id="brightdata_default",
        started_after="{{ data_interval_end - macros.timedelta(days=1) }}",
        started_before="{{ data_interval_end }}",
        fields=["session_id", "started_at"],
    )
    everything = ListBrowserSessionsOperator(task_id="everything", conn_id="brightdata_default")

    @task
    def triage(session: dict) -> str:
        return f"{session['session_id']}:{session['error_code']}"

    triage.expand(session=failed_in_zone.output)


with DAG(dag_id="list_cloudflare", schedule=None, start_date=START, catchup=False) as list_cloudflare:
    ListBrowserSessionsOperator(
        task_id="active_oldest_first",
        conn_id="cloudflare_browser_rendering_default",
        status="running",
        sort="timestamp",
        order="asc",
    )


with DAG(
    dag_id="list_browserbase", schedule=None, start_date=START, catchup=False, params={"job": "crawl"}
) as list_browserbase:
    ListBrowserSessionsOperator(
        task_id="failed",
        conn_id="browserbase_default",
        status="failed",
        fields=["session_id", "status", "error_code"],
    )
    ListBrowserSessionsOperator(
        task_id="job_by_bandwidth",
        conn_id="browserbase_default",
        metadata={"job": "{{ params.job }}"},
        status="finished",
        sort="bandwidth",
        order="desc",
        fields=["session_id", "bandwidth"],
    )


with DAG(dag_id="list_metadata_on_brightdata", schedule=None, start_date=START, catchup=False) as metadata_bd:
    ListBrowserSessionsOperator(
        task_id="metadata_on_brightdata", conn_id="brightdata_default", metadata={"job": "{{ 'crawl' }}"}
    )


with DAG(dag_id="list_bad_filter", schedule=None, start_date=START, catchup=False) as list_bad_filter:
    # Templated, so it passes the DAG import and fails when the task runs (a literal would fail the import).
    ListBrowserSessionsOperator(task_id="bad_status", conn_id="brightdata_default", status="{{ 'paused' }}", retries=3)


with DAG(dag_id="list_unsupported_filter", schedule=None, start_date=START, catchup=False) as unsupported:
    ListBrowserSessionsOperator(
        task_id="zone_on_cloudflare", conn_id="cloudflare_browser_rendering_default", api_name="scraping_browser1"
    )
