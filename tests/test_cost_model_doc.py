"""Every worked example in docs/cost-model.md, run through the engine and checked to the cent.

The doc's ``cost-example`` blocks are the single source of these numbers: if the engine
or the doc changes alone, a test here fails.
"""

from __future__ import annotations

import json
import re
from dataclasses import fields
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tests.factories import make_job
from tracker.cost.engine import CostPolicy, cost_job, job_micros, period_micros
from tracker.cost.items import COST_ITEMS
from tracker.records import InstanceGroup, JobCost, JobRecord, Rates, cents
from tracker.report.spend import shown_usd

DOC = Path(__file__).resolve().parent.parent / "docs" / "cost-model.md"
BLOCK = re.compile(r"^```cost-example\n(.*?)^```", re.S | re.M)
DEFAULT_NOW = "2026-03-11T00:00:00Z"
MONEY_ITEMS = {f.name for f in fields(JobCost) if f.name.endswith(("_usd", "_per_month"))}
JOB_FIELDS = {f.name for f in fields(JobRecord)}
RATES_MONEY = ("storage_usd_per_gb_month", "s3_usd_per_gb_month", "usd_per_million_tokens")


def parse_examples(text: str) -> list[dict]:
    """Each block as a dict: ``name`` and ``rule`` raw, every other value JSON."""
    examples = []
    for body in BLOCK.findall(text):
        example: dict = {}
        for line in body.strip().splitlines():
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            example[key] = value if key == "name" else json.loads(value)
        examples.append(example)
    return examples


EXAMPLES = parse_examples(DOC.read_text(encoding="utf-8"))


def build_job(spec: dict, name: str) -> JobRecord:
    unknown = set(spec) - JOB_FIELDS
    assert not unknown, f"{name}: unknown JobRecord fields {sorted(unknown)}"
    values = dict(spec)
    for key in ("creation_time", "last_modified_time", "start_time", "end_time"):
        if key in values:
            values[key] = datetime.fromisoformat(values[key])
    values["instance_groups"] = tuple(
        InstanceGroup(g["instance_type"], g["count"]) for g in values.get("instance_groups", ())
    )
    # An example states every fact its arithmetic uses: what it leaves out AWS did not report,
    # so the factory's own interval and instances must not fill it in.
    unreported = {"start_time": None, "instance_type": None, "instance_count": None}
    return make_job(name, seconds=None, **{**unreported, **values})


def build_rates(spec: dict) -> Rates:
    return Rates(
        hourly={itype: Decimal(rate) for itype, rate in spec.get("hourly", {}).items()},
        discount_pct=Decimal(spec.get("discount_pct", "0")),
        **{key: Decimal(spec[key]) for key in RATES_MONEY if key in spec},
    )


def build_policy(spec: dict | None) -> CostPolicy:
    if not spec:
        return CostPolicy()
    families = spec.get("local_storage_families")
    return CostPolicy(local_storage_families=frozenset(families))


def run(example: dict) -> JobCost:
    name = example["name"]
    now = datetime.fromisoformat(example.get("now", DEFAULT_NOW))
    return cost_job(
        build_job(example["job"], name),
        build_rates(example["rates"]),
        now,
        build_policy(example.get("policy")),
    )


def test_doc_has_examples_for_every_rule():
    rules = {int(r) for ex in EXAMPLES for r in str(ex["rule"]).split(",")}
    assert rules >= set(range(1, 12)), (
        f"rules without a worked example: {set(range(1, 12)) - rules}"
    )


def test_doc_example_names_are_unique():
    names = [ex["name"] for ex in EXAMPLES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("example", EXAMPLES, ids=[ex["name"] for ex in EXAMPLES])
def test_doc_example_matches_engine(example: dict):
    cost = run(example)
    expect = example["expect"]
    for key, value in expect.items():
        if key in MONEY_ITEMS:
            assert cents(getattr(cost, key)) == Decimal(value), key
    assert list(cost.flags) == expect["flags"]
    assert cost.unpriced is expect["unpriced"]
    days = {p.day: p for p in cost.periods}
    for day, items in expect.get("periods", {}).items():
        for key, value in items.items():
            assert cents(getattr(days[day], key)) == Decimal(value), (day, key)
    micros = {day.isoformat(): row for day, row in period_micros(cost)}
    for day, items in expect.get("period_micros", {}).items():
        for key, value in items.items():
            assert micros[day][key] == value, (day, key)
    stored = job_micros(cost)
    for key, value in expect.get("stored", {}).items():
        assert stored[key] == value, key
    shown = shown_usd({item.name: stored[item.column] for item in COST_ITEMS}, COST_ITEMS)
    for key, value in expect.get("shown", {}).items():
        assert shown[key] == Decimal(value), key


def test_doc_example_expectations_name_real_items():
    allowed = MONEY_ITEMS | {"flags", "unpriced", "periods", "period_micros", "stored", "shown"}
    for example in EXAMPLES:
        assert set(example["expect"]) <= allowed, example["name"]
        assert {"flags", "unpriced"} <= set(example["expect"]), example["name"]
