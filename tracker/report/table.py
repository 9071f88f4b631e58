"""The Table model: what every output of the tracker shows, before it is rendered.

A :class:`Table` is data only: typed columns, rows of plain values (money as ``Decimal``
cents, counts as ``int``), an optional totals row, charts, and notes that say what the
numbers mean and what is not known. ``tracker.report.render`` turns one into text, CSV,
JSON, Markdown, HTML or a PNG chart; a column's kind decides how its cells are formatted
and aligned, so no caller formats a number itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tracker.cost.items import REPORT_ITEMS

if TYPE_CHECKING:
    from tracker.report.charts import Chart

TEXT = "text"
MONEY = "money"
COUNT = "count"
PERCENT = "percent"
NUMBER = "number"
DATE = "date"
KINDS = (TEXT, MONEY, COUNT, PERCENT, NUMBER, DATE)
NUMERIC = frozenset({MONEY, COUNT, PERCENT, NUMBER})
NO_SPEND = "No spend in this window."


@dataclass(frozen=True)
class Column:
    """One column: ``key`` names it in rows, CSV headers and JSON; ``label`` is the heading
    of the text, Markdown and HTML tables when it differs from the key.

    ``places`` is the decimals of percent and number cells; ``symbol`` shows money as
    ``$1.00`` and percentages as ``12.50%`` in text formats (CSV and JSON stay bare numbers).
    """

    key: str
    kind: str = TEXT
    label: str = ""
    places: int = 2
    symbol: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"column {self.key!r}: kind {self.kind!r} not in {KINDS}")

    @property
    def heading(self) -> str:
        return self.label or self.key

    @property
    def numeric(self) -> bool:
        return self.kind in NUMERIC


def text(key: str, label: str = "") -> Column:
    return Column(key, TEXT, label)


def money(key: str, label: str = "", *, symbol: bool = False) -> Column:
    return Column(key, MONEY, label, symbol=symbol)


def count(key: str, label: str = "") -> Column:
    return Column(key, COUNT, label)


def percent(key: str, label: str = "", *, places: int = 1, symbol: bool = False) -> Column:
    return Column(key, PERCENT, label, places=places, symbol=symbol)


def number(key: str, label: str = "", *, places: int = 2) -> Column:
    return Column(key, NUMBER, label, places=places)


#: The money columns of ``report --by`` rows, from the cost-item catalogue.
REPORT_MONEY: tuple[Column, ...] = tuple(money(item.key) for item in REPORT_ITEMS)


def infer(key: str, *, percent_places: int = 2) -> Column:
    """A column typed by the project's naming convention: ``*_usd*`` is money, ``*_pct`` a
    percentage, ``jobs``/``*_jobs``/``*_count`` a count, anything else text."""
    if key.endswith("_usd") or "_usd_per_" in key:
        return money(key)
    if key.endswith("_pct"):
        return percent(key, places=percent_places)
    if key == "jobs" or key.endswith(("_jobs", "_count", "_seconds", "_bytes")):
        return count(key)
    return text(key)


def infer_all(keys: Iterable[str], *, percent_places: int = 2, **kinds: Column) -> list[Column]:
    """:func:`infer` for each key, except those given explicitly by keyword."""
    return [kinds.get(key) or infer(key, percent_places=percent_places) for key in keys]


@dataclass
class Table:
    """Rendered-ready rows: columns, rows, an optional totals row, charts and notes.

    ``record_columns`` are the columns of CSV and JSON when they carry more keys than the
    tables people read (``tracker reconcile``); by default they are ``columns``. ``blank`` is
    how a missing value reads in text formats; ``empty`` what a table without rows says.
    ``titled`` is False for outputs that scripts read as a bare table (``report --by``):
    their text and Markdown start at the column headings; HTML pages always have a title.
    """

    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    view: str = ""
    total: dict[str, Any] | None = None
    charts: list[Chart] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    subtitle: str = ""
    record_columns: list[Column] | None = None
    blank: str = ""
    empty: str = NO_SPEND
    titled: bool = True

    @property
    def keys(self) -> list[str]:
        """The keys of the columns people read, in order."""
        return [c.key for c in self.columns]

    @property
    def records(self) -> list[Column]:
        """The columns of CSV and JSON."""
        return self.record_columns if self.record_columns is not None else self.columns

    def table_rows(self) -> list[dict[str, Any]]:
        """The rows, then the totals row when there is one."""
        return [*self.rows, self.total] if self.total and self.rows else list(self.rows)

    def column(self, key: str) -> Column:
        for one in self.columns:
            if one.key == key:
                return one
        raise KeyError(key)
