"""Secrets never reach logs, the database or error messages: the real ``tracker`` runs with
secrets in its environment and config, at DEBUG level, through failures, and every byte it
printed or stored is searched for them.

The secrets: the AWS secret access key and session token (environment), a webhook URL inline
in the config and one in ``SLACK_WEBHOOK_URL``, and a database password in ``--db``.
Four seeded m5 jobs of 3600 s at $0.25/h cost 1.00, over the 0.50 budget, so alerts fire
(the webhooks are unreachable, so their failures are recorded and printed too).
"""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import run_cli

AWS_SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYSECRETKEY1"
SESSION_TOKEN = "FwoGZXIvYXdzSESSIONTOKEN2-IQoJb3JpZ2luX2Vj"
INLINE_WEBHOOK_TOKEN = "T0SECRET3/B0SECRET3/XyZinlinewebhooktoken3"
ENV_WEBHOOK_TOKEN = "envwebhooksecrettoken4"
DB_PASSWORD = "db-pa55word-SECRET5"
SECRETS = (AWS_SECRET, SESSION_TOKEN, INLINE_WEBHOOK_TOKEN, ENV_WEBHOOK_TOKEN, DB_PASSWORD)
START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)

pytestmark = pytest.mark.e2e


def closed_port() -> int:
    """A local port nobody listens on: a webhook there fails at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


@pytest.fixture
def project(tmp_path: Path, moto_endpoint: str) -> tuple[Path, dict[str, str]]:
    from tracker.aws.simulate import SimJob, clients_for, create_job

    clients = clients_for("123456789012", "us-east-1")
    for i in range(4):
        create_job(clients, SimJob(f"nlp-{i}", "123456789012", "us-east-1", start=START,
                                   end=START + timedelta(hours=1), billable_seconds=3600,
                                   training_seconds=3600, tags={"team": "nlp"}))  # fmt: skip
    (tmp_path / "prices.csv").write_text(
        "region,instance_type,usd_per_hour,source,source_date\n"
        "us-east-1,ml.m5.xlarge,0.25,test,2026-11-01\n"
    )
    config = tmp_path / "tracker.toml"
    config.write_text(
        '[database]\nurl = "sqlite:///spend.db"\n'
        '[[sources]]\nname = "prod"\nregions = ["us-east-1"]\n'
        '[pricing]\noverrides = "prices.csv"\n'
        '[[budgets]]\nname = "nlp"\nteam = "nlp"\nperiod = "monthly"\namount_usd = 0.5\n'
        "thresholds_pct = [50, 100]\n"
        f'notify = ["log", "webhook:https://hooks.invalid/services/{INLINE_WEBHOOK_TOKEN}",\n'
        '          "webhook:env:SLACK_WEBHOOK_URL"]\n'
        '[alerts]\nnotify = ["log"]\nwebhook_timeout_seconds = 2\n'
    )
    env = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
        "AWS_SESSION_TOKEN": SESSION_TOKEN,
        "SLACK_WEBHOOK_URL": f"http://127.0.0.1:{closed_port()}/hooks/{ENV_WEBHOOK_TOKEN}",
        "TRACKER_NOW": "2026-11-20T12:00:00Z",
    }
    return config, env


def test_collect_alerts_status_never_print_or_store_a_secret(
    project: tuple[Path, dict[str, str]],
) -> None:
    config, env = project
    outputs = []
    for args in (
        ("--log-level", "DEBUG", "--log-format", "json", "collect"),
        ("--log-level", "DEBUG", "alerts"),
        ("--log-level", "DEBUG", "--log-format", "json", "alerts", "--format", "json"),
        ("status", "--format", "json"),
        ("status",),
        ("report", "--by", "team", "--format", "json"),
    ):
        result = run_cli("--config", str(config), *args, env=env)
        outputs.append((args, result.returncode, result.stdout + result.stderr))
        # JSON on stdout; notes (what is unpriced) on stderr; both are checked for leaks below.
        last_stdout = result.stdout

    codes = {args[-1] if args[-1] != "json" else args[-3]: code for args, code, _ in outputs}
    assert outputs[0][1] == 0, outputs[0][2]
    assert outputs[1][1] == 1, outputs[1][2]  # a webhook failed: exit 1, retried next run
    assert "webhook" in outputs[1][2]  # the failure is reported...
    for args, _, text in outputs:
        assert leaks(text) == [], (args, text)  # ...without the URL
    assert json.loads(last_stdout)[0]["total_usd"] == 1.0, codes
    stored = b"".join(p.read_bytes() for p in config.parent.glob("spend.db*"))
    assert stored, "the database was written"
    assert [s for s in SECRETS if s.encode() in stored] == []


@pytest.mark.parametrize(
    "command", [("report",), ("collect",), ("db", "upgrade"), ("db", "current"), ("status",)]
)
def test_database_password_never_in_errors(
    project: tuple[Path, dict[str, str]], command: tuple[str, ...]
) -> None:
    config, env = project
    url = f"postgresql+psycopg://tracker:{DB_PASSWORD}@127.0.0.1:{closed_port()}/spend"

    result = run_cli(
        "--config", str(config), "--db", url, "--log-level", "DEBUG", *command, env=env
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "tracker:***@127.0.0.1" in result.stderr
    assert leaks(result.stdout + result.stderr) == []


BAD_NOTIFY = [
    f'"webhook:https://hooks.invalid/{INLINE_WEBHOOK_TOKEN}"',  # a string, not a list
    f'["webhook:ftp://hooks.invalid/{INLINE_WEBHOOK_TOKEN}"]',  # not http(s)
    f'["web-hook:https://hooks.invalid/{INLINE_WEBHOOK_TOKEN}"]',  # misspelt kind
    f'[{{ url = "https://hooks.invalid/{INLINE_WEBHOOK_TOKEN}" }}]',  # a table
]


@pytest.mark.parametrize("section", ["alerts", "budgets"])
@pytest.mark.parametrize("notify", BAD_NOTIFY)
def test_config_errors_never_echo_a_webhook_url(tmp_path: Path, section: str, notify: str) -> None:
    config = tmp_path / "tracker.toml"
    budget = '[[budgets]]\nname = "b"\namount_usd = 10\n'
    if section == "alerts":
        config.write_text(f"{budget}[alerts]\nnotify = {notify}\n")
    else:
        config.write_text(f"{budget}notify = {notify}\n")

    result = run_cli("--config", str(config), "budgets")

    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("Error: ") and ".notify" in result.stderr, result.stderr
    assert leaks(result.stderr) == []
