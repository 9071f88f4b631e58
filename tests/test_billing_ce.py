"""Cost Explorer through moto: the request, NextPageToken paging, group keys, stored lines.

Results are queued on moto's ``moto-api/static/ce/cost-and-usage-results`` endpoint; moto
answers each distinct request body with the next queued result, so page 2 (the request with
``NextPageToken``) gets the second result. The bill (daily, SageMaker, team tag x usage type):

| period | page | keys                                       | UnblendedCost | NetAmortizedCost |
|--------|------|--------------------------------------------|---------------|------------------|
| 11-20  | 1    | team$nlp, USE1-Train:ml.m5.xlarge          | 1.61          | 1.61             |
| 11-20  | 1    | team$nlp, USE1-Train:VolumeUsage.gp2       | 0.05          | 0.05             |
| 11-21  | 1    | team$nlp, USE1-Train:ml.m5.xlarge          | 0.23          | 0.23             |
| 11-21  | 1    | team$cv, USE1-TrSpt:ml.g5.2xlarge          | 1.515         | 1.20             |
| 11-21  | 1    | team$cv, USE1-Train:SomethingNew           | 0.10          | 0.10             |
| 11-21  | 1    | team$cv, USE1-Host:ml.m5.large             | 5.00          | 5.00             |
| 11-21  | 1    | team$, USE1-Train:ml.m5.xlarge             | 0.23          | 0.23             |
| 11-25  | 2    | team$nlp, USE1-Train:ml.m5.xlarge          | 0.20          | 0.20             |

Tracker (shipped rates, 0.23/h m5.xlarge, 1.515/h g5.2xlarge): nlp-1 4 x 1.5 h on 11-20 =
1.38; nlp-2 1 h over midnight 11-20/21 = 0.23 + 0.23; cv-1 2 x g5 spot billed 0.5 h on 11-21
= 1.515; un-1 untagged 1 h on 11-21 = 0.23; late (nlp) 1 h on 11-25 = 0.23.

| team        | period     | tracker | billed          | delta | pct    | status    |
|-------------|------------|---------|-----------------|-------|--------|-----------|
| nlp         | 2026-11-20 | 1.61    | 1.66            | 0.05  | 3.11   | ok        |
| cv          | 2026-11-21 | 1.515   | 1.515+0.10=1.615| 0.10  | 6.60   | drift     |
| nlp         | 2026-11-21 | 0.23    | 0.23            | 0.00  | 0.00   | ok        |
| unallocated | 2026-11-21 | 0.23    | 0.23            | 0.00  | 0.00   | ok        |
| nlp         | 2026-11-25 | 0.23    | 0.20            | -0.03 | -13.04 | unsettled |
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import boto3
import pytest
import requests
from moto import mock_aws

from tests.factories import HOUR
from tests.reconcile_data import NOW, SETTINGS, START, make_job, save
from tracker.aws import billing
from tracker.aws.billing import cost_and_usage_request, fetch_ce_lines, lines_from_page
from tracker.aws.paging import PageLimitError, follow_token
from tracker.errors import TrackerError
from tracker.reconcile.service import reconcile_bill, stored_bill_findings
from tracker.settings import CollectionSettings
from tracker.store.bills import BillRepository
from tracker.store.database import Store

D = Decimal
MOTO_API = "http://motoapi.amazonaws.com/moto-api/static/ce/cost-and-usage-results"
GROUP_DEFINITIONS = [{"Type": "TAG", "Key": "team"}, {"Type": "DIMENSION", "Key": "USAGE_TYPE"}]


def group(tag: str, usage: str, unblended: str, amortized: str | None = None) -> dict:
    return {
        "Keys": [f"team${tag}", usage],
        "Metrics": {
            "UnblendedCost": {"Amount": unblended, "Unit": "USD"},
            "NetAmortizedCost": {"Amount": amortized or unblended, "Unit": "USD"},
            "UsageQuantity": {"Amount": "1", "Unit": "N/A"},
        },
    }


def by_time(day: str, groups: list[dict], estimated: bool = False) -> dict:
    start = date.fromisoformat(day)
    return {
        "TimePeriod": {"Start": day, "End": (start + timedelta(days=1)).isoformat()},
        "Total": {},
        "Groups": groups,
        "Estimated": estimated,
    }


PAGE_1 = {
    "NextPageToken": "page-2",
    "GroupDefinitions": GROUP_DEFINITIONS,
    "ResultsByTime": [
        by_time("2026-11-20", [
            group("nlp", "USE1-Train:ml.m5.xlarge", "1.61"),
            group("nlp", "USE1-Train:VolumeUsage.gp2", "0.05"),
        ]),
        by_time("2026-11-21", [
            group("nlp", "USE1-Train:ml.m5.xlarge", "0.23"),
            group("cv", "USE1-TrSpt:ml.g5.2xlarge", "1.515", "1.20"),
            group("cv", "USE1-Train:SomethingNew", "0.10"),
            group("cv", "USE1-Host:ml.m5.large", "5.00"),
            group("", "USE1-Train:ml.m5.xlarge", "0.23"),
        ]),
    ],
    "DimensionValueAttributes": [],
}  # fmt: skip
PAGE_2 = {
    "GroupDefinitions": GROUP_DEFINITIONS,
    "ResultsByTime": [
        by_time("2026-11-25", [group("nlp", "USE1-Train:ml.m5.xlarge", "0.2000000001")], True)
    ],
    "DimensionValueAttributes": [],
}


@pytest.fixture
def ce():
    with mock_aws():
        yield boto3.client("ce", region_name="us-east-1")


def queue(*results: dict) -> None:
    response = requests.post(MOTO_API, json={"results": list(results)}, timeout=10)
    assert response.status_code == 201


@pytest.fixture
def store(tmp_path) -> Store:
    store = Store.open(f"sqlite:///{tmp_path / 'ce.db'}")
    day = timedelta(days=1)
    save(store, [
        make_job("nlp-1", "nlp", instance_count=4, seconds=int(1.5 * HOUR)),
        make_job("nlp-2", "nlp", seconds=2 * HOUR, start_time=START.replace(hour=23)),
        make_job("cv-1", "cv", instance_type="ml.g5.2xlarge", instance_count=2, spot=True, billable_seconds=1800, start_time=START + day),
        make_job("un-1", None, start_time=START + day),
        make_job("late", "nlp", start_time=START + 5 * day),
    ])  # fmt: skip
    return store


def test_request_asks_for_sagemaker_grouped_by_team_tag_and_usage_type() -> None:
    request = cost_and_usage_request(date(2026, 11, 20), date(2026, 11, 26), "daily", "cost-team")
    assert request == {
        "TimePeriod": {"Start": "2026-11-20", "End": "2026-11-26"},
        "Granularity": "DAILY",
        "Metrics": ["UnblendedCost", "NetAmortizedCost", "UsageQuantity"],
        "Filter": {"Dimensions": {"Key": "SERVICE", "Values": ["Amazon SageMaker"]}},
        "GroupBy": [
            {"Type": "TAG", "Key": "cost-team"},
            {"Type": "DIMENSION", "Key": "USAGE_TYPE"},
        ],
    }


def test_fetch_follows_next_page_token(ce) -> None:
    queue(PAGE_1, PAGE_2)
    calls = []
    ce.meta.events.register(
        "provide-client-params.ce.GetCostAndUsage", lambda params, **_: calls.append(dict(params))
    )
    lines = fetch_ce_lines(ce, date(2026, 11, 20), date(2026, 11, 26), "daily", "team")
    assert len(calls) == 2
    assert "NextPageToken" not in calls[0] and calls[1]["NextPageToken"] == "page-2"
    assert [(x.period_start.isoformat(), x.team, x.kind) for x in lines][-4:] == [
        ("2026-11-21", "cv", "unrecognised"),
        ("2026-11-21", "cv", "other"),
        ("2026-11-21", "unallocated", "instance"),
        ("2026-11-25", "nlp", "instance"),
    ]
    spot = next(x for x in lines if x.kind == "spot")
    assert (spot.list_usd, spot.effective_usd) == (D("1.515"), D("1.20"))


def test_fetch_stops_at_max_pages_and_names_the_fix(ce, monkeypatch) -> None:
    monkeypatch.setattr(billing, "MAX_PAGES", 1)
    queue(PAGE_1, PAGE_2)
    calls = []
    ce.meta.events.register(
        "provide-client-params.ce.GetCostAndUsage", lambda params, **_: calls.append(dict(params))
    )
    with pytest.raises(TrackerError) as raised:
        fetch_ce_lines(ce, date(2026, 11, 20), date(2026, 11, 26), "daily", "team")
    assert str(raised.value) == (
        "Cost Explorer GetCostAndUsage: more than 1 pages; narrow --since/--until"
    )
    assert len(calls) == 1  # page 2 is never asked for


def test_follow_token_follows_empty_pages_that_carry_a_token() -> None:
    answers = iter([{"Items": [], "Token": "a"}, {"Items": [], "Token": "b"}, {"Items": [1]}])
    requests_made = []

    def call(**request):
        requests_made.append(request)
        return next(answers)

    pages = list(follow_token(call, {"Filter": "x"}, "Token", max_pages=3))

    assert [page["Items"] for page in pages] == [[], [], [1]]
    assert requests_made == [
        {"Filter": "x"},
        {"Filter": "x", "Token": "a"},
        {"Filter": "x", "Token": "b"},
    ]
    with pytest.raises(PageLimitError, match="more than 2 pages"):
        list(follow_token(lambda **_: {"Token": "again"}, {}, "Token", max_pages=2))


def test_ce_client_uses_collection_retries_and_honours_its_endpoint_env(monkeypatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_COST_EXPLORER", "http://127.0.0.1:4566")
    client = billing.ce_client(CollectionSettings(retry_mode="standard", max_attempts=3))
    assert (client.meta.region_name, client.meta.endpoint_url) == (
        "us-east-1",
        "http://127.0.0.1:4566",
    )
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}
    assert client.meta.config.user_agent_extra == "sagemaker-spend-tracker"


def test_lines_from_page_reads_group_order_and_metric_fallbacks() -> None:
    page = {
        "GroupDefinitions": [{"Type": "DIMENSION", "Key": "USAGE_TYPE"}, {"Type": "TAG", "Key": "team"}],
        "ResultsByTime": [{
            "TimePeriod": {"Start": "2026-11-01", "End": "2026-12-01"},
            "Groups": [{"Keys": ["USE1-Train:ml.m5.xlarge", "team$nlp"],
                        "Metrics": {"BlendedCost": {"Amount": "3.5", "Unit": "USD"}}}],
        }],
    }  # fmt: skip
    (line,) = lines_from_page(page, "team")
    assert (line.team, line.usage_type, line.list_usd, line.effective_usd, line.period_end) == (
        "nlp",
        "USE1-Train:ml.m5.xlarge",
        D("3.5"),
        D("3.5"),
        date(2026, 12, 1),
    )


def test_lines_from_page_rejects_non_numeric_amount() -> None:
    page = {"ResultsByTime": [{"TimePeriod": {"Start": "2026-11-01", "End": "2026-11-02"},
                               "Groups": [group("a", "USE1-Train:ml.m5.xlarge", "lots")]}]}  # fmt: skip
    with pytest.raises(TrackerError, match="UnblendedCost Amount 'lots'"):
        lines_from_page(page, "team")


def test_reconcile_bill_ce_rows_to_the_cent(ce, store: Store) -> None:
    queue(PAGE_1, PAGE_2)
    report = reconcile_bill(SETTINGS, store, NOW, source="ce", since=date(2026, 11, 20),
                            until=date(2026, 11, 25))  # fmt: skip
    got = [(r["team"], r["period"], r["tracker_usd"], r["billed_usd"], r["delta_usd"], r["delta_pct"],
            r["status"]) for r in (row.to_dict() for row in report.rows)]  # fmt: skip
    assert got == [
        ("nlp", "2026-11-20", D("1.61"), D("1.66"), D("0.05"), D("3.11"), "ok"),
        ("cv", "2026-11-21", D("1.52"), D("1.62"), D("0.10"), D("6.60"), "drift"),
        ("nlp", "2026-11-21", D("0.23"), D("0.23"), D("0.00"), D("0.00"), "ok"),
        ("unallocated", "2026-11-21", D("0.23"), D("0.23"), D("0.00"), D("0.00"), "ok"),
        ("nlp", "2026-11-25", D("0.23"), D("0.20"), D("-0.03"), D("-13.04"), "unsettled"),
    ]
    cv = report.rows[1].to_dict()
    assert (cv["spot_usd"], cv["unrecognised_usage_types"], cv["billed_effective_usd"]) == (
        D("1.52"),
        ["USE1-Train:SomethingNew"],
        D("1.30"),
    )
    assert [(f.kind, f.team, f.period, f.delta_usd) for f in report.findings] == [
        ("bill-drift", "cv", "2026-11-21", D("0.10"))
    ]
    notes = "\n".join(report.notes)
    assert "unrecognised usage type USE1-Train:SomethingNew: $0.10" in notes
    assert "USE1-Host:ml.m5.large (other) $5.00" in notes
    assert "unsettled" in notes and "2026-11-25" in notes
    # The lines are stored (8 groups) and drift can be recomputed from them without AWS.
    assert report.stored == 8
    assert len(BillRepository(store).lines("ce", date(2026, 11, 20), date(2026, 11, 25))) == 8
    findings = stored_bill_findings(
        SETTINGS, store, NOW, since=date(2026, 11, 20), until=date(2026, 11, 25)
    )
    assert [(f.team, f.period) for f in findings] == [("cv", "2026-11-21")]


def test_reconcile_bill_ce_rerun_replaces_its_lines(ce, store: Store) -> None:
    queue(PAGE_1, PAGE_2)
    window = {"since": date(2026, 11, 20), "until": date(2026, 11, 25)}
    reconcile_bill(SETTINGS, store, NOW, source="ce", **window)
    again = reconcile_bill(SETTINGS, store, NOW, source="ce", **window)  # same bodies: same answers
    assert again.stored == 8
    assert len(BillRepository(store).lines("ce", **window)) == 8


def test_reconcile_bill_ce_default_window_is_last_month_to_today(ce, store: Store) -> None:
    """Nothing queued: moto answers with no results, so every settled tracker period drifts."""
    calls = []
    ce.meta.events.register(
        "provide-client-params.ce.GetCostAndUsage", lambda params, **_: calls.append(dict(params))
    )
    report = reconcile_bill(SETTINGS, store, NOW, source="ce", ce_client=ce)
    assert (report.since, report.until) == (date(2026, 10, 1), date(2026, 11, 26))
    assert calls[0]["TimePeriod"] == {"Start": "2026-10-01", "End": "2026-11-27"}
    assert report.lines == []
    assert [(f.team, f.period, f.delta_pct) for f in report.findings] == [
        ("nlp", "2026-11-20", D("-100.00")),
        ("cv", "2026-11-21", D("-100.00")),
        ("nlp", "2026-11-21", D("-100.00")),
        ("unallocated", "2026-11-21", D("-100.00")),
    ]


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        # keys in the other order, no GroupDefinitions: the key with "$" is the tag
        (
            {"Keys": ["USE1-Train:ml.m5.xlarge", "team$cv"]},
            ("cv", "USE1-Train:ml.m5.xlarge", "instance"),
        ),
        # grouped by the tag only: SageMaker cost of unknown kind, counted and reported
        ({"Keys": ["team$cv"]}, ("cv", "", "unrecognised")),
        ({"Keys": ["team$"]}, ("unallocated", "", "unrecognised")),
    ],
)
def test_lines_from_page_without_group_definitions(page, expected) -> None:
    result = {"TimePeriod": {"Start": "2026-11-01", "End": "2026-11-02"},
              "Groups": [{**page, "Metrics": {"AmortizedCost": {"Amount": "2", "Unit": "USD"}}}]}  # fmt: skip
    (line,) = lines_from_page({"ResultsByTime": [result]}, "team")
    assert (line.team, line.usage_type, line.kind) == expected
    assert line.list_usd == D(2)


def test_lines_from_page_ungrouped_total_is_kept() -> None:
    result = {"TimePeriod": {"Start": "2026-11-01", "End": "2026-11-02"}, "Groups": [],
              "Total": {"UnblendedCost": {"Amount": "4.25", "Unit": "USD"}}}  # fmt: skip
    (line,) = lines_from_page({"ResultsByTime": [result]}, "team")
    assert (line.team, line.kind, line.list_usd) == ("unallocated", "unrecognised", D("4.25"))
