"""Hostile labels in every format: control and bidi characters shown escaped, one rule.

A tag value (the team) holds one hostile character between ``ab`` and ``cd``: a bidi mark,
embedding, override or isolate (U+200E/F, U+202A-U+202E, U+2066-U+2069), a newline, carriage
return, tab, NUL, ESC, DEL, a C1 control, or a line/paragraph separator. Every format people
read shows it as the text table does (``ab\\u202ecd``: :func:`tracker.errors.printable`),
in table cells, headings (pivot columns), titles, chart tick labels, legend entries and
tooltips; no output holds the raw character, so no label is reversed or split. JSON carries
the value exactly, as data (its own escapes keep the character out of the text).

The organisation is tests/views_data.py's plus one job of the hostile team, so charts have
several series (legends are drawn) and few labels (every tick label is drawn).
"""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from matplotlib.text import Text

from tests.views_data import NOW, at, fill, make_job, make_store
from tracker.report.charts import figure, svg
from tracker.report.render import render
from tracker.report.spend import spend_rows, spend_table
from tracker.report.table import Table
from tracker.report.views import ViewRequest, build

HOSTILE = {
    "lrm-200e": "\u200e", "rlm-200f": "\u200f", "lre-202a": "\u202a", "rle-202b": "\u202b",
    "pdf-202c": "\u202c", "lro-202d": "\u202d", "rlo-202e": "\u202e", "lri-2066": "\u2066",
    "rli-2067": "\u2067", "fsi-2068": "\u2068", "pdi-2069": "\u2069", "newline": "\n",
    "carriage-return": "\r", "tab": "\t", "nul": "\x00", "esc": "\x1b", "del": "\x7f",
    "c1-nel": "\x85", "c1-csi": "\x9b", "line-separator": "\u2028",
    "paragraph-separator": "\u2029",
}  # fmt: skip
#: What the text table shows for each (the expected escape, written out).
ESCAPES = {
    "lrm-200e": "\\u200e", "rlm-200f": "\\u200f", "lre-202a": "\\u202a", "rle-202b": "\\u202b",
    "pdf-202c": "\\u202c", "lro-202d": "\\u202d", "rlo-202e": "\\u202e", "lri-2066": "\\u2066",
    "rli-2067": "\\u2067", "fsi-2068": "\\u2068", "pdi-2069": "\\u2069", "newline": "\\u000a",
    "carriage-return": "\\u000d", "tab": "\\u0009", "nul": "\\u0000", "esc": "\\u001b",
    "del": "\\u007f", "c1-nel": "\\u0085", "c1-csi": "\\u009b", "line-separator": "\\u2028",
    "paragraph-separator": "\\u2029",
}  # fmt: skip
TEXT_FORMATS = ("csv", "markdown", "html")
CHART_FORMATS = ("svg", "png")


def team(case: str) -> str:
    return f"ab{HOSTILE[case]}cd"


def shown(case: str) -> str:
    return f"ab{ESCAPES[case]}cd"


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Table]]:
    """Each case's reports, built once for the module (seven tests read each case's)."""
    return {}


def reports(
    stores: dict[str, dict[str, Table]], tmp_path_factory: pytest.TempPathFactory, case: str
) -> dict[str, Table]:
    """The outputs where the team is a label: a cell and a chart tick (spend by team), a
    legend entry (showback, trend), a heading and a tick label (showback pivoted by team)."""
    if case not in stores:
        store = make_store(tmp_path_factory.mktemp(case))
        fill(store, [make_job("labelled", team(case), start_time=at(11, 22))])
        stores[case] = {
            "spend-by-team": spend_table(spend_rows(store, "team"), "team"),
            "showback": build(store, ViewRequest("showback"), NOW),
            "showback-by-team": build(
                store, ViewRequest("showback", rows_by="month", cols_by="team"), NOW
            ),
            "trend": build(store, ViewRequest("trend"), NOW),
        }
        store.engine.dispose()
    return stores[case]


def _benign_chars(table: Table, fmt: str) -> set[str]:
    """The characters the format itself writes (newlines between rows, say)."""
    return set(str(render(table, fmt)))


@pytest.mark.parametrize("case", HOSTILE)
@pytest.mark.parametrize("fmt", TEXT_FORMATS)
def test_render_hostile_label_is_escaped_like_the_text_table(
    stores: dict[str, dict[str, Table]],
    tmp_path_factory: pytest.TempPathFactory,
    fmt: str,
    case: str,
) -> None:
    for name, table in reports(stores, tmp_path_factory, case).items():
        output = str(render(table, fmt))
        assert team(case) not in output, (name, "the raw label is in the output")
        if fmt == "markdown":
            # Markdown escapes the escape's backslash; it renders as the text table shows it.
            assert shown(case).replace("\\", "\\\\") in output, name
        else:
            assert shown(case) in output, name
        if fmt == "csv":
            cells = [c for row in csv.reader(io.StringIO(output)) for c in row]
            assert shown(case) in cells or f"'{shown(case)}" in cells or name == "showback"
            assert not [c for c in cells if HOSTILE[case] in c], name
        else:
            benign = _benign_chars(spend_table([], "team"), fmt)
            assert HOSTILE[case] in benign or HOSTILE[case] not in output, name


def _svg_texts(document: str) -> list[str]:
    """Every text node and attribute value of an SVG document (which must parse)."""
    root = ET.fromstring(document)
    values: list[str] = []
    for element in root.iter():
        values += [element.text or "", element.tail or "", *element.attrib.values()]
    return [v for v in values if v.strip()]


def _png_texts(table: Table) -> list[str]:
    return [t.get_text() for chart in table.charts for t in figure(chart).findobj(Text)]


@pytest.mark.parametrize("case", HOSTILE)
@pytest.mark.parametrize("fmt", CHART_FORMATS)
def test_chart_hostile_label_is_escaped_in_every_text(
    stores: dict[str, dict[str, Table]],
    tmp_path_factory: pytest.TempPathFactory,
    fmt: str,
    case: str,
) -> None:
    for name, table in reports(stores, tmp_path_factory, case).items():
        assert table.charts, name
        if fmt == "svg":
            texts = [t for chart in table.charts for t in _svg_texts(svg(chart))]
        else:
            texts = _png_texts(table)
        assert [t for t in texts if shown(case) in t], (name, "the label is not drawn escaped")
        assert not [t for t in texts if HOSTILE[case] in t], (name, "a raw character is drawn")


@pytest.mark.parametrize("case", ["rlo-202e", "newline", "nul"])
def test_chart_title_legend_and_tooltips_are_escaped(case: str) -> None:
    from decimal import Decimal

    from tracker.report.charts import Chart, Series

    chart = Chart(
        "stacked",
        f"spend of {team(case)}",
        (team(case), "plain"),
        (Series(team(case), (Decimal(1), Decimal(2))), Series("other", (Decimal(3), Decimal(4)))),
    )
    texts = _svg_texts(svg(chart))
    assert f"spend of {shown(case)}" in texts  # the <title> and aria-label
    assert any(t.startswith(f"{shown(case)} \u00b7 {shown(case)}: ") for t in texts)  # tooltip
    assert not [t for t in texts if HOSTILE[case] in t]
    drawn = [t.get_text() for t in figure(chart).findobj(Text)]
    assert f"spend of {shown(case)}" in drawn and shown(case) in drawn  # title, tick and legend
    assert not [t for t in drawn if HOSTILE[case] in t]


@pytest.mark.parametrize("case", HOSTILE)
def test_text_table_shows_the_escape_every_format_uses(
    stores: dict[str, dict[str, Table]], tmp_path_factory: pytest.TempPathFactory, case: str
) -> None:
    """The reference: the text table (already escaped before issue 12) and printable agree."""
    from tracker.errors import printable

    table = reports(stores, tmp_path_factory, case)["spend-by-team"]
    assert printable(team(case)) == shown(case)
    assert shown(case) in str(render(table, "table"))


@pytest.mark.parametrize("case", HOSTILE)
def test_json_carries_the_hostile_value_exactly_without_raw_characters(
    stores: dict[str, dict[str, Table]], tmp_path_factory: pytest.TempPathFactory, case: str
) -> None:
    table = reports(stores, tmp_path_factory, case)["spend-by-team"]
    output = str(render(table, "json"))
    assert HOSTILE[case] not in output.replace("\n", "") or HOSTILE[case] == "\n"
    assert team(case) in [row["team"] for row in json.loads(output)]


def test_printable_escapes_characters_beyond_the_basic_plane() -> None:
    from tracker.errors import printable

    assert printable("a\U000e0001b") == "a\\U000e0001b"  # a tag character (format, Cf)
    assert printable("caf\u00e9 \u00a0x") == "caf\u00e9 \u00a0x"  # letters and spaces stay


@pytest.mark.parametrize("case", HOSTILE)
def test_error_message_escapes_like_every_label(tmp_path: Path, case: str) -> None:
    """One rule for labels and errors: a config key holding the character is named in the
    error exactly as every format shows a label (``\\u000a``, not ``\\n``)."""
    from tracker.errors import ConfigError
    from tracker.settings import parse_settings

    config = tmp_path / "tracker.toml"
    key = "".join(c if c.isalnum() else f"\\u{ord(c):04x}" for c in team(case))  # TOML escapes
    config.write_text(f'[reports]\n"{key}" = 1\n')
    with pytest.raises(ConfigError) as error:
        parse_settings(config)
    assert error.value.problems[0].startswith(f"reports.{shown(case)}: unknown key")


def test_printable_escapes_lone_surrogates() -> None:
    """A file name that is not UTF-8 (read with surrogateescape) prints as escapes, never
    as a character no output can encode."""
    from tracker.errors import printable

    assert printable("bill-\udcff.csv") == "bill-\\udcff.csv"
    assert printable("bill-\udcff.csv").encode("utf-8")


def test_svg_of_hostile_chart_is_well_formed(tmp_path: Path) -> None:
    from decimal import Decimal

    from tracker.report.charts import Chart, Series

    chart = Chart("hbar", "t\x00\x01\x1f", ("a\x00b",), (Series("s", (Decimal(1),)),))
    ET.fromstring(svg(chart))  # XML 1.0 allows no NUL or C0 control: escaped, it parses
