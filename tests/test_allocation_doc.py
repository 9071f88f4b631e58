"""The worked example of docs/allocation.md, run as written: its config, its jobs, then the
showback and ``--show-shared`` outputs it shows, character for character.

The doc's ``toml`` block with ``[[allocation.rules]]``, its ``allocation-jobs`` block and its
``text`` outputs are the single source of these numbers: if the code or the doc changes
alone, a test here fails. The jobs are stored before any rule exists (collected earlier), so
the rules reach them retroactively, through ``tracker recost``'s path.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tests.factories import make_job
from tracker.collect.recost import allocation_of, recost
from tracker.cost.engine import CostPolicy, cost_job
from tracker.records import Rates
from tracker.report.render import render
from tracker.report.spend import spend_rows
from tracker.report.views import ViewRequest, build
from tracker.settings import parse_settings
from tracker.store.database import Store

DOC = Path(__file__).resolve().parent.parent / "docs" / "allocation.md"
TEXT = DOC.read_text(encoding="utf-8")
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
# The real us-east-1 training rate of ml.g5.2xlarge (shared/prices/verified-training-rates.csv:
# AWS Price List usagetype USE1-Train:ml.g5.2xlarge).
RATES = Rates(hourly={"ml.g5.2xlarge": Decimal("1.515")})
WINDOW = {"since": date(2026, 11, 1), "until": date(2026, 11, 30)}


def block(kind: str, containing: str = "") -> str:
    """The first fenced block of ``kind`` (holding ``containing``) in the doc."""
    for body in re.findall(rf"^```{kind}\n(.*?)^```", TEXT, re.S | re.M):
        if containing in body:
            return body
    raise AssertionError(f"docs/allocation.md has no ```{kind} block with {containing!r}")


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, object]:
    """The doc's jobs stored without rules, then recosted with the doc's config."""
    folder = tmp_path_factory.mktemp("allocation-doc")
    config = folder / "tracker.toml"
    config.write_text(block("toml", "etl-role"))
    settings = parse_settings(config)
    store = Store.open(f"sqlite:///{folder / 'tracker.db'}")
    jobs = []
    for line in block("allocation-jobs").strip().splitlines():
        spec = json.loads(line)
        start = datetime.fromisoformat(spec.pop("start"))
        hours = spec.pop("hours")
        team = spec.pop("team", None)
        jobs.append(
            make_job(
                spec.pop("name"),
                team,
                seconds=int(hours * 3600),
                start_time=start,
                instance_type="ml.g5.2xlarge",
                team_source="tag" if team else "unallocated",
                **spec,
            )  # fmt: skip
        )
    store.save_jobs([(j, cost_job(j, RATES, NOW, CostPolicy()), {}) for j in jobs], NOW)
    recost(store, settings.price_book(), CostPolicy(), Decimal(0), NOW,
           allocation=allocation_of(settings))  # fmt: skip
    return store, settings


def rendered(store: Store, settings, **asked: object) -> str:
    request = ViewRequest("showback", **WINDOW, shared=settings.allocation.shared, **asked)  # type: ignore[arg-type]
    return render(build(store, request, NOW), "table")


def test_doc_rules_move_the_untagged_jobs_they_name(example) -> None:
    store, _ = example
    found = {r["job"]: (r["team"], r["team_source"]) for r in spend_rows(store, "job")}
    expected = {}
    for line in TEXT.splitlines():
        cells = [cell.strip().strip("`") for cell in line.strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 6:  # the worked example's jobs table
            expected[cells[0]] = (cells[4], cells[5])
    assert expected and found == expected


def test_doc_showback_with_shared_column(example) -> None:
    store, settings = example
    assert rendered(store, settings) == block("text", "Showback: spend by team and month")


def test_doc_show_shared_breakdown(example) -> None:
    store, settings = example
    assert rendered(store, settings, show_shared=True) == block("text", "shared costs split")
