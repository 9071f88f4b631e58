"""``tracker lineage``: what a registered model cost to produce, on the hand-made lineage of
tests/lineage_data.py (its docstring has the arithmetic).

churn-xgb/3 (a model package) was produced by churn-sweep-3; its tuning job also ran
churn-sweep-1 (Failed) and churn-sweep-2 (Stopped) in the same account and region:

| job           | why             | total | compute | warm pool |
|---------------|-----------------|-------|---------|-----------|
| churn-sweep-1 | same tuning job | 0.83  | 0.83    | 0.00      |
| churn-sweep-2 | same tuning job | 0.42  | 0.42    | 0.00      |
| churn-sweep-3 | produced it     | 1.92  | 1.50    | 0.42      |
| TOTAL         |                 | 3.17  | 2.75    | 0.42      |

Failed attempts 0.83 + 0.42 = 1.25. Not counted: eu-west-1's churn-sweep-1 (same tuning job
name, another region), ``unrelated`` and llm-ft-1.
"""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.lineage_data import DUP_ARNS, PACKAGE_ARN, make_store
from tracker.cli.main import main
from tracker.errors import InputError
from tracker.report.lineage import find_lineage, lineage_json, lineage_table
from tracker.report.render import render
from tracker.store.database import Store

SWEEP = ["churn-sweep-1", "churn-sweep-2", "churn-sweep-3"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return make_store(tmp_path_factory.mktemp("lineage"))


def lineage_cli(
    store: Store, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    code = main(["lineage", *args, "--db", store.url])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_lineage_json_is_the_sweep_with_its_failed_attempts(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = lineage_cli(store, capsys, "churn-xgb/3", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert (data["total_usd"], data["failed_attempts_usd"]) == (3.17, 1.25)
    assert data["model"] | {"id": None} == {
        "id": None, "name": "churn-xgb/3", "arn": PACKAGE_ARN, "kind": "model_package",
        "account": "111122223333", "region": "us-east-1",
        "model_data_url": "s3://ml-models/churn/churn-sweep-3/output/model.tar.gz",
        "created_at": "2026-03-10T12:00:00+00:00", "produced_by": ["churn-sweep-3"],
        "jobs": 3, "failed_jobs": 2,
    }  # fmt: skip
    jobs = {(j["job"], j["region"]): j for j in data["jobs"]}
    assert list(jobs) == [(name, "us-east-1") for name in SWEEP]
    shown = {
        name: (j["status"], j["reasons"], j["total_usd"], j["compute_usd"], j["warm_pool_usd"])
        for (name, _), j in jobs.items()
    }
    assert shown == {
        "churn-sweep-1": ("Failed", ["same tuning job"], 0.83, 0.83, 0.0),
        "churn-sweep-2": ("Stopped", ["same tuning job"], 0.42, 0.42, 0.0),
        "churn-sweep-3": ("Completed", ["produced it"], 1.92, 1.5, 0.42),
    }
    sweep_3 = jobs[("churn-sweep-3", "us-east-1")]
    assert (sweep_3["instance_type"], sweep_3["instance_count"], sweep_3["billable_seconds"]) == (
        "ml.g5.2xlarge", 1, 3600,
    )  # fmt: skip
    assert sweep_3["start_time"] == "2026-03-10T10:00:00+00:00"
    assert sweep_3["end_time"] == "2026-03-10T11:00:00+00:00"
    assert data["totals"]["compute_usd"] + data["totals"]["warm_pool_usd"] == 3.17
    assert data["unpriced_jobs"] == 0
    # JSON stays parseable alone on stdout; the summary is said on stderr too.
    assert "note: total cost to produce: 3.17 USD over 3 jobs" in err
    assert "note: cost of failed attempts: 1.25 USD (2 jobs failed or stopped)" in err


def test_lineage_json_carries_every_report_item_key(store: Store) -> None:
    """The *_usd keys of ``report --by job`` rows, from the cost-item catalogue."""
    from tracker.cost.items import REPORT_ITEMS

    row = lineage_json(find_lineage(store, "churn-xgb/3"))["jobs"][0]
    assert {item.key for item in REPORT_ITEMS} <= set(row)
    assert {"flags", "unpriced_parts", "plan_value_usd", "team", "arn"} <= set(row)


def test_lineage_table_shows_rows_total_and_summary(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = lineage_cli(store, capsys, PACKAGE_ARN)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "Cost to produce model churn-xgb/3"
    assert f"model package {PACKAGE_ARN}" in lines[1] and "produced by churn-sweep-3" in lines[1]
    body = {line.split()[0]: line.split() for line in lines if line.startswith(("churn", "TOTAL"))}
    assert list(body) == [*SWEEP, "TOTAL"]
    assert body["churn-sweep-1"][1:5] == ["Failed", "same", "tuning", "job"]
    assert body["churn-sweep-3"][1:4] == ["Completed", "produced", "it"]
    # total, compute, warm pool, storage, spot savings; the TOTAL row sums billable seconds.
    assert body["churn-sweep-3"][-5:] == ["1.92", "1.50", "0.42", "0.00", "0.00"]
    assert body["TOTAL"][1:] == ["5,600", "3.17", "2.75", "0.42", "0.00", "0.00"]
    assert "note: total cost to produce: 3.17 USD over 3 jobs" in out
    assert "note: cost of failed attempts: 1.25 USD (2 jobs failed or stopped)" in out
    assert "unrelated" not in out and "eu-west-1" not in out


def test_lineage_html_and_markdown_render_the_same_table(store: Store, tmp_path: Path) -> None:
    table = lineage_table(find_lineage(store, "churn-xgb/3"))
    page = tmp_path / "churn.html"
    assert main(["lineage", "churn-xgb/3", "--format", "html", "--output", str(page),
                 "--db", store.url]) == 0  # fmt: skip
    html = page.read_text()
    assert html.startswith("<!doctype html>") and "<script" not in html
    assert "<h1>Cost to produce model churn-xgb/3</h1>" in html
    assert "<tr class=total><td>TOTAL</td>" in html and '<td class="num">3.17</td>' in html
    assert "cost of failed attempts: 1.25 USD" in html
    markdown = str(render(table, "markdown"))
    assert "## Cost to produce model churn-xgb/3" in markdown
    assert "| TOTAL |" in markdown and "| 3.17 |" in markdown


def test_lineage_csv_rows_add_up_to_the_total(store: Store) -> None:
    """Each row's shown parts add up to its shown total; the rows' totals to 3.17."""
    table = lineage_table(find_lineage(store, "churn-xgb/3"))
    rows = list(csv.DictReader(io.StringIO(str(render(table, "csv")))))
    assert [r["job"] for r in rows] == SWEEP
    assert [r["reasons"] for r in rows] == ["same tuning job", "same tuning job", "produced it"]
    for row in rows:
        parts = sum(Decimal(row[k]) for k in ("compute_usd", "warm_pool_usd", "storage_usd"))
        assert parts == Decimal(row["total_usd"]), row["job"]
    assert sum(Decimal(r["total_usd"]) for r in rows) == Decimal("3.17")


def test_lineage_flags_an_unpriced_producer_instead_of_a_silent_zero(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = lineage_cli(store, capsys, "llm-ft")
    assert code == 0
    assert "ml.trn1.32xlarge instance time" in out.split("TOTAL")[0]  # the row names the part
    assert "not counting the unpriced parts of 1 job" in out
    assert "llm-ft-1: no price for ml.trn1.32xlarge instance time" in out
    data = lineage_json(find_lineage(store, "llm-ft"))
    assert data["unpriced_jobs"] == 1
    assert data["jobs"][0]["unpriced_parts"] == ["ml.trn1.32xlarge instance time"]


def test_lineage_of_a_model_without_a_collected_producer(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = lineage_cli(store, capsys, "orphan")
    assert (code, err) == (0, "")
    assert "No collected job produced this model." in out
    notes = [line for line in out.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "no collected producing job" in notes[0]
    assert "s3://ml-models/orphan/model.tar.gz" in notes[0]
    code, out, err = lineage_cli(store, capsys, "orphan", "--format", "json")
    data = json.loads(out)
    assert (code, data["jobs"], data["total_usd"], data["failed_attempts_usd"]) == (0, [], 0, 0)
    assert data["model"]["produced_by"] == [] and "no collected producing job" in err


def test_lineage_unknown_model_is_one_line_exit_2(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = lineage_cli(store, capsys, "no-such-model")
    assert (code, out) == (2, "")
    assert (
        err.startswith("Error: model 'no-such-model': no collected model") and err.count("\n") == 1
    )


def test_lineage_ambiguous_name_lists_the_arns(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = lineage_cli(store, capsys, "dup")
    assert (code, out) == (2, "")
    assert "several models have this name; pass an ARN" in err and err.count("\n") == 1
    assert all(arn in err for arn in DUP_ARNS)
    code, out, _ = lineage_cli(store, capsys, DUP_ARNS[1], "--format", "json")
    assert code == 0 and json.loads(out)["model"]["region"] == "eu-west-1"


def test_lineage_empty_reference_is_refused() -> None:
    from tracker.report.lineage import check_model_ref

    with pytest.raises(InputError, match="expected a model or model package ARN or name"):
        check_model_ref("  ")


def test_lineage_command_end_to_end(store: Store) -> None:
    """The real command in a subprocess: exit codes and one-line errors."""
    ok = run_cli("lineage", "churn-xgb/3", "--format", "json", "--db", store.url)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["total_usd"] == 3.17
    bad = run_cli("lineage", "nope", "--db", store.url)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("Error: model 'nope'") and bad.stderr.count("\n") == 1
    png = run_cli("lineage", "churn-xgb/3", "--format", "png", "--db", store.url)
    assert png.returncode == 2 and "invalid choice: 'png'" in png.stderr


def test_docs_worked_example_is_the_real_output(store: Store) -> None:
    """docs/lineage.md's example block is what ``tracker lineage churn-xgb/3`` prints."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "lineage.md").read_text()
    block = doc.split("<!-- lineage-example -->\n```text\n")[1].split("```")[0]
    assert block == render(lineage_table(find_lineage(store, "churn-xgb/3")), "table")
