"""``tracker serve``: a read-only dashboard over the store (FastAPI, server-rendered HTML).

Pages: the overview (spend per team this month, the 30-day trend, budgets when that feature
is installed), a team page (its jobs, its waste, estimates vs actuals when reconciliation is
installed), a job page (every cost item and the raw AWS fields it came from), one page per
view, and a JSON API that returns exactly what ``tracker report --format json`` prints.

Nothing is fetched from elsewhere: charts are inline SVG, there is no script at all, and a
Content-Security-Policy forbids any. Templates autoescape, so tag values (which users
control) render as text. Only GET routes exist; the app never writes to the store.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import DictLoader, Environment, select_autoescape
from markupsafe import Markup

from tracker.clock import system_clock
from tracker.errors import TrackerError
from tracker.records import DIMENSIONS
from tracker.report.charts import svg
from tracker.report.spend import STYLE, Report, html_table, public, render, spend_rows, to_json
from tracker.report.views import (
    VIEWS,
    ViewRequest,
    build,
    describe_window,
    month_start,
    parse_pivot,
    usd,
)
from tracker.store.query import ViewQueries, Window

log = logging.getLogger("tracker.web.app")
FILTERS = ("team", "project", "user", "account", "region", "instance_type", "status")
JOBS_PER_PAGE = 50
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
TEAM_COLUMNS = [
    "team", "jobs", "total_usd", "compute_usd", "spot_savings_usd", "warm_pool_usd",
    "storage_usd", "effective_usd", "unpriced_jobs",
]  # fmt: skip
COST_ITEMS = (
    ("compute_micros", "compute_usd", "instance time (or tokens) billed"),
    ("spot_savings_micros", "spot_savings_usd", "what managed spot saved (not in the total)"),
    ("warm_pool_micros", "warm_pool_usd", "warm-pool retained time"),
    ("storage_micros", "storage_usd", "ML storage volume"),
    ("plan_value_micros", "plan_value_usd", "on-demand value covered by a training plan (prepaid, not in the total)"),
    ("list_micros", "total_usd", "list cost: compute + warm pool + storage"),
    ("effective_micros", "effective_usd", "after discounts (Savings Plans, private pricing)"),
    ("artifact_micros_per_month", "artifact_usd_per_month", "S3 run-rate of the job's artifacts (not in the total)"),
)  # fmt: skip


def create_app(
    store: Any, *, settings: Any = None, clock: Callable[[], datetime] = system_clock
) -> FastAPI:
    """The dashboard app over ``store``; ``clock`` sets "this month" and the trend window."""
    app = FastAPI(
        title="SageMaker Spend Tracker",
        docs_url=None,  # Swagger UI and ReDoc load assets from a CDN: not here
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    pages = _Pages(store, settings, clock)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.exception_handler(TrackerError)
    async def tracker_error(request: Request, exc: TrackerError) -> Response:
        return pages.error(request, 400, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return pages.error(request, exc.status_code, str(exc.detail))

    @app.get("/", response_class=HTMLResponse)
    def overview() -> str:
        return pages.overview()

    @app.get("/team", response_class=HTMLResponse)
    def team(request: Request, name: str, page: int = 1) -> str:
        return pages.team(name, _window(request), page)

    @app.get("/jobs/{job_id}", response_class=HTMLResponse)
    def job(job_id: int) -> str:
        return pages.job(job_id)

    @app.get("/views/{name}", response_class=HTMLResponse)
    def view(name: str, request: Request) -> str:
        return pages.view(_view_request(name, request))

    @app.get("/api/report")
    def api_report(request: Request, by: str = "team") -> Response:
        if by not in DIMENSIONS:
            raise HTTPException(400, f"by={by!r}: expected one of {', '.join(DIMENSIONS)}")
        window = _window(request)
        rows = spend_rows(store, by, since=window.since, until=window.until, filters=window.filters)
        return Response(render(rows, by, "json"), media_type="application/json")

    @app.get("/api/views/{name}")
    def api_view(name: str, request: Request) -> Response:
        report = build(store, _view_request(name, request), clock())
        return Response(
            to_json([{c: r.get(c) for c in report.columns} for r in report.rows]),
            media_type="application/json",
        )

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


# -- request parsing ---------------------------------------------------------------------------
def _day(request: Request, name: str) -> date | None:
    text = request.query_params.get(name)
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise HTTPException(400, f"{name}={text!r} is not a date; expected YYYY-MM-DD") from None


def _window(request: Request) -> Window:
    since, until = _day(request, "since"), _day(request, "until")
    if since and until and since > until:
        raise HTTPException(400, f"since={since} is after until={until}")
    filters = {}
    for name in FILTERS:
        value = request.query_params.get(name) or request.query_params.get(name.replace("_", "-"))
        if value:
            filters[name] = value
    return Window(since, until, filters)


def _view_request(name: str, request: Request) -> ViewRequest:
    if name not in VIEWS:
        raise HTTPException(404, f"no view {name!r}; the views are {', '.join(VIEWS)}")
    window = _window(request)
    params = request.query_params
    rows_by, cols_by = parse_pivot(params["pivot"], params.get("by", "team")) if params.get("pivot") else (
        params.get("by", "team"), "month"
    )  # fmt: skip
    top = params.get("top", "10")
    if not top.isdigit():
        raise HTTPException(400, f"top={top!r}: expected a positive whole number")
    return ViewRequest(
        name,
        window.since,
        window.until,
        window.filters,
        rows_by=rows_by,
        cols_by=cols_by,
        top=int(top),
    )


# -- pages -------------------------------------------------------------------------------------
NAV = [("Overview", "/")] + [(name.capitalize(), f"/views/{name}") for name in VIEWS] + [
    ("JSON API", "/api/report?by=team")
]  # fmt: skip


def team_href(team: Any) -> str | None:
    return f"/team?name={quote(str(team), safe='')}" if team not in (None, "", "TOTAL") else None


class _Pages:
    """Renders each page from the store; one instance per app."""

    def __init__(self, store: Any, settings: Any, clock: Callable[[], datetime]):
        self.store = store
        self.settings = settings
        self.clock = clock
        self.queries = ViewQueries(store)
        self.env = _env()

    def render(self, template: str, **context: Any) -> str:
        return self.env.get_template(template).render(nav=NAV, now=self.clock(), **context)

    def error(self, request: Request, status: int, message: str) -> Response:
        """API errors as JSON ``{"error": ...}``, page errors as a page."""
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=status)
        return HTMLResponse(
            self.render("error.html", title=f"Error {status}", message=message), status_code=status
        )

    def overview(self) -> str:
        now = self.clock()
        today = now.date()
        since = month_start(today)
        rows = spend_rows(self.store, "team", since=since, until=today)
        teams = [public(r) for r in rows]
        total = _totals_row(rows) if rows else None
        team_table = html_table(teams, TEAM_COLUMNS, total, links={"team": team_href})
        from tracker.report.charts import Chart, Series

        chart = Chart(
            "hbar",
            f"Spend per team, {since:%B %Y} (USD)",
            tuple(str(r["team"]) for r in teams),
            (Series("total_usd", tuple(r["total_usd"] for r in teams)),),
        )
        trend = build(self.store, ViewRequest("trend"), now)
        return self.render(
            "overview.html",
            title="SageMaker training spend",
            month=f"{since:%B %Y}",
            since=since,
            until=today,
            total=total["total_usd"] if total else Decimal("0.00"),
            team_table=Markup(team_table),
            team_chart=Markup(svg(chart)),
            trend_chart=Markup(svg(trend.charts[0])),
            trend_subtitle=trend.subtitle,
            budgets=self.budgets(now),
        )

    def budgets(self, now: datetime) -> dict[str, Any] | None:
        """Budget standings when the budgets feature is installed and configured."""
        if self.settings is None:
            return None
        try:
            from tracker.alert.service import budget_statuses
        except ImportError:
            return None
        try:
            statuses = budget_statuses(self.settings, self.store, now)
        except TrackerError as exc:
            return {"error": str(exc), "table": None}
        except Exception as exc:  # noqa: BLE001 - a broken optional panel must not take the page down
            log.warning("budgets panel failed: %s", exc)
            return {
                "error": f"budgets could not be evaluated ({exc.__class__.__name__})",
                "table": None,
            }
        if not statuses:
            return None
        cols = ["budget", "scope", "period_label", "amount_usd", "actual_usd", "pct_used",
                "forecast_usd", "forecast_pct", "unpriced_jobs"]  # fmt: skip
        rows = [s.row() for s in statuses]
        return {
            "error": None,
            "table": Markup(
                html_table(rows, cols, percent=frozenset({"pct_used", "forecast_pct"}))
            ),
        }

    def team(self, name: str, window: Window, page: int) -> str:
        if page < 1:
            raise HTTPException(400, f"page={page}: expected 1 or more")
        if not self.queries.team_exists(name):
            raise HTTPException(404, f"no jobs for team {name!r}")
        now = self.clock()
        if not (window.since or window.until):
            window = Window(month_start(now.date()), now.date(), window.filters)
        window = window.with_filter("team", name)
        found = self.queries.top_jobs(JOBS_PER_PAGE + 1, window, offset=(page - 1) * JOBS_PER_PAGE)
        more = len(found) > JOBS_PER_PAGE
        jobs = [_job_row(j) for j in found[:JOBS_PER_PAGE]]
        overall = self.queries.totals(window)
        waste = build(
            self.store, ViewRequest("waste", window.since, window.until, window.filters), now
        )
        cols = ["job", "status", "instance_type", "instance_count", "billable_hours", "spot", "total_usd",
                "spot_savings_usd", "effective_usd", "unpriced", "account", "region"]  # fmt: skip
        job_table = _link_jobs(jobs, cols)
        query = {k: v for k, v in (("since", window.since), ("until", window.until)) if v}
        return self.render(
            "team.html",
            title=f"Team {name}",
            team=name,
            subtitle=describe_window(Window(window.since, window.until)),
            total=usd(overall["list"]),
            in_flight=usd(overall["in_flight"]),
            jobs_count=overall["jobs"],
            job_table=Markup(job_table),
            page=page,
            prev_href=_page_href(name, query, page - 1) if page > 1 else None,
            next_href=_page_href(name, query, page + 1) if more else None,
            waste_table=Markup(html_table(waste.rows, waste.columns)),
            waste_chart=Markup(svg(waste.charts[0])),
            estimates=self.estimates(name, window),
        )

    def estimates(self, team: str, window: Window) -> dict[str, Any] | None:
        """Estimates vs actuals for the team's finished jobs, when reconciliation is installed."""
        if self.settings is None:
            return None
        try:
            from tracker.reconcile.rules import team_rollup
            from tracker.reconcile.service import estimate_tolerance, reconcile_estimates
        except ImportError:
            return None
        try:
            tolerance = estimate_tolerance(self.settings)
            rows = reconcile_estimates(
                self.settings, self.store, self.clock(), since=window.since, until=window.until,
                team=team, tolerance_pct=tolerance,
            )  # fmt: skip
        except TrackerError as exc:
            return {"error": str(exc), "summary": None, "table": None}
        except Exception as exc:  # noqa: BLE001 - an optional panel must not take the page down
            log.warning("estimates panel failed: %s", exc)
            return {
                "error": f"estimates could not be read ({exc.__class__.__name__})",
                "summary": None,
                "table": None,
            }
        if not rows:
            return None
        summary = [r.to_dict() for r in team_rollup(rows, tolerance)]
        jobs = sorted((r.to_dict() for r in rows), key=lambda r: -(r["delta_usd"] or 0))[
            :JOBS_PER_PAGE
        ]
        summary_cols = ["team", "jobs", "estimated_jobs", "estimate_usd", "actual_usd", "delta_usd",
                        "delta_pct", "verdict", "over", "under", "within"]  # fmt: skip
        job_cols = [
            "job",
            "estimate_usd",
            "actual_usd",
            "delta_usd",
            "delta_pct",
            "estimate_source",
            "verdict",
        ]
        percent = frozenset({"delta_pct"})
        return {
            "error": None,
            "summary": Markup(html_table(summary, summary_cols, percent=percent)),
            "table": Markup(html_table(jobs, job_cols, percent=percent)),
        }

    def job(self, job_id: int) -> str:
        row = self.queries.job(job_id)
        if row is None:
            raise HTTPException(404, f"no job with id {job_id}")
        items = [
            {"item": label, "usd": usd(getattr(row, attr)), "meaning": meaning}
            for attr, label, meaning in COST_ITEMS
        ]
        days = [
            {"day": d["day"].isoformat(), "total_usd": usd(d["list_micros"]), "compute_usd": usd(d["compute_micros"]),
             "warm_pool_usd": usd(d["warm_pool_micros"]), "storage_usd": usd(d["storage_micros"]),
             "effective_usd": usd(d["effective_micros"])}
            for d in self.queries.job_days(job_id)
        ]  # fmt: skip
        raw = _load_json(row.raw_json)
        facts = [
            ("name", row.name), ("team", row.team), ("project", row.project), ("user", row.user),
            ("status", row.status), ("secondary status", row.secondary_status),
            ("failure reason", row.failure_reason), ("instances", f"{row.instance_count} x {row.instance_type}"),
            ("spot", "yes" if row.spot else "no"), ("billable seconds (per instance)", row.billable_seconds),
            ("training seconds", row.training_seconds), ("start", _utc_text(row.start_time)), ("end", _utc_text(row.end_time)),
            ("final", "yes" if row.final else "no (running: cost so far)"),
            ("unpriced", "yes: no price for an instance type" if row.unpriced else "no"),
            ("flags", row.flags or "none"), ("account", row.account_id), ("region", row.region),
            ("arn", row.arn), ("tags", ", ".join(f"{k}={v}" for k, v in sorted(_load_json(row.tags_json).items()))),
        ]  # fmt: skip
        return self.render(
            "job.html",
            title=f"Job {row.name}",
            job=row,
            team_link=team_href(row.team),
            facts=facts,
            items_table=Markup(html_table(items, ["item", "usd", "meaning"])),
            days_table=Markup(html_table(days, list(days[0]) if days else ["day"])),
            raw_fields=_flatten(raw),
            raw_json=json.dumps(raw, indent=2, sort_keys=True),
        )

    def view(self, request: ViewRequest) -> str:
        report = build(self.store, request, self.clock())
        return self.render(
            "view.html",
            title=report.title,
            report=report,
            view=request.view,
            request=request,
            charts=[Markup(svg(c)) for c in report.charts],
            table=Markup(_report_table(report, self.queries)),
            api_href=f"/api/views/{request.view}?" + urlencode(_request_query(request)),
            dimensions=[d for d in DIMENSIONS if d != "job"],
        )


def _totals_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    from tracker.report.spend import totals

    return totals(rows, "team")


def _job_row(job: dict[str, Any]) -> dict[str, Any]:
    from tracker.report.views import _top_row

    row = _top_row(0, job)
    row["_job_id"] = job["id"]
    return row


def _link_jobs(rows: list[dict[str, Any]], cols: list[str]) -> str:
    ids = {r["job"]: r["_job_id"] for r in rows}
    return html_table(
        rows, cols, links={"job": lambda name: f"/jobs/{ids[name]}" if name in ids else None}
    )


def _report_table(report: Report, queries: ViewQueries) -> str:
    links: dict[str, Callable[[Any], str | None]] = {}
    if "team" in report.columns:
        links["team"] = team_href
    if "job" in report.columns:
        ids = queries.job_ids_by_name([str(r["job"]) for r in report.rows])
        links["job"] = lambda name: f"/jobs/{ids[name]}" if name in ids else None
    return html_table(
        report.rows, report.columns, report.total, report.percent_columns, links=links
    )


def _request_query(request: ViewRequest) -> dict[str, str]:
    query = {k: v.isoformat() for k, v in (("since", request.since), ("until", request.until)) if v}
    query.update(request.filters)
    if request.view == "showback":
        query["pivot"] = f"{request.rows_by},{request.cols_by}"
    if request.view == "top":
        query["top"] = str(request.top)
    return query


def _page_href(team: str, query: dict[str, Any], page: int) -> str:
    return "/team?" + urlencode(
        {"name": team, **{k: str(v) for k, v in query.items()}, "page": page}
    )


def _load_json(text: str | None) -> Any:
    try:
        return json.loads(text or "{}")
    except ValueError:
        return {"unreadable": text}


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested AWS fields as (dotted path, value) pairs, in order."""
    if isinstance(value, dict):
        out: list[tuple[str, str]] = []
        for key in sorted(value):
            out += _flatten(value[key], f"{prefix}.{key}" if prefix else str(key))
        return out or [(prefix, "{}")]
    if isinstance(value, list):
        out = []
        for i, item in enumerate(value):
            out += _flatten(item, f"{prefix}[{i}]")
        return out or [(prefix, "[]")]
    return [(prefix, value if isinstance(value, str) else json.dumps(value))]


def _utc_text(moment: datetime | None) -> str | None:
    return None if moment is None else f"{moment:%Y-%m-%d %H:%M:%S} UTC"


# -- templates ---------------------------------------------------------------------------------
_LAYOUT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{ title }} · Spend Tracker</title>
<style>{{ style }} nav a{margin-right:1rem} nav{padding-bottom:.5rem;border-bottom:1px solid #ddd}
.big{font-size:1.6rem;font-weight:bold} .muted{color:#666} pre{background:#f6f6f6;padding:.5rem;overflow:auto}
form.filters input,form.filters select{margin-right:.5rem;width:8rem} .error{color:#a00}</style>
</head><body>
<nav>{% for label, href in nav %}<a href="{{ href }}">{{ label }}</a>{% endfor %}</nav>
{% block body %}{% endblock %}
<p class="muted">Read-only. Generated {{ now.strftime('%Y-%m-%d %H:%M UTC') }}. Money is list cost in USD unless named otherwise.</p>
</body></html>
"""

_TEMPLATES = {
    "layout.html": _LAYOUT,
    "overview.html": """{% extends "layout.html" %}{% block body %}
<h1>{{ title }}</h1>
<h2 id="this-month">This month: {{ month }}</h2>
<p class="sub">{{ since }} to {{ until }}, UTC days inclusive. Total <span class="big" id="month-total">{{ "{:,.2f}".format(total) }}</span> USD</p>
{{ team_chart }}
{{ team_table }}
<h2>Trend</h2><p class="sub">{{ trend_subtitle }}</p>
{{ trend_chart }}
{% if budgets %}<h2 id="budgets">Budgets</h2>
{% if budgets.error %}<p class="error">{{ budgets.error }}</p>{% else %}{{ budgets.table }}{% endif %}{% endif %}
{% endblock %}""",
    "team.html": """{% extends "layout.html" %}{% block body %}
<h1>Team <span id="team-name">{{ team }}</span></h1>
<p class="sub">{{ subtitle }}. Spend <span class="big" id="team-total">{{ "{:,.2f}".format(total) }}</span> USD
over {{ jobs_count }} jobs{% if in_flight %}, of which {{ "{:,.2f}".format(in_flight) }} in flight (running jobs){% endif %}.</p>
<h2>Jobs</h2>
{{ job_table }}
<p>{% if prev_href %}<a href="{{ prev_href }}">previous</a>{% endif %} page {{ page }}
{% if next_href %}<a href="{{ next_href }}">next</a>{% endif %}</p>
<h2>Waste</h2>
{{ waste_chart }}
{{ waste_table }}
{% if estimates %}<h2 id="estimates">Estimates vs actuals</h2>
{% if estimates.error %}<p class="error">{{ estimates.error }}</p>{% else %}{{ estimates.summary }}
<p class="muted">Finished jobs in the window, largest overrun first.</p>{{ estimates.table }}{% endif %}{% endif %}
{% endblock %}""",
    "job.html": """{% extends "layout.html" %}{% block body %}
<h1>Job <span id="job-name">{{ job.name }}</span></h1>
{% if team_link %}<p>Team <a href="{{ team_link }}">{{ job.team }}</a></p>{% endif %}
<table>{% for key, value in facts %}<tr><th>{{ key }}</th><td>{{ "" if value is none else value }}</td></tr>{% endfor %}</table>
<h2>Cost items</h2>
{{ items_table }}
<h2>Per UTC day</h2>
{{ days_table }}
<h2>Raw AWS fields</h2>
<p class="muted">As DescribeTrainingJob returned them when the job was last collected.</p>
<table>{% for key, value in raw_fields %}<tr><th>{{ key }}</th><td>{{ value }}</td></tr>{% endfor %}</table>
<details><summary>JSON</summary><pre>{{ raw_json }}</pre></details>
{% endblock %}""",
    "view.html": """{% extends "layout.html" %}{% block body %}
<h1>{{ report.title }}</h1>
<form class="filters" method="get" action="/views/{{ view }}">
<label>since <input name="since" value="{{ request.since or '' }}" placeholder="YYYY-MM-DD"></label>
<label>until <input name="until" value="{{ request.until or '' }}" placeholder="YYYY-MM-DD"></label>
{% for name in ["team", "project", "account", "region", "instance_type", "status"] %}
<label>{{ name }} <input name="{{ name }}" value="{{ request.filters.get(name, '') }}"></label>{% endfor %}
{% if view == "showback" %}<label>pivot <input name="pivot" value="{{ request.rows_by }},{{ request.cols_by }}"></label>{% endif %}
{% if view == "top" %}<label>top <input name="top" value="{{ request.top }}"></label>{% endif %}
<button type="submit">Apply</button></form>
<p class="sub">{{ report.subtitle }} · <a href="{{ api_href }}">JSON</a></p>
{% for chart in charts %}<figure>{{ chart }}</figure>{% endfor %}
{{ table }}
{% for note in report.notes %}<p class="note">{{ note }}</p>{% endfor %}
{% endblock %}""",
    "error.html": """{% extends "layout.html" %}{% block body %}
<h1>{{ title }}</h1><p class="error">{{ message }}</p>{% endblock %}""",
}


def _env() -> Environment:
    env = Environment(
        loader=DictLoader(_TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    env.globals["style"] = Markup(STYLE)
    return env
