"""Prometheus metrics: ``/metrics`` of ``tracker serve`` and the daemon's listener, parsed with
prometheus_client's own parser, checked against the store they read.

The store is the organisation of tests/views_data.py (this month, November 2026 to the 26th:
vision 6.80, nlp 2.25, unallocated 0.25, <script>alert(1)</script> 0.25), plus operations
history at NOW = 2026-11-26 12:00 UTC:

| table            | rows                                                                       |
|------------------|----------------------------------------------------------------------------|
| watermarks       | us-east-1: success 11:50 (lag 600 s), newest job 11:00; eu-west-1: failed  |
| collection_runs  | one partial run, 11:49-11:50, 4.5 s: us-east-1 3 new, 1 updated, 7 same    |
| job_runs         | collect ok 2 s, failed 1 s, ok 3 s (latest), one running; alerts ok 0.5 s  |
| alert_deliveries | budget-threshold sent on 2 channels; job-over-estimate failed on 1         |

Budgets: vision-monthly (team vision, 10 USD) and everything (all teams, 100 USD).
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy import event

from tests import factories
from tests.conftest import REPO
from tests.views_data import ACCOUNT, JOBS, NOW, fill, make_store
from tracker.alert.service import budget_statuses
from tracker.daemon.scheduler import Daemon
from tracker.daemon.tasks import JobContext, JobOutcome
from tracker.errors import TrackerError
from tracker.report.metrics import metrics_registry
from tracker.report.spend import spend_rows
from tracker.settings import SectionContext, Settings, load_settings, parse_daemon, parse_settings
from tracker.store.database import Store
from tracker.store.ops import AlertLedger, DaemonLockRow, JobRunLog

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's notice about its httpx-based client
    from fastapi.testclient import TestClient

from tracker.web.app import create_app  # noqa: E402

BUDGETS = """
[[budgets]]
name = "vision-monthly"
amount_usd = 10
team = "vision"

[[budgets]]
name = "everything"
amount_usd = 100
"""
LABELS = {"account", "region", "scheduled_job", "status", "kind", "team", "budget", "change",
          "section", "quantile"}  # fmt: skip
DASHBOARD = REPO / "docs" / "grafana-dashboard.json"


def seed_operations(store: Store) -> None:
    """The operations history of the table in the module docstring."""
    store.advance_watermark(ACCOUNT, "us-east-1", "default", NOW - timedelta(hours=1),
                            NOW - timedelta(minutes=10))  # fmt: skip
    store.record_region_failure(ACCOUNT, "eu-west-1", "default", "AccessDenied", NOW)
    run = store.start_run(NOW - timedelta(minutes=11))
    regions = [
        {"account_id": ACCOUNT, "region": "us-east-1", "new": 3, "updated": 1, "unchanged": 7},
        {"account_id": ACCOUNT, "region": "eu-west-1", "new": 0, "updated": 0, "unchanged": 0,
         "error": "AccessDenied"},
    ]  # fmt: skip
    store.finish_run(
        run, "partial", {"seconds": 4.5, "regions": regions}, NOW - timedelta(minutes=10)
    )
    runs = JobRunLog(store)
    for job, status, seconds in [
        ("collect", "ok", 2.0), ("collect", "failed", 1.0), ("alerts", "ok", 0.5),
        ("collect", "ok", 3.0),
    ]:  # fmt: skip
        run_id = runs.start(job, "daemon", "host:1", NOW - timedelta(minutes=5))
        runs.finish(run_id, status, "", NOW - timedelta(minutes=5) + timedelta(seconds=seconds),
                    seconds)  # fmt: skip
    runs.start("collect", "daemon", "host:1", NOW)  # still running: not a finished run
    ledger = AlertLedger(store, lambda: NOW)
    for channel in ("log", "email:ops@example.com"):
        token = ledger.claim("budget:vision:50", channel, "budget-threshold", "50%", {})
        ledger.mark_sent("budget:vision:50", channel, token)
    token = ledger.claim("job:x:over", "log", "job-over-estimate", "over", {})
    ledger.mark_failed("job:x:over", "log", token, "boom")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = make_store(tmp_path_factory.mktemp("metrics"))
    seed_operations(store)
    return store


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    config = tmp_path_factory.mktemp("config") / "tracker.toml"
    config.write_text(BUDGETS)
    return parse_settings(config)


@pytest.fixture(scope="module")
def client(store: Store, settings: Settings) -> TestClient:
    return TestClient(create_app(store, settings=settings, clock=lambda: NOW))


@pytest.fixture(scope="module")
def samples(client: TestClient) -> list[Sample]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return [s for f in text_string_to_metric_families(response.text) for s in f.samples]


def values(samples: list[Sample], name: str, *keys: str) -> dict[tuple[str, ...], float]:
    """Sample ``name``'s values by the given label values."""
    return {tuple(s.labels[k] for k in keys): s.value for s in samples if s.name == name}


# -- tracker serve ------------------------------------------------------------------------------
def test_metrics_route_serves_prometheus_text_on_get_and_head(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    head = client.head("/metrics")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == CONTENT_TYPE_LATEST
    assert client.post("/metrics").status_code == 405


def test_spend_this_month_per_team_equals_report_by_team(store: Store, samples: list) -> None:
    spend = values(samples, "tracker_spend_this_month_usd", "team")
    report = spend_rows(store, "team", since=date(2026, 11, 1), until=NOW.date())
    assert spend == {(row["team"],): float(row["total_usd"]) for row in report}
    assert spend[("vision",)] == 6.80 and spend[("nlp",)] == 2.25
    assert spend[("<script>alert(1)</script>",)] == 0.25


def test_collection_lag_and_last_success_per_account_and_region(samples: list) -> None:
    east = (ACCOUNT, "us-east-1")
    west = (ACCOUNT, "eu-west-1")
    keys = ("account", "region")
    assert values(samples, "tracker_collection_lag_seconds", *keys) == {east: 600.0}
    assert values(samples, "tracker_collection_last_success_timestamp_seconds", *keys) == {
        east: (NOW - timedelta(minutes=10)).timestamp()
    }
    assert values(samples, "tracker_collection_watermark_timestamp_seconds", *keys) == {
        east: (NOW - timedelta(hours=1)).timestamp()
    }
    assert values(samples, "tracker_collection_failing", *keys) == {east: 0, west: 1}
    assert values(samples, "tracker_jobs_stored", *keys) == {east: len(JOBS)}


def test_collection_runs_and_what_the_latest_one_collected(samples: list) -> None:
    assert values(samples, "tracker_collection_runs_total", "status") == {("partial",): 1}
    jobs = values(samples, "tracker_last_collection_jobs", "region", "change")
    assert (jobs[("us-east-1", "new")], jobs[("us-east-1", "updated")]) == (3, 1)
    assert (jobs[("us-east-1", "unchanged")], jobs[("eu-west-1", "new")]) == (7, 0)
    assert values(samples, "tracker_last_collection_duration_seconds") == {(): 4.5}
    assert values(samples, "tracker_last_collection_timestamp_seconds") == {
        (): (NOW - timedelta(minutes=10)).timestamp()
    }


def test_run_durations_and_errors_per_scheduled_job(samples: list) -> None:
    assert values(samples, "tracker_job_runs_total", "scheduled_job", "status") == {
        ("collect", "ok"): 2, ("collect", "failed"): 1, ("alerts", "ok"): 1,
    }  # fmt: skip
    assert values(samples, "tracker_job_run_errors_total", "scheduled_job") == {
        ("collect",): 1, ("alerts",): 0,
    }  # fmt: skip
    assert values(samples, "tracker_job_run_duration_seconds_count", "scheduled_job") == {
        ("collect",): 3, ("alerts",): 1,
    }  # fmt: skip
    assert values(samples, "tracker_job_run_duration_seconds_sum", "scheduled_job") == {
        ("collect",): 6.0, ("alerts",): 0.5,
    }  # fmt: skip
    assert values(samples, "tracker_job_last_run_duration_seconds", "scheduled_job") == {
        ("collect",): 3.0, ("alerts",): 0.5,
    }  # fmt: skip
    assert values(samples, "tracker_job_last_run_ok", "scheduled_job") == {
        ("collect",): 1, ("alerts",): 1,
    }  # fmt: skip
    last_ok = values(samples, "tracker_job_last_success_timestamp_seconds", "scheduled_job")
    assert last_ok[("collect",)] == (NOW - timedelta(minutes=5, seconds=-3)).timestamp()


def test_alert_deliveries_by_kind_and_status(store: Store, samples: list) -> None:
    ledger = values(samples, "tracker_alert_deliveries", "kind", "status")
    assert ledger == {("budget-threshold", "sent"): 2, ("job-over-estimate", "failed"): 1}
    assert sum(ledger.values()) == len(AlertLedger(store, lambda: NOW).deliveries())
    assert values(samples, "tracker_alert_deliveries_sent_total", "kind") == {
        ("budget-threshold",): 2
    }


def test_budget_percent_used_per_budget_as_tracker_budgets_computes_it(
    store: Store, settings: Settings, samples: list
) -> None:
    used = values(samples, "tracker_budget_used_percent", "budget", "team")
    actual = values(samples, "tracker_budget_actual_usd", "budget", "team")
    amount = values(samples, "tracker_budget_amount_usd", "budget", "team")
    statuses = budget_statuses(settings, store, NOW)
    assert {s.budget.name for s in statuses} == {"vision-monthly", "everything"}
    for status in statuses:
        key = (status.budget.name, "vision" if status.budget.name == "vision-monthly" else "")
        assert used[key] == pytest.approx(float(status.pct_used))
        assert actual[key] == pytest.approx(float(status.actual_usd))
        assert used[key] == pytest.approx(actual[key] * 100 / amount[key])
    assert amount == {("vision-monthly", "vision"): 10, ("everything", ""): 100}


def test_labels_are_low_cardinality_never_a_training_job(samples: list) -> None:
    assert {name for s in samples for name in s.labels} <= LABELS
    label_values = {value for s in samples for value in s.labels.values()}
    for job in JOBS:
        assert job.name not in label_values and job.arn not in label_values
    assert values(samples, "tracker_metrics_scrape_error", "section") == {
        (section,): 0
        for section in ("collection", "collection_runs", "scheduled_jobs", "alerts", "spend",
                        "budgets")
    }  # fmt: skip


def test_a_scrape_runs_as_many_queries_for_ten_jobs_as_for_a_thousand(
    tmp_path: Path, settings: Settings
) -> None:
    store = make_store(tmp_path)
    seed_operations(store)
    registry = metrics_registry(store, settings, lambda: NOW)
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute",
                 lambda *args: statements.append(args[2]))  # fmt: skip

    def queries_per_scrape() -> int:
        statements.clear()
        list(registry.collect())
        return len(statements)

    few = queries_per_scrape()
    more = [
        factories.make_job(f"bulk-{i}", f"team-{i % 3}", account_id=ACCOUNT,
                           start_time=NOW - timedelta(hours=2 + i % 50))
        for i in range(1000)
    ]  # fmt: skip
    fill(store, more)
    assert queries_per_scrape() == few
    assert few == 8 + 3 * 2  # 8 aggregates + 3 per budget: set by the config, not the data


def test_a_failing_section_is_flagged_and_the_others_still_served(
    store: Store, tmp_path: Path
) -> None:
    config = tmp_path / "tracker.toml"
    config.write_text('[[budgets]]\nname = "x"\namount_usd = "lots"\n')
    settings = load_settings(str(config), whole_file=False)  # the broken budget fails on use
    text = TestClient(create_app(store, settings=settings, clock=lambda: NOW)).get("/metrics").text
    found = [s for f in text_string_to_metric_families(text) for s in f.samples]
    errors = values(found, "tracker_metrics_scrape_error", "section")
    assert errors[("budgets",)] == 1 and errors[("spend",)] == 0
    assert not values(found, "tracker_budget_used_percent", "budget", "team")
    assert values(found, "tracker_spend_this_month_usd", "team")[("vision",)] == 6.80


# -- the Grafana dashboard ------------------------------------------------------------------------
def dashboard_expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel.get("targets", [])]


def test_dashboard_charts_only_metrics_the_tracker_exports(samples: list) -> None:
    exported = {s.name for s in samples}
    used = {name for e in dashboard_expressions() for name in re.findall(r"\btracker_\w+", e)}
    assert used, "the dashboard charts nothing"
    assert used - exported == set()
    # Every family is on the dashboard (a counter or summary by any of its sample names).
    families = {re.sub(r"_(total|count|sum)$", "", name) for name in exported}
    charted = {re.sub(r"_(total|count|sum)$", "", name) for name in used}
    assert families - charted == set()


def test_dashboard_panels_each_have_a_title_and_a_query() -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    charts = [p for p in panels if p.get("type") != "row"]
    assert charts
    for panel in charts:
        assert panel.get("title") and panel.get("targets"), panel.get("title")
        assert all(t.get("expr") for t in panel["targets"]), panel["title"]


# -- the daemon's listener ----------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def daemon_settings(tmp: Path, port: int) -> Settings:
    config = tmp / "tracker.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp / "d.db"}"\n'
        '[schedule]\ncollect = "@every 1s"\nalerts = "off"\nreconcile = "off"\nprices = "off"\n'
        'showback = "off"\n'
        f"[daemon]\nheartbeat_seconds = 1\nstale_after_seconds = 3\nmetrics_port = {port}\n"
    )
    return parse_settings(config)


def scrape(port: int) -> tuple[str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.headers["Content-Type"], response.read().decode()


@pytest.fixture
def daemon_store(tmp_path: Path) -> Iterator[Store]:
    store = make_store(tmp_path)
    yield store
    store.engine.dispose()


def test_daemon_serves_the_same_metrics_on_its_port_and_stops_with_it(
    tmp_path: Path, daemon_store: Store
) -> None:
    port = free_port()

    def collect(_ctx: JobContext) -> JobOutcome:
        return JobOutcome("ok", "nothing to collect")

    def recorded() -> bool:  # the run is recorded after the job function returns
        return any(r.status == "ok" for r in JobRunLog(daemon_store).history("collect"))

    settings = daemon_settings(tmp_path, port)
    daemon = Daemon(settings, daemon_store, clock=lambda: NOW, functions={"collect": collect})
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(daemon.run(install_signals=False)))
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not recorded():
            assert time.monotonic() < deadline, "the daemon recorded no collect run"
            time.sleep(0.05)
        content_type, text = scrape(port)
    finally:
        daemon.request_stop("test")
        thread.join(10)
    assert codes == [0] and not thread.is_alive()
    # prometheus_client's own server negotiates the text format version with the scraper.
    assert content_type.startswith("text/plain; version=")
    from_daemon = [s for f in text_string_to_metric_families(text) for s in f.samples]
    served = TestClient(create_app(daemon_store, settings=settings, clock=lambda: NOW))
    from_serve = [
        s for f in text_string_to_metric_families(served.get("/metrics").text) for s in f.samples
    ]
    spend = values(from_daemon, "tracker_spend_this_month_usd", "team")
    assert spend == values(from_serve, "tracker_spend_this_month_usd", "team")
    assert spend[("vision",)] == 6.80
    runs = values(from_daemon, "tracker_job_runs_total", "scheduled_job", "status")
    assert runs[("collect", "ok")] >= 1
    with pytest.raises(urllib.error.URLError):
        scrape(port)  # the listener stopped with the daemon


def test_daemon_refuses_a_metrics_port_in_use_and_releases_its_lock(
    tmp_path: Path, daemon_store: Store
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        daemon = Daemon(daemon_settings(tmp_path, port), daemon_store, clock=lambda: NOW,
                        functions={"collect": lambda _ctx: JobOutcome("ok")})  # fmt: skip
        with pytest.raises(
            TrackerError, match=rf"daemon.metrics_port: cannot listen on 127.0.0.1:{port} \("
        ):
            daemon.run(install_signals=False)
    lock = DaemonLockRow(daemon_store, lambda: NOW, timedelta(seconds=3))
    assert lock.holder() is None


def test_daemon_metrics_settings_default_off_and_are_validated() -> None:
    ctx = SectionContext(None, Path.cwd(), [])
    defaults = parse_daemon(None, ctx)
    assert (defaults.metrics_port, defaults.metrics_host) == (0, "127.0.0.1")
    chosen = parse_daemon({"metrics_port": 9464, "metrics_host": "0.0.0.0"}, ctx)
    assert (chosen.metrics_port, chosen.metrics_host) == (9464, "0.0.0.0") and not ctx.problems
    for bad in (70000, -1, "9464", True, 9.5):
        ctx = SectionContext(None, Path.cwd(), [])
        assert parse_daemon({"metrics_port": bad}, ctx).metrics_port == 0
        assert ctx.problems == [
            f"daemon.metrics_port: must be a whole number from 0 to 65535, got {bad!r}"
        ]
    for bad in ("", " 127.0.0.1", 5):
        ctx = SectionContext(None, Path.cwd(), [])
        assert parse_daemon({"metrics_host": bad}, ctx).metrics_host == "127.0.0.1"
        assert ctx.problems == [
            f"daemon.metrics_host: must be the address to listen on, such as 127.0.0.1, got {bad!r}"
        ]
