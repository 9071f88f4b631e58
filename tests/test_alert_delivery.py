"""Alert delivery after crashes (issue 12, row 15): every attempt carries a stable
idempotency key per (alert, channel); a delivery interrupted by SIGKILL is resent once,
flagged as a repeat, and never again; a receiver that drops repeated keys sees each alert
exactly once. Also where each channel carries the key: webhook header and payload, SNS
message attributes (and the FIFO deduplication id), the SES raw message's headers.

The crash runs use the real ``tracker alerts`` through tests/fault_hook.py (SIGKILL as a
database commit starts), a local webhook receiver that records headers, and SQLite.
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import os
import random
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import boto3
import pytest
from alembic import command
from moto import mock_aws
from sqlalchemy import MetaData, select

from tests.backends import db_url_fixture  # noqa: F401 - the db_url fixture
from tests.conftest import REPO
from tests.factories import HOUR
from tests.processes import run_module
from tests.test_alerts import World
from tests.test_budgets import RATES, at, make_job
from tests.webhook_server import WebhookServer
from tracker.alert.channels import idempotency_key, parse_channel
from tracker.alert.notify import Message, Notifier, NotifySettings
from tracker.alert.service import run_alerts
from tracker.cost.engine import CostPolicy, cost_job
from tracker.store import migrate
from tracker.store.database import Store, connect
from tracker.store.ops import AlertLedger

ACCOUNT = "123456789012"
HOOK_CHANNEL = "webhook:env:HOOK"
THRESHOLDS = list(range(5, 95, 5))  # 5, 10, ..., 90: $95 spent of $100, all 18 cross
KILLS = 10  # as in the issue
KILL_SEED = 20261206  # fixed: with it, kills hit the webhook record after a send (asserted)
MESSAGE = Message(
    key="budget:nlp-monthly:2026-11:actual:80",
    kind="budget-actual",
    subject="Budget nlp-monthly crossed 80% of $5,000.00 for 2026-11 (spent $4,100.00)",
    text="Actual:    $4,100.00 of $5,000.00 (82.00%)",
)


class Receiver(WebhookServer):
    """The test webhook, also recording each request's headers: ``deliveries``."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], dict[str, Any]]] = []
        super().__init__()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with hook._lock:
                    hook.received.append(body)
                    hook.deliveries.append((dict(self.headers.items()), body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


# -- the reproduction: SIGKILL during delivery, ten times ---------------------------------------
def _project(tmp: Path) -> tuple[Path, Path]:
    """Budget nlp-monthly $100 for November, thresholds 5, 10, ..., 90, no forecast; $95 spent
    (95 hours of ml.m5.xlarge at $1): 18 alerts, each on log and the webhook."""
    db = tmp / "alerts.db"
    (tmp / "overrides.csv").write_text(
        "region,instance_type,usd_per_hour,source,source_date\n"
        "us-east-1,ml.m5.xlarge,1.00,test,2026-11-01\n"
    )
    config = tmp / "tracker.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{db}"\n[pricing]\noverrides = "overrides.csv"\n'
        "[alerts]\nlease_seconds = 10\n"
        f'[[budgets]]\nname = "nlp-monthly"\nteam = "nlp"\namount_usd = 100\n'
        f'thresholds_pct = {THRESHOLDS}\nforecast_pct = []\nnotify = ["{HOOK_CHANNEL}"]\n'
    )
    store = Store.open(f"sqlite:///{db}")
    now = at("2026-11-10T00:00:00")
    job = make_job("a", start_time=at("2026-11-02T00:00:00"), seconds=95 * HOUR)
    store.save_jobs([(job, cost_job(job, RATES, now, CostPolicy()), {})], now)
    store.engine.dispose()
    return config, db


def _alerts(config: Path, hook: str, *fault: str) -> subprocess.CompletedProcess[str]:
    """The real ``tracker alerts`` in a process of its own, through tests/fault_hook.py."""
    env = {**os.environ, "HOOK": hook, "TRACKER_NOW": "2026-11-10T00:00:00Z"}
    return run_module(
        "tests.fault_hook", [*fault, "--", "--config", str(config), "alerts"],
        env=env, cwd=REPO, timeout=120,
    )  # fmt: skip


def _lease_passes(db: Path) -> None:
    """An hour goes by: every claim left by a dead sender is older than the 10 s lease."""
    with sqlite3.connect(db) as connection:
        connection.execute(
            "UPDATE alert_deliveries SET claimed_at = datetime(claimed_at, '-1 hour') "
            "WHERE status = 'sending'"
        )
    connection.close()


def _ledger(db: Path) -> dict[tuple[str, str], tuple[str, int, int]]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT alert_key, channel, status, sends, crash_resends FROM alert_deliveries"
        ).fetchall()
    connection.close()
    return {(k, c): (s, n, r) for k, c, s, n, r in rows}


@pytest.mark.e2e
def test_sigkill_during_delivery_ten_times_receiver_dedups_to_exactly_once(
    tmp_path: Path, receiver: Receiver
) -> None:
    """Ten SIGKILLs, each as one of a run's first six commits starts: a claim before its send
    (nothing sent) or the record after a send (the receiver has the alert, the ledger does
    not); the lease then passes and the next run takes the claim over. Then runs to the end.
    The receiver: every request carries the key (header and payload); no key arrives more than
    twice; a second copy is always flagged as a repeat; deduplicated by key, exactly the 18
    alerts. A run commits twice per delivery, log and webhook alternating, so six commits
    reach at most three deliveries: ten kills cannot run out of the 36 deliveries."""
    config, db = _project(tmp_path)
    rng = random.Random(KILL_SEED)
    for _ in range(KILLS):
        point = rng.randint(1, 6)
        run = _alerts(config, receiver.url, "--kill-at", f"commit:{point}")
        assert run.returncode == -9, (point, run.stdout, run.stderr)
        _lease_passes(db)
    for _ in range(2):  # to the end, then once more: nothing left to send
        done = _alerts(config, receiver.url)
        assert done.returncode in (0, 1) and "Traceback" not in done.stderr, done.stderr
        _lease_passes(db)
    assert _alerts(config, receiver.url).stdout.endswith("36 already-sent\n")

    expected = {
        idempotency_key(f"budget:nlp-monthly:2026-11:actual:{t}", HOOK_CHANNEL) for t in THRESHOLDS
    }
    copies: Counter[str] = Counter()
    flags: dict[str, list[bool]] = {}
    for headers, body in receiver.deliveries:
        key = body.get("idempotency_key")
        assert key in expected, body["text"][:80]
        assert headers["Idempotency-Key"] == f'"{key}"'
        assert headers["Tracker-Repeat"] == ("true" if body["repeat"] else "false")
        copies[key] += 1
        flags.setdefault(key, []).append(body["repeat"])
    assert set(copies) == expected  # deduplicated by key: each alert exactly once
    assert max(copies.values()) == 2  # a kill hit the record after a send, at least once
    assert all(f in ([False], [False, True]) for f in flags.values()), flags
    ledger = _ledger(db)
    assert len(ledger) == 36 and {s for s, _, _ in ledger.values()} <= {"sent", "unconfirmed"}
    assert max(r for _, _, r in ledger.values()) == 1


# -- where each channel carries the key ----------------------------------------------------------
def test_idempotency_key_is_stable_per_alert_and_channel() -> None:
    """sha256("budget:nlp-monthly:2026-11:actual:80\\nwebhook:env:HOOK"), first 32 hex digits:
    the same in every process and release (migration 0004 back-fills with it too)."""
    key = idempotency_key(MESSAGE.key, HOOK_CHANNEL)
    assert key == "286a11a22f13736bff31289367ec5846"
    assert idempotency_key(MESSAGE.key, "log") != key
    assert idempotency_key("budget:nlp-monthly:2026-11:actual:90", HOOK_CHANNEL) != key


def test_webhook_carries_the_key_in_header_and_payload_and_flags_a_repeat(
    receiver: Receiver,
) -> None:
    channel = parse_channel(f"webhook:{receiver.url}")
    key = idempotency_key(MESSAGE.key, channel.key)
    Notifier().send(channel, MESSAGE)
    Notifier().send(channel, MESSAGE, repeat=True)
    [(first_headers, first), (again_headers, again)] = receiver.deliveries
    assert (first_headers["Idempotency-Key"], first_headers["Tracker-Repeat"]) == (
        f'"{key}"',
        "false",
    )
    assert (again_headers["Idempotency-Key"], again_headers["Tracker-Repeat"]) == (
        f'"{key}"',
        "true",
    )
    assert (first["idempotency_key"], first["repeat"]) == (key, False)
    assert (again["idempotency_key"], again["repeat"]) == (key, True)
    # Slack reads text and blocks: unchanged, and the key shown to people in a context block
    assert first["text"].startswith(MESSAGE.subject) and again["text"] == first["text"]
    assert [b["type"] for b in first["blocks"]] == ["header", "section", "context"]
    assert first["blocks"][2]["elements"][0]["text"] == (
        f"alert {MESSAGE.key}; idempotency key {key}"
    )
    assert again["blocks"][2]["elements"][0]["text"] == (
        f"alert {MESSAGE.key}; idempotency key {key}; repeat: an earlier attempt with this key "
        "may have been delivered"
    )


def _queue(sqs: Any, sns: Any, topic: str, name: str, **attributes: str) -> str:
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn,
                  Attributes={"RawMessageDelivery": "true"})  # fmt: skip
    return url


@mock_aws
def test_sns_standard_topic_carries_the_key_as_message_attributes() -> None:
    sns = boto3.client("sns", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    topic = sns.create_topic(Name="budget-alerts")["TopicArn"]
    queue = _queue(sqs, sns, topic, "alerts")
    channel = parse_channel(f"sns:{topic}")
    Notifier().send(channel, MESSAGE)
    Notifier().send(channel, MESSAGE, repeat=True)  # a standard topic delivers both
    got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    key = idempotency_key(MESSAGE.key, channel.key)
    seen = [
        (m["MessageAttributes"]["idempotency_key"]["StringValue"],
         m["MessageAttributes"]["repeat"]["StringValue"])
        for m in got["Messages"]
    ]  # fmt: skip
    assert sorted(seen) == [(key, "false"), (key, "true")]
    assert all(f"idempotency key {key}" in m["Body"] for m in got["Messages"])


@mock_aws
def test_sns_fifo_topic_gets_the_key_as_deduplication_id_and_drops_the_repeat() -> None:
    sns = boto3.client("sns", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    topic = sns.create_topic(Name="alerts.fifo", Attributes={"FifoTopic": "true"})["TopicArn"]
    queue = _queue(sqs, sns, topic, "alerts.fifo", FifoQueue="true")
    channel = parse_channel(f"sns:{topic}")
    Notifier().send(channel, MESSAGE)
    Notifier().send(channel, MESSAGE, repeat=True)  # within the deduplication interval
    got = sqs.receive_message(
        QueueUrl=queue, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["MessageDeduplicationId", "MessageGroupId"],
    )  # fmt: skip
    [message] = got["Messages"]
    key = idempotency_key(MESSAGE.key, channel.key)
    assert message["Attributes"] == {
        "MessageDeduplicationId": key,
        "MessageGroupId": "sagemaker-spend-tracker",
    }
    assert message["MessageAttributes"]["repeat"]["StringValue"] == "false"


@mock_aws
def test_ses_raw_message_carries_the_key_and_repeat_headers() -> None:
    from moto.ses.models import ses_backends

    boto3.client("ses", region_name="us-east-1").verify_email_identity(
        EmailAddress="tracker@example.com"
    )
    notifier = Notifier(NotifySettings(email_from="tracker@example.com", email_region="us-east-1"))
    channel = parse_channel("email:finops@example.com")
    notifier.send(channel, MESSAGE)
    notifier.send(channel, MESSAGE, repeat=True)
    key = idempotency_key(MESSAGE.key, "email:finops@example.com")
    mails = [
        email.message_from_string(m.raw_data, policy=email.policy.default)
        for m in ses_backends[ACCOUNT]["us-east-1"].sent_messages
    ]
    assert [(m["Idempotency-Key"], m["Tracker-Repeat"]) for m in mails] == [
        (key, "false"),
        (key, "true"),
    ]
    assert [m["Subject"] for m in mails] == [MESSAGE.subject] * 2
    assert f"idempotency key {key}; repeat" in mails[1].get_content()


# -- the service: a crash between send and record, in process ------------------------------------
class DiesAfterSending(Notifier):
    """Sends, then the process "dies" (SystemExit: not an Exception, so nothing is recorded)."""

    def __init__(self, environ: dict[str, str], die_on: str) -> None:
        super().__init__(NotifySettings("tracker@example.com", "us-east-1", 5), environ=environ)
        self.die_on = die_on

    def send(self, channel: Any, message: Message, *, repeat: bool = False) -> None:
        super().send(channel, message, repeat=repeat)
        if channel.key.startswith(self.die_on):
            raise SystemExit(137)


def test_crash_after_send_is_resent_once_flagged_then_never_again(tmp_path: Path) -> None:
    """Budget $100, threshold 50, $60 spent: one alert on log, SNS, webhook and email. The
    process dies right after each channel's send (before recording it), once per channel
    kind; after the lease each is resent once, same key, flagged as a repeat; then never."""
    with mock_aws(), Receiver() as hook:
        world = World(tmp_path, hook, "amount_usd = 100\nthresholds_pct = [50]\nforecast_pct = []")
        world.save([make_job("a", start_time=at("2026-11-02T00:00:00"), seconds=60 * HOUR)],
                   at("2026-11-03T00:00:00"))  # fmt: skip
        ledger = AlertLedger(world.store, lambda: world.wall_now)
        for kind in ("log", "sns", "webhook", "email"):
            world.wall_now += timedelta(minutes=1)  # within the 10-minute lease of the last
            with pytest.raises(SystemExit):
                run_alerts(world.settings, world.store, now=at("2026-11-03T00:00:00"),
                           wall=lambda: world.wall_now,
                           notifier=DiesAfterSending({"HOOK": hook.url}, kind))  # fmt: skip
            world.restart()
        assert {d.channel.split(":")[0]: d.status for d in ledger.deliveries()} == dict.fromkeys(
            ("log", "sns", "webhook", "email"), "sending"
        )
        world.wall_now += timedelta(minutes=11)
        resent = run_alerts(world.settings, world.store, now=at("2026-11-03T00:00:00"),
                            wall=lambda: world.wall_now,
                            notifier=Notifier(NotifySettings("tracker@example.com", "us-east-1", 5),
                                              environ={"HOOK": hook.url}))  # fmt: skip
        assert resent.count("sent") == 4 and all(o.repeat for o in resent.outcomes)
        assert "flagged as a repeat" in resent.render()
        assert world.run(at("2026-11-03T01:00:00")).count("already-sent") == 4
        rows = ledger.deliveries()
        assert {(d.status, d.sends, d.crash_resends) for d in rows} == {("sent", 2, 1)}
        assert {d.idempotency_key for d in rows} == {
            idempotency_key(d.alert_key, d.channel) for d in rows
        }
        [first, again] = hook.deliveries
        assert first[1]["idempotency_key"] == again[1]["idempotency_key"]
        assert (first[1]["repeat"], again[1]["repeat"]) == (False, True)
        assert len(world.sns()) == 2 and len(world.emails()) == 2


# -- migration 0004 on a 0003 database with ledger rows ------------------------------------------
T = datetime(2026, 11, 5, 12, 0)
OLD_ROWS = [  # as 0003's ledger wrote them: sent, failed twice, and a claim of a dead sender
    ("budget:nlp-monthly:2026-11:actual:50", "log", "sent", 1, T),
    ("budget:nlp-monthly:2026-11:actual:50", "webhook:env:HOOK", "failed", 2, None),
    ("budget:nlp-monthly:2026-11:actual:50", "email:finops@example.com", "sending", 0, None),
]


def test_upgrade_0003_ledger_keeps_rows_and_gets_their_keys(db_url: str) -> None:
    engine = connect(db_url)
    with engine.begin() as connection:
        command.upgrade(migrate.alembic_config(connection), "0003")
        tables = MetaData()
        tables.reflect(connection, only=["alert_deliveries"])
        connection.execute(tables.tables["alert_deliveries"].insert(), [
            {"alert_key": key, "channel": channel, "kind": "budget-actual", "subject": "s",
             "payload_json": json.dumps({"key": key}), "status": status, "attempts": attempts,
             "claim_token": "t" if status == "sending" else None, "created_at": T,
             "claimed_at": T, "sent_at": sent_at, "last_error": None}
            for key, channel, status, attempts, sent_at in OLD_ROWS
        ])  # fmt: skip
    engine.dispose()

    migrate.upgrade(db_url)

    engine = connect(db_url)
    tables = MetaData()
    with engine.connect() as connection:
        tables.reflect(connection, only=["alert_deliveries"])
        ledger = tables.tables["alert_deliveries"]
        rows = connection.execute(
            select(ledger.c.alert_key, ledger.c.channel, ledger.c.status, ledger.c.attempts,
                   ledger.c.sent_at, ledger.c.idempotency_key, ledger.c.sends,
                   ledger.c.crash_resends).order_by(ledger.c.id)
        ).all()  # fmt: skip
    engine.dispose()
    assert [tuple(r) for r in rows] == [
        (key, channel, status, attempts, sent_at, idempotency_key(key, channel), sends, 0)
        for (key, channel, status, attempts, sent_at), sends in zip(
            OLD_ROWS, (1, 2, 1), strict=True
        )
    ]
    # and the upgraded ledger goes on: the dead sender's claim is taken over once
    store = Store.open(db_url)
    ledger_now = AlertLedger(store, lambda: datetime(2026, 11, 5, 13, tzinfo=UTC))
    claim = ledger_now.claim_delivery(OLD_ROWS[2][0], OLD_ROWS[2][1], "budget-actual", "s", {})
    assert claim is not None and claim.repeat and claim.after_crash
    store.engine.dispose()


def test_log_channel_carries_the_key_and_marks_a_repeat(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="tracker.alert.rules"):
        Notifier().send(parse_channel("log"), MESSAGE)
        Notifier().send(parse_channel("log"), MESSAGE, repeat=True)
    first, again = caplog.records
    key = idempotency_key(MESSAGE.key, "log")
    assert first.getMessage().splitlines()[0] == f"ALERT {MESSAGE.subject}"
    assert again.getMessage().splitlines()[0] == f"ALERT REPEAT {MESSAGE.subject}"
    assert [(r.alert_idempotency_key, r.alert_repeat) for r in (first, again)] == [
        (key, False),
        (key, True),
    ]
