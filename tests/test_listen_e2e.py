"""The real CLI against a moto server: ``tracker events setup``, a job's state-change event put
on EventBridge, ``tracker listen --once`` stores the job with its exact cost and ``report
--by job`` shows it; ``tracker status`` shows the listener; a listener SIGKILLed after the
commit and before DeleteMessageBatch loses nothing and doubles nothing on restart.

Price: ml.m5.xlarge $0.25/h from the overrides file; a seeded job trains 3600 s on one
instance: $0.25 = 250,000 micro-dollars (its volume is not priced by this book), the same
figure ``tracker collect`` stores for it.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from pathlib import Path

import boto3
import pytest

from tests.conftest import REPO, run_cli, seed_job
from tests.processes import run_module
from tracker.aws import events as aws_events

NOW = "2026-11-26T12:00:00Z"


@pytest.fixture
def project(tmp_path: Path, moto_endpoint: str):
    (tmp_path / "overrides.csv").write_text(
        "region,instance_type,usd_per_hour,source,source_date\n"
        "us-east-1,ml.m5.xlarge,0.25,test,2026-11-01\n"
    )
    base = (
        '[database]\nurl = "sqlite:///spend.db"\n'
        '[[sources]]\nname = "prod"\nregions = ["us-east-1"]\n'
        '[pricing]\noverrides = "overrides.csv"\n'
        "[collection]\nmeasure_artifacts = false\n"
    )
    config = tmp_path / "tracker.toml"
    config.write_text(base)
    env = {"AWS_ENDPOINT_URL": moto_endpoint, "TRACKER_NOW": NOW}
    setup = run_cli("--config", str(config), "events", "setup", "--format", "json", env=env)
    assert setup.returncode == 0, setup.stderr
    (made,) = json.loads(setup.stdout)
    url = made["queue_url"]
    config.write_text(base + f'[events]\nqueues = [{{ url = "{url}", region = "us-east-1" }}]\n')
    session = boto3.Session(region_name="us-east-1")
    clients = {name: session.client(name) for name in ("sagemaker", "events", "sqs")}
    return config, env, url, clients


def put_event(events, arn: str, name: str) -> None:
    detail = {"TrainingJobName": name, "TrainingJobArn": arn, "TrainingJobStatus": "Completed"}
    events.put_events(Entries=[{"Source": "aws.sagemaker", "DetailType": aws_events.DETAIL_TYPE,
                                "Detail": json.dumps(detail), "Resources": [arn]}])  # fmt: skip


def stored(config: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(config.parent / "spend.db") as db:
        return db.execute("SELECT name, list_micros FROM jobs ORDER BY name").fetchall()


def test_listen_once_cli_stores_the_job_and_report_shows_its_cost(project) -> None:
    config, env, url, clients = project
    arn = seed_job(clients["sagemaker"], "just-ended", tags={"team": "nlp"})
    put_event(clients["events"], arn, "just-ended")
    put_event(clients["events"], arn, "just-ended")

    result = run_cli("--config", str(config), "listen", "--once", "--format", "json", env=env)

    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["messages"], summary["jobs"], summary["duplicates"]) == (2, 1, 1)
    listened = stored(config)
    report = run_cli("--config", str(config), "report", "--by", "job", "--format", "json", env=env)
    rows = {row["job"]: row for row in json.loads(report.stdout)}
    # The same job through the poll: the listener's cost is the collector's, to the micro-dollar.
    collect = run_cli("--config", str(config), "collect", env=env)
    assert collect.returncode == 0, collect.stderr
    assert listened == stored(config)
    assert listened == [("just-ended", 250_000)]
    assert (rows["just-ended"]["list_usd"], rows["just-ended"]["flags"]) == (
        0.25,
        ["storage-unpriced"],
    )

    status = run_cli("--config", str(config), "status", "--format", "json", env=env)
    (queue,) = json.loads(status.stdout)["events"]
    assert (queue["listener"], queue["messages"], queue["jobs"], queue["poison"]) == ("ok", 2, 1, 0)
    assert (queue["waiting"], queue["lag_seconds"]) == (0, 0)
    text = run_cli("--config", str(config), "status", env=env).stdout
    assert "Event listener per queue" in text and "123456789012/us-east-1" in text


def test_listen_killed_between_commit_and_delete_collects_once_on_restart(project) -> None:
    config, env, url, clients = project
    # Messages a killed listener received come back at once (the test does not wait 120 s).
    clients["sqs"].set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "0"})
    arn = seed_job(clients["sagemaker"], "crash-job", tags={"team": "nlp"})
    put_event(clients["events"], arn, "crash-job")
    full_env = {**os.environ, **env}
    # AWS requests of the run: GetCallerIdentity, ReceiveMessage, Search, DeleteMessageBatch:
    # killed just before the 4th, after the job's commit.
    killed = run_module(
        "tests.fault_hook",
        ["--kill-at", "aws:4", "--", "--config", str(config), "listen", "--once"],
        env=full_env, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    after_crash = stored(config)
    assert [name for name, _ in after_crash] == ["crash-job"]  # committed before the kill
    depth = aws_events.queue_depth(clients["sqs"], url)
    assert sum(depth) == 1  # and the message was not deleted

    again = run_cli("--config", str(config), "listen", "--once", "--format", "json", env=env)

    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert (summary["messages"], summary["jobs"], summary["poison"]) == (1, 1, 0)
    assert stored(config) == after_crash  # one row, the same cost: nothing doubled
    assert aws_events.queue_depth(clients["sqs"], url) == (0, 0)


def test_events_setup_cli_twice_then_teardown(tmp_path: Path, moto_endpoint: str) -> None:
    config = tmp_path / "tracker.toml"
    config.write_text('[[sources]]\nname = "prod"\nregions = ["us-east-1", "eu-west-1"]\n')
    env = {"AWS_ENDPOINT_URL": moto_endpoint}
    args = ("--config", str(config), "events")

    first = run_cli(*args, "setup", "--format", "json", env=env)
    second = run_cli(*args, "setup", "--region", "us-east-1", env=env)
    gone = run_cli(*args, "teardown", "--format", "json", env=env)

    assert first.returncode == 0, first.stderr
    assert [(r["region"], len(r["created"])) for r in json.loads(first.stdout)] == [
        ("us-east-1", 4), ("eu-west-1", 4),
    ]  # fmt: skip
    assert "prod 123456789012/us-east-1: created nothing; found queue" in second.stdout
    assert "[events]\nqueues = [\n" in second.stdout and 'source = "prod"' in second.stdout
    assert [len(r["removed"]) for r in json.loads(gone.stdout)] == [3, 3]


@pytest.mark.parametrize(
    ("config_text", "args", "error"),
    [
        ("", ("listen", "--once"), "events.queues: no queues configured"),
        ('[[sources]]\nname = "prod"\nregions = ["us-east-1"]\n',
         ("events", "setup", "--source", "nope"), "--source 'nope': expected one of prod"),
        ('[events]\nqueues = ["http://localhost:5000/123456789012/q"]\n', ("listen", "--once"),
         "events.queues[0].region: the URL"),
        ('[[sources]]\nname = "a"\nregions = ["us-east-1"]\n[[sources]]\nname = "b"\n'
         'regions = ["us-east-1"]\n[events]\nqueues = ["arn:aws:sqs:us-east-1:123456789012:q"]\n',
         ("listen", "--once"), 'add source = "NAME"'),
    ],
)  # fmt: skip
def test_events_cli_mistakes_are_one_line_exit_2(
    tmp_path: Path, config_text: str, args: tuple[str, ...], error: str
) -> None:
    config = tmp_path / "tracker.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "x.db"}"\n' + config_text)

    result = run_cli("--config", str(config), *args)

    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert error in result.stderr
