"""Properties (hypothesis): the cost engine adds up, and no config file can crash the CLI.

Cost engine, over generated jobs and rates (USD per instance-hour, storage per GB-month):
- nothing is ever negative;
- a heterogeneous job costs the sum of its instance groups costed as separate jobs;
- a job costs the sum of its two halves (the interval split at any instant), day by day;
- a managed-spot job never costs more than the same job on demand, and the two differ by
  exactly the reported spot savings.

Config: any TOML document (known and unknown sections and keys, any values) gives Settings
or a ConfigError; through ``tracker`` itself, exit 0 or exit 2 with one ``Error:`` line.
"""

from __future__ import annotations

import ast
import calendar
import contextlib
import inspect
import io
import json
import math
import re
import tempfile
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import tracker.alert.budgets
import tracker.alert.rules
import tracker.estimate.rules
import tracker.reconcile.rules
import tracker.schedule
import tracker.settings
from tests.factories import make_job
from tracker.cost.engine import CostPolicy, cost_job, job_micros, period_micros
from tracker.errors import ConfigError
from tracker.records import InstanceGroup, JobCost, JobRecord, Rates, to_micros
from tracker.settings import KNOWN_SECTIONS, parse_settings

D = Decimal
RATES = Rates(
    hourly={
        "ml.m5.xlarge": D("0.23"),
        "ml.m5.4xlarge": D("0.922"),
        "ml.g5.2xlarge": D("1.515"),
        "ml.p4d.24xlarge": D("25.251"),
        "ml.c5.xlarge": D("0.204"),
    },  # fmt: skip
    storage_usd_per_gb_month=D("0.14"),
    s3_usd_per_gb_month=D("0.023"),
)
TYPES = [*RATES.hourly, "ml.trn1.32xlarge"]  # the last has no price
ITEMS = ("compute_usd", "spot_savings_usd", "warm_pool_usd", "storage_usd", "plan_value_usd",
         "list_usd", "effective_usd", "artifact_usd_per_month")  # fmt: skip
TOLERANCE = D("1e-15")  # dollars; the engine keeps 34 significant digits
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
POLICY = CostPolicy()
NOW = datetime(2026, 12, 31, tzinfo=UTC)

starts = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 11, 30),
                      timezones=st.just(UTC))  # fmt: skip
groups_st = st.lists(
    st.builds(InstanceGroup, st.sampled_from(TYPES), st.integers(0, 64), st.text("ab", max_size=2)),
    min_size=1,
    max_size=5,
)


def cost(job: JobRecord) -> JobCost:
    return cost_job(job, RATES, NOW, POLICY)


def close(a: Decimal, b: Decimal) -> bool:
    return abs(a - b) <= TOLERANCE


def by_day(result: JobCost) -> dict[str, Decimal]:
    days: dict[str, Decimal] = {}
    for period in result.periods:
        days[period.day] = days.get(period.day, D(0)) + period.list_usd
    return days


@PROPERTY
@given(
    start=starts,
    seconds=st.integers(0, 20 * 86400),
    groups=groups_st,
    volume=st.integers(0, 2000),
    warm=st.one_of(st.none(), st.integers(0, 86400)),
    artifact=st.integers(0, 10**13),
)
def test_cost_is_never_negative_and_adds_up_over_instance_groups(
    start: datetime, seconds: int, groups: list[InstanceGroup], volume: int, warm: int | None,
    artifact: int,
) -> None:  # fmt: skip
    whole = cost(make_job(start_time=start, seconds=seconds, instance_groups=tuple(groups),
                          volume_gb=volume, warm_pool_retained_seconds=warm,
                          artifact_bytes=artifact))  # fmt: skip
    parts = [cost(make_job(start_time=start, seconds=seconds, instance_groups=(g,),
                           volume_gb=volume, warm_pool_retained_seconds=warm))
             for g in groups]  # fmt: skip
    for item in ITEMS:
        assert getattr(whole, item) >= 0, item
    for item in ("compute_usd", "warm_pool_usd", "storage_usd", "list_usd"):
        assert close(getattr(whole, item), sum(getattr(p, item) for p in parts)), item
    assert whole.unpriced == any(p.unpriced for p in parts)


@PROPERTY
@given(
    start=starts,
    first=st.integers(1, 5 * 86400),
    second=st.integers(1, 5 * 86400),
    groups=groups_st,
    volume=st.integers(0, 2000),
)
def test_cost_adds_up_over_a_split_of_its_interval_day_by_day(
    start: datetime, first: int, second: int, groups: list[InstanceGroup], volume: int
) -> None:
    spec = {"instance_groups": tuple(groups), "volume_gb": volume}
    whole = cost(make_job(start_time=start, seconds=first + second, **spec))
    head = cost(make_job(start_time=start, seconds=first, **spec))
    tail = cost(make_job(start_time=start + timedelta(seconds=first), seconds=second, **spec))
    for item in ("compute_usd", "storage_usd", "list_usd", "effective_usd"):
        assert close(getattr(whole, item), getattr(head, item) + getattr(tail, item)), item
    days = by_day(whole)
    halves = by_day(head)
    for day, usd in by_day(tail).items():
        halves[day] = halves.get(day, D(0)) + usd
    for day in set(days) | set(halves):  # a zero-cost job may sit on another day: 0 either way
        assert close(days.get(day, D(0)), halves.get(day, D(0))), day
    assert close(sum(days.values()), whole.list_usd)


@PROPERTY
@given(
    start=starts,
    training=st.integers(0, 10 * 86400),
    billed_share=st.fractions(0, 1),
    itype=st.sampled_from(list(RATES.hourly)),
    count=st.integers(1, 64),
)
def test_spot_never_costs_more_than_on_demand_and_saves_the_difference(
    start: datetime, training: int, billed_share: Any, itype: str, count: int
) -> None:
    billable = int(training * billed_share)
    spot = cost(make_job(start_time=start, seconds=training, instance_type=itype,
                         instance_count=count, spot=True, billable_seconds=billable))  # fmt: skip
    on_demand = cost(
        make_job(start_time=start, seconds=training, instance_type=itype, instance_count=count)
    )
    assert spot.compute_usd <= on_demand.compute_usd
    assert spot.list_usd <= on_demand.list_usd
    assert close(spot.compute_usd + spot.spot_savings_usd, on_demand.compute_usd)
    assert close(spot.compute_usd, RATES.hourly[itype] * count * billable / 3600)


# -- config: any TOML gives Settings or ConfigError, and the CLI exits 0 or 2 ------------------
def _vocabulary() -> list[str]:
    """Key names the config parsers know (every identifier-like literal in their modules).

    The modules are imported, not named by path: one that moves fails here by name instead
    of leaving the fuzzing with fewer keys."""
    words = set()
    for module in (tracker.settings, tracker.alert.budgets, tracker.alert.rules,
                   tracker.schedule, tracker.reconcile.rules, tracker.estimate.rules):  # fmt: skip
        for node in ast.walk(ast.parse(inspect.getsource(module))):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and re.fullmatch(r"[a-z][a-z0-9_]{1,30}", node.value)
            ):
                words.add(node.value)
    return sorted(words)


KEYS = st.one_of(st.sampled_from(_vocabulary()), st.text(min_size=1, max_size=12))
SCALARS = st.one_of(
    st.sampled_from(
        [
            "us-east-1",
            "eu-west-1",
            "nope",
            "",
            "ml.m5.xlarge",
            "*/5 * * * *",
            "0 6 * * *",
            "arn:aws:iam::123456789012:role/x",
            "https://hooks.invalid/x",
            "log",
            "sns",
            "webhook",
            "email",
            "monthly",
            "daily",
            "2026-13-01",
            "sqlite:///x.db",
            "prices",
            "/nonexistent",
            "team",
            "100",
        ]
    ),  # fmt: skip
    st.text(max_size=20),
    st.integers(-(2**63), 2**63 - 1),
    st.integers(-5, 5000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.dates(),
    st.datetimes(timezones=st.one_of(st.none(), st.just(UTC))),
    st.times(),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=6,
)
TABLES = st.dictionaries(KEYS, VALUES, max_size=6)
SECTIONS = st.one_of(st.sampled_from(sorted(KNOWN_SECTIONS)), st.text(min_size=1, max_size=10))
DOCUMENTS = st.dictionaries(
    SECTIONS, st.one_of(TABLES, st.lists(TABLES, min_size=1, max_size=3), SCALARS), max_size=6
)


def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_string(key)


def toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_document(document: dict[str, Any]) -> str:
    lines = [f"{toml_key(k)} = {toml_value(v)}" for k, v in document.items()
             if not isinstance(v, dict | list) or (isinstance(v, list) and not v)]  # fmt: skip
    for name, value in document.items():
        tables = [value] if isinstance(value, dict) else value if isinstance(value, list) else []
        for table in tables:
            lines.append(
                f"[[{toml_key(name)}]]" if isinstance(value, list) else f"[{toml_key(name)}]"
            )
            lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def run_cli(config: Path) -> tuple[int, str]:
    from tracker.cli.main import main

    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(["--config", str(config), "--db", "sqlite://", "report", "--format", "json"])
    return code, err.getvalue()


def check_config(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "tracker.toml"
        config.write_text(text, encoding="utf-8")
        try:
            # What `tracker report` validates: the core sections and [reports] (issue 14:
            # a command reads, so checks, only the sections it needs).
            parse_settings(config, whole_file=False).reports  # noqa: B018
            valid = True
        except ConfigError as exc:
            assert "\n" not in str(exc)
            valid = False
        code, err = run_cli(config)
    if valid:
        assert code == 0, err
    else:
        assert code == 2, err
        assert err.startswith("Error: ") and err.count("\n") == 1, err


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=DOCUMENTS)
@example(document={"\n": {}})  # a newline in a section name once broke the one-line error
@example(document={"sources": [{"name": "a\u2028b", "regions": ["x\ny"]}]})
def test_any_toml_config_is_settings_or_exit_2_with_one_line(document: dict[str, Any]) -> None:
    check_config(toml_document(document))


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=200))
def test_any_text_as_config_is_settings_or_exit_2_with_one_line(text: str) -> None:
    check_config(text)


def test_generated_documents_are_real_toml_with_known_sections() -> None:
    """The serializer writes TOML that tomllib reads back (so the property is not vacuous)."""
    import tomllib

    document = {"sources": [{"name": "prod", "regions": ["us-east-1"]}],
                "collection": {"page_size": 0, "when": datetime(2026, 1, 1, tzinfo=UTC)},
                "odd key": {"nested": {"a": [1, 2.5, float("inf")]}}}  # fmt: skip
    parsed = tomllib.loads(toml_document(document))
    assert parsed["sources"] == [{"name": "prod", "regions": ["us-east-1"]}]
    assert parsed["collection"]["page_size"] == 0
    assert parsed["odd key"]["nested"]["a"][2] == float("inf")
    code, err = run_cli(_written(toml_document(document)))
    assert code == 2 and "collection.page_size" in err and "odd key" in err


def _written(text: str) -> Path:
    folder = Path(tempfile.mkdtemp())
    (folder / "tracker.toml").write_text(text)
    return folder / "tracker.toml"


def month_hours_reference(start: datetime, seconds: int) -> D:
    """Sum over the calendar months of [start, start + seconds) of seconds_in_month /
    (3600 x hours of that month): an independent reading of rule 5 (calendar module)."""
    total, cursor, end = D(0), start, start + timedelta(seconds=seconds)
    while cursor < end:
        days = calendar.monthrange(cursor.year, cursor.month)[1]
        first = cursor.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        following = first + timedelta(days=days)
        stop = min(following, end)
        part = D((stop - cursor) // timedelta(microseconds=1)) / D(10**6)
        total += part / (D(3600) * days * 24)
        cursor = stop
    return total


@PROPERTY
@given(
    start=starts,
    seconds=st.integers(1, 70 * 86400),
    volume=st.integers(1, 2000),
    count=st.integers(1, 16),
)
def test_storage_follows_the_hours_of_each_calendar_month(
    start: datetime, seconds: int, volume: int, count: int
) -> None:
    result = cost(make_job(start_time=start, seconds=seconds, instance_type="ml.c5.xlarge",
                           instance_count=count, volume_gb=volume))  # fmt: skip
    expected = (
        volume * count * RATES.storage_usd_per_gb_month * month_hours_reference(start, seconds)
    )
    assert abs(result.storage_usd - expected) <= TOLERANCE * max(1, expected)


@PROPERTY
@given(
    start=starts,
    seconds=st.integers(0, 5 * 86400),
    warm=st.one_of(st.none(), st.integers(0, 86400)),
    volume=st.integers(0, 2000),
    pct=st.decimals(min_value=0, max_value=100, places=2),
    plan=st.booleans(),
)
def test_discount_reduces_instance_usage_never_storage(
    start: datetime, seconds: int, warm: int | None, volume: int, pct: Decimal, plan: bool
) -> None:
    job = make_job(start_time=start, seconds=seconds, instance_type="ml.c5.xlarge",
                   volume_gb=volume, warm_pool_retained_seconds=warm,
                   training_plan_arn="arn:aws:sagemaker:us-east-1:1:training-plan/p" if plan else None)  # fmt: skip
    full = cost_job(job, RATES, NOW, POLICY)
    discounted = cost_job(job, replace(RATES, discount_pct=pct), NOW, POLICY)
    assert discounted.storage_usd == full.storage_usd
    assert discounted.list_usd == full.list_usd
    instance = full.compute_usd + full.warm_pool_usd
    assert close(discounted.effective_usd, instance * (1 - pct / 100) + full.storage_usd)
    assert full.storage_usd <= discounted.effective_usd <= discounted.list_usd
    for period in discounted.periods:
        assert close(
            period.effective_usd,
            (period.compute_usd + period.warm_pool_usd) * (1 - pct / 100) + period.storage_usd,
        )


@PROPERTY
@given(
    start=starts,
    seconds=st.integers(0, 3 * 86400),
    groups=groups_st,
    volume=st.integers(0, 2000),
    warm=st.one_of(st.none(), st.integers(0, 86400)),
)
def test_stored_parts_add_up_to_the_stored_total_per_job_and_per_day(
    start: datetime, seconds: int, groups: list[InstanceGroup], volume: int, warm: int | None
) -> None:
    result = cost(make_job(start_time=start, seconds=seconds, instance_groups=tuple(groups),
                           volume_gb=volume, warm_pool_retained_seconds=warm))  # fmt: skip
    stored = job_micros(result)
    parts = ("compute_micros", "warm_pool_micros", "storage_micros")
    assert sum(stored[key] for key in parts) == stored["list_micros"] == to_micros(result.list_usd)
    days = period_micros(result)
    for key in (*parts, "list_micros", "effective_micros", "spot_savings_micros"):
        assert sum(row[key] for _, row in days) == stored[key], key
    for _, row in days:
        assert sum(row[key] for key in parts) == row["list_micros"]
