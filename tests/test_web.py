"""The dashboard through FastAPI's test client, on the organisation of tests/views_data.py.

This month (November 2026, to the 26th): vision 6.80, nlp 2.25, unallocated 0.25,
<script>alert(1)</script> 0.25; total 9.55 (see the table in tests/views_data.py).
"""

from __future__ import annotations

import json
import tomllib
import warnings
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.views_data import HOSTILE_PROJECT, HOSTILE_TEAM, NOW, at, fill, make_job, make_store
from tracker.cli.views import check_bind
from tracker.errors import InputError
from tracker.report.render import render
from tracker.report.spend import spend_rows, spend_table
from tracker.store.database import Store

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's notice about its httpx-based client
    from fastapi.testclient import TestClient

from tracker.web.app import bytes_text, create_app  # noqa: E402


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return make_store(tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="module")
def client(store: Store) -> TestClient:
    return TestClient(create_app(store, clock=lambda: NOW))


def job_id(store: Store, name: str) -> int:
    return store.job_by_name(name).id


def test_overview_shows_spend_per_team_this_month(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    assert "November 2026" in text and 'id="month-total">9.55<' in text
    for team, total in (("vision", "6.80"), ("nlp", "2.25"), ("unallocated", "0.25")):
        assert f'<a href="/team?name={team}">{team}</a>' in text
        assert f'<td class="num">{total}</td>' in text
    assert text.count("<svg") == 2  # spend per team and the trend


def test_overview_opens_on_the_latest_month_with_spend(store: Store) -> None:
    """In January 2027 nothing was spent since November: the overview opens on November
    (9.55), links to October and to no later month, and the trend ends on November 30."""
    later = TestClient(create_app(store, clock=lambda: datetime(2027, 1, 15, tzinfo=UTC)))
    text = later.get("/").text
    assert '<h2 id="month">November 2026</h2>' in text and 'id="month-total">9.55<' in text
    assert "2026-11-01 to 2026-11-30" in text
    assert '<a id="prev-month" href="/?month=2026-10">' in text and "next-month" not in text
    assert '<input type="month" name="month" value="2026-11" min="2026-10" max="2027-01">' in text
    assert "2026-11-01 to 2026-11-30, UTC days inclusive" in text.split("<h2>Trend</h2>")[1]


def test_overview_month_parameter_selects_a_month(client: TestClient) -> None:
    """October 2026: nlp-train-1 1.00 and nlp-long's October half 0.50 = 1.50."""
    text = client.get("/", params={"month": "2026-10"}).text
    assert '<h2 id="month">October 2026</h2>' in text and 'id="month-total">1.50<' in text
    assert "2026-10-01 to 2026-10-31" in text
    assert '<a id="next-month" href="/?month=2026-11">' in text and "prev-month" not in text
    current = client.get("/", params={"month": "2026-11"}).text
    assert "November 2026 (this month)" in current and "2026-11-01 to 2026-11-26" in current
    assert 'id="month-total">0.00<' in client.get("/", params={"month": "2026-06"}).text


@pytest.mark.parametrize(
    "month", ["2026-13", "nope", "2026-1", "26-11", "2026-11-01", "２０２６-11", "0000-01"]
)
def test_overview_bad_month_is_400_in_one_line(client: TestClient, month: str) -> None:
    page = client.get("/", params={"month": month})
    assert page.status_code == 400
    message = page.text.split('<p class="error">')[1].split("</p>")[0]
    assert message.endswith("is not a month; expected YYYY-MM") and "\n" not in message


def test_overview_has_no_script_and_no_remote_resource(client: TestClient) -> None:
    page = client.get("/")
    assert "<script" not in page.text.lower()
    assert "https://" not in page.text and "src=" not in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"


def test_hostile_tag_values_are_inert_on_every_page(client: TestClient, store: Store) -> None:
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    hostile = job_id(store, "hostile")
    pages = ["/", f"/jobs/{hostile}", "/views/showback", "/views/top", "/views/trend",
             "/team?name=%3Cscript%3Ealert(1)%3C%2Fscript%3E"]  # fmt: skip
    for url in pages:
        text = client.get(url).text
        assert "<script" not in text.lower(), url
        assert escaped in text, url
    job_page = client.get(f"/jobs/{hostile}").text
    assert (
        "=HYPERLINK(&#34;http://x&#34;,&#34;y&#34;)" in job_page
        or "=HYPERLINK(&quot;http://x&quot;,&quot;y&quot;)" in job_page
    )
    assert 'href="http://x"' not in job_page
    # the team link carries the value URL-encoded, not as markup
    assert "/team?name=%3Cscript%3Ealert%281%29%3C%2Fscript%3E" in client.get("/").text


def test_team_page_lists_jobs_waste_and_total(client: TestClient, store: Store) -> None:
    page = client.get("/team", params={"name": "vision"})
    assert page.status_code == 200
    text = page.text
    assert 'id="team-total">6.80<' in text and "2.00 in flight" in text
    for name in ("vision-fail", "vision-running", "vision-g5", "vision-warm"):
        assert f'<a href="/jobs/{job_id(store, name)}">{name}</a>' in text
    assert "failed_or_stopped" in text and "idle_warm_pool" in text
    assert "nlp-train-2" not in text


def test_team_page_pages_through_jobs(client: TestClient) -> None:
    first = client.get(
        "/team", params={"name": "nlp", "since": "2026-10-01", "until": "2026-11-30"}
    )
    assert "page 1" in first.text and "next" not in first.text
    assert client.get("/team", params={"name": "nlp", "page": "0"}).status_code == 400


def test_team_page_unknown_team_is_404(client: TestClient) -> None:
    page = client.get("/team", params={"name": "nobody"})
    assert page.status_code == 404 and "no jobs for team" in page.text


def test_job_page_shows_cost_items_and_raw_fields(client: TestClient, store: Store) -> None:
    page = client.get(f"/jobs/{job_id(store, 'vision-warm')}")
    assert page.status_code == 200
    text = page.text
    for item, usd in (("compute_usd", "0.20"), ("warm_pool_usd", "0.10"), ("total_usd", "0.30")):
        assert f'<td>{item}</td><td class="num">{usd}</td>' in text
    assert "<th>BillableTimeInSeconds</th><td>3600</td>" in text
    assert "<th>ResourceConfig.InstanceType</th><td>ml.c5.xlarge</td>" in text
    assert "<td>2026-11-15</td>" in text  # the per-day split


def test_job_page_shows_measured_artifact_bytes(tmp_path: Path) -> None:
    """1,288,490,189 bytes = 1.2 GiB (1,288,490,189 / 1024^3 = 1.19999...)."""
    store = fill(Store.open(f"sqlite:///{tmp_path / 'a.db'}"), [
        make_job("with-artifacts", "nlp", start_time=at(11, 2), artifact_bytes=1_288_490_189,
                 model_artifact_uri="s3://b/out/with-artifacts/output/model.tar.gz"),
    ])  # fmt: skip
    page = TestClient(create_app(store, clock=lambda: NOW)).get(
        f"/jobs/{job_id(store, 'with-artifacts')}"
    )
    assert "<th>artifacts in S3 (measured)</th><td>1.2 GiB (1,288,490,189 bytes)</td>" in page.text
    assert "<td>s3://b/out/with-artifacts/output/model.tar.gz</td>" in page.text


@pytest.mark.parametrize(
    ("size", "shown"),
    [(0, "0 bytes"), (1, "1 byte"), (1023, "1,023 bytes"), (1024, "1.0 KiB (1,024 bytes)"),
     (900_000, "878.9 KiB (900,000 bytes)"), (5 * 1024**4, "5.0 TiB (5,497,558,138,880 bytes)")],
)  # fmt: skip
def test_bytes_text_is_human_with_the_exact_count(size: int, shown: str) -> None:
    assert bytes_text(size) == shown


def test_job_page_unknown_id_is_404(client: TestClient) -> None:
    assert client.get("/jobs/999999").status_code == 404
    assert client.get("/jobs/not-a-number").status_code == 400  # one line, not 422 (issue 12)


@pytest.mark.parametrize("view", ["showback", "top", "waste", "trend"])
def test_view_pages_render(client: TestClient, view: str) -> None:
    page = client.get(f"/views/{view}")
    assert page.status_code == 200 and "<svg" in page.text and "<table>" in page.text


def test_view_page_takes_filters_and_pivot(client: TestClient) -> None:
    page = client.get("/views/showback", params={"pivot": "status,team", "team": "vision"})
    assert page.status_code == 200
    assert "<td>Failed</td>" in page.text and "nlp" not in page.text.split("<table>")[1]


def test_view_page_bad_input_is_400(client: TestClient) -> None:
    assert client.get("/views/top", params={"since": "yesterday"}).status_code == 400
    assert client.get("/views/top", params={"top": "ten"}).status_code == 400
    assert client.get("/views/showback", params={"pivot": "team,team"}).status_code == 400
    assert client.get("/views/nope").status_code == 404


@pytest.mark.parametrize(
    ("by", "params"),
    [("team", {}), ("job", {}), ("day", {"since": "2026-11-01"}), ("month", {"team": "nlp"})],
)
def test_api_report_is_exactly_the_cli_json(
    client: TestClient, store: Store, by: str, params: dict
) -> None:
    response = client.get("/api/report", params={"by": by, **params})
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    since = params.get("since")
    from datetime import date

    rows = spend_rows(store, by, since=date.fromisoformat(since) if since else None,
                      filters={k: v for k, v in params.items() if k != "since"})  # fmt: skip
    assert response.text == render(spend_table(rows, by), "json")


def test_api_report_matches_the_real_command(client: TestClient, store: Store) -> None:
    result = run_cli("--db", str(store.engine.url), "report", "--by", "team", "--format", "json")
    assert result.returncode == 0, result.stderr
    api = client.get("/api/report", params={"by": "team"}).json()
    assert api == json.loads(result.stdout)
    assert {r["team"]: r["total_usd"] for r in api}[HOSTILE_TEAM] == 0.25
    assert sum(r["jobs"] for r in api) == 11


def test_api_views_return_view_rows(client: TestClient) -> None:
    rows = client.get("/api/views/top", params={"top": "20"}).json()
    hostile = next(r for r in rows if r["job"] == "hostile")
    assert hostile["project"] == HOSTILE_PROJECT and hostile["total_usd"] == 0.25
    assert client.get("/api/views/waste").json()[0]["category"] == "failed_or_stopped"


def test_api_errors_are_json(client: TestClient) -> None:
    response = client.get("/api/report", params={"by": "colour"})
    assert response.status_code == 400 and "expected one of" in response.json()["error"]
    assert (
        client.get("/api/report", params={"since": "2026-12-01", "until": "2026-11-01"}).status_code
        == 400
    )


def test_dashboard_is_read_only(client: TestClient) -> None:
    for method in ("post", "put", "delete", "patch"):
        assert getattr(client, method)("/").status_code == 405
        assert getattr(client, method)("/api/report").status_code == 405


def test_no_cdn_docs_pages(client: TestClient) -> None:
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404


def test_budgets_panel_shows_when_configured(store: Store, tmp_path: Path) -> None:
    from tracker.settings import parse_settings

    config = tmp_path / "tracker.toml"
    config.write_text(
        '[[budgets]]\nname = "vision-monthly"\nperiod = "monthly"\namount_usd = 10\nteam = "vision"\n'
    )
    settings = parse_settings(config)
    page = TestClient(create_app(store, settings=settings, clock=lambda: NOW)).get("/")
    assert page.status_code == 200
    assert 'id="budgets"' in page.text and "vision-monthly" in page.text


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (
            InputError("budgets: vision-monthly: no such team"),
            "budgets: vision-monthly: no such team",
        ),
        (RuntimeError("disk on fire"), "budgets could not be evaluated (RuntimeError)"),
    ],
)
def test_budgets_panel_failure_is_shown_in_the_panel(
    store: Store, monkeypatch: pytest.MonkeyPatch, error: Exception, shown: str
) -> None:
    """A failing optional panel says why in one line; the rest of the page still renders."""
    from tracker.settings import Settings
    from tracker.web import app as web_app

    def fail(*_: object) -> None:
        raise error

    monkeypatch.setattr(web_app, "budget_statuses", fail)
    page = TestClient(create_app(store, settings=Settings(), clock=lambda: NOW)).get("/")
    assert page.status_code == 200 and 'id="month-total"' in page.text
    panel = page.text.split('id="budgets"')[1]
    assert f'<p class="error">{shown}</p>' in panel
    assert "disk on fire" not in page.text


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


# -- binding -------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_check_bind_accepts_loopback(host: str) -> None:
    assert check_bind(host, allow_remote=False) is True


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.5", "example.internal", "::"])
def test_check_bind_refuses_remote_without_flag(host: str) -> None:
    with pytest.raises(InputError, match="--allow-remote"):
        check_bind(host, allow_remote=False)
    assert check_bind(host, allow_remote=True) is False


def test_serve_refuses_remote_host_with_one_line(store: Store) -> None:
    result = run_cli("--db", str(store.engine.url), "serve", "--host", "0.0.0.0")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("Error: --host 0.0.0.0 is not a loopback address")
    assert len(result.stderr.strip().splitlines()) == 1


def test_team_page_shows_estimates_vs_actuals(tmp_path: Path) -> None:
    """vision-g5 cost 1.50 against a tagged estimate of 1.00: delta 0.50 (+50.0%), over."""
    from dataclasses import replace

    from tests.views_data import JOBS, fill
    from tracker.settings import Settings

    tagged = [
        replace(job, tags={**job.tags, "tracker:estimate-usd": "1.00"})
        if job.name == "vision-g5" else job
        for job in JOBS
    ]  # fmt: skip
    store = fill(Store.open(f"sqlite:///{tmp_path / 'e.db'}"), tagged)
    client = TestClient(create_app(store, settings=Settings(), clock=lambda: NOW))
    page = client.get("/team", params={"name": "vision"})
    assert page.status_code == 200 and 'id="estimates"' in page.text
    estimates = page.text.split('id="estimates"')[1]
    assert "<td>vision-g5</td>" in estimates
    assert (
        '<td class="num">1.00</td><td class="num">1.50</td><td class="num">0.50</td>' in estimates
    )


# -- the time budget of `tracker serve` ---------------------------------------------------------
def served_budget(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, config: str, *flags: str
) -> float:
    """The time budget `tracker serve FLAGS` gives its app, under a config holding ``config``
    (the server itself is not started)."""
    import uvicorn

    from tracker.cli import views
    from tracker.cli.main import main

    served: list[object] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **_: served.append(app))
    monkeypatch.setattr(views, "_check_free", lambda host, port: None)
    path = tmp_path / "tracker.toml"
    path.write_text(config)
    db = f"sqlite:///{tmp_path / 'serve.db'}"
    Store.open(db).engine.dispose()
    assert main(["--config", str(path), "--db", db, "serve", *flags]) == 0
    return served[0].seconds  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("config", "flags", "seconds"),
    [("", (), 10), ("[web]\nrequest_seconds = 30\n", (), 30),
     ("[web]\nrequest_seconds = 30\n", ("--request-seconds", "5"), 5),
     ("", ("--request-seconds", "300"), 300)],
)  # fmt: skip
def test_serve_time_budget_from_flag_then_config_then_default(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    config: str,
    flags: tuple[str, ...],
    seconds: int,
) -> None:
    assert served_budget(monkeypatch, tmp_path, config, *flags) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [("0", "Error: --request-seconds 0: expected a whole number from 1 to 300 seconds"),
     ("301", "Error: --request-seconds 301: expected a whole number from 1 to 300 seconds"),
     ("99999999999999999999999",
      "Error: --request-seconds 99999999999999999999999: expected a whole number from 1 to 300 seconds"),
     ("1.5", "Error: --request-seconds 1.5: expected a whole number from 1 to 300 seconds")],
)  # fmt: skip
def test_serve_request_seconds_out_of_range_is_one_line(
    store: Store, value: str, message: str
) -> None:
    result = run_cli("--db", str(store.engine.url), "serve", "--request-seconds", value)
    assert result.returncode == 2
    assert result.stderr.strip() == message


@pytest.mark.parametrize("value", ["0", "301", "10.5", '"10"', "true"])
def test_web_request_seconds_config_out_of_range_is_one_line(tmp_path: Path, value: str) -> None:
    from tracker.errors import ConfigError
    from tracker.settings import parse_settings

    config = tmp_path / "tracker.toml"
    config.write_text(f"[web]\nrequest_seconds = {value}\n")
    with pytest.raises(ConfigError) as error:
        parse_settings(config)
    assert error.value.problems == [
        f"web.request_seconds: must be a whole number of seconds from 1 to 300, got "
        f"{tomllib.loads(config.read_text())['web']['request_seconds']!r}"
    ]


def test_web_section_refuses_unknown_keys(tmp_path: Path) -> None:
    from tracker.errors import ConfigError
    from tracker.settings import parse_settings

    config = tmp_path / "tracker.toml"
    config.write_text("[web]\nrequest_second = 5\n")
    with pytest.raises(ConfigError) as error:
        parse_settings(config)
    assert error.value.problems == [
        "web.request_second: unknown key; expected one of request_seconds"
    ]


# -- control and bidi characters in labels ------------------------------------------------------
BIDI_TEAM = "a\u202eb\nc"
BIDI_SHOWN = "a\\u202eb\\u000ac"


@pytest.fixture(scope="module")
def bidi_client(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestClient, int]:
    """The organisation plus ``bidi-job`` of team 'a<U+202E>b<newline>c' (0.25 on Nov 22)."""
    store = make_store(tmp_path_factory.mktemp("bidi"))
    fill(store, [make_job("bidi-\u202ejob", BIDI_TEAM, start_time=at(11, 22))])
    return TestClient(create_app(store, clock=lambda: NOW)), job_id(store, "bidi-\u202ejob")


@pytest.mark.parametrize("page", ["overview", "team", "job", "top view"])
def test_page_shows_bidi_and_newline_in_labels_escaped(
    bidi_client: tuple[TestClient, int], page: str
) -> None:
    """Autoescape stops markup, not U+202E: every label is shown by the one rule
    (tracker.errors.printable), so no page holds the raw character."""
    client, job = bidi_client
    url = {
        "overview": "/",
        "team": "/team?name=a%E2%80%AEb%0Ac",
        "job": f"/jobs/{job}",
        "top view": "/views/top",
    }[page]
    response = client.get(url)
    assert response.status_code == 200
    assert "\u202e" not in response.text
    assert BIDI_SHOWN in response.text
    if page == "team":
        assert f'<span id="team-name">{BIDI_SHOWN}</span>' in response.text
        assert f"<title>Team {BIDI_SHOWN} · Spend Tracker</title>" in response.text
    if page == "job":
        assert '<span id="job-name">bidi-\\u202ejob</span>' in response.text
        assert f"<th>team</th><td>{BIDI_SHOWN}</td>" in response.text
        assert f"<th>tags</th><td>project=p, team={BIDI_SHOWN}</td>" in response.text
        assert f"<th>Tags[1].Value</th><td>{BIDI_SHOWN}</td>" in response.text


def test_printable_filter_shows_any_value_on_one_line() -> None:
    from tracker.report.templating import environment

    template = environment().from_string("{{ a|printable }}|{{ b|printable }}|{{ c|printable }}")
    assert template.render(a="x\u202e<y>", b=None, c=3600) == "x\\u202e&lt;y&gt;||3600"
