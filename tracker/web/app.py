"""``tracker serve``: a read-only dashboard over the store (FastAPI, server-rendered HTML).

Pages: the overview (spend per team in a month, by default the latest with spend, with the
30 days up to it and budgets when configured),
a team page (its jobs, its waste, estimates vs actuals for its finished jobs), a job page
(every cost item and the raw AWS fields it came from), one page per view, and a JSON API
that returns exactly what ``tracker report --format json`` prints.

Nothing is fetched from elsewhere: charts are inline SVG, there is no script at all, and a
Content-Security-Policy forbids any. Templates autoescape, so tag values (which users
control) render as text. Only GET routes exist; the app never writes to the store.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, PackageLoader
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tracker.alert.service import budget_statuses
from tracker.clock import system_clock
from tracker.cost.items import ARTIFACT_PER_MONTH, COST_ITEMS, REPORT_ITEMS
from tracker.errors import TrackerError
from tracker.reconcile.rules import team_rollup
from tracker.reconcile.service import estimate_tolerance, reconcile_estimates
from tracker.records import DIMENSIONS, usd_cents
from tracker.report.budgets import budget_table
from tracker.report.charts import Chart, Series, layout
from tracker.report.metrics import metrics_registry
from tracker.report.render import HtmlTable, Links, html_table, to_json
from tracker.report.spend import columns_for, shown_usd, spend_notes, spend_rows, spend_table
from tracker.report.table import Table, count, infer_all, money, text
from tracker.report.templating import environment
from tracker.report.unpriced import unpriced_parts
from tracker.report.views import (
    TOP_COLUMNS,
    VIEWS,
    ViewRequest,
    build,
    describe_window,
    month_start,
    parse_pivot,
)
from tracker.settings import Settings
from tracker.store.database import Store
from tracker.store.query import ViewQueries, Window

log = logging.getLogger("tracker.web.app")
FILTERS = ("team", "project", "user", "account", "region", "instance_type", "status")
JOBS_PER_PAGE = 50
MONTH = re.compile(r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})")  # ASCII digits only, unlike \d
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
#: The team table of the overview: the ``report --by team`` columns, less the S3 run-rate.
TEAM_COLUMNS = [c for c in columns_for("team") if c.key != ARTIFACT_PER_MONTH.key]
#: What each cost item on a job page means; the items themselves come from the catalogue.
MEANINGS = {
    "compute": "instance time (or tokens) billed",
    "spot_savings": "what managed spot saved (not in the total)",
    "warm_pool": "warm-pool retained time",
    "storage": "ML storage volume",
    "plan_value": "on-demand value covered by a training plan (prepaid, not in the total)",
    "list": "list cost: compute + warm pool + storage",
    "effective": "after discounts (Savings Plans, private pricing)",
    "artifact_per_month": "S3 run-rate of the job's artifacts (not in the total)",
}
ITEM_COLUMNS = [text("item"), money("usd"), text("meaning")]
#: The job page's per-day split: every item split over days, the S3 run-rate aside.
DAY_ITEMS = [item for item in REPORT_ITEMS if item is not ARTIFACT_PER_MONTH]
DAY_COLUMNS = [text("day"), *(money(item.key) for item in DAY_ITEMS)]
TEAM_JOB_COLUMNS = [c for c in TOP_COLUMNS if c.key not in ("rank", "team", "project")]
ESTIMATE_TEAM_COLUMNS = infer_all(
    ["team", "jobs", "estimated_jobs", "estimate_usd", "actual_usd", "delta_usd", "delta_pct",
     "verdict", "over", "under", "within"], percent_places=1,
    over=count("over"), under=count("under"), within=count("within"),
)  # fmt: skip
ESTIMATE_JOB_COLUMNS = infer_all(
    ["job", "estimate_usd", "actual_usd", "delta_usd", "delta_pct", "estimate_source", "verdict"],
    percent_places=1,
)


def create_app(
    store: Store, *, settings: Settings | None = None, clock: Callable[[], datetime] = system_clock
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
    def overview(request: Request) -> str:
        return pages.overview(_month(request))

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
        return Response(to_json(spend_table(rows, by)), media_type="application/json")

    @app.get("/api/views/{name}")
    def api_view(name: str, request: Request) -> Response:
        report = build(store, _view_request(name, request), clock())
        return Response(to_json(report), media_type="application/json")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    registry = metrics_registry(store, settings, clock)

    @app.api_route("/metrics", methods=["GET", "HEAD"])
    def metrics() -> Response:
        # Read from the store on every scrape: the same numbers as the daemon's listener.
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

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


def _month(request: Request) -> date | None:
    """``month=YYYY-MM`` as the first day of that month (None when absent)."""
    text = request.query_params.get("month")
    if not text:
        return None
    found = MONTH.fullmatch(text)
    if found is None or not 1 <= int(found["month"]) <= 12 or int(found["year"]) < 1:
        raise HTTPException(400, f"month={text!r} is not a month; expected YYYY-MM")
    return date(int(found["year"]), int(found["month"]), 1)


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


@cache
def templates() -> Environment:
    """The dashboard's templates (tracker/web/templates) over the report templates they extend."""
    return environment(PackageLoader("tracker.web", "templates"))


@dataclass(frozen=True)
class Panel:
    """An optional section of a page: its tables, or the one line saying why they are missing."""

    error: str | None = None
    table: HtmlTable | None = None
    summary: HtmlTable | None = None


class _Pages:
    """Renders each page from the store; one instance per app. Pages get tables as cells
    (:class:`tracker.report.render.HtmlTable`) and charts as drawings: the templates escape every value."""

    def __init__(self, store: Store, settings: Settings | None, clock: Callable[[], datetime]):
        self.store = store
        self.settings = settings
        self.clock = clock
        self.queries = ViewQueries(store)
        self.env = templates()

    def render(self, template: str, **context: Any) -> str:
        return self.env.get_template(template).render(nav=NAV, now=self.clock(), **context)

    def error(self, request: Request, status: int, message: str) -> Response:
        """API errors as JSON ``{"error": ...}``, page errors as a page."""
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=status)
        return HTMLResponse(
            self.render("error.html.j2", title=f"Error {status}", message=message),
            status_code=status,
        )

    def overview(self, month: date | None) -> str:
        """Spend per team in ``month``: by default the latest month with spend, so a new
        month (or a database collected some time ago) does not open on an empty page."""
        now = self.clock()
        today = now.date()
        days = self.queries.spend_days()
        since = month or month_start(days[1] if days else today)
        month_end = month_start(since, -1) - timedelta(days=1)
        until = min(month_end, today) if since <= today else month_end
        rows = spend_rows(self.store, "team", since=since, until=until)
        teams = spend_table(rows, "team", spend_notes(self.store, since=since, until=until))
        teams.columns = TEAM_COLUMNS
        chart = Chart(
            "hbar",
            f"Spend per team, {since:%B %Y} (USD)",
            tuple(str(r["team"]) for r in teams.rows),
            (Series("total_usd", tuple(r["total_usd"] for r in teams.rows)),),
        )
        trend = build(self.store, ViewRequest("trend", until=until), now)
        before, after = month_start(since, 1), month_start(since, -1)
        return self.render(
            "overview.html.j2",
            title="SageMaker training spend",
            month=f"{since:%B %Y}",
            current=since == month_start(today),
            since=since,
            until=until,
            picker={
                "value": f"{since:%Y-%m}",
                "min": f"{days[0]:%Y-%m}" if days else None,
                "max": f"{max(days[1], today) if days else today:%Y-%m}",
            },
            prev_href=f"/?month={before:%Y-%m}" if days and days[0] < since else None,
            next_href=f"/?month={after:%Y-%m}" if days and days[1] >= after else None,
            total=teams.total["total_usd"] if teams.total else Decimal("0.00"),
            team_table=html_table(teams, {"team": team_href}),
            team_chart=layout(chart),
            notes=teams.notes,
            trend_chart=layout(trend.charts[0]),
            trend_subtitle=trend.subtitle,
            budgets=self.budgets(now),
        )

    def budgets(self, now: datetime) -> Panel | None:
        """Budget standings, when budgets are configured."""

        def standings(settings: Settings) -> Panel | None:
            statuses = budget_statuses(settings, self.store, now)
            return Panel(table=html_table(budget_table(statuses))) if statuses else None

        return self._panel("budgets", "evaluated", standings)

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
        jobs = Table(
            f"Jobs of {name}", TEAM_JOB_COLUMNS, [_job_row(j) for j in found[:JOBS_PER_PAGE]]
        )
        ids = {r["job"]: r["_job_id"] for r in jobs.rows}
        overall = self.queries.totals(window)
        waste = build(
            self.store, ViewRequest("waste", window.since, window.until, window.filters), now
        )
        query = {k: v for k, v in (("since", window.since), ("until", window.until)) if v}
        return self.render(
            "team.html.j2",
            title=f"Team {name}",
            team=name,
            subtitle=describe_window(Window(window.since, window.until)),
            total=usd_cents(overall["list"]),
            in_flight=usd_cents(overall["in_flight"]),
            jobs_count=overall["jobs"],
            job_table=html_table(
                jobs, {"job": lambda job: f"/jobs/{ids[job]}" if job in ids else None}
            ),
            page=page,
            prev_href=_page_href(name, query, page - 1) if page > 1 else None,
            next_href=_page_href(name, query, page + 1) if more else None,
            waste_table=html_table(waste),
            waste_chart=layout(waste.charts[0]),
            estimates=self.estimates(name, window),
        )

    def estimates(self, team: str, window: Window) -> Panel | None:
        """Estimates vs actuals for the team's finished jobs in the window."""

        def versus(settings: Settings) -> Panel | None:
            tolerance = estimate_tolerance(settings)
            rows = reconcile_estimates(
                settings, self.store, self.clock(), since=window.since, until=window.until,
                team=team, tolerance_pct=tolerance,
            )  # fmt: skip
            if not rows:
                return None
            summary = [r.to_dict() for r in team_rollup(rows, tolerance)]
            jobs = sorted((r.to_dict() for r in rows), key=lambda r: -(r["delta_usd"] or 0))
            return Panel(
                summary=html_table(Table("Estimates", ESTIMATE_TEAM_COLUMNS, summary)),
                table=html_table(Table("Jobs", ESTIMATE_JOB_COLUMNS, jobs[:JOBS_PER_PAGE])),
            )

        return self._panel("estimates", "read", versus)

    def _panel(
        self, name: str, verb: str, fill: Callable[[Settings], Panel | None]
    ) -> Panel | None:
        """An optional panel: None without settings or content; a failure is shown in the
        panel, never taking the page down with it."""
        if self.settings is None:
            return None
        try:
            return fill(self.settings)
        except TrackerError as exc:
            return Panel(error=str(exc))
        except Exception as exc:  # noqa: BLE001 - see the docstring
            log.warning("%s panel failed: %s", name, exc)
            return Panel(error=f"{name} could not be {verb} ({exc.__class__.__name__})")

    def job(self, job_id: int) -> str:
        row = self.queries.job(job_id)
        if row is None:
            raise HTTPException(404, f"no job with id {job_id}")
        shown = shown_usd(
            {item.name: getattr(row, item.column) or 0 for item in COST_ITEMS}, COST_ITEMS
        )
        items = [
            {"item": item.key, "usd": shown[item.key], "meaning": MEANINGS[item.name]}
            for item in COST_ITEMS
        ]
        days = [
            {
                "day": d["day"].isoformat(),
                **shown_usd({i.name: d[i.column] for i in DAY_ITEMS}, DAY_ITEMS),
            }
            for d in self.queries.job_days(job_id)
        ]
        raw = _load_json(row.raw_json)
        facts = [
            ("name", row.name), ("team", row.team), ("project", row.project), ("user", row.user),
            ("status", row.status), ("secondary status", row.secondary_status),
            ("failure reason", row.failure_reason), ("instances", f"{row.instance_count} x {row.instance_type}"),
            ("spot", "yes" if row.spot else "no"), ("billable seconds (per instance)", row.billable_seconds),
            ("training seconds", row.training_seconds), ("start", _utc_text(row.start_time)), ("end", _utc_text(row.end_time)),
            ("artifacts in S3 (measured)", bytes_text(row.artifact_bytes)), ("model artifact", row.model_artifact_uri),
            ("final", "yes" if row.final else "no (running: cost so far)"),
            ("unpriced", "yes: no price for an instance type" if row.unpriced else "no"),
            ("unpriced parts", ", ".join(unpriced_parts(row.flags)) or "none"),
            ("flags", row.flags or "none"), ("account", row.account_id), ("region", row.region),
            ("arn", row.arn), ("tags", ", ".join(f"{k}={v}" for k, v in sorted(_load_json(row.tags_json).items()))),
        ]  # fmt: skip
        return self.render(
            "job.html.j2",
            title=f"Job {row.name}",
            job=row,
            team_link=team_href(row.team),
            facts=facts,
            items_table=html_table(Table("Cost items", ITEM_COLUMNS, items)),
            days_table=html_table(Table("Per UTC day", DAY_COLUMNS, days)),
            raw_fields=_flatten(raw),
            raw_json=json.dumps(raw, indent=2, sort_keys=True),
        )

    def view(self, request: ViewRequest) -> str:
        report = build(self.store, request, self.clock())
        return self.render(
            "view.html.j2",
            title=report.title,
            report=report,
            view=request.view,
            request=request,
            charts=[layout(c) for c in report.charts],
            table=html_table(report, self._links(report)),
            api_href=f"/api/views/{request.view}?" + urlencode(_request_query(request)),
            dimensions=[d for d in DIMENSIONS if d != "job"],
        )

    def _links(self, report: Table) -> Links:
        links: dict[str, Callable[[Any], str | None]] = {}
        if "team" in report.keys:
            links["team"] = team_href
        if "job" in report.keys:
            ids = self.queries.job_ids_by_name([str(r["job"]) for r in report.rows])
            links["job"] = lambda name: f"/jobs/{ids[name]}" if name in ids else None
        return links


def _job_row(job: dict[str, Any]) -> dict[str, Any]:
    from tracker.report.views import _top_row

    row = _top_row(0, job)
    row["_job_id"] = job["id"]
    return row


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


BYTE_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


def bytes_text(size: int | None) -> str | None:
    """A byte count people read, with the exact count: ``1.2 GiB (1,288,490,189 bytes)``."""
    if size is None:
        return None
    exact = f"{size:,} byte" + ("" if size == 1 else "s")
    if size < 1024:
        return exact
    scaled, unit = float(size), "B"
    for unit in BYTE_UNITS:  # noqa: B007 - the last unit reached is the one shown
        scaled /= 1024
        if scaled < 1024:
            break
    return f"{scaled:,.1f} {unit} ({exact})"


def _utc_text(moment: datetime | None) -> str | None:
    return None if moment is None else f"{moment:%Y-%m-%d %H:%M:%S} UTC"
