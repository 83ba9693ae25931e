"""HTML of the view: Jinja templates with autoescaping on, so every field from a platform renders as text."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pendulum

from airflow_provider_browsersessions.plugins import charts

if TYPE_CHECKING:
    import jinja2

    from airflow_provider_browsersessions.sessions import BrowserSession

TEMPLATES = Path(__file__).parent / "templates"

#: Seconds between the page's own reloads (``<meta http-equiv="refresh">``: no script needed).
REFRESH_SECONDS = 15

#: No script, no frame of another origin, nothing loaded from elsewhere: a platform's field cannot run code
#: even if escaping ever missed one. ``frame-ancestors 'self'`` lets the Airflow UI show the page in its frame.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@functools.cache
def environment() -> jinja2.Environment:
    """The templates' environment: autoescape everywhere, an undefined name is an error."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def stylesheet() -> str:
    """The page's CSS (served from the app, so the policy needs no inline style)."""
    return (TEMPLATES / "style.css").read_text()


def _seconds(value: float | None) -> str:
    return "" if value is None else charts.human_seconds(value)


def _age(session: BrowserSession) -> str:
    if session.started_at is None:
        return ""
    return charts.human_seconds(max(0.0, (pendulum.now("UTC") - session.started_at).total_seconds()))


def render(template: str, **context: Any) -> str:
    """Render one template with the helpers every page uses."""
    return environment().get_template(template).render(seconds=_seconds, age=_age, **context)
