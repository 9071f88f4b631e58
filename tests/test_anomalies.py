"""Issue 15, anomalies: a job far above its peers' median and a team-day far above its 28-day
baseline each alert exactly once through the ledger, and ``tracker report --view anomalies``
lists both.

Every job runs on ml.m5.xlarge at $1.00 an instance-hour with no volume (tests/test_budgets.py's
RATES), so H hours cost $H. Team nlp's world, as of 2026-11-20 12:00 UTC:

| jobs                         | when                      | cost each |
|------------------------------|---------------------------|-----------|
| daily-ingest-0..40           | 00:00-02:00 every day from 2026-10-10 to 11-19 | $2 |
| etl-run-1..5 (the peers)     | 00:00-01:00 on 11-14..11-18 | $1      |
| etl-run-6 (the anomaly)      | 00:00-10:00 on 11-19       | $10      |

etl-run-6 is 10x the median ($1) of its 5 peers (name prefix ``etl-run``). Team nlp spent
$12.00 on 11-19; the 28 days before (10-22..11-18) hold 28 x $2 + 5 x $1 = $61, a mean of
$2.178..., so 11-19 is 5.5x its baseline (> 3x); no other day is over 3x.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.test_budgets import at, make_job, save
from tracker.alert.anomalies import (
    AnomalySettings,
    FinishedJob,
    job_anomalies,
    name_family,
    team_day_anomalies,
)
from tracker.alert.service import run_alerts
from tracker.report.views import ViewRequest, build
from tracker.settings import parse_settings
from tracker.store.database import Store

D = Decimal
NOW = at("2026-11-20T12:00:00")
HOUR = 3600


def world(tmp: Path, enabled: bool = True) -> tuple[Path, Store]:
    (tmp / "overrides.csv").write_text(
        "region,instance_type,usd_per_hour,source,source_date\nus-east-1,ml.m5.xlarge,1.00,test,2026-11-01\n"
    )
    config = tmp / "tracker.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp / "a.db"}"\n[pricing]\noverrides = "overrides.csv"\n'
        f"[anomalies]\nenabled = {str(enabled).lower()}\nlookback_days = 30\n"
    )
    store = Store.open(f"sqlite:///{tmp / 'a.db'}")
    first = at("2026-10-10T00:00:00")
    jobs = [
        make_job(f"daily-ingest-{n}", start_time=first + timedelta(days=n), seconds=2 * HOUR)
        for n in range(41)
    ]
    jobs += [
        make_job(f"etl-run-{n}", start_time=at("2026-11-13T00:00:00") + timedelta(days=n),
                 seconds=HOUR)
        for n in range(1, 6)
    ]  # fmt: skip
    jobs.append(make_job("etl-run-6", start_time=at("2026-11-19T00:00:00"), seconds=10 * HOUR))
    save(store, jobs, NOW)
    return config, store


def test_job_ten_times_its_peers_median_and_team_day_spike_alert_once(tmp_path: Path) -> None:
    config, store = world(tmp_path)
    settings = parse_settings(config)
    first = run_alerts(settings, store, now=NOW, wall=lambda: NOW)
    subjects = [a.message.subject for a in first.alerts]
    assert subjects == [
        "Anomaly: job etl-run-6 cost $10.00, 10.0x its peers' median of $1.00",
        "Anomaly: team nlp spent $12.00 on 2026-11-19, 5.5x its 28-day mean of $2.18",
    ]
    job_text = first.alerts[0].message.text
    assert "Peers:     5 finished jobs with the same name prefix etl-run; median $1.00" in job_text
    assert "Factor:    10.0x (the rule: more than 3x)" in job_text
    assert "  etl-run-6  $10.00" in first.alerts[1].message.text  # the day's top jobs
    assert first.count("sent") == 2  # the log channel, once each
    later = NOW + timedelta(minutes=15)
    second = run_alerts(settings, store, now=later, wall=lambda: later)
    assert second.count("sent") == 0 and second.count("already-sent") == 2


def test_anomaly_alerts_are_off_unless_enabled(tmp_path: Path) -> None:
    config, store = world(tmp_path, enabled=False)
    assert run_alerts(parse_settings(config), store, now=NOW, wall=lambda: NOW).alerts == []


def test_anomalies_view_lists_both(tmp_path: Path) -> None:
    _, store = world(tmp_path)
    options = AnomalySettings(lookback_days=30)
    table = build(store, ViewRequest("anomalies", anomaly=options), NOW)
    rows = [(r["kind"], r["day"], r["team"], r["job"], r["cost_usd"], r["baseline_usd"])
            for r in table.rows]  # fmt: skip
    assert rows == [
        ("team-day", "2026-11-19", "nlp", "etl-run-6, daily-ingest-40", D("12.00"), D("2.18")),
        ("job", "2026-11-19", "nlp", "etl-run-6", D("10.00"), D("1.00")),
    ]
    assert [round(r["factor"], 1) for r in table.rows] == [D("5.5"), D("10.0")]
    other_team = ViewRequest("anomalies", filters={"team": "cv"}, anomaly=options)
    assert build(store, other_team, NOW).rows == []


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "markdown", "html"])
def test_report_view_anomalies_renders_in_every_format(tmp_path: Path, fmt: str) -> None:
    config, _ = world(tmp_path)
    result = run_cli("--config", str(config), "report", "--view", "anomalies", "--format", fmt,
                     "--until", "2026-11-30")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "etl-run-6" in result.stdout


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("bert-ft-2026-11-10-12-30-00-123", "bert-ft"),
        ("pytorch-training-2026-11-10-10-00-00-001", "pytorch-training"),
        ("xgb-run-42", "xgb-run"),
        ("sweep7", "sweep"),
        ("llama-v2-run_3", "llama-v2-run"),
        ("20261110", "20261110"),  # digits only: itself
        ("train", "train"),
    ],
)
def test_name_family_removes_trailing_numbers_and_timestamps(name: str, family: str) -> None:
    assert name_family(name) == family


def job(name: str, usd: str, **kw: object) -> FinishedJob:
    return FinishedJob(name, f"arn:{name}", "nlp", "ml.m5.xlarge", D(usd), **kw)  # type: ignore[arg-type]


def test_job_anomaly_needs_five_peers_and_more_than_the_factor() -> None:
    options = AnomalySettings()
    peers = [job(f"run-{n}", "1") for n in range(5)]
    [found] = job_anomalies([job("run-9", "10")], [*peers, job("run-9", "10")], options)
    assert (found.median_usd, found.factor, found.peers) == (D(1), D(10), "name prefix run")
    four = peers[:4] + [job("run-9", "10")]
    # four name peers: the next group (same instance type and team) has them too: still four
    assert job_anomalies([job("run-9", "10")], four, options) == []
    assert job_anomalies([job("run-9", "3")], [*peers, job("run-9", "3")], options) == []


def test_job_anomaly_falls_back_to_instance_type_and_team() -> None:
    peers = [job(f"other{n}x", "2") for n in range(5)]  # five different name prefixes
    [found] = job_anomalies([job("odd", "7")], [*peers, job("odd", "7")], AnomalySettings())
    assert found.peers == "instance type and team ml.m5.xlarge / nlp"
    assert found.median_usd == D(2)


def test_team_day_baseline_is_the_mean_of_the_28_days_before() -> None:
    day = at("2026-11-19T00:00:00").date()
    spend = {("nlp", day - timedelta(days=n)): D(1) for n in range(1, 29)}
    spend[("nlp", day)] = D("3.01")
    [found] = team_day_anomalies(spend, [day], AnomalySettings())
    assert (found.baseline_usd, found.spend_usd) == (D(1), D("3.01"))
    spend[("nlp", day)] = D(3)  # exactly 3x: not more
    assert team_day_anomalies(spend, [day], AnomalySettings()) == []
    young = {k: v for k, v in spend.items() if k[1] != day - timedelta(days=28)}
    young[("nlp", day)] = D(100)  # 27 days of history only: no baseline yet
    assert team_day_anomalies(young, [day], AnomalySettings()) == []


def test_anomalies_section_rejects_too_few_peers(tmp_path: Path) -> None:
    from tracker.errors import ConfigError

    (tmp_path / "t.toml").write_text("[anomalies]\nmin_peers = 2\n")
    with pytest.raises(ConfigError) as caught:
        _ = parse_settings(tmp_path / "t.toml").anomalies
    assert caught.value.problems == [
        "anomalies.min_peers: must be a whole number of jobs from 5 to 1000, got 2"
    ]
