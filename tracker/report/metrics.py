"""Prometheus metrics: what an operator graphs and alerts on, read from the store at scrape time.

``tracker serve`` answers ``GET /metrics`` and the daemon an optional listener
(``[daemon] metrics_port``) from the same :class:`StoreCollector`, so both show the same
numbers whichever process did the work. Nothing is counted in memory: every value is an
aggregate of the store (docs/operations.md lists the metrics).

A scrape is bounded: eight aggregate queries (seven in ``tracker.store.scrape``, each a GROUP
BY over account, region, scheduled job, status or alert kind, or one row; spend is the report's
one aggregation) plus three per configured budget, evaluated as ``tracker budgets`` does (that
reads the jobs of the budget's period). The count depends on the config, never on how many
jobs or runs are stored. Labels are low-cardinality only: account, region, scheduled job, status, alert kind,
team, budget. A training job's name or ARN is never a label: one series per job would grow
without end.

The scheduled job's label is ``scheduled_job``, not ``job``: Prometheus sets ``job`` on every
series to the scrape job's name, so a ``job`` label would be renamed ``exported_job``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from tracker.alert.service import budget_statuses
from tracker.cost.items import LIST
from tracker.records import from_micros
from tracker.report.views import month_start
from tracker.settings import Settings
from tracker.store.database import Store
from tracker.store.query import ViewQueries, Window
from tracker.store.scrape import ScrapeQueries

log = logging.getLogger("tracker.report.metrics")

#: Statuses of a scheduled-job run that count as an error (``partial``: some regions failed).
ERROR_STATUSES = ("failed", "partial")
#: Changes a collection run reports per region (``RegionSummary.to_dict``).
CHANGES = ("new", "updated", "unchanged")


def _seconds(moment: datetime) -> float:
    return moment.timestamp()


def _usd(value: Decimal) -> float:
    return float(value)


class StoreCollector(Collector):
    """A custom collector: each scrape reads the store once per section.

    ``settings`` gives the budgets (none without it); ``clock`` is "now" for the lag and for
    "this month" (the same clock that stamps collections, so the lag is never negative under
    ``TRACKER_NOW``).
    """

    def __init__(
        self, store: Store, settings: Settings | None, clock: Callable[[], datetime]
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.queries = ScrapeQueries(store)

    def collect(self) -> Iterator[Metric]:
        began = time.perf_counter()
        now = self.clock()
        errors = GaugeMetricFamily(
            "tracker_metrics_scrape_error",
            "1 when this scrape could not read a section (its metrics are missing), else 0",
            labels=["section"],
        )
        sections: list[tuple[str, Callable[[datetime], list[Metric]]]] = [
            ("collection", self._collection),
            ("collection_runs", self._collection_runs),
            ("scheduled_jobs", self._scheduled_jobs),
            ("alerts", self._alerts),
            ("spend", self._spend),
            ("budgets", self._budgets),
        ]
        for name, read in sections:
            try:
                # Built in full before any is yielded, so a failing section is left out whole.
                families = read(now)
            except Exception as exc:  # noqa: BLE001 - one broken section must not hide the rest
                log.warning("metrics: cannot read %s: %s", name, exc)
                errors.add_metric([name], 1)
                continue
            errors.add_metric([name], 0)
            yield from families
        yield errors
        seconds = GaugeMetricFamily(
            "tracker_metrics_scrape_seconds", "How long this scrape took to read the store"
        )
        seconds.add_metric([], time.perf_counter() - began)
        yield seconds

    # -- sections --------------------------------------------------------------------------
    def _collection(self, now: datetime) -> list[Metric]:
        labels = ["account", "region"]
        success = GaugeMetricFamily(
            "tracker_collection_last_success_timestamp_seconds",
            "When collection last succeeded in this account and region (Unix time)",
            labels=labels,
        )
        lag = GaugeMetricFamily(
            "tracker_collection_lag_seconds",
            "Seconds since collection last succeeded in this account and region",
            labels=labels,
        )
        watermark = GaugeMetricFamily(
            "tracker_collection_watermark_timestamp_seconds",
            "Newest LastModifiedTime collected in this account and region (Unix time)",
            labels=labels,
        )
        failing = GaugeMetricFamily(
            "tracker_collection_failing",
            "1 when the latest collection attempt in this account and region failed, else 0",
            labels=labels,
        )
        for row in self.queries.watermarks():
            key = [row.account_id, row.region]
            failing.add_metric(key, int(row.failing))
            if row.last_success_at is not None:
                success.add_metric(key, _seconds(row.last_success_at))
                lag.add_metric(key, max((now - row.last_success_at).total_seconds(), 0.0))
            if row.last_modified is not None:
                watermark.add_metric(key, _seconds(row.last_modified))
        stored = GaugeMetricFamily(
            "tracker_jobs_stored",
            "Training jobs stored, per account and region",
            labels=labels,
        )
        for (account, region), count in sorted(self.queries.jobs_stored().items()):
            stored.add_metric([account, region], count)
        return [success, lag, watermark, failing, stored]

    def _collection_runs(self, _now: datetime) -> list[Metric]:
        runs = CounterMetricFamily(
            "tracker_collection_runs",
            "Finished collection runs (tracker collect, the daemon, tracker run collect), by status",
            labels=["status"],
        )
        for status, count in sorted(self.queries.collection_runs().items()):
            runs.add_metric([status], count)
        jobs = GaugeMetricFamily(
            "tracker_last_collection_jobs",
            "Training jobs the latest finished collection run found new, updated or unchanged",
            labels=["account", "region", "change"],
        )
        finished = GaugeMetricFamily(
            "tracker_last_collection_timestamp_seconds",
            "When the latest collection run finished (Unix time)",
        )
        seconds = GaugeMetricFamily(
            "tracker_last_collection_duration_seconds",
            "How long the latest finished collection run took",
        )
        last = self.queries.last_collection()
        if last is not None:
            for region in last.summary.get("regions", []):
                for change in CHANGES:
                    jobs.add_metric(
                        [str(region.get("account_id")), str(region.get("region")), change],
                        int(region.get(change) or 0),
                    )
            if last.finished_at is not None:
                finished.add_metric([], _seconds(last.finished_at))
            seconds.add_metric([], float(last.summary.get("seconds") or 0))
        return [runs, jobs, finished, seconds]

    def _scheduled_jobs(self, _now: datetime) -> list[Metric]:
        runs = CounterMetricFamily(
            "tracker_job_runs",
            "Finished runs of each scheduled job (daemon and tracker run), by status",
            labels=["scheduled_job", "status"],
        )
        errors = CounterMetricFamily(
            "tracker_job_run_errors",
            "Finished runs of each scheduled job that failed or were partial",
            labels=["scheduled_job"],
        )
        success = GaugeMetricFamily(
            "tracker_job_last_success_timestamp_seconds",
            "When each scheduled job last finished ok (Unix time)",
            labels=["scheduled_job"],
        )
        durations: dict[str, tuple[int, float]] = {}
        failures: dict[str, int] = {}
        for group in self.queries.job_runs():
            runs.add_metric([group.job, group.status], group.runs)
            count, total = durations.get(group.job, (0, 0.0))
            durations[group.job] = (count + group.runs, total + group.seconds)
            failures.setdefault(group.job, 0)
            if group.status in ERROR_STATUSES:
                failures[group.job] += group.runs
            if group.status == "ok" and group.last_finished_at is not None:
                success.add_metric([group.job], _seconds(group.last_finished_at))
        duration = SummaryMetricFamily(
            "tracker_job_run_duration_seconds",
            "Seconds the finished runs of each scheduled job took",
            labels=["scheduled_job"],
        )
        for job, (count, total) in sorted(durations.items()):
            duration.add_metric([job], count, total)
            errors.add_metric([job], failures[job])
        last_seconds = GaugeMetricFamily(
            "tracker_job_last_run_duration_seconds",
            "Seconds the latest finished run of each scheduled job took",
            labels=["scheduled_job"],
        )
        last_ok = GaugeMetricFamily(
            "tracker_job_last_run_ok",
            "1 when the latest finished run of each scheduled job was ok, else 0",
            labels=["scheduled_job"],
        )
        for last in self.queries.last_runs():
            last_ok.add_metric([last.job], int(last.status == "ok"))
            if last.seconds is not None:
                last_seconds.add_metric([last.job], last.seconds)
        return [runs, errors, duration, success, last_seconds, last_ok]

    def _alerts(self, _now: datetime) -> list[Metric]:
        ledger = GaugeMetricFamily(
            "tracker_alert_deliveries",
            "Alert deliveries in the ledger (one alert on one channel), by kind and status "
            "(sending, sent, failed: failed ones are retried next run; "
            "unconfirmed: resent once after a crash, never again)",
            labels=["kind", "status"],
        )
        sent = CounterMetricFamily(
            "tracker_alert_deliveries_sent",
            "Alert deliveries sent (one alert on one channel), by kind",
            labels=["kind"],
        )
        sent_by_kind: dict[str, int] = {}
        for (kind, status), count in sorted(self.queries.alert_deliveries().items()):
            ledger.add_metric([kind, status], count)
            if status == "sent":
                sent_by_kind[kind] = count
        for kind, count in sent_by_kind.items():
            sent.add_metric([kind], count)
        return [ledger, sent]

    def _spend(self, now: datetime) -> list[Metric]:
        today = now.date()
        window = Window(month_start(today), today)
        spend = GaugeMetricFamily(
            "tracker_spend_this_month_usd",
            "List cost of training this calendar month (UTC) so far, per team, in USD "
            "(tracker report --by team since the 1st)",
            labels=["team"],
        )
        rows = ViewQueries(self.store).spend(["team"], window, (LIST,), counts=False)
        for row in rows:
            spend.add_metric([str(row["team"])], _usd(from_micros(int(row[LIST.name] or 0))))
        return [spend]

    def _budgets(self, now: datetime) -> list[Metric]:
        labels = ["budget", "team"]
        families = {
            "used": GaugeMetricFamily(
                "tracker_budget_used_percent",
                "Actual spend of each budget's period as a percent of its amount",
                labels=labels,
            ),
            "actual": GaugeMetricFamily(
                "tracker_budget_actual_usd",
                "Actual spend of each budget's current period, in USD",
                labels=labels,
            ),
            "forecast": GaugeMetricFamily(
                "tracker_budget_forecast_usd",
                "Forecast spend of each budget's current period, in USD",
                labels=labels,
            ),
            "amount": GaugeMetricFamily(
                "tracker_budget_amount_usd",
                "Each budget's amount per period, in USD",
                labels=labels,
            ),
        }
        if self.settings is not None:
            for status in budget_statuses(self.settings, self.store, now):
                # A budget scoped to a team carries it, so panels can set it beside the team's
                # spend; a budget over all teams (or a project) has an empty team label.
                key = [status.budget.name, status.budget.filter_map.get("team", "")]
                families["used"].add_metric(key, _usd(status.pct_used))
                families["actual"].add_metric(key, _usd(status.actual_usd))
                families["forecast"].add_metric(key, _usd(status.forecast_usd))
                families["amount"].add_metric(key, _usd(status.budget.amount_usd))
        return list(families.values())


def metrics_registry(
    store: Store, settings: Settings | None, clock: Callable[[], datetime]
) -> CollectorRegistry:
    """A registry holding only the tracker's metrics (no process metrics of whoever serves them)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store, settings, clock))
    return registry
