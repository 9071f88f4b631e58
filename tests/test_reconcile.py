"""Reconciliation: actual vs estimate per job and per team; tracker vs billed lines.

Estimates scenario (stored jobs, shipped rates: ml.m5.xlarge 0.23/h, ml.g5.2xlarge 1.515/h;
tolerance 10%). Recorded before the jobs ran: est-a 2 x m5 x 3 h = 1.38 (job train-a carries
its id tag), est-b 1 x m5 x 4 h = 0.92 for job name exact-b, est-n 1 x m5 x 3 h = 0.69 for
prefix "nightly-" (and est-s 0.23 for the shorter prefix "night").

| job                | team | actual                       | source           | estimate | delta  | pct    | verdict |
|--------------------|------|------------------------------|------------------|----------|--------|--------|---------|
| train-a            | nlp  | 0.23 x 2 x 3 = 1.38          | estimate-id      | 1.38     | 0.00   | 0.00   | within  |
| exact-b            | nlp  | 0.23 x 5 = 1.15              | job-name         | 0.92     | 0.23   | 25.00  | over    |
| nightly-2026-11-20 | cv   | 0.23 x 2.5 = 0.575           | name-prefix      | 0.69     | -0.12  | -16.67 | under   |
| tagged-c           | cv   | 0.23 x 4 = 0.92              | estimate-usd-tag | 1.00     | -0.08  | -8.00  | within  |
| worst-d            | ml   | 0.23                         | worst-case 2 h   | 0.46     | -0.23  | -50.00 | under   |
| spot-e             | ml   | 1.515 x 0.5 = 0.7575         | worst-case 2 h   | 3.03     | -2.27  | -75.00 | under   |
| orphan-id          | ml   | 0.23 (id tag est-gone)       | worst-case 1 h   | 0.23     | 0.00   | 0.00   | within  |
| none-f             | ml   | 0.23 (no StoppingCondition)  | none             | -        | -      | -      | no-est. |

(-0.115 rounds half up to -0.12; -0.115/0.69 = -16.666...%; spot-e: MaxWait 7200 s at the
on-demand rate 1.515 x 2 = 3.03, delta -2.2725 -> -2.27.)

Per team (real estimates only): nlp 2.30 vs 2.53, delta 0.23 = 10.00% -> within (the edge);
cv 1.69 vs 1.495, delta -0.195 -> -0.20, -11.54% -> under; ml: no real estimate, unestimated
actual 0.23 + 0.7575 + 0.23 + 0.23 = 1.4475 -> 1.45.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from tests.backends import db_url_fixture  # noqa: F401 - the db_url fixture
from tests.factories import HOUR
from tests.reconcile_data import NOW, PRICES, SETTINGS, START, arn, make_job, save
from tracker.estimate.rules import (
    ESTIMATE_ID_TAG,
    ESTIMATE_USD_TAG,
    EstimateRequest,
    build_estimate,
)
from tracker.reconcile.rules import (
    BillLine,
    BillPolicy,
    ResolvedEstimate,
    TrackerDay,
    classify_usage_type,
    drift_findings,
    estimate_findings,
    estimate_row,
    is_settled,
    job_rows,
    period_key,
    team_rollup,
    team_rows,
    verdict,
)
from tracker.reconcile.service import reconcile_estimates
from tracker.store.database import Store
from tracker.store.estimates import EstimateRepository

D = Decimal
RECORDED_AT = datetime(2026, 11, 19, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> Store:
    """SQLite, and PostgreSQL where a server answers (tests.backends)."""
    return Store.open(db_url)


def record(store: Store, estimate_id: str, count: int, hours: str, **kw) -> None:
    request = EstimateRequest("ml.m5.xlarge", count, D(hours), **kw)
    est = build_estimate(request, PRICES, RECORDED_AT, estimate_id=estimate_id)
    EstimateRepository(store).record(est.entry())


@pytest.fixture
def scenario(store: Store) -> Store:
    record(store, "est-a", 2, "3", team="nlp")
    record(store, "est-b", 1, "4", job_name="exact-b")
    record(store, "est-n", 1, "3", name_prefix="nightly-")
    record(store, "est-s", 1, "1", name_prefix="night")
    day = timedelta(days=1)
    save(store, [
        make_job("train-a", "nlp", instance_count=2, seconds=3 * HOUR, tags={ESTIMATE_ID_TAG: "est-a"}),
        make_job("exact-b", "nlp", seconds=5 * HOUR),
        make_job("nightly-2026-11-20", "cv", seconds=int(2.5 * HOUR), start_time=START + day),
        make_job("tagged-c", "cv", instance_count=4, tags={ESTIMATE_USD_TAG: "1.00"}),
        make_job("worst-d", "ml", max_runtime_seconds=7200),
        make_job("spot-e", "ml", instance_type="ml.g5.2xlarge", spot=True, billable_seconds=1800,
                 max_runtime_seconds=3600, max_wait_seconds=7200),
        make_job("orphan-id", "ml", max_runtime_seconds=3600, tags={ESTIMATE_ID_TAG: "est-gone"}),
        make_job("none-f", "ml", max_runtime_seconds=None),
        make_job("running", "ml", status="InProgress"),
    ])  # fmt: skip
    return store


def test_reconcile_estimates_rows_to_the_cent(scenario: Store) -> None:
    rows = reconcile_estimates(SETTINGS, scenario, NOW)
    got = {
        r["job"]: (r["estimate_source"], r["estimate_usd"], r["actual_usd"], r["delta_usd"],
                   r["delta_pct"], r["verdict"])
        for r in (row.to_dict() for row in rows)
    }  # fmt: skip
    assert got == {
        "train-a": ("estimate-id", D("1.38"), D("1.38"), D("0.00"), D("0.00"), "within"),
        "exact-b": ("job-name", D("0.92"), D("1.15"), D("0.23"), D("25.00"), "over"),
        "nightly-2026-11-20": (
            "name-prefix",
            D("0.69"),
            D("0.58"),
            D("-0.12"),
            D("-16.67"),
            "under",
        ),
        "tagged-c": ("estimate-usd-tag", D("1.00"), D("0.92"), D("-0.08"), D("-8.00"), "within"),
        "worst-d": ("worst-case", D("0.46"), D("0.23"), D("-0.23"), D("-50.00"), "under"),
        "spot-e": ("worst-case", D("3.03"), D("0.76"), D("-2.27"), D("-75.00"), "under"),
        "orphan-id": ("worst-case", D("0.23"), D("0.23"), D("0.00"), D("0.00"), "within"),
        "none-f": ("none", None, D("0.23"), None, None, "no-estimate"),
    }
    orphan = next(r for r in rows if r.job == "orphan-id")
    assert "est-gone" in orphan.resolved.note
    assert next(r for r in rows if r.job == "train-a").resolved.estimate_id == "est-a"


def test_reconcile_estimates_team_rollup(scenario: Store) -> None:
    rows = reconcile_estimates(SETTINGS, scenario, NOW)
    teams = {t["team"]: t for t in (row.to_dict() for row in team_rollup(rows, D(10)))}
    assert {k: teams["nlp"][k] for k in ("estimate_usd", "actual_usd", "delta_usd", "delta_pct",
                                         "verdict", "over", "within")} == {
        "estimate_usd": D("2.30"), "actual_usd": D("2.53"), "delta_usd": D("0.23"),
        "delta_pct": D("10.00"), "verdict": "within", "over": 1, "within": 1,
    }  # fmt: skip
    assert (teams["cv"]["delta_usd"], teams["cv"]["delta_pct"], teams["cv"]["verdict"]) == (
        D("-0.20"),
        D("-11.54"),
        "under",
    )
    ml = teams["ml"]
    assert (ml["estimated_jobs"], ml["worst_case_jobs"], ml["no_estimate_jobs"]) == (0, 3, 1)
    assert (ml["estimate_usd"], ml["verdict"], ml["unestimated_actual_usd"]) == (
        None,
        "no-estimate",
        D("1.45"),
    )


def test_reconcile_estimates_window_and_team_filter(scenario: Store) -> None:
    later = START.date() + timedelta(days=1)
    rows = reconcile_estimates(SETTINGS, scenario, NOW, since=later, until=later)
    assert [r.job for r in rows] == ["nightly-2026-11-20"]
    assert [r.job for r in reconcile_estimates(SETTINGS, scenario, NOW, team="nlp")] == [
        "train-a",
        "exact-b",
    ]


def test_reconcile_estimates_tolerance_changes_verdicts(scenario: Store) -> None:
    rows = reconcile_estimates(SETTINGS, scenario, NOW, tolerance_pct=D(30))
    assert {r.job: r.verdict for r in rows}["exact-b"] == "within"


@pytest.mark.parametrize(
    ("estimate", "actual", "expected"),
    [
        ("1.00", "1.10", "within"), ("1.00", "1.1000001", "over"), ("1.00", "0.90", "within"),
        ("1.00", "0.8999", "under"), ("0", "0", "within"), ("0", "0.01", "over"), (None, "5", "no-estimate"),
    ],
)  # fmt: skip
def test_verdict_tolerance_edges(estimate, actual, expected) -> None:
    assert verdict(None if estimate is None else D(estimate), D(actual), D(10)) == expected


def test_estimate_findings_for_jobs_over_estimate() -> None:
    over = estimate_row(
        "j", arn("j"), "nlp", D("1.15"), ResolvedEstimate("job-name", D("0.92")), D(10)
    )
    within = estimate_row("k", arn("k"), "nlp", D("1"), ResolvedEstimate("job-name", D("1")), D(10))
    findings = estimate_findings([over, within])
    assert [(f.kind, f.team, f.delta_usd, f.delta_pct) for f in findings] == [
        ("estimate-over", "nlp", D("0.23"), D("25.00"))
    ]
    assert "j" in findings[0].message and "$1.15" in findings[0].message


# -- usage types -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("usage_type", "kind"),
    [
        ("USE1-Train:ml.g5.2xlarge", "instance"),
        ("Train:ml.m5.xlarge", "instance"),
        ("EU-Train:ml.m5.xlarge+ml.c5.xlarge", "instance"),
        ("USE1-TrSpt:ml.p3.2xlarge", "spot"),
        ("USE1-Train:ml.p3.2xlarge-Spot", "spot"),
        ("USW2-Train:VolumeUsage.gp2", "volume"),
        ("USE1-Train-WarmPool:ml.m5.xlarge", "warm-pool"),
        ("USE1-Train:WarmPool-ml.m5.xlarge", "warm-pool"),
        ("USE1-TrainingPlanUpfrontFee:ml.p5.48xlarge", "training-plan"),
        ("USE1-Train:SomethingNew", "unrecognised"),
        ("USE1-ServerlessTraining-Tokens", "unrecognised"),
        ("USE1-Host:ml.m5.large", "other"),
        ("USE1-Notebk:ml.t3.medium", "other"),
        ("", "other"),
    ],
)
def test_classify_usage_type(usage_type, kind) -> None:
    assert classify_usage_type(usage_type) == kind


# -- tracker vs bill ----------------------------------------------------------------------------
def day(text: str) -> date:
    return date.fromisoformat(text)


def tracked(job: str, team: str, when: str, usd: str) -> TrackerDay:
    micros = int(D(usd) * 1_000_000)
    return TrackerDay(arn(job), job, team, day(when), micros, micros)


def billed(team: str, when: str, usd: str, usage: str = "USE1-Train:ml.m5.xlarge", *,
           resource: str | None = None, effective: str | None = None) -> BillLine:  # fmt: skip
    start = day(when)
    return BillLine("test", start, start + timedelta(days=1), team, usage, classify_usage_type(usage),
                    D(usd), D(effective or usd), resource)  # fmt: skip


TRACKER = [
    tracked("nlp-1", "nlp", "2026-11-20", "1.38"),
    tracked("nlp-2", "nlp", "2026-11-20", "0.23"),
    tracked("nlp-2", "nlp", "2026-11-21", "0.23"),
    tracked("cv-1", "cv", "2026-11-21", "1.515"),
    tracked("un-1", "unallocated", "2026-11-21", "0.23"),
    tracked("late", "nlp", "2026-11-25", "0.23"),
]


def test_team_rows_settled_unsettled_drift_and_unallocated() -> None:
    """nlp 11-20: 1.61 vs 1.66 (3.11%, ok); cv 11-21: 1.515 vs 1.515 + 0.10 unrecognised
    (6.60%, drift); untagged billed cost meets the tracker's unallocated; 11-25 is younger
    than the settle time (ends 11-26, + 2 days > now 11-26)."""
    lines = [
        billed("nlp", "2026-11-20", "1.61"),
        billed("nlp", "2026-11-20", "0.05", "USE1-Train:VolumeUsage.gp2"),
        billed("nlp", "2026-11-21", "0.23"),
        billed("cv", "2026-11-21", "1.515", "USE1-TrSpt:ml.g5.2xlarge", effective="1.00"),
        billed("cv", "2026-11-21", "0.10", "USE1-Train:SomethingNew"),
        billed("cv", "2026-11-21", "5.00", "USE1-Host:ml.m5.large"),
        billed("unallocated", "2026-11-21", "0.23"),
        billed("nlp", "2026-11-25", "0.20"),
    ]
    rows = [r.to_dict() for r in team_rows(TRACKER, lines, "daily", NOW, BillPolicy(2, D(5)))]
    got = [(r["team"], r["period"], r["tracker_usd"], r["billed_usd"], r["delta_usd"], r["delta_pct"],
            r["status"]) for r in rows]  # fmt: skip
    assert got == [
        ("nlp", "2026-11-20", D("1.61"), D("1.66"), D("0.05"), D("3.11"), "ok"),
        ("cv", "2026-11-21", D("1.52"), D("1.62"), D("0.10"), D("6.60"), "drift"),
        ("nlp", "2026-11-21", D("0.23"), D("0.23"), D("0.00"), D("0.00"), "ok"),
        ("unallocated", "2026-11-21", D("0.23"), D("0.23"), D("0.00"), D("0.00"), "ok"),
        ("nlp", "2026-11-25", D("0.23"), D("0.20"), D("-0.03"), D("-13.04"), "unsettled"),
    ]
    cv = rows[1]
    assert (cv["spot_usd"], cv["unrecognised_usd"], cv["unrecognised_usage_types"]) == (
        D("1.52"),
        D("0.10"),
        ["USE1-Train:SomethingNew"],
    )
    assert (cv["tracker_effective_usd"], cv["billed_effective_usd"]) == (D("1.52"), D("1.10"))
    assert rows[0]["volume_usd"] == D("0.05") and rows[0]["instance_usd"] == D("1.61")
    assert (cv["excluded_usd"], cv["excluded_usage_types"]) == (
        D("5.00"),
        ["USE1-Host:ml.m5.large"],
    )


def test_team_rows_monthly_sums_days() -> None:
    lines = [billed("nlp", "2026-11-20", "1.61"), billed("nlp", "2026-11-21", "0.23")]
    rows = team_rows([t for t in TRACKER if t.team == "nlp"], lines, "monthly", NOW)
    assert [(r.team, r.period, r.tracker_list, r.billed_list, r.status) for r in rows] == [
        ("nlp", "2026-11", D("2.07"), D("1.84"), "unsettled")
    ]


def test_drift_findings_only_for_settled_rows_over_threshold() -> None:
    lines = [billed("nlp", "2026-11-20", "1.70"), billed("nlp", "2026-11-25", "9.00"),
             billed("cv", "2026-11-21", "1.515"), billed("ghost", "2026-11-21", "0.50")]  # fmt: skip
    rows = team_rows(TRACKER, lines, "daily", NOW)
    findings = drift_findings(rows, D(5), source="ce")
    assert [
        (f.kind, f.team, f.period, f.tracker_usd, f.billed_usd, f.delta_usd, f.delta_pct)
        for f in findings
    ] == [  # fmt: skip
        ("bill-drift", "nlp", "2026-11-20", D("1.61"), D("1.70"), D("0.09"), D("5.59")),
        ("bill-drift", "ghost", "2026-11-21", D("0.00"), D("0.50"), D("0.50"), None),
        ("bill-drift", "nlp", "2026-11-21", D("0.23"), D("0.00"), D("-0.23"), D("-100.00")),
        ("bill-drift", "unallocated", "2026-11-21", D("0.23"), D("0.00"), D("-0.23"), D("-100.00")),
    ]
    assert findings[0].key == "bill-drift:ce:nlp:2026-11-20"
    assert "billed $1.70 vs tracker $1.61" in findings[0].message
    assert drift_findings(rows, D(6), source="ce")[0].team == "ghost"


def test_is_settled_daily_and_monthly() -> None:
    assert is_settled("2026-11-23", NOW, 2)  # ends 11-24, settled from 11-26
    assert not is_settled("2026-11-24", NOW, 2)
    assert not is_settled("2026-11", NOW, 0)
    assert is_settled("2026-10", NOW, 2)
    assert period_key(day("2026-11-30"), "monthly") == "2026-11"


def test_job_rows_by_resource_id_team_period_and_unmatched_bucket() -> None:
    """nlp-1 is named by its ARN (1.38 vs 1.40); nlp-2 is not named: its 0.23 on 11-21
    meets the nlp line without a resource id; a line naming a job the tracker never stored
    (0.70) and billed cost of a team the tracker has nothing for (0.30) are unmatched."""
    lines = [
        billed("nlp", "2026-11-20", "1.40", resource=arn("nlp-1")),
        billed("nlp", "2026-11-21", "0.23"),
        billed("nlp", "2026-11-21", "0.70", resource=arn("never-collected")),
        billed("ghost", "2026-11-21", "0.30"),
    ]
    tracker = [t for t in TRACKER if t.team == "nlp" and t.job != "late"]
    rows = [r.to_dict() for r in job_rows(tracker, lines, "daily", NOW)]
    got = [(r["job"], r["match"], r["team"], r["period"], r["tracker_usd"], r["billed_usd"], r["delta_usd"])
           for r in rows]  # fmt: skip
    assert got == [
        ("nlp-1", "resource-id", "nlp", None, D("1.38"), D("1.40"), D("0.02")),
        (None, "team-period", "nlp", "2026-11-20", D("0.23"), D("0.00"), D("-0.23")),
        (None, "team-period", "nlp", "2026-11-21", D("0.23"), D("0.23"), D("0.00")),
        ("__unmatched__", "unmatched", "ghost", "2026-11-21", D("0.00"), D("0.30"), D("0.30")),
        ("__unmatched__", "unmatched", "nlp", "2026-11-21", D("0.00"), D("0.70"), D("0.70")),
    ]
    assert rows[0]["arn"] == arn("nlp-1")
