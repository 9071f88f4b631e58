"""Every view in every format: golden files, and hostile tag values rendered inert.

The organisation and its costs are in tests/views_data.py (a table in its docstring).
Golden files live in tests/golden/; regenerate them with ``pytest --update-golden`` and
review the diff. The hostile job's team is ``<script>alert(1)</script>`` and its project
``=HYPERLINK("http://x","y")``.
"""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from matplotlib.text import Text

from tests import golden_support
from tests.views_data import HOSTILE_PROJECT, HOSTILE_TEAM, NOW, at, fill, make_job, make_store
from tracker.errors import InputError
from tracker.report import table as columns
from tracker.report.charts import figure
from tracker.report.render import (
    html_table,
    markdown_escape,
    neutralise,
    render,
    to_csv,
    to_json,
    to_text,
)
from tracker.report.spend import spend_rows, spend_table
from tracker.report.table import Table
from tracker.report.views import VIEWS, ViewRequest, build
from tracker.store.database import Store

TEXT_FORMATS = {"table": "txt", "csv": "csv", "json": "json", "markdown": "md", "html": "html"}
REQUESTS = {
    "showback": ViewRequest("showback"),
    "showback-pivot-month-team": ViewRequest("showback", rows_by="month", cols_by="team"),
    "top": ViewRequest("top", top=10),
    "waste": ViewRequest("waste"),
    "trend": ViewRequest("trend"),
    "anomalies": ViewRequest("anomalies"),
    "units": ViewRequest("units"),
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return make_store(tmp_path_factory.mktemp("formats"))


@pytest.mark.parametrize("fmt", TEXT_FORMATS)
@pytest.mark.parametrize("name", REQUESTS)
def test_render_view_matches_golden(
    store: Store, request: pytest.FixtureRequest, name: str, fmt: str
) -> None:
    report = build(store, REQUESTS[name], NOW)
    golden_support.check(request.config, f"{name}.{TEXT_FORMATS[fmt]}", render(report, fmt))


@pytest.mark.parametrize("fmt", TEXT_FORMATS)
def test_render_spend_by_team_matches_golden(
    store: Store, request: pytest.FixtureRequest, fmt: str
) -> None:
    rows = spend_rows(store, "team")
    golden_support.check(
        request.config, f"spend-by-team.{TEXT_FORMATS[fmt]}", render(spend_table(rows, "team"), fmt)
    )


def test_every_view_has_golden_files() -> None:
    """Each view appears in REQUESTS, so each has a golden file per text format."""
    assert {name.split("-")[0] for name in REQUESTS} == set(VIEWS)


def test_report_by_job_json_keeps_its_keys(store: Store) -> None:
    rows = json.loads(render(spend_table(spend_rows(store, "job"), "job"), "json"))
    # The keys scripts already read stay first and in order; issue 11's keys come after.
    assert list(rows[0])[:19] == [
        "job", "team", "status", "instance_type", "instance_count", "billable_seconds",
        "artifact_bytes", "account", "region", "arn", "jobs", "total_usd", "compute_usd",
        "spot_savings_usd", "warm_pool_usd", "storage_usd", "effective_usd",
        "artifact_usd_per_month", "unpriced_jobs",
    ]  # fmt: skip
    assert list(rows[0])[19:] == [
        "flags", "unpriced_parts", "plan_value_usd", "list_usd", "team_source",  # issue 16
    ]  # fmt: skip
    assert {r["job"]: r["total_usd"] for r in rows}["vision-fail"] == 3.0


# -- hostile tag values --------------------------------------------------------------------
def all_outputs(store: Store, fmt: str) -> dict[str, str]:
    outputs = {name: render(build(store, req, NOW), fmt) for name, req in REQUESTS.items()}
    for by in ("team", "project", "job"):
        outputs[f"spend-by-{by}"] = render(spend_table(spend_rows(store, by), by), fmt)
    return outputs


def test_html_escapes_hostile_tags_everywhere(store: Store) -> None:
    for name, text in all_outputs(store, "html").items():
        assert "<script" not in text.lower(), name
        assert "<a " not in text, name  # reports link nothing; a tag value cannot add a link
        if name not in (
            "spend-by-project",
            "waste",
            "anomalies",
        ):  # the hostile team has no waste or anomaly
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text, name


def test_html_report_is_self_contained_with_inline_svg(store: Store) -> None:
    text = render(build(store, ViewRequest("showback"), NOW), "html")
    assert "<svg" in text and "</svg>" in text
    for remote in ("http://", "https://", "src=", "<link", "@import"):
        assert remote not in text.replace('xmlns="http://www.w3.org/2000/svg"', "").replace(
            "&quot;http://x&quot;", ""
        ), remote
    assert "default-src 'none'" in text


def test_csv_neutralises_formula_cells(store: Store) -> None:
    for name, text in all_outputs(store, "csv").items():
        for row in csv.reader(io.StringIO(text)):
            for cell in row:
                assert not cell or cell[0] not in "=+-@\t\r" or _is_number(cell), (name, cell)
    top = list(
        csv.DictReader(io.StringIO(render(build(store, ViewRequest("top", top=20), NOW), "csv")))
    )
    assert {r["job"]: r["project"] for r in top}["hostile"] == "'" + HOSTILE_PROJECT


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_csv_neutralises_hostile_pivot_column_names(tmp_path: Path) -> None:
    store = fill(make_store(tmp_path), [make_job("formula-team", "=1+2", start_time=at(11, 22))])
    report = build(store, ViewRequest("showback", rows_by="month", cols_by="team"), NOW)
    header = next(csv.reader(io.StringIO(render(report, "csv"))))
    assert "'=1+2" in header and "=1+2" not in header


def test_markdown_escapes_markup_and_links(store: Store) -> None:
    for name, text in all_outputs(store, "markdown").items():
        assert "<script>" not in text, name
    top = render(build(store, ViewRequest("top", top=20), NOW), "markdown")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in top
    assert (
        '=HYPERLINK("http://x","y")' in top
    )  # plain text in Markdown; only CSV evaluates formulas


def test_markdown_escape_covers_links_and_pipes() -> None:
    assert markdown_escape("[click](http://evil)|x") == "\\[click\\](http://evil)\\|x"
    assert markdown_escape("<img src=x onerror=alert(1)>") == "&lt;img src=x onerror=alert(1)&gt;"
    # one line: the escape the text table shows, its backslash escaped for Markdown
    assert markdown_escape("a\nb") == "a\\\\u000ab"


def test_table_shows_control_characters_as_escapes(tmp_path: Path) -> None:
    store = fill(
        make_store(tmp_path),
        [make_job("ansi", "red\x1b[31mteam\u202e", start_time=at(11, 23))],
    )
    text = render(spend_table(spend_rows(store, "team"), "team"), "table")
    assert "\x1b" not in text and "\u202e" not in text
    assert "red\\u001b[31mteam\\u202e" in text


def test_json_keeps_hostile_values_as_data(store: Store) -> None:
    rows = json.loads(render(build(store, ViewRequest("top", top=20), NOW), "json"))
    hostile = next(r for r in rows if r["job"] == "hostile")
    assert hostile["team"] == HOSTILE_TEAM and hostile["project"] == HOSTILE_PROJECT


@pytest.mark.parametrize("value", ["=cmd", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_neutralise_prefixes_formula_starts(value: str) -> None:
    assert neutralise(value) == "'" + value


def test_neutralise_leaves_plain_text() -> None:
    assert neutralise("nlp") == "nlp" and neutralise("") == ""


# -- PNG -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", REQUESTS)
def test_render_png_is_a_png(store: Store, name: str) -> None:
    data = render(build(store, REQUESTS[name], NOW), "png")
    assert isinstance(data, bytes) and data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 2000


def test_render_png_takes_dollar_signs_literally(tmp_path: Path) -> None:
    store = fill(
        make_store(tmp_path),
        [make_job("mathtext", "$\\alpha^{2}$ team", start_time=at(11, 24))],
    )
    table = spend_table(spend_rows(store, "team"), "team")
    data = render(table, "png")
    assert data.startswith(b"\x89PNG")
    # The label must reach the figure as typed and be drawn as plain text, not mathtext.
    label = "$\\alpha^{2}$ team"
    texts = [t for t in figure(table.charts[0]).findobj(Text) if t.get_text() == label]
    assert texts, "the team label is missing from the chart"
    assert all(not t.get_parse_math() for t in texts)


def test_render_unknown_format_is_input_error(store: Store) -> None:
    with pytest.raises(InputError, match="--format 'pdf'"):
        render(build(store, ViewRequest("top"), NOW), "pdf")


def test_render_empty_view_says_so(tmp_path: Path) -> None:
    empty = Store.open(f"sqlite:///{tmp_path / 'empty.db'}")
    report = build(empty, ViewRequest("top"), NOW)
    assert "No spend in this window." in render(report, "table")
    assert json.loads(render(report, "json")) == []
    assert "nothing to chart" in render(report, "html")


# -- the golden switch -----------------------------------------------------------------------
class _Config:
    """A pytest config stand-in answering only ``--update-golden``."""

    def __init__(self, update: bool) -> None:
        self.update = update

    def getoption(self, name: str) -> bool:
        assert name == "--update-golden"
        return self.update


def test_golden_update_rewrites_and_fails_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(golden_support, "GOLDEN", tmp_path / "golden")
    (tmp_path / "golden").mkdir()
    (tmp_path / "golden" / "x.txt").write_text("old\n")
    with pytest.raises(pytest.fail.Exception, match=r"rewrote golden file \S*golden/x\.txt"):
        golden_support.check(_Config(True), "x.txt", "new\n")  # type: ignore[arg-type]
    assert (tmp_path / "golden" / "x.txt").read_text() == "new\n"
    golden_support.check(_Config(True), "x.txt", "new\n")  # type: ignore[arg-type]  # unchanged: passes


def test_golden_environment_variable_does_not_pass_a_difference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(golden_support, "GOLDEN", tmp_path / "golden")
    monkeypatch.setenv("UPDATE_GOLDEN", "1")
    (tmp_path / "golden").mkdir()
    (tmp_path / "golden" / "x.txt").write_text("old\n")
    with pytest.raises(AssertionError, match="output differs"):
        golden_support.check(_Config(False), "x.txt", "new\n")  # type: ignore[arg-type]
    assert (tmp_path / "golden" / "x.txt").read_text() == "old\n"


# -- the renderers on a hand-made table ---------------------------------------------------------
def _typed_table() -> Table:
    return Table(
        "Typed",
        [columns.text("name"), columns.count("jobs"), columns.money("cost_usd", "cost", symbol=True),
         columns.percent("share_pct", "share", places=2, symbol=True), columns.money("plain_usd")],
        [{"name": "a", "jobs": 1200, "cost_usd": Decimal("-5.00"), "share_pct": Decimal("12.5"),
          "plain_usd": Decimal("1234.5")},
         {"name": "b", "jobs": 3, "cost_usd": Decimal("7.25"), "share_pct": None, "plain_usd": None}],
        total={"name": "TOTAL", "jobs": 1203, "cost_usd": Decimal("2.25")},
        blank="-",
        titled=False,
    )  # fmt: skip


def test_text_table_formats_and_aligns_by_column_kind() -> None:
    """Money with the one formatter ($ only where asked), counts with separators, numbers
    right-aligned, a missing value as the table's blank, an absent total cell empty."""
    assert to_text(_typed_table()).splitlines() == [
        "name    jobs    cost   share  plain_usd",
        "-----  -----  ------  ------  ---------",
        "a      1,200  -$5.00  12.50%   1,234.50",
        "b          3   $7.25       -          -",
        "-----  -----  ------  ------  ---------",
        "TOTAL  1,203   $2.25",
    ]


def test_csv_and_json_keep_keys_and_bare_numbers() -> None:
    table = _typed_table()
    assert to_csv(table).splitlines()[:2] == [
        "name,jobs,cost_usd,share_pct,plain_usd",
        "a,1200,-5.00,12.50,1234.50",
    ]
    assert json.loads(to_json(table))[1] == {
        "name": "b", "jobs": 3, "cost_usd": 7.25, "share_pct": None, "plain_usd": None,
    }  # fmt: skip


def test_html_table_escapes_cells_and_link_targets() -> None:
    table = Table("T", [columns.text("team")], [{"team": '<b>"x"</b>'}])
    page = render(Table("T", table.columns, table.rows), "html")
    assert "<b>" not in page and "&lt;b&gt;" in page
    grid = html_table(table, {"team": lambda v: f"/team?name={v}"})
    from tracker.report.templating import environment

    macro = environment().get_template("macros.html.j2").module.table
    out = str(macro(grid))
    assert 'href="/team?name=&lt;b&gt;&#34;x&#34;&lt;/b&gt;"' in out
    assert "<b>" not in out


def test_templates_are_package_files() -> None:
    """The HTML templates ship inside the package (pyproject package-data lists them)."""
    from importlib.resources import files

    for package, names in (("tracker.report", ("page.html.j2", "report.html.j2", "macros.html.j2",
                                               "chart.svg.j2", "style.css.j2")),
                           ("tracker.web", ("layout.html.j2", "overview.html.j2"))):  # fmt: skip
        folder = files(package) / "templates"
        for name in names:
            assert (folder / name).is_file(), f"{package}: templates/{name}"
    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    assert '"tracker.report" = ["templates/*.j2"]' in pyproject
    assert '"tracker.web" = ["templates/*.j2"]' in pyproject
