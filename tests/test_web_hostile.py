"""Hostile requests to the dashboard and its API (issue 12, rows 1, 4 and 10 of the table).

Row 1: a per-day view over centuries is refused in one line; the largest legal window is
paged; a request over its time budget answers 503 and its query really stops.
Row 4: numbers too large, digits that are not ASCII, ids past 64 bits: 400 in one line, never
500. Row 10: security headers on every answer (errors included), HEAD wherever GET works, an
unexpected failure is a one-line 500 and the connection stays usable.

The organisation is tests/views_data.py's (11 jobs, October and November 2026).
"""

from __future__ import annotations

import html
import http.client
import json
import queue
import re
import socket
import threading
import warnings
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.backends import db_url_fixture  # noqa: F401
from tests.views_data import NOW, make_store
from tracker import bounds
from tracker.errors import InputError
from tracker.records import DIMENSIONS
from tracker.store.database import Store
from tracker.store.query import ViewQueries
from tracker.web import app as web_app
from tracker.web.app import SECURITY_HEADERS, create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's notice about its httpx-based client
    from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return make_store(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def client(store: Store) -> TestClient:
    return TestClient(create_app(store, clock=lambda: NOW))


def error_line(response: Any) -> str:
    """The one-line message of an error answer: JSON under /api/, the page's error otherwise."""
    if response.headers["content-type"].startswith("application/json"):
        message = response.json()["error"]
    else:
        page = response.text.split('<p class="error">')[1].split("</p>")[0]
        message = html.unescape(page)
    assert "\n" not in message
    return message


# -- row 1: per-day views over any window --------------------------------------------------
@pytest.mark.parametrize("path", ["/views/trend", "/api/views/trend"])
def test_trend_over_centuries_is_400_in_one_line(client: TestClient, path: str) -> None:
    """0001-01-01 to 9999-12-31 is 3,652,059 days: refused before any work is done."""
    response = client.get(path, params={"since": "0001-01-01", "until": "9999-12-31"})
    assert response.status_code == 400
    message = error_line(response)
    assert "3,652,059 days" in message and "at most 400 days" in message


def test_trend_from_antiquity_to_today_is_400(client: TestClient) -> None:
    """Only ``since``: the window runs to today (2026-11-26), 739,946 days."""
    response = client.get("/api/views/trend", params={"since": "0001-01-01"})
    assert response.status_code == 400 and "739,946 days" in error_line(response)


def test_configured_daily_window_bounds_the_dashboard(store: Store, tmp_path: Path) -> None:
    """``[reports] max_daily_days = 30``: a 31-day trend is refused, 30 days are drawn."""
    from tracker.settings import parse_settings

    config = tmp_path / "tracker.toml"
    config.write_text("[reports]\nmax_daily_days = 30\n")
    client = TestClient(create_app(store, settings=parse_settings(config), clock=lambda: NOW))
    wide = client.get("/api/views/trend", params={"since": "2026-10-01", "until": "2026-10-31"})
    assert wide.status_code == 400 and "is 31 days" in error_line(wide)
    assert "at most 30 days" in error_line(wide)
    narrow = {"since": "2026-10-02", "until": "2026-10-31"}
    assert client.get("/views/trend", params=narrow).status_code == 200


def test_configured_daily_window_bounds_the_overview_trend(store: Store, tmp_path: Path) -> None:
    """``max_daily_days = 7``: the overview still opens, its trend drawn over the last 7 days
    of the month (not the usual 30, which the bound refuses)."""
    from tracker.settings import parse_settings

    config = tmp_path / "tracker.toml"
    config.write_text("[reports]\nmax_daily_days = 7\n")
    client = TestClient(create_app(store, settings=parse_settings(config), clock=lambda: NOW))
    page = client.get("/")
    assert page.status_code == 200
    assert "2026-11-20 to 2026-11-26, UTC days inclusive" in page.text
    assert "2026-11-19 ·" not in page.text  # no point before the 7 days


@pytest.mark.parametrize(
    ("month", "title", "prev", "next"),
    [("9999-12", "December 9999", "/?month=9999-11", None),
     ("0001-01", "January 0001", None, "/?month=0001-02")],
)  # fmt: skip
def test_overview_at_the_ends_of_the_calendar_is_a_page(
    client: TestClient, month: str, title: str, prev: str | None, next: str | None
) -> None:
    """The month after 9999-12 and the one before 0001-01 do not exist: no link to them,
    no 500; the other link leads towards the spend (in 2026)."""
    page = client.get("/", params={"month": month})
    assert page.status_code == 200
    assert title in page.text and 'id="month-total">0.00<' in page.text
    links = re.findall(r'id="(prev|next)-month" href="([^"]*)"', page.text)
    assert links == [(rel, href) for rel, href in (("prev", prev), ("next", next)) if href]


@pytest.mark.parametrize("path", ["/team?name=nlp&", "/views/showback?", "/views/top?",
    "/views/waste?", "/api/report?", "/api/report?by=day&", "/api/report?by=month&",
    "/api/views/showback?pivot=team,day&", "/api/views/top?"])  # fmt: skip
@pytest.mark.parametrize(
    "window",
    ["until=9999-12-31", "since=0001-01-01", "since=9999-12-31", "until=0001-01-01",
     "since=0001-01-01&until=0001-01-01", "since=9999-12-01&until=9999-12-31"],
)  # fmt: skip
def test_window_at_the_ends_of_the_calendar_is_never_500(
    client: TestClient, path: str, window: str
) -> None:
    """A page or 400 in one line, never a 500 from date arithmetic past 0001-01-01 or
    9999-12-31."""
    response = client.get(path + window)
    assert response.status_code in (200, 400), response.text[:300]
    if response.status_code == 400:
        assert "days" in error_line(response)  # only per-day windows are refused


@pytest.mark.parametrize(
    ("window", "subtitle"),
    [("until=9999-12-31", "9999-12-02 to 9999-12-31"),
     ("until=0001-01-10", "0001-01-01 to 0001-01-10"),
     ("since=9999-12-31&until=9999-12-31", "9999-12-31 to 9999-12-31")],
)  # fmt: skip
def test_trend_at_the_ends_of_the_calendar(client: TestClient, window: str, subtitle: str) -> None:
    page = client.get("/views/trend?" + window)
    assert page.status_code == 200 and subtitle in page.text


def test_trend_over_the_largest_window_is_paged(store: Store) -> None:
    """400 days to 2026-11-26: 12 (day, team) rows with spend, 5 a page -> 3 pages."""
    until = NOW.date()
    since = until - timedelta(days=399)
    assert (since, until) == (date(2025, 10, 23), date(2026, 11, 26))
    window = {"since": since.isoformat(), "until": until.isoformat()}
    paged = TestClient(create_app(store, clock=lambda: NOW, page_rows=5))
    first = paged.get("/api/views/trend", params=window)
    assert first.status_code == 200 and first.headers["x-total-count"] == "12"
    assert [r["day"] for r in first.json()] == [
        "2026-10-10", "2026-10-31", "2026-11-01", "2026-11-05", "2026-11-08",
    ]  # fmt: skip
    assert first.headers["link"] == (
        '</api/views/trend?since=2025-10-23&until=2026-11-26&page=2>; rel="next"'
    )
    last = paged.get("/api/views/trend", params={**window, "page": "3"})
    assert len(last.json()) == 2 and 'rel="prev"' in last.headers["link"]
    assert 'rel="next"' not in last.headers["link"]
    beyond = paged.get("/api/views/trend", params={**window, "page": "4"})
    assert beyond.status_code == 404 and error_line(beyond) == "page 4: there are 3 pages"
    page = paged.get("/views/trend", params={**window, "page": "2"}).text
    assert "Rows 6 to 10 of 12 (page 2 of 3); the total is of all rows." in page
    assert (
        'id="prev-page" href="/views/trend?since=2025-10-23&amp;until=2026-11-26&amp;page=1"'
        in page
    )


def test_showback_by_month_over_centuries_has_a_column_per_month_with_spend(
    client: TestClient,
) -> None:
    """Months are columns only where there is spend: two, whatever the window."""
    response = client.get(
        "/api/views/showback", params={"since": "0001-01-01", "until": "9999-12-31"}
    )
    assert response.status_code == 200
    months = {key for row in response.json() for key in row if key[:2] == "20"}
    assert months == {"2026-10", "2026-11"}


# -- pages of rows are read in SQL -----------------------------------------------------------
#: Seven jobs of one hour on ml.m5.xlarge (0.25 an instance-hour), 3 rows a page:
#:
#: | order | job     | instances | cost |
#: |-------|---------|-----------|------|
#: | 1     | big     | 6         | 1.50 |
#: | 2, 3  | mid-a, mid-b | 4    | 1.00 each (ties by name) |
#: | 4-6   | Small-3, small-1, small-2 | 2 | 0.50 each ('S' before 's': code points) |
#: | 7     | tiny    | 1         | 0.25 |
PAGED_JOBS = [("big", 6), ("mid-b", 4), ("mid-a", 4), ("small-2", 2), ("small-1", 2),
              ("Small-3", 2), ("tiny", 1)]  # fmt: skip


def test_report_by_job_pages_in_sql(db_url: str) -> None:
    """Page 2 of ``/api/report?by=job`` is rows 4 to 6 of the CLI's order; the rows come
    from a query with LIMIT, the total from a COUNT (no query loads every job)."""
    from sqlalchemy import event

    from tests.views_data import at, fill
    from tests.views_data import make_job as org_job
    from tracker.report.spend import spend_rows

    store = fill(
        Store.open(db_url),
        [org_job(name, "nlp", instance_count=n, start_time=at(11, 2)) for name, n in PAGED_JOBS],
    )
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    client = TestClient(create_app(store, clock=lambda: NOW, page_rows=3))
    page = client.get("/api/report", params={"by": "job", "page": "2"})
    assert page.status_code == 200 and page.headers["x-total-count"] == "7"
    assert [(r["job"], r["total_usd"]) for r in page.json()] == [
        ("Small-3", 0.5), ("small-1", 0.5), ("small-2", 0.5),
    ]  # fmt: skip
    assert page.headers["link"] == (
        '</api/report?by=job&page=1>; rel="prev", </api/report?by=job&page=3>; rel="next"'
    )
    spend = [s for s in statements if "FROM job_cost_days" in s]
    assert len(spend) == 2  # the COUNT, then the page's rows
    assert "GROUP BY" not in spend[0] and "AS rows" in spend[0]
    assert "GROUP BY jobs.id" in spend[1] and "LIMIT" in spend[1]
    # The CLI prints every row, in the same order.
    assert [r["job"] for r in spend_rows(store, "job")] == [
        "big", "mid-a", "mid-b", "Small-3", "small-1", "small-2", "tiny",
    ]  # fmt: skip
    last = client.get("/api/report", params={"by": "job", "page": "3"}).json()
    assert [r["job"] for r in last] == ["tiny"]
    beyond = client.get("/api/report", params={"by": "job", "page": "4"})
    assert beyond.status_code == 404 and error_line(beyond) == "page 4: there are 3 pages"


def test_overview_pages_its_teams_in_sql_with_the_total_of_all(store: Store) -> None:
    """November, 2 teams a page: vision 6.80 and nlp 2.25 on page 1; the two 0.25 teams
    ('<' sorts before 'u') on page 2; the month's total 9.55 on both."""
    from sqlalchemy import event

    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        paged = TestClient(create_app(store, clock=lambda: NOW, page_rows=2))
        first = paged.get("/", params={"month": "2026-11"}).text
        second = paged.get("/", params={"month": "2026-11", "page": "2"}).text
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    teams = re.compile(r'<a href="/team\?name=[^"]*">([^<]*)</a>')
    assert teams.findall(first) == ["vision", "nlp"]
    assert teams.findall(second) == ["&lt;script&gt;alert(1)&lt;/script&gt;", "unallocated"]
    for page in (first, second):
        assert 'id="month-total">9.55<' in page
        assert (  # 10 jobs; list, compute, spot savings, warm pool, storage, effective, unpriced
            '<tr class=total><td>TOTAL</td><td class="num">10</td><td class="num">9.55</td>'
            '<td class="num">9.45</td><td class="num">2.25</td><td class="num">0.10</td>'
            '<td class="num">0.00</td><td class="num">9.55</td><td class="num">1</td></tr>'
        ) in page
    assert "Rows 3 to 4 of 4 (page 2 of 2); the total is of all rows." in second
    assert 'id="next-page" href="/?month=2026-11&amp;page=2"' in first
    assert 'id="prev-page" href="/?month=2026-11&amp;page=1"' in second
    # Paged in SQL, over the spend rollup (issue 14).
    per_team = [s for s in statements if "GROUP BY spend_days.team" in s and "ORDER BY" in s]
    assert len(per_team) == 2 and all("LIMIT" in s for s in per_team)
    beyond = paged.get("/", params={"month": "2026-11", "page": "3"})
    assert beyond.status_code == 404 and error_line(beyond) == "page 3: there are 2 pages"


# -- the time budget -------------------------------------------------------------------------
#: A query that counts to a billion: minutes in SQLite unless something stops it.
SLOW_SQLITE = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 1000000000) "
    "SELECT count(*) FROM c"
)


def slow_top(monkeypatch: pytest.MonkeyPatch, sql: str) -> queue.Queue:
    """Make the top view's query ``sql``; the queue receives how that query ended."""
    from sqlalchemy import text

    ended: queue.Queue = queue.Queue()

    def top_jobs(self: ViewQueries, *_: object, **__: object) -> list:
        try:
            with self.store.session() as session:
                session.execute(text(sql)).all()
        except Exception as exc:
            ended.put(f"{exc.__class__.__name__}: {exc}")
            raise
        ended.put("finished")
        return []

    monkeypatch.setattr(ViewQueries, "top_jobs", top_jobs)
    return ended


def test_request_over_budget_is_503_and_its_query_stops(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    ended = slow_top(monkeypatch, SLOW_SQLITE)
    client = TestClient(create_app(store, clock=lambda: NOW, request_seconds=0.5))
    response = client.get("/api/views/top")
    assert response.status_code == 503
    assert response.json() == {
        "error": "the request took longer than 0.5 s and was stopped; narrow the window or the filters"
    }
    assert response.headers["x-frame-options"] == "DENY"
    # The worker thread was freed: SQLite interrupted the statement (it would run for minutes).
    assert ended.get(timeout=60) == "StoreError: database error: interrupted"
    assert client.get("/healthz").json() == {"status": "ok"}
    page = client.get("/views/top")
    assert page.status_code == 503 and "was stopped" in error_line(page)


def test_request_over_budget_on_postgres_stops_its_query(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ended = slow_top(monkeypatch, "SELECT pg_sleep(120)")
    client = TestClient(create_app(Store.open(pg_url), clock=lambda: NOW, request_seconds=0.5))
    assert client.get("/api/views/top").status_code == 503
    assert ended.get(timeout=60) == (
        "StoreError: database error: canceling statement due to statement timeout"
    )
    assert client.get("/api/views/waste").status_code == 200  # the same connections, no timeout


# -- row 4: numbers and text from the URL ----------------------------------------------------
@pytest.mark.parametrize(
    ("url", "label", "value", "bound", "expected"),
    [
        ("/views/top?top=99999999999999999999", "top", "99999999999999999999", bounds.TOP_JOBS,
         "expected a whole number from 1 to 1,000 jobs"),
        ("/api/views/top?top=%C2%B2", "top", "²", bounds.TOP_JOBS,
         "expected a whole number from 1 to 1,000 jobs"),
        ("/api/views/top?top=%D9%A3", "top", "٣", bounds.TOP_JOBS,
         "expected a whole number from 1 to 1,000 jobs"),
        ("/api/views/top?top=1001", "top", "1001", bounds.TOP_JOBS,
         "expected a whole number from 1 to 1,000 jobs"),
        ("/jobs/9223372036854775808", "id", "9223372036854775808", bounds.ROW_ID,
         "expected a whole number from 1 to 9,223,372,036,854,775,807"),
        ("/jobs/%D9%A3", "id", "٣", bounds.ROW_ID,
         "expected a whole number from 1 to 9,223,372,036,854,775,807"),
        ("/team?name=nlp&page=99999999999999999999", "page", "99999999999999999999",
         bounds.PAGE_NUMBER, "expected a whole number from 1 to 1,000,000"),
        ("/api/views/trend?page=0", "page", "0", bounds.PAGE_NUMBER,
         "expected a whole number from 1 to 1,000,000"),
    ],
)  # fmt: skip
def test_hostile_number_is_400_with_the_cli_message(
    client: TestClient, url: str, label: str, value: str, bound: bounds.Bound, expected: str
) -> None:
    """The message is tracker.bounds' (the CLI's, with the parameter's name)."""
    response = client.get(url)
    assert response.status_code == 400
    with pytest.raises(InputError) as cli:
        bounds.whole(label, value, bound)
    assert error_line(response) == str(cli.value)
    assert error_line(response).startswith(f"{label} ") and error_line(response).endswith(expected)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/api/report?since=2026-W45-1", "since '2026-W45-1' is not a date; expected YYYY-MM-DD"),
        ("/api/report?until=2026-1-01", "until '2026-1-01' is not a date; expected YYYY-MM-DD"),
        ("/api/report?team=a%00b", "team: a value cannot hold a NUL character"),
        ("/api/views/showback?pivot=" + "a" * 100,
         "pivot 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...: expected COLUMNS or ROWS,COLUMNS, e.g. team,month"),
        ("/api/report?by=" + "x" * 100,
         "by 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...: expected one of " + ", ".join(DIMENSIONS)),
    ],
)  # fmt: skip
def test_hostile_text_is_400_in_one_line(client: TestClient, url: str, message: str) -> None:
    response = client.get(url)
    assert response.status_code == 400
    assert error_line(response) == message


def test_long_filter_value_is_harmless(client: TestClient) -> None:
    """60,000 characters (httpx sends no longer query; uvicorn refuses longer request lines)."""
    response = client.get("/api/report", params={"team": "x" * 60_000})
    assert response.status_code == 200 and response.json() == []


# -- row 10: headers, HEAD, unexpected failures ----------------------------------------------
def assert_security_headers(response: Any) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [("GET", "/nope", 404), ("GET", "/api/nope", 404), ("POST", "/", 405),
     ("DELETE", "/api/report", 405), ("GET", "/views/top?top=x", 400), ("GET", "/jobs/x", 400),
     ("HEAD", "/", 200), ("HEAD", "/healthz", 200), ("HEAD", "/nope", 404)],
)  # fmt: skip
def test_security_headers_on_every_answer(
    client: TestClient, method: str, url: str, status: int
) -> None:
    response = client.request(method, url)
    assert response.status_code == status
    assert_security_headers(response)


@pytest.mark.parametrize(
    "url",
    ["/", "/healthz", "/team?name=nlp", "/jobs/1", "/views/showback", "/views/trend",
     "/api/report?by=job", "/api/views/top", "/metrics"],
)  # fmt: skip
def test_head_answers_wherever_get_does(client: TestClient, url: str) -> None:
    got, head = client.get(url), client.head(url)
    assert (got.status_code, head.status_code) == (200, 200)
    assert head.content == b"" and head.headers["content-type"] == got.headers["content-type"]
    assert int(head.headers["content-length"]) > 0  # GET's length (metrics change between calls)
    assert_security_headers(head)


def boom(*_: object) -> None:
    raise RuntimeError("disk on fire")


@pytest.mark.parametrize(("url", "patched"), [("/jobs/1", "job"), ("/api/views/top", "api_page")])
def test_unexpected_exception_is_one_line_500_with_headers(
    store: Store, monkeypatch: pytest.MonkeyPatch, url: str, patched: str
) -> None:
    monkeypatch.setattr(web_app._Pages, patched, boom)
    client = TestClient(create_app(store, clock=lambda: NOW))
    response = client.get(url)
    assert response.status_code == 500
    assert error_line(response) == ("internal error (RuntimeError); the server log has the details")
    assert "disk on fire" not in response.text
    assert_security_headers(response)
    assert client.get("/healthz").status_code == 200


def test_keep_alive_connection_survives_a_500(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real server (uvicorn on a socket): a 500 and then /healthz on the same connection."""
    import uvicorn

    monkeypatch.setattr(web_app._Pages, "job", boom)
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen()
    port = listening.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(store, clock=lambda: NOW), log_level="critical", lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/jobs/1")
        failed = connection.getresponse()
        failed.read()
        local = connection.sock.getsockname()
        assert failed.status == 500 and failed.getheader("x-content-type-options") == "nosniff"
        connection.request("HEAD", "/healthz")
        head = connection.getresponse()
        assert (head.status, head.read()) == (200, b"")
        connection.request("GET", "/healthz")
        health = connection.getresponse()
        assert json.loads(health.read()) == {"status": "ok"}
        assert connection.sock.getsockname() == local  # still the first connection
        connection.close()
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listening.close()


def test_openapi_schema_states_each_parameter_range(client: TestClient) -> None:
    paths = client.get("/api/openapi.json").json()["paths"]
    view = {p["name"]: p["schema"] for p in paths["/api/views/{name}"]["get"]["parameters"]}
    assert view["top"] == {"type": "integer", "minimum": 1, "maximum": 1000, "default": 10}
    assert view["page"] == {"type": "integer", "minimum": 1, "maximum": 1_000_000, "default": 1}
    assert view["name"]["enum"] == ["showback", "top", "waste", "trend", "anomalies", "units"]
    job = paths["/jobs/{job_id}"]["get"]["parameters"][0]
    assert job["schema"] == {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
    assert "422" not in paths["/api/report"]["get"]["responses"]
