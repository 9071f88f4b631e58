"""The listener against moto in-process: a job's state-change event is put on EventBridge,
routed to the queue ``tracker events setup`` made, and the listener stores exactly that job
with its exact cost; duplicates are collected once, poison is reported once and deleted, a
failed batch is not deleted, the budget alert goes out within the same run.

Costs use tests/test_collect.py's book: ml.m5.xlarge $0.20/h, storage $0.001/GB-h. A seeded
job trains 3600 s on one m5 with a 30 GB volume: 0.20 + 30 x 0.001 = $0.23 = 230,000 micros.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from moto import mock_aws

from tests.conftest import DEFAULT_ACCOUNT, seed_job
from tests.test_collect import BOOK, session
from tests.webhook_server import WebhookServer
from tracker.aws import events as aws_events
from tracker.aws.session import AwsContextFactory
from tracker.collect.listen import Listener, job_name
from tracker.settings import CollectionSettings, Settings, Source
from tracker.store.database import Store
from tracker.store.ops import JobRunLog

NOW = datetime(2026, 10, 1, 15, 0, tzinfo=UTC)
JOB_MICROS = 230_000


@pytest.fixture
def aws():
    with mock_aws():
        yield


@pytest.fixture
def clients(aws):
    s = session()
    return {
        name: s.client(name, region_name="us-east-1") for name in ("sagemaker", "events", "sqs")
    }


@pytest.fixture
def queue(clients) -> str:
    return aws_events.setup(
        clients["events"], clients["sqs"], DEFAULT_ACCOUNT, "us-east-1"
    ).queue_url


@pytest.fixture
def store(tmp_path):
    return Store.open(f"sqlite:///{tmp_path / 'tracker.db'}")


def settings_for(queue: str, **document) -> Settings:
    return Settings(
        sources=(Source("main", ("us-east-1",)),),
        collection=CollectionSettings(measure_artifacts=False),
        document={"events": {"queues": [{"url": queue}], "wait_seconds": 1}, **document},
    )


def test_listen_with_the_list_method_describes_the_named_jobs(clients, queue, store) -> None:
    arn = seed_job(clients["sagemaker"], "listed")
    put_event(clients["events"], arn, "listed")
    gone = f"arn:aws:sagemaker:us-east-1:{DEFAULT_ACCOUNT}:training-job/gone"
    put_event(clients["events"], gone, "gone")
    settings = Settings(
        sources=(Source("main", ("us-east-1",)),),
        collection=CollectionSettings(method="list", measure_artifacts=False),
        document={"events": {"queues": [{"url": queue}]}},
    )

    summary = listen(settings, store)

    assert stored(store) == {"listed": JOB_MICROS}
    state = summary.queues[0]
    assert (state.messages, state.jobs, state.poison) == (2, 1, 1)
    assert state.reasons == [f"{gone}: the job no longer exists"]


def put_event(events, arn: str, name: str, status: str = "Completed") -> None:
    detail = {"TrainingJobName": name, "TrainingJobArn": arn, "TrainingJobStatus": status}
    response = events.put_events(Entries=[{
        "Source": "aws.sagemaker", "DetailType": aws_events.DETAIL_TYPE,
        "Detail": json.dumps(detail), "Resources": [arn],
    }])  # fmt: skip
    assert response["FailedEntryCount"] == 0


def listen(settings: Settings, store: Store, alerts=None):
    listener = Listener(
        settings, store, BOOK, clock=lambda: NOW, wall=lambda: NOW,
        context_factory=AwsContextFactory(settings.collection, session()), alerts=alerts,
    )  # fmt: skip
    return listener.run(once=True)


def stored(store: Store) -> dict[str, int]:
    return {job.name: job.list_micros for job in store.jobs()}


def test_listen_collects_the_named_job_with_its_exact_cost(clients, queue, store) -> None:
    arn = seed_job(clients["sagemaker"], "ended", tags={"team": "nlp"})
    seed_job(clients["sagemaker"], "no-event")  # not named by any event: not collected
    put_event(clients["events"], arn, "ended")

    summary = listen(settings_for(queue), store)

    assert stored(store) == {"ended": JOB_MICROS}
    assert (summary.total("messages"), summary.total("jobs"), summary.total("poison")) == (1, 1, 0)
    assert aws_events.receive(clients["sqs"], queue, wait_seconds=0) == []  # deleted
    assert store.watermark(DEFAULT_ACCOUNT, "us-east-1") is None  # the poll's mark is untouched


def test_listen_collects_a_job_named_by_duplicate_events_once(clients, queue, store) -> None:
    arn = seed_job(clients["sagemaker"], "twice")
    put_event(clients["events"], arn, "twice", "Stopping")
    put_event(clients["events"], arn, "twice", "Completed")
    put_event(clients["events"], arn, "twice", "Completed")

    summary = listen(settings_for(queue), store)

    assert stored(store) == {"twice": JOB_MICROS}
    state = summary.queues[0]
    assert (state.messages, state.jobs, state.duplicates, state.poison) == (3, 1, 2, 0)


def test_listen_reports_poison_once_deletes_it_and_goes_on(clients, queue, store) -> None:
    arn = seed_job(clients["sagemaker"], "good")
    put_event(clients["events"], arn, "good")
    gone = f"arn:aws:sagemaker:us-east-1:{DEFAULT_ACCOUNT}:training-job/deleted-job"
    put_event(clients["events"], gone, "deleted-job")
    other = f"arn:aws:sagemaker:eu-west-1:{DEFAULT_ACCOUNT}:training-job/elsewhere"
    put_event(clients["events"], other, "elsewhere")
    clients["sqs"].send_message(QueueUrl=queue, MessageBody="{not json")
    settings = settings_for(queue)

    first = listen(settings, store)
    second = listen(settings, store)

    state = first.queues[0]
    assert stored(store) == {"good": JOB_MICROS}
    assert (state.messages, state.jobs, state.poison) == (4, 1, 3)
    assert sorted(r.split(": ", 1)[1] if r.startswith("message") else r for r in state.reasons) == [
        f"{other}: a job of eu-west-1, not us-east-1",
        f"{gone}: the job no longer exists",
        "not JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))",
    ]
    assert second.total("messages") == 0  # nothing came back: no loop


def test_listen_keeps_the_batch_when_collecting_fails(clients, queue, store, monkeypatch) -> None:
    from botocore.exceptions import EndpointConnectionError

    from tracker.collect import listen as listen_module

    arn = seed_job(clients["sagemaker"], "later")
    put_event(clients["events"], arn, "later")

    def unreachable(*_args, **_kwargs):
        raise EndpointConnectionError(endpoint_url="https://api.sagemaker.us-east-1.amazonaws.com")

    monkeypatch.setattr(listen_module, "collect_named", unreachable)
    failed = listen(settings_for(queue), store)
    monkeypatch.undo()
    in_flight = aws_events.queue_depth(clients["sqs"], queue)

    assert failed.queues[0].failed_batches == 1
    assert "Could not connect" in (failed.queues[0].last_error or "")
    assert stored(store) == {}
    assert in_flight == (0, 1)  # received, not deleted: SQS delivers it again


def test_listen_records_each_queue_state_for_status(clients, queue, store) -> None:
    arn = seed_job(clients["sagemaker"], "recorded")
    put_event(clients["events"], arn, "recorded")
    settings = settings_for(queue)

    listen(settings, store)

    run = JobRunLog(store).latest([job_name(settings.events.queues[0])])
    detail = json.loads(next(iter(run.values())).detail)
    assert (detail["messages"], detail["jobs"], detail["poison"], detail["visible"]) == (1, 1, 0, 0)
    assert detail["oldest_sent_at"] is None  # the last receive was empty: nothing waits
    assert detail["last_event_at"] is not None
    assert next(iter(run.values())).status == "ok"


def test_listen_sends_the_budget_alert_within_the_same_run(clients, queue, store) -> None:
    from tracker.alert.service import run_alerts

    arn = seed_job(
        clients["sagemaker"], "overrun", tags={"team": "nlp"}, start=datetime(2026, 10, 1, 9)
    )
    put_event(clients["events"], arn, "overrun")
    with WebhookServer() as hook:
        settings = settings_for(queue, budgets=[{
            "name": "nlp-monthly", "team": "nlp", "amount_usd": 0.2, "thresholds_pct": [100],
            "notify": [f"webhook:{hook.url}"],
        }])  # fmt: skip

        def alerts() -> str:
            return str(run_alerts(settings, store, now=NOW, wall=lambda: NOW).summary())

        summary = listen(settings, store, alerts=alerts)
        texts = hook.texts()

    assert len(summary.alerts) == 1  # one batch, one alerts run
    assert sorted(text.splitlines()[0] for text in texts) == [
        "Budget nlp-monthly crossed 100% of $0.20 for 2026-10 (spent $0.23)",
        "Budget nlp-monthly is forecast to reach 100% of $0.20 for 2026-10 (forecast $0.23)",
    ]


# -- the daemon ------------------------------------------------------------------------------------
def test_daemon_runs_the_listener_beside_an_hourly_poll(clients, queue, tmp_path, caplog) -> None:
    import logging
    import threading

    from tests.test_daemon import wait_for
    from tracker.daemon.scheduler import Daemon
    from tracker.daemon.tasks import JobContext, JobOutcome
    from tracker.settings import parse_settings

    config = tmp_path / "tracker.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "d.db"}"\n'
        '[[sources]]\nname = "main"\nregions = ["us-east-1"]\n'
        "[collection]\nmeasure_artifacts = false\n"
        '[schedule]\nalerts = "off"\nreconcile = "off"\nprices = "off"\nshowback = "off"\n'
        'remeasure = "off"\n[daemon]\nheartbeat_seconds = 1\nstale_after_seconds = 3\n'
        "collect_on_start = false\n"
        f'[events]\nqueues = [{{ url = "{queue}" }}]\nwait_seconds = 1\n'
    )
    settings = parse_settings(config)
    store = Store.open(settings.database_url)
    polls: list[int] = []

    def poll(_ctx: JobContext) -> JobOutcome:
        polls.append(1)
        return JobOutcome("ok", "poll")

    arn = seed_job(clients["sagemaker"], "evented")
    put_event(clients["events"], arn, "evented")
    daemon = Daemon(settings, store, clock=lambda: NOW, functions={"collect": poll})
    codes: list[int] = []
    caplog.set_level(logging.INFO, logger="tracker.daemon")
    thread = threading.Thread(target=lambda: codes.append(daemon.run(install_signals=False)))
    thread.start()
    try:
        wait_for(lambda: "evented" in {job.name for job in store.jobs()}, seconds=20)
    finally:
        daemon.request_stop("test")
        thread.join(30)

    assert codes == [0]
    assert settings.schedule.collect == "0 * * * *"
    assert (
        "collect=0 * * * *" in caplog.text and "event listener started on 1 queue(s)" in caplog.text
    )
    assert polls == []  # the poll did not run: the event did the work
    (run,) = JobRunLog(store).history(job_name(settings.events.queues[0]))
    assert (run.trigger, json.loads(run.detail)["jobs"]) == ("daemon", 1)
