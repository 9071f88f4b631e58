"""``tracker serve``: a read-only dashboard over the store (FastAPI, server-rendered HTML).

Pages: the overview (spend per team in a month, by default the latest with spend, with the
30 days up to it and budgets when configured),
a team page (its jobs, its waste, estimates vs actuals for its finished jobs), a job page
(every cost item and the raw AWS fields it came from), one page per view, the registered
models and a page per model (what it cost to produce: ``tracker lineage``), and a JSON API
that returns exactly what ``tracker report --format json`` and ``tracker lineage --format
json`` print.

Nothing is fetched from elsewhere: charts are inline SVG, there is no script at all, and a
Content-Security-Policy forbids any. Templates autoescape, so tag values (which users
control) render as text. Only GET (and HEAD) routes exist; the app never writes to the store.

Hostile input is bounded (issue 12): every query parameter is declared once in
:data:`PARAMETERS` (the OpenAPI schema at ``/api/openapi.json`` says what each accepts) and
parsed through :mod:`tracker.bounds`, so a client mistake answers 400 or 404 with the same one
line as the CLI, as JSON ``{"error": ...}`` under ``/api/`` and a small page elsewhere. Tables
longer than a page (``bounds.PAGE_ROWS``) are paged with ``?page=``. :class:`Guard` wraps the
whole app: security headers on every response (errors included), HEAD wherever GET works, an
unexpected exception as a one-line 500, and the per-request time budget: queries stop at the
deadline (:mod:`tracker.store.interrupt`) and the request answers 503.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache, partial
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import anyio
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, PackageLoader
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message, Receive, Scope, Send

from tracker import bounds
from tracker.alert.service import budget_statuses
from tracker.clock import system_clock
from tracker.cost.items import ARTIFACT_PER_MONTH, COST_ITEMS, REPORT_ITEMS
from tracker.cost.shared import SharedPool
from tracker.errors import InputError, TrackerError, printable
from tracker.reconcile.rules import team_rollup
from tracker.reconcile.service import estimate_tolerance, reconcile_estimates
from tracker.records import DIMENSIONS, FILTERS, usd_cents
from tracker.report.budgets import budget_table
from tracker.report.charts import Chart, Series, layout
from tracker.report.lineage import (
    find_model,
    lineage_json,
    lineage_of,
    lineage_table,
    model_summary,
    models_table,
    unique_ids,
)
from tracker.report.metrics import metrics_registry
from tracker.report.render import HtmlTable, Links, html_table, json_text, to_json
from tracker.report.spend import (
    columns_for,
    shown_usd,
    spend_count,
    spend_notes,
    spend_rows,
    spend_table,
    spend_total,
)
from tracker.report.table import Table, count, infer_all, money, text
from tracker.report.templating import environment
from tracker.report.unpriced import unpriced_parts
from tracker.report.views import (
    DEFAULT_TOP,
    TOP_COLUMNS,
    TREND_DAYS,
    VIEW_BY,
    VIEWS,
    ViewRequest,
    build,
    describe_window,
    month_start,
    parse_pivot,
)
from tracker.settings import Settings
from tracker.store import interrupt
from tracker.store.database import Store
from tracker.store.lineage import LineageRepository
from tracker.store.query import ViewQueries, Window

log = logging.getLogger("tracker.web.app")
T = TypeVar("T")
JOBS_PER_PAGE = 50
#: Teams the overview's chart draws (the most expensive of the page); the table has them all.
CHART_TEAMS = 20
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
    store: Store,
    *,
    settings: Settings | None = None,
    clock: Callable[[], datetime] = system_clock,
    request_seconds: float = bounds.DEFAULT_REQUEST_SECONDS,
    page_rows: int = int(bounds.PAGE_ROWS.high),
) -> Guard:
    """The dashboard app over ``store``; ``clock`` sets "this month" and the trend window.

    ``request_seconds`` is the time budget of one request (``bounds.REQUEST_SECONDS``: the
    caller checks a configured value); ``page_rows`` the rows one page or API page holds."""
    app = FastAPI(
        title="SageMaker Spend Tracker",
        docs_url=None,  # Swagger UI and ReDoc load assets from a CDN: not here
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    interrupt.cancel_at_deadline(store.engine)
    pages = _Pages(store, settings, clock, page_rows)

    @app.exception_handler(InputError)
    async def input_error(request: Request, exc: InputError) -> Response:
        return pages.error(request.url.path, 400, str(exc))

    @app.exception_handler(TrackerError)
    async def tracker_error(request: Request, exc: TrackerError) -> Response:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        return pages.error(request.url.path, 500, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        response = pages.error(request.url.path, exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # Starlette answers with this, then re-raises to the Guard, which logs it.
        return pages.error(request.url.path, 500, _internal(exc))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return pages.error(request.url.path, 400, _validation_message(exc))

    # Each page is made in a worker thread that the time budget may abandon (its queries stop
    # at the deadline): the 503 leaves on time even when the work is not a query.
    @app.get("/", response_class=HTMLResponse, **_doc("month", "page"))
    async def overview(request: Request) -> str:
        return await _work(pages.overview, _month(request), _page(request))

    @app.get("/team", response_class=HTMLResponse, **_doc("name", *WINDOW, "page"))
    async def team(request: Request) -> str:
        name = _text(request, "name")
        if not name:
            raise InputError("name: expected the name of a team, e.g. /team?name=vision")
        return await _work(pages.team, name, _window(request), _page(request))

    @app.get("/jobs/{job_id}", response_class=HTMLResponse, **_doc("job_id"))
    async def job(request: Request) -> str:
        return await _work(pages.job, _job_id(request))

    @app.get("/models", response_class=HTMLResponse, **_doc("page"))
    async def models(request: Request) -> str:
        return await _work(pages.models, _page(request))

    @app.get("/models/{model:path}", response_class=HTMLResponse, **_doc("model_ref"))
    async def model(request: Request) -> str:
        return await _work(pages.model, _model_ref(request.path_params["model"]))

    @app.get("/api/lineage", **_doc("lineage_model", api=True, body=LINEAGE_SCHEMA))
    async def api_lineage(request: Request) -> Response:
        reference = _model_ref(_text(request, "model"))

        def report() -> Response:
            found = lineage_of(store, pages.find_model(reference))
            return Response(json_text(lineage_json(found)), media_type="application/json")

        return await _work(report)

    @app.get("/views/{name}", response_class=HTMLResponse, **_doc("view", *VIEW_QUERY))
    async def view(request: Request) -> str:
        return await _work(
            pages.view, _view_request(request, pages.max_daily_days, pages.shared), _page(request)
        )

    @app.get("/api/report", **_doc("report_by", *WINDOW, "page", api=True))
    async def api_report(request: Request) -> Response:
        by = _choice(request, "by", DIMENSIONS, "team")
        window, page = _window(request), _page(request)

        def report() -> Response:
            # Paged in SQL: a COUNT for the total, then only this page's rows.
            asked = {"since": window.since, "until": window.until, "filters": window.filters}
            pager = Pager.of(spend_count(store, by, **asked), page, pages.page_rows)
            rows = spend_rows(store, by, **asked, page=page, page_rows=pages.page_rows)
            return pages.api_rows(request, spend_table(rows, by), pager)

        return await _work(report)

    @app.get("/api/views/{name}", **_doc("view", *VIEW_QUERY, api=True))
    async def api_view(request: Request) -> Response:
        asked, page = _view_request(request, pages.max_daily_days, pages.shared), _page(request)

        def report() -> Response:
            return pages.api_page(request, build(store, asked, clock()), page)

        return await _work(report)

    @app.get("/healthz", **_doc(api=True, body={"type": "object"}))
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    registry = metrics_registry(store, settings, clock)

    @app.get("/metrics", response_class=Response, **_doc(body=None, media="text/plain"))
    async def metrics() -> Response:
        # Read from the store on every scrape: the same numbers as the daemon's listener.
        scraped = await _work(generate_latest, registry)
        return Response(scraped, media_type=CONTENT_TYPE_LATEST)

    return Guard(app, pages, request_seconds)


# -- the guard around every request ------------------------------------------------------------
class Guard:
    """Wraps the app (outside Starlette's own error handling, so nothing escapes it):

    - every response carries :data:`SECURITY_HEADERS`, errors and HEAD answers included;
    - ``HEAD`` is answered as ``GET`` without the body, wherever GET works;
    - an unexpected exception is logged and answers a one-line 500 (the connection stays
      usable: nothing reaches the server's own handler);
    - the time budget: past ``seconds`` the request is cancelled (its queries stop,
      :mod:`tracker.store.interrupt`) and answers 503; an answer made after the deadline
      (a query's "interrupted" error, say) is replaced by that 503.

    Attribute access falls through to the FastAPI app (``openapi()``, ``routes``...)."""

    def __init__(self, app: FastAPI, pages: _Pages, seconds: float):
        self.app = app
        self.pages = pages
        self.seconds = seconds

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = scope["method"] == "HEAD"
        if head:
            scope = {**scope, "method": "GET"}
        state = {"started": False, "late": False}

        async def guarded_send(message: Message) -> None:
            if state["late"]:
                return  # an answer after the deadline: the 503 below replaces it
            if message["type"] == "http.response.start":
                if interrupt.expired():
                    state["late"] = True
                    return
                state["started"] = True
                headers = [(k, v) for k, v in message.get("headers", [])]
                present = {k.lower() for k, _ in headers}
                headers += [
                    (name.lower().encode(), value.encode())
                    for name, value in SECURITY_HEADERS.items()
                    if name.lower().encode() not in present
                ]
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and head:
                message = {**message, "body": b""}
            await send(message)

        path = scope.get("path", "")
        with interrupt.deadline(self.seconds):
            try:
                with anyio.move_on_after(self.seconds) as budget:
                    await self.app(scope, receive, guarded_send)
                state["late"] = state["late"] or budget.cancelled_caught
            except Exception as exc:  # noqa: BLE001 - the one place every failure ends
                if not (state["late"] or interrupt.expired()):
                    log.exception("%s %s failed", scope["method"], path)
                    if not state["started"]:
                        await self._answer(send, head, path, 500, _internal(exc))
                    return  # once started, the answer is on its way: nothing more can be said
                state["late"] = True  # failed because it was stopped: the 503 says so
        if state["late"] and not state["started"]:
            message = (
                f"the request took longer than {self.seconds:g} s and was stopped; "
                "narrow the window or the filters"
            )
            await self._answer(send, head, path, 503, message)

    async def _answer(self, send: Send, head: bool, path: str, status: int, message: str) -> None:
        response = self.pages.error(path, status, message)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        await send(
            {"type": "http.response.start", "status": status, "headers": response.raw_headers}
        )
        await send({"type": "http.response.body", "body": b"" if head else response.body})


async def _work(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` in a worker thread (with this request's deadline); when the time
    budget cancels the request, the thread is abandoned and its queries stop at the deadline."""
    return await anyio.to_thread.run_sync(partial(function, *args), abandon_on_cancel=True)


def _internal(exc: Exception) -> str:
    return f"internal error ({exc.__class__.__name__}); the server log has the details"


def _validation_message(exc: RequestValidationError) -> str:
    """FastAPI's list of validation errors as one line: the first, with where it was."""
    errors = exc.errors()
    if not errors:
        return "invalid request"
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("query", "path"))
    return printable(f"{where}: {first.get('msg', 'invalid value')}")


# -- request parameters: declared once, in the schema and in the parsing -----------------------
@dataclass(frozen=True)
class Param:
    """One request parameter: its name in the URL, where, its JSON schema and meaning."""

    name: str
    schema: dict[str, Any]
    description: str
    where: str = "query"
    required: bool = False

    def openapi(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "in": self.where,
            "required": self.required or self.where == "path",
            "description": self.description,
            "schema": self.schema,
        }


def _bounded(bound: bounds.Bound, default: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", "minimum": bound.low, "maximum": bound.high}
    return schema if default is None else {**schema, "default": default}


DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
DATE_SHAPE = re.compile(DATE_PATTERN)
#: Dimension names (the longest is 13 letters), one or two.
PIVOT_PATTERN = r"^[a-z_-]{1,32}(,[a-z_-]{1,32})?$"
PIVOT_SHAPE = re.compile(PIVOT_PATTERN)
_DAY = {"type": "string", "format": "date", "pattern": DATE_PATTERN}
_FILTER_TEXT = {"type": "string"}
PARAMETERS = {
    p.name: p
    for p in [
        Param("since", _DAY, "first UTC day, inclusive (YYYY-MM-DD)"),
        Param("until", _DAY, "last UTC day, inclusive (YYYY-MM-DD)"),
        Param("month", {"type": "string", "pattern": r"^[0-9]{4}-[0-9]{2}$"}, "YYYY-MM"),
        Param("page", _bounded(bounds.PAGE_NUMBER, 1), "page of the table"),
        Param("top", _bounded(bounds.TOP_JOBS, DEFAULT_TOP), "jobs the top view ranks"),
        Param("pivot", {"type": "string", "pattern": PIVOT_PATTERN}, "COLUMNS or ROWS,COLUMNS"),
        Param("name", {"type": "string", "minLength": 1}, "the team", required=True),
        *(Param(f, _FILTER_TEXT, f"only jobs whose {f} is this") for f in FILTERS),
    ]
}
#: Parameters whose schema differs by route, under a name of their own.
ROUTE_PARAMETERS = {
    "job_id": Param("job_id", _bounded(bounds.ROW_ID), "the job's id", where="path"),
    "view": Param("name", {"type": "string", "enum": list(VIEWS)}, "the view", where="path"),
    "model_ref": Param(
        "model", {"type": "string", "minLength": 1}, "the model: its id, ARN or name", where="path"
    ),
    "lineage_model": Param(
        "model",
        {"type": "string", "minLength": 1},
        "the model or model package: its ARN or name",
        required=True,
    ),
    "report_by": Param(
        "by", {"type": "string", "enum": list(DIMENSIONS), "default": "team"}, "rows per"
    ),
    "view_by": Param(
        "by",
        {"type": "string", "enum": list(VIEW_BY), "default": "team"},
        "rows per: showback (without pivot) or units (team, instance_type, base_model, month)",
    ),  # fmt: skip
}
WINDOW = ("since", "until", *FILTERS)
VIEW_QUERY = (*WINDOW, "view_by", "pivot", "top", "page")
_ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "string"}},
    "required": ["error"],
}
_MONEY_SCHEMA = {"type": "number"}
#: The JSON object of ``/api/lineage`` (``tracker lineage --format json``).
LINEAGE_SCHEMA = {
    "type": "object",
    "properties": {
        "model": {"type": "object"},
        "jobs": {"type": "array", "items": {"type": "object"}},
        "total_usd": _MONEY_SCHEMA,
        "failed_attempts_usd": _MONEY_SCHEMA,
        "totals": {"type": "object"},
        "unpriced_jobs": {"type": "integer"},
        "notes": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["model", "jobs", "total_usd", "failed_attempts_usd"],
}
_ERRORS = {
    400: "a client mistake, in one line",
    404: "no such page, job, team, view or model",
    405: "only GET and HEAD",
    500: "an unexpected failure, in one line (details in the server log)",
    503: "the request took longer than its time budget and was stopped",
}


def _doc(
    *names: str,
    api: bool = False,
    body: dict[str, Any] | None = None,
    media: str | None = None,
) -> dict[str, Any]:
    """The OpenAPI parts of a route: its parameters (which FastAPI cannot see, as they are
    parsed through tracker.bounds) and its answers."""
    media = media or ("application/json" if api else "text/html")
    error_content = (
        {"application/json": {"schema": _ERROR_SCHEMA}}
        if api
        else {"text/html": {"schema": {"type": "string"}}}
    )
    ok: dict[str, Any] = {"description": "the page" if not api else "the rows"}
    if api:
        ok["content"] = {media: {"schema": body or {"type": "array", "items": {"type": "object"}}}}
    elif body is None and media != "text/html":
        ok["content"] = {media: {"schema": {"type": "string"}}}
    responses: dict[int | str, dict[str, Any]] = {200: ok}
    for status, description in _ERRORS.items():
        responses[status] = {"description": description, "content": error_content}
    params = [(ROUTE_PARAMETERS.get(n) or PARAMETERS[n]).openapi() for n in names]
    return {"responses": responses, "openapi_extra": {"parameters": params} if params else None}


def _text(request: Request, name: str) -> str | None:
    """A text parameter, None when absent or empty (forms send empty fields); NUL refused."""
    value = request.query_params.get(name)
    if value and "\x00" in value:
        raise InputError(f"{name}: a value cannot hold a NUL character")
    return value or None


def _choice(request: Request, name: str, choices: tuple[str, ...], default: str) -> str:
    value = _text(request, name) or default
    if value not in choices:
        raise InputError(f"{name} {_shown(value)}: expected one of {', '.join(choices)}")
    return value


def _page(request: Request) -> int:
    value = _text(request, "page")
    return 1 if value is None else bounds.whole("page", value, bounds.PAGE_NUMBER)


def _job_id(request: Request) -> int:
    value = request.path_params["job_id"]
    return bounds.whole("id", value, bounds.ROW_ID)


def _day(request: Request, name: str) -> date | None:
    text = _text(request, name)
    if text is None:
        return None
    try:
        if DATE_SHAPE.fullmatch(text) is None:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{name} {_shown(text)} is not a date; expected YYYY-MM-DD") from None


def _month(request: Request) -> date | None:
    """``month=YYYY-MM`` as the first day of that month (None when absent)."""
    text = _text(request, "month")
    if not text:
        return None
    found = MONTH.fullmatch(text)
    if found is None or not 1 <= int(found["month"]) <= 12 or int(found["year"]) < 1:
        raise InputError(f"month={_shown(text)} is not a month; expected YYYY-MM")
    return date(int(found["year"]), int(found["month"]), 1)


def _window(request: Request) -> Window:
    since, until = _day(request, "since"), _day(request, "until")
    if since and until and since > until:
        raise InputError(f"since={since} is after until={until}")
    filters = {}
    for name in FILTERS:
        value = _text(request, name) or _text(request, name.replace("_", "-"))
        if value:
            filters[name] = value
    return Window(since, until, filters)


def _view_request(
    request: Request, max_daily_days: int, shared: tuple[SharedPool, ...] = ()
) -> ViewRequest:
    """The view the URL asks for; ``max_daily_days`` bounds a per-day view's window; the
    showback splits the ``shared`` pools (``[[allocation.shared]]``) as the CLI's does."""
    name = request.path_params["name"]
    if name not in VIEWS:
        raise HTTPException(404, f"no view {_shown(name)}; the views are {', '.join(VIEWS)}")
    window = _window(request)
    by = _choice(request, "by", VIEW_BY, "team")
    pivot = _text(request, "pivot")
    if pivot is not None and PIVOT_SHAPE.fullmatch(pivot) is None:
        raise InputError(
            f"pivot {_shown(pivot)}: expected COLUMNS or ROWS,COLUMNS, e.g. team,month"
        )
    rows_by, cols_by = parse_pivot(pivot, by) if pivot else (by, "month")
    top = _text(request, "top")
    return ViewRequest(
        name,
        window.since,
        window.until,
        window.filters,
        rows_by=rows_by,
        cols_by=cols_by,
        top=DEFAULT_TOP if top is None else bounds.whole("top", top, bounds.TOP_JOBS),
        max_daily_days=max_daily_days,
        shared=shared if name == "showback" else (),
    )


def _model_ref(value: str | None) -> str:
    """A model as a URL names it (id, ARN or name): present, one line, without NUL."""
    if not value or not value.strip():
        raise InputError("model: expected a model's id, ARN or name, e.g. /models/churn-xgb/3")
    if "\x00" in value:
        raise InputError("model: a value cannot hold a NUL character")
    return value


def _shown(value: str) -> str:
    """A value as an error shows it (cut short, one line): as the CLI shows it."""
    return bounds._shown(value)  # noqa: SLF001 - the one way values are shown in errors


# -- pages -------------------------------------------------------------------------------------
NAV = [("Overview", "/")] + [(name.capitalize(), f"/views/{name}") for name in VIEWS] + [
    ("Models", "/models"), ("JSON API", "/api/report?by=team")
]  # fmt: skip


def model_href(model_id: Any) -> str | None:
    return f"/models/{model_id}" if isinstance(model_id, int) else None


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

    def __init__(
        self,
        store: Store,
        settings: Settings | None,
        clock: Callable[[], datetime],
        page_rows: int = int(bounds.PAGE_ROWS.high),
    ):
        self.store = store
        self.settings = settings
        self.clock = clock
        self.page_rows = page_rows
        #: ``[reports] max_daily_days``: the widest per-day view; every ViewRequest gets it.
        self.max_daily_days = (
            int(bounds.DAILY_WINDOW_DAYS.high)
            if settings is None
            else settings.reports.max_daily_days
        )
        #: ``[[allocation.shared]]``: the pools the showback page splits beside each team's cost.
        self.shared = () if settings is None else settings.allocation.shared
        self.queries = ViewQueries(store)
        self.env = templates()

    def render(self, template: str, **context: Any) -> str:
        return self.env.get_template(template).render(nav=NAV, now=self.clock(), **context)

    def error(self, path: str, status: int, message: str) -> Response:
        """API errors as JSON ``{"error": ...}``, page errors as a page; one line either way."""
        message = printable(message)
        if path.startswith("/api/") or path == "/healthz":
            return JSONResponse({"error": message}, status_code=status)
        try:
            page = self.render("error.html.j2", title=f"Error {status}", message=message)
        except Exception:  # noqa: BLE001 - an error page must not fail: plain text then
            log.exception("rendering the error page failed")
            return Response(f"Error {status}: {message}\n", status, media_type="text/plain")
        return HTMLResponse(page, status_code=status)

    def paged(self, table: Table, page: int) -> tuple[Table, Pager]:
        """The rows of ``page`` (``page_rows`` a page); the total stays the whole table's."""
        pager = Pager.of(len(table.rows), page, self.page_rows)
        if pager.pages == 1:
            return table, pager
        shown = replace(table, rows=table.rows[pager.first - 1 : pager.last])
        shown.notes = [*table.notes, pager.note()]
        return shown, pager

    def api_page(self, request: Request, table: Table, page: int) -> Response:
        """One page of a whole table as the CLI's JSON (:meth:`api_rows`)."""
        return self.api_rows(request, *self.paged(table, page))

    def api_rows(self, request: Request, shown: Table, pager: Pager) -> Response:
        """The rows of one page as the CLI's JSON; ``X-Total-Count`` and ``Link`` for the rest."""
        response = Response(to_json(shown), media_type="application/json")
        response.headers["X-Total-Count"] = str(pager.rows)
        links = pager.links(request)
        if links:
            response.headers["Link"] = ", ".join(f'<{href}>; rel="{rel}"' for rel, href in links)
        return response

    def overview(self, month: date | None, page: int = 1) -> str:
        """Spend per team in ``month``: by default the latest month with spend, so a new
        month (or a database collected some time ago) does not open on an empty page.
        Teams are paged in SQL (``page_rows`` a page); the total is of every team."""
        now = self.clock()
        today = now.date()
        days = self.queries.spend_days()
        since = month or month_start(days[1] if days else today)
        # The months either side, None past the calendar's ends (0001-01 and 9999-12).
        before, after = _month_or_none(since, 1), _month_or_none(since, -1)
        month_end = date.max if after is None else after - timedelta(days=1)
        until = min(month_end, today) if since <= today else month_end
        asked = {"since": since, "until": until}
        pager = Pager.of(spend_count(self.store, "team", **asked), page, self.page_rows)
        rows = spend_rows(self.store, "team", **asked, page=page, page_rows=self.page_rows)
        teams = spend_table(rows, "team", spend_notes(self.store, **asked))
        teams.columns = TEAM_COLUMNS
        if pager.pages > 1:
            teams.total = spend_total(self.store, "team", **asked)
            teams.notes.append(pager.note())
        charted = teams.rows[:CHART_TEAMS]
        top = f", top {len(charted)}" if len(charted) < pager.rows else ""
        chart = Chart(
            "hbar",
            f"Spend per team, {_month_name(since)}{top} (USD)",
            tuple(str(r["team"]) for r in charted),
            (Series("total_usd", tuple(r["total_usd"] for r in charted)),),
        )
        query = {"month": _month_text(since)}
        # The trend's days up to the month's end, never wider than a per-day view may be.
        days_back = min(TREND_DAYS, self.max_daily_days, (until - date.min).days + 1) - 1
        trend_request = ViewRequest(
            "trend", until - timedelta(days=days_back), until, max_daily_days=self.max_daily_days
        )
        trend = build(self.store, trend_request, now)
        return self.render(
            "overview.html.j2",
            title="SageMaker training spend",
            month=_month_name(since),
            current=since == month_start(today),
            since=since,
            until=until,
            picker={
                "value": _month_text(since),
                "min": _month_text(days[0]) if days else None,
                "max": _month_text(max(days[1], today) if days else today),
            },
            prev_href=f"/?month={_month_text(before)}"
            if before and days and days[0] < since
            else None,
            next_href=f"/?month={_month_text(after)}"
            if after and days and days[1] >= after
            else None,
            prev_page=pager.href("/", query, page - 1),
            next_page=pager.href("/", query, page + 1),
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
            self.store,
            ViewRequest(
                "waste",
                window.since,
                window.until,
                window.filters,
                max_daily_days=self.max_daily_days,
            ),
            now,
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
            ("name", row.name), ("team", row.team), ("team source", _team_source(row.team_source)),
            ("project", row.project), ("user", row.user),
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
            model_link=model_href(LineageRepository(self.store).unique_id(row.model))
            if row.model
            else None,
            facts=facts,
            items_table=html_table(Table("Cost items", ITEM_COLUMNS, items)),
            days_table=html_table(Table("Per UTC day", DAY_COLUMNS, days)),
            raw_fields=_flatten(raw),
            raw_json=json.dumps(raw, indent=2, sort_keys=True),
            gpu=self._gpu(row),
        )

    def find_model(self, reference: str) -> Any:
        """The model a URL names (id, ARN or name); a one-line 404 when unknown or ambiguous."""
        try:
            return find_model(self.store, reference)
        except InputError as exc:
            raise HTTPException(404, str(exc)) from None

    def models(self, page: int) -> str:
        """The collected models, a page at a time, with what each cost to produce."""
        size = min(self.page_rows, JOBS_PER_PAGE)
        models = LineageRepository(self.store)
        pager = Pager.of(models.count(), page, size)
        table = models_table(self.store, models.page(size, (page - 1) * size))
        by_name = unique_ids(table.rows, "model", "_model_id")
        by_arn = unique_ids(table.rows, "arn", "_model_id")
        if pager.pages > 1:
            table.notes.append(pager.note())
        return self.render(
            "models.html.j2",
            title="Registered models",
            count=pager.rows,
            table=html_table(
                table,
                {
                    "model": lambda name: model_href(by_name.get(name)),
                    "arn": lambda arn: model_href(by_arn.get(arn)),
                },
            ),
            notes=table.notes,
            prev_href=pager.href("/models", {}, page - 1),
            next_href=pager.href("/models", {}, page + 1),
        )

    def model(self, reference: str) -> str:
        """One model: its facts and the jobs of its lineage, each with its cost."""
        lineage = lineage_of(self.store, self.find_model(reference))
        table = lineage_table(lineage)
        ids = unique_ids(table.rows, "job", "_job_id")
        return self.render(
            "model.html.j2",
            title=f"Model {lineage.model.name}",
            model=lineage.model,
            facts=model_summary(lineage),
            table=html_table(
                table, {"job": lambda name: f"/jobs/{ids[name]}" if name in ids else None}
            ),
            notes=table.notes,
            api_href="/api/lineage?" + urlencode({"model": lineage.model.arn}),
        )

    def _gpu(self, row: Any) -> list[tuple[str, str]] | str | None:
        """The job's GPU utilisation facts, a line saying why there are none, or None for a
        job not on a GPU type (docs/cost-model.md, idle GPU cost)."""
        from tracker.cost.gpu import gpus_of, idle_micros, rightsize_hint
        from tracker.store.gpu import GpuRepository

        if gpus_of(row.instance_type) is None:
            return None
        stored = GpuRepository(self.store).for_job(row.id)
        if stored is None:
            return "no GPU metrics yet: fetched after the job ends, at the next collection"
        if stored.status != "ok":
            return "no GPU metrics: CloudWatch had no GPUUtilization datapoints for this job"
        mean = Decimal(stored.gpu_util_mean)
        idle = usd_cents(idle_micros(row.compute_micros or 0, mean))
        return [
            ("GPU utilisation, mean / p95 (% a GPU)", f"{stored.gpu_util_mean} / {stored.gpu_util_p95}"),
            ("GPU memory, mean / p95 (%)", f"{stored.gpu_mem_mean or '-'} / {stored.gpu_mem_p95 or '-'}"),
            ("hosts with metrics", str(stored.hosts)),
            ("idle GPU cost (beside the total, not in it)", f"{idle} USD"),
            ("right-sizing", rightsize_hint(row.instance_type, row.instance_count, mean)),
        ]  # fmt: skip

    def view(self, request: ViewRequest, page: int = 1) -> str:
        report, pager = self.paged(build(self.store, request, self.clock()), page)
        query = _request_query(request)
        return self.render(
            "view.html.j2",
            title=report.title,
            report=report,
            view=request.view,
            request=request,
            charts=[layout(c) for c in report.charts],
            table=html_table(report, self._links(report)),
            api_href=f"/api/views/{request.view}?" + urlencode(query),
            dimensions=[d for d in DIMENSIONS if d != "job"],
            prev_href=pager.href(f"/views/{request.view}", query, pager.page - 1),
            next_href=pager.href(f"/views/{request.view}", query, pager.page + 1),
        )

    def _links(self, report: Table) -> Links:
        links: dict[str, Callable[[Any], str | None]] = {}
        if "team" in report.keys:
            links["team"] = team_href
        if "job" in report.keys:
            ids = self.queries.job_ids_by_name([str(r["job"]) for r in report.rows])
            links["job"] = lambda name: f"/jobs/{ids[name]}" if name in ids else None
        return links


@dataclass(frozen=True)
class Pager:
    """Where one page of ``rows`` rows starts and ends (1-based, inclusive)."""

    rows: int
    page: int
    size: int

    @classmethod
    def of(cls, rows: int, page: int, size: int) -> Pager:
        pager = cls(rows, page, size)
        if page > pager.pages:
            raise HTTPException(404, f"page {page}: there are {pager.pages:,} pages")
        return pager

    @property
    def pages(self) -> int:
        return max(1, -(-self.rows // self.size))

    @property
    def first(self) -> int:
        return (self.page - 1) * self.size + 1

    @property
    def last(self) -> int:
        return min(self.rows, self.page * self.size)

    def note(self) -> str:
        return (
            f"Rows {self.first:,} to {self.last:,} of {self.rows:,} (page {self.page:,} of "
            f"{self.pages:,}); the total is of all rows."
        )

    def href(self, path: str, query: dict[str, str], page: int) -> str | None:
        if not 1 <= page <= self.pages or self.pages == 1:
            return None
        return f"{path}?" + urlencode({**query, "page": str(page)})

    def links(self, request: Request) -> list[tuple[str, str]]:
        query = {k: v for k, v in request.query_params.items() if k != "page"}
        found = [
            (rel, self.href(request.url.path, query, page))
            for rel, page in (("prev", self.page - 1), ("next", self.page + 1))
        ]
        return [(rel, href) for rel, href in found if href]


def _job_row(job: dict[str, Any]) -> dict[str, Any]:
    from tracker.report.views import _top_row

    row = _top_row(0, job)
    row["_job_id"] = job["id"]
    return row


def _month_text(day: date) -> str:
    """``YYYY-MM`` with four digits of year (strftime's ``%Y`` writes the year 1 as ``1``)."""
    return f"{day.year:04d}-{day.month:02d}"


def _month_name(day: date) -> str:
    """``January 0001``, ``November 2026``."""
    return f"{day:%B} {day.year:04d}"


def _month_or_none(day: date, months_back: int) -> date | None:
    """:func:`month_start`, or None when that month is outside the calendar (year 0 or 10000)."""
    try:
        return month_start(day, months_back)
    except ValueError:
        return None


def _request_query(request: ViewRequest) -> dict[str, str]:
    query = {k: v.isoformat() for k, v in (("since", request.since), ("until", request.until)) if v}
    query.update(request.filters)
    if request.view == "showback":
        query["pivot"] = f"{request.rows_by},{request.cols_by}"
    if request.view == "top":
        query["top"] = str(request.top)
    if request.view == "units":
        query["by"] = request.rows_by
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


def _team_source(source: str | None) -> str:
    """Where a job's team came from, in words (``team_source``: tag, a rule's name, unallocated)."""
    if source == "tag":
        return "tag: the job's team tag"
    if not source or source == "unallocated":
        return "unallocated: no team tag and no allocation rule matched"
    return f"rule: {source} ([[allocation.rules]])"
