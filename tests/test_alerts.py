"""Alerts: rules with an injected clock, and delivery exactly once per channel through the
ledger (SNS and SES on moto, a local webhook), across reruns, restarts and overlapping runs.

Every job here runs on ml.m5.xlarge at $1.00 per instance-hour (an overrides file) with no
storage volume, so a job of H hours on N instances costs H x N dollars.
"""

from __future__ import annotations

import email
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tests.factories import HOUR
from tests.test_budgets import RATES, at, make_job
from tests.webhook_server import WebhookServer
from tracker.alert.notify import Notifier, NotifySettings
from tracker.alert.rules import AlertSettings, Estimate, JobFacts, job_alerts
from tracker.alert.service import run_alerts
from tracker.cost.engine import CostPolicy, cost_job
from tracker.records import JobRecord
from tracker.settings import parse_settings
from tracker.store.database import Store
from tracker.store.ops import AlertLedger

ACCOUNT = "123456789012"
SENDER = "tracker@example.com"
D = Decimal


class World:
    """A config file, a database, moto SNS and SES, a webhook; ``run(now)`` runs ``tracker alerts``."""

    def __init__(self, tmp: Path, hook: WebhookServer, budget: str, *, aws: bool = True):
        self.tmp = tmp
        self.hook = hook
        self.url = f"sqlite:///{tmp / 'alerts.db'}"
        self.aws = aws
        if aws:  # inside mock_aws
            sns = boto3.client("sns", region_name="us-east-1")
            self.topic = sns.create_topic(Name="budget-alerts")["TopicArn"]
            boto3.client("ses", region_name="us-east-1").verify_email_identity(EmailAddress=SENDER)
        (tmp / "overrides.csv").write_text(
            "region,instance_type,usd_per_hour,source,source_date\nus-east-1,ml.m5.xlarge,1.00,test,2026-11-01\n"
        )
        self.configure(budget)
        self.store = Store.open(self.url)
        self.wall_now = at("2026-11-01T00:00:00")

    def configure(self, budget: str, alerts: str = "") -> None:
        channels = '["log", "webhook:env:HOOK"]'
        if self.aws:
            channels = (
                f'["log", "sns:{self.topic}", "webhook:env:HOOK", "email:finops@example.com"]'
            )
        (self.tmp / "tracker.toml").write_text(
            f'[database]\nurl = "{self.url}"\n'
            '[pricing]\noverrides = "overrides.csv"\n'
            f'[alerts]\nemail_from = "{SENDER}"\nemail_region = "us-east-1"\nnotify = {channels}\n{alerts}\n'
            f'[[budgets]]\nname = "nlp-monthly"\nteam = "nlp"\nnotify = {channels}\n{budget}\n'
        )
        self.settings = parse_settings(self.tmp / "tracker.toml")

    def save(self, records: list[JobRecord], now: datetime) -> None:
        self.store.save_jobs([(r, cost_job(r, RATES, now, CostPolicy()), {}) for r in records], now)

    def restart(self) -> None:
        """A new process: a fresh engine on the same database."""
        self.store.engine.dispose()
        self.store = Store.open(self.url)

    def run(self, now: datetime, **kw):
        self.wall_now += timedelta(minutes=15)
        notifier = Notifier(NotifySettings(SENDER, "us-east-1", 5), environ={"HOOK": self.hook.url})
        return run_alerts(
            self.settings, self.store, now=now, wall=lambda: self.wall_now, notifier=notifier, **kw
        )

    # what each channel received
    def sns(self) -> list[str]:
        from moto.sns.models import sns_backends

        return [
            subject
            for _, _, subject, _, _ in sns_backends[ACCOUNT]["us-east-1"]
            .topics[self.topic]
            .sent_notifications
        ]

    def emails(self) -> list[str]:
        from moto.ses.models import ses_backends

        sent = ses_backends[ACCOUNT]["us-east-1"].sent_messages
        return [email.message_from_string(m.raw_data)["Subject"] for m in sent]

    def webhook(self) -> list[str]:
        return [text.splitlines()[0] for text in self.hook.texts()]


@pytest.fixture
def hook() -> Iterator[WebhookServer]:
    with WebhookServer() as server:
        yield server


@pytest.fixture
def world(tmp_path: Path, hook: WebhookServer) -> World:
    """Channels log and webhook only (SNS and email are exercised where they matter)."""
    return World(
        tmp_path,
        hook,
        "amount_usd = 100\nthresholds_pct = [50, 80, 100]\nforecast_pct = []",
        aws=False,
    )


@pytest.fixture
def aws_world(tmp_path: Path, hook: WebhookServer) -> Iterator[World]:
    """All four channels: log, SNS and SES on moto, the webhook."""
    with mock_aws():
        yield World(
            tmp_path, hook, "amount_usd = 100\nthresholds_pct = [50, 80, 100]\nforecast_pct = []"
        )


def test_team_crossing_50_then_80_alerts_once_per_channel_across_restarts(
    aws_world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """Team nlp, budget $100 for November; thresholds 50, 80, 100; no forecast alerts.

    | step | new job (hours x instances) | actual | crosses |
    |------|-----------------------------|--------|---------|
    | 1    | a 40 x 1 = $40              |  $40   | -       |
    | 2    | b 5 x 3 = $15               |  $55   | 50      |
    | 3    | (rerun, restart, rerun)     |  $55   | -       |
    | 4    | c 10 x 3 = $30              |  $85   | 80      |
    | 5    | (rerun, restart, rerun)     |  $85   | -       |
    """
    world = aws_world
    caplog.set_level(logging.WARNING, logger="tracker.alert.rules")
    world.save(
        [make_job("a", start_time=at("2026-11-02T00:00:00"), seconds=40 * HOUR)],
        at("2026-11-04T00:00:00"),
    )
    first = world.run(at("2026-11-04T00:00:00"))
    assert first.alerts == [] and first.outcomes == []

    world.save(
        [make_job("b", start_time=at("2026-11-04T00:00:00"), seconds=5 * HOUR, instance_count=3)],
        at("2026-11-05T00:00:00"),
    )
    crossed = world.run(at("2026-11-05T00:00:00"))
    assert crossed.count("sent") == 4 and crossed.ok
    for rerun in range(3):
        if rerun == 1:
            world.restart()
        again = world.run(at("2026-11-05T01:00:00"))
        assert again.count("sent") == 0 and again.count("already-sent") == 4

    world.save(
        [make_job("c", start_time=at("2026-11-06T00:00:00"), seconds=10 * HOUR, instance_count=3)],
        at("2026-11-07T00:00:00"),
    )
    assert world.run(at("2026-11-07T00:00:00")).count("sent") == 4
    world.restart()
    assert world.run(at("2026-11-07T02:00:00")).count("sent") == 0

    fifty = "Budget nlp-monthly crossed 50% of $100.00 for 2026-11 (spent $55.00)"
    eighty = "Budget nlp-monthly crossed 80% of $100.00 for 2026-11 (spent $85.00)"
    assert world.webhook() == [fifty, eighty]
    assert world.sns() == [fifty, eighty]
    assert world.emails() == [fifty, eighty]
    logged = [
        r.getMessage().splitlines()[0] for r in caplog.records if r.getMessage().startswith("ALERT")
    ]
    assert logged == [f"ALERT {fifty}", f"ALERT {eighty}"]
    body = world.hook.texts()[1]
    for expected in ("team nlp", "$85.00 of $100.00 (85.00%)", "c  $30.00  Completed", "Method:",
                     "tracker report --by job --team nlp --since 2026-11-01 --until 2026-11-30"):  # fmt: skip
        assert expected in body
    assert {d.status for d in AlertLedger(world.store, lambda: world.wall_now).deliveries()} == {
        "sent"
    }


def test_new_month_alerts_again_for_its_own_period(world: World) -> None:
    """$60 in November crosses 50%; on 12-01 00:00 December has $0; $50 in December crosses 50%."""
    world.save(
        [make_job("nov", start_time=at("2026-11-28T00:00:00"), seconds=60 * HOUR)],
        at("2026-11-30T23:59:59"),
    )
    assert world.run(at("2026-11-30T23:59:59")).count("sent") == 2
    assert world.run(at("2026-12-01T00:00:00")).alerts == []
    world.save(
        [make_job("dec", start_time=at("2026-12-01T00:00:00"), seconds=50 * HOUR)],
        at("2026-12-03T00:00:00"),
    )
    assert world.run(at("2026-12-03T00:00:00")).count("sent") == 2
    assert world.webhook() == [
        "Budget nlp-monthly crossed 50% of $100.00 for 2026-11 (spent $60.00)",
        "Budget nlp-monthly crossed 50% of $100.00 for 2026-12 (spent $50.00)",
    ]


def test_failing_webhook_gets_its_alert_later_once(tmp_path: Path) -> None:
    with mock_aws(), WebhookServer(fail_first=2) as hook:
        world = World(tmp_path, hook, "amount_usd = 100\nthresholds_pct = [50]\nforecast_pct = []")
        world.save(
            [make_job("a", start_time=at("2026-11-02T00:00:00"), seconds=60 * HOUR)],
            at("2026-11-03T00:00:00"),
        )
        first = world.run(at("2026-11-03T00:00:00"))
        assert (first.count("sent"), first.count("failed")) == (3, 1)
        assert not first.ok
        [failed] = [o for o in first.outcomes if o.state == "failed"]
        assert failed.channel == "webhook:env:HOOK" and failed.error == "webhook answered HTTP 500"
        world.restart()
        second = world.run(at("2026-11-03T00:15:00"))
        assert (second.count("failed"), second.count("already-sent")) == (1, 3)
        third = world.run(at("2026-11-03T00:30:00"))
        assert (third.count("sent"), third.count("already-sent")) == (1, 3)
        assert world.run(at("2026-11-03T00:45:00")).count("sent") == 0
        assert len(hook.failed) == 2 and len(world.webhook()) == 1
        assert len(world.sns()) == 1 and len(world.emails()) == 1
        ledger = AlertLedger(world.store, lambda: world.wall_now)
        [row] = [d for d in ledger.deliveries() if d.channel == "webhook:env:HOOK"]
        assert (row.status, row.attempts, row.last_error) == ("sent", 3, None)


def test_failed_delivery_is_retried_even_after_its_rule_stops_firing(tmp_path: Path) -> None:
    with WebhookServer(fail_first=1) as hook:
        world = World(
            tmp_path, hook, "amount_usd = 100\nthresholds_pct = [50]\nforecast_pct = []", aws=False
        )
        world.save(
            [make_job("a", start_time=at("2026-11-02T00:00:00"), seconds=60 * HOUR)],
            at("2026-11-03T00:00:00"),
        )
        assert world.run(at("2026-11-03T00:00:00")).count("failed") == 1
        world.configure(
            "amount_usd = 1000\nthresholds_pct = [50]\nforecast_pct = []"
        )  # no longer fires
        retry = world.run(at("2026-11-03T00:15:00"))
        assert retry.alerts == [] and retry.count("sent") == 1
        assert world.webhook() == [
            "Budget nlp-monthly crossed 50% of $100.00 for 2026-11 (spent $60.00)"
        ]


def test_forecast_breach_is_announced_before_the_actual_one(tmp_path: Path) -> None:
    """Budget $100 for November; one 5-hour job ($5) finishes every day from 11-01.

    | now         | actual           | run rate (7 days) | days left | forecast           | fires          |
    |-------------|------------------|-------------------|-----------|--------------------|----------------|
    | 11-02 00:00 | $5               | $5/7 (1 day)      | 29        | 5 + 20.71 = 25.71  | -              |
    | 11-08 00:00 | $35              | $35/7 = $5        | 23        | 35 + 115 = 150     | forecast 100   |
    | 11-21 00:00 | $100             | $5                | 10        | 100 + 50 = 150     | actual 100     |
    """
    with WebhookServer() as hook:
        world = World(
            tmp_path,
            hook,
            "amount_usd = 100\nthresholds_pct = [100]\nforecast_pct = [100]",
            aws=False,
        )

        def day(n: int) -> datetime:
            return at("2026-11-01T00:00:00") + timedelta(days=n - 1)

        def jobs_through(n: int) -> None:
            world.save(
                [
                    make_job(f"daily-{d:02d}", start_time=day(d), seconds=5 * HOUR)
                    for d in range(1, n)
                ],
                day(n),
            )

        jobs_through(2)
        early = world.run(day(2))
        assert early.alerts == []
        assert early.statuses[0].forecast_usd.quantize(D("0.01")) == D("25.71")
        jobs_through(8)
        week = world.run(day(8))
        assert week.statuses[0].forecast_usd == D(150)
        assert [a.message.kind for a in week.alerts] == ["budget-forecast"]
        jobs_through(21)
        late = world.run(day(21))
        assert late.statuses[0].actual_usd == D(100)
        assert [o.state for o in late.outcomes if o.channel == "log"] == ["already-sent", "sent"]
        assert world.webhook() == [
            "Budget nlp-monthly is forecast to reach 100% of $100.00 for 2026-11 (forecast $150.00)",
            "Budget nlp-monthly crossed 100% of $100.00 for 2026-11 (spent $100.00)",
        ]
        assert "run rate x days left ($5.00/day" in hook.texts()[0]


def test_both_kinds_crossing_in_one_run_send_forecast_first(world: World) -> None:
    world.configure("amount_usd = 10\nthresholds_pct = [50]\nforecast_pct = [100]")
    world.save(
        [make_job("burst", start_time=at("2026-11-09T00:00:00"), seconds=20 * HOUR)],
        at("2026-11-10T00:00:00"),
    )
    result = world.run(at("2026-11-10T00:00:00"))
    assert [a.message.kind for a in result.alerts] == ["budget-forecast", "budget-actual"]
    assert [line.split(" ", 3)[2] for line in world.webhook()] == ["is", "crossed"]


def test_running_job_past_its_estimate_is_flagged_while_it_runs(world: World) -> None:
    """Running since 10:00 on 2 instances ($2/h), tag estimate $3, MaxRuntime 5 h.

    | now   | so far | past $3? | at stop (5 h x 2)  |
    |-------|--------|----------|--------------------|
    | 11:00 | $2     | no       |                    |
    | 12:00 | $4     | yes      | $10.00 at 15:00    |
    """
    tags = {"team": "nlp", "tracker:estimate-usd": "3"}
    running = make_job(
        "train-big",
        start_time=at("2026-11-10T10:00:00"),
        seconds=None,
        status="InProgress",
        instance_count=2,
        max_runtime_seconds=5 * 3600,
        tags=tags,
    )
    world.configure("amount_usd = 100000")
    world.save([running], at("2026-11-10T11:00:00"))
    assert world.run(at("2026-11-10T11:00:00")).alerts == []
    world.save([running], at("2026-11-10T12:00:00"))
    result = world.run(at("2026-11-10T12:00:00"))
    [alert] = result.alerts
    assert alert.message.kind == "job-running-over-estimate"
    assert (
        alert.message.subject
        == "Running job train-big has already cost $4.00, past its estimate of $3.00"
    )
    text = alert.message.text
    assert "MaxRuntimeInSeconds, 2026-11-10 15:00 UTC) it will cost $10.00" in text
    assert "stop-training-job --training-job-name train-big --region us-east-1" in text
    assert result.count("sent") == 2
    world.save([running], at("2026-11-10T13:00:00"))
    assert world.run(at("2026-11-10T13:00:00")).count("sent") == 0  # flagged once


def test_finished_job_over_estimate_beyond_tolerance(world: World) -> None:
    """Tolerance 10%: estimate $10 -> alert above $11.00. Costs: ok 10.50 (5% over), big $12."""
    world.configure("amount_usd = 100000", alerts="job_tolerance_pct = 10")
    # The estimate tag replaces the team tag: the job is nlp's by its stored team alone.
    estimated = {"tracker:estimate-usd": "10"}
    ok = replace(
        make_job("ok", start_time=at("2026-11-10T00:00:00"), seconds=int(10.5 * HOUR)),
        tags=estimated,
    )
    big = replace(
        make_job("big", start_time=at("2026-11-10T00:00:00"), seconds=12 * HOUR), tags=estimated
    )
    old = replace(
        make_job("old", start_time=at("2026-10-01T00:00:00"), seconds=50 * HOUR),
        tags={"tracker:estimate-usd": "1"},
    )
    world.save([ok, big, old], at("2026-11-11T00:00:00"))
    result = world.run(at("2026-11-11T00:00:00"))
    [alert] = result.alerts
    assert alert.message.subject == "Job big cost $12.00, 20.00% over its estimate of $10.00"
    assert "tag tracker:estimate-usd" in alert.message.text


def test_job_rules_table() -> None:
    settings = AlertSettings(job_tolerance_pct=D(10))

    def facts(cost: str, estimate: str | None, final: bool = True) -> JobFacts:
        est = Estimate(D(estimate), "tag") if estimate is not None else None
        return JobFacts(
            "j",
            "arn:j",
            "us-east-1",
            "nlp",
            "Completed" if final else "InProgress",
            final,
            D(cost),
            est,
        )

    kinds = lambda fs: [a.message.kind for a in job_alerts(fs, settings)]  # noqa: E731
    assert kinds([facts("11.00", "10")]) == []  # exactly at tolerance
    assert kinds([facts("11.01", "10")]) == ["job-over-estimate"]
    assert kinds([facts("100", None)]) == []
    assert kinds([facts("10.01", "10", final=False)]) == ["job-running-over-estimate"]
    assert kinds([facts("10.00", "10", final=False)]) == []


def test_dry_run_sends_and_records_nothing(world: World) -> None:
    world.save(
        [make_job("a", start_time=at("2026-11-02T00:00:00"), seconds=90 * HOUR)],
        at("2026-11-03T00:00:00"),
    )
    dry = world.run(at("2026-11-03T00:00:00"), dry_run=True)
    assert dry.count("would-send") == 4 and dry.count("sent") == 0
    assert "dry run" in dry.render()
    assert world.webhook() == []
    assert AlertLedger(world.store, lambda: world.wall_now).deliveries() == []


def test_overlapping_runs_never_double_send(tmp_path: Path) -> None:
    with mock_aws(), WebhookServer(delay=0.3) as hook:
        world = World(
            tmp_path, hook, "amount_usd = 100\nthresholds_pct = [50, 80]\nforecast_pct = []"
        )
        world.save(
            [make_job("a", start_time=at("2026-11-02T00:00:00"), seconds=90 * HOUR)],
            at("2026-11-03T00:00:00"),
        )
        stores = [Store.open(world.url) for _ in range(3)]
        results = []

        def one(store: Store) -> None:
            notifier = Notifier(NotifySettings(SENDER, "us-east-1", 5), environ={"HOOK": hook.url})
            results.append(run_alerts(world.settings, store, now=at("2026-11-03T00:00:00"),
                                      wall=lambda: world.wall_now, notifier=notifier))  # fmt: skip

        threads = [threading.Thread(target=one, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(r.count("sent") for r in results) == 8
        assert len(world.webhook()) == 2 and len(world.sns()) == 2 and len(world.emails()) == 2


def test_webhook_url_is_never_logged_or_stored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with WebhookServer(fail_first=1) as hook:
        world = World(
            tmp_path, hook, "amount_usd = 100\nthresholds_pct = [50]\nforecast_pct = []", aws=False
        )
        text = (
            (tmp_path / "tracker.toml")
            .read_text()
            .replace("webhook:env:HOOK", f"webhook:{hook.url}")
        )
        (tmp_path / "tracker.toml").write_text(text)
        world.settings = parse_settings(tmp_path / "tracker.toml")
        world.save(
            [make_job("a", start_time=at("2026-11-02T00:00:00"), seconds=60 * HOUR)],
            at("2026-11-03T00:00:00"),
        )
        world.run(at("2026-11-03T00:00:00"))
        world.run(at("2026-11-03T00:15:00"))
        assert len(world.webhook()) == 1
    assert "secret-token" not in caplog.text
    dump = json.dumps(
        [d.__dict__ for d in AlertLedger(world.store, lambda: world.wall_now).deliveries()],
        default=str,
    )
    assert "secret-token" not in dump and "webhook:sha256:" in dump


# -- the ledger on both databases ------------------------------------------------------------------
def ledger_race(url: str) -> None:
    stores = [Store.open(url) for _ in range(4)]
    clock = lambda: datetime(2026, 11, 1, tzinfo=UTC)  # noqa: E731
    tokens: list[str | None] = []
    barrier = threading.Barrier(len(stores))

    def claim(store: Store) -> None:
        barrier.wait()
        tokens.append(AlertLedger(store, clock).claim("k", "log", "budget-actual", "s", {}))

    threads = [threading.Thread(target=claim, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [t for t in tokens if t]
    assert len(winners) == 1
    ledger = AlertLedger(stores[0], clock)
    ledger.mark_failed("k", "log", winners[0], "boom")
    again = ledger.claim_delivery("k", "log", "budget-actual", "s", {})
    assert again and again.repeat and not again.after_crash
    assert ledger.claim("k", "log", "budget-actual", "s", {}) is None
    ledger.mark_sent("k", "log", again.token)
    assert ledger.claim("k", "log", "budget-actual", "s", {}) is None
    assert ledger.retryable() == []


def test_ledger_claim_race_sqlite(tmp_path: Path) -> None:
    ledger_race(f"sqlite:///{tmp_path / 'race.db'}")


@pytest.mark.postgres
def test_ledger_claim_race_postgres(pg_url: str) -> None:
    ledger_race(pg_url)


def test_stale_claim_of_a_dead_sender_is_retried_once_then_given_up(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'stale.db'}")
    now = [datetime(2026, 11, 1, tzinfo=UTC)]
    ledger = AlertLedger(store, lambda: now[0], lease=timedelta(minutes=10))
    first = ledger.claim_delivery("k", "log", "budget-actual", "s", {"key": "k"})
    assert first and not first.repeat  # the sender dies here
    now[0] += timedelta(minutes=5)
    assert ledger.retryable() == []
    assert ledger.claim("k", "log", "budget-actual", "s", {}) is None
    now[0] += timedelta(minutes=6)
    assert [d.alert_key for d in ledger.retryable()] == ["k"]
    resend = ledger.claim_delivery("k", "log", "budget-actual", "s", {})
    assert resend and resend.repeat and resend.after_crash  # and this sender dies too
    now[0] += timedelta(minutes=11)
    assert ledger.retryable() == []
    assert ledger.claim("k", "log", "budget-actual", "s", {}) is None
    assert [d.alert_key for d in ledger.give_up_abandoned()] == ["k"]
    [row] = ledger.deliveries()
    assert (row.status, row.sends, row.crash_resends, row.idempotency_key) == (
        "unconfirmed", 2, 1, "1630280b3cb5335dbc8fc65ab00338a3")  # sha256("k\\nlog")  # fmt: skip
    assert ledger.give_up_abandoned() == [] and ledger.claim("k", "log", "b", "s", {}) is None


# -- the estimates and reconciliation feature's data --------------------------------------------------
def test_recorded_estimate_matched_by_prefix_flags_a_running_job(world: World) -> None:
    """Recorded for prefix "sweep-": 1 x ml.m5.xlarge for 2 h = $2.00. Job sweep-7 runs on one
    instance since 09:00; at 12:00 it has cost $3.00, past the estimate."""
    from tracker.estimate.api import estimate_job

    world.configure("amount_usd = 100000")
    estimate = estimate_job(
        "ml.m5.xlarge", 1, 2, name_prefix="sweep-", record=True,
        config=world.tmp / "tracker.toml", db=world.url, now=at("2026-11-10T08:00:00"),
    )  # fmt: skip
    assert estimate.total_usd == D("2.00")
    world.save(
        [
            make_job(
                "sweep-7", start_time=at("2026-11-10T09:00:00"), seconds=None, status="InProgress"
            )
        ],
        at("2026-11-10T12:00:00"),
    )
    [alert] = world.run(at("2026-11-10T12:00:00")).alerts
    assert (
        alert.message.subject
        == "Running job sweep-7 has already cost $3.00, past its estimate of $2.00"
    )
    assert f"recorded estimate {estimate.estimate_id}, matched by name prefix" in alert.message.text


def test_bill_drift_finding_is_sent_once(world: World) -> None:
    """Team nlp on 2026-11-02: tracker $10.00 (10 h at $1), Cost Explorer bill $15.00 -> drift
    of 50% > the default 5%, settled by 2026-11-10 (settle time 2 days)."""
    from tracker.reconcile.rules import BillLine, classify_usage_type
    from tracker.store.bills import BillRepository

    world.configure("amount_usd = 100000")
    world.save(
        [make_job("day", start_time=at("2026-11-02T00:00:00"), seconds=10 * HOUR)],
        at("2026-11-03T00:00:00"),
    )
    usage = "USE1-Train:ml.m5.xlarge"
    line = BillLine("ce", date(2026, 11, 2), date(2026, 11, 3), "nlp", usage, classify_usage_type(usage),
                    D(15), D(15))  # fmt: skip
    BillRepository(world.store).replace_lines(
        "ce", date(2026, 11, 1), date(2026, 11, 9), [line], at("2026-11-10T00:00:00")
    )
    result = world.run(at("2026-11-10T00:00:00"))
    [alert] = result.alerts
    assert alert.message.kind == "bill-drift"
    assert (
        alert.message.subject
        == "Bill drift for team nlp, 2026-11-02: billed $15.00 vs tracker $10.00"
    )
    assert result.count("sent") == 2
    assert world.run(at("2026-11-10T01:00:00")).count("sent") == 0


def test_alerts_section_tolerance_spellings() -> None:
    from tracker.settings import SectionContext, parse_alerts

    ctx = SectionContext(None, Path.cwd(), [])
    assert parse_alerts({"tolerance_pct": 25}, ctx).job_tolerance_pct == D(25)
    assert parse_alerts({"job_tolerance_pct": 5}, ctx).job_tolerance_pct == D(5)
    assert parse_alerts(None, ctx).job_tolerance_pct is None  # the estimates feature's tolerance
    parse_alerts({"job_tolerance_pct": -1, "notify": ["pager"], "colour": 1}, ctx)
    assert [p.split(":")[0] for p in ctx.problems] == [
        "alerts.colour",
        "alerts.notify[0]",
        "alerts.job_tolerance_pct",
    ]


@pytest.mark.e2e
def test_running_job_collected_from_aws_is_flagged_while_it_runs(
    tmp_path: Path, moto_endpoint: str
) -> None:
    """Seeded on the moto server: InProgress since 09:00 on 2 x ml.g5.2xlarge ($1.00/h override,
    local NVMe so no volume cost), tag estimate $4.00, MaxRuntime 10 h.

    | now   | so far (h x 2 x $1) | at stop (10 h x 2) | flagged |
    |-------|---------------------|--------------------|---------|
    | 10:30 | $3.00               |                    | no      |
    | 12:00 | $6.00               | $20.00 at 19:00    | yes     |
    """
    from tracker.aws.simulate import SimJob, clients_for, create_job
    from tracker.collect.service import collect

    (tmp_path / "overrides.csv").write_text(
        "region,instance_type,usd_per_hour,source,source_date\nus-east-1,ml.g5.2xlarge,1.00,test,2026-11-01\n"
    )
    (tmp_path / "tracker.toml").write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "run.db"}"\n'
        '[[sources]]\nname = "prod"\nregions = ["us-east-1"]\n'
        '[pricing]\noverrides = "overrides.csv"\n'
    )
    create_job(
        clients_for(ACCOUNT, "us-east-1"),
        SimJob("llm-sweep", ACCOUNT, "us-east-1", instance_type="ml.g5.2xlarge", count=2,
               status="InProgress", start=at("2026-11-10T09:00:00"), max_runtime_seconds=36000,
               tags={"team": "nlp", "tracker:estimate-usd": "4.00"}),
    )  # fmt: skip
    settings = parse_settings(tmp_path / "tracker.toml")
    store = Store.open(settings.database_url)
    wall = lambda: datetime.now(UTC)  # noqa: E731

    def tick(now: datetime):
        collect(settings, store, settings.price_book(), clock=lambda: now)
        return run_alerts(settings, store, now=now, wall=wall)

    assert tick(at("2026-11-10T10:30:00")).alerts == []
    result = tick(at("2026-11-10T12:00:00"))
    [alert] = result.alerts
    assert (
        alert.message.subject
        == "Running job llm-sweep has already cost $6.00, past its estimate of $4.00"
    )
    assert "(MaxRuntimeInSeconds, 2026-11-10 19:00 UTC) it will cost $20.00" in alert.message.text
    assert result.count("sent") == 1  # the log channel
    again = run_alerts(settings, store, now=at("2026-11-10T12:15:00"), wall=wall)
    assert again.count("sent") == 0 and again.count("already-sent") == 1
