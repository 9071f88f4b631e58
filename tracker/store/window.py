"""What a spend question asks, without SQLAlchemy: the window and filters (:class:`Window`),
the dimensions the spend rollup keeps, and whether the rollup answers a question.

Imported by the query layer (``tracker.store.query``) and by the light read path
(``tracker.store.lite``), so a report that the rollup answers starts without importing the ORM.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from tracker.errors import InputError, printable

#: Dimensions whose rows come in time order (the others most expensive first).
CHRONOLOGICAL = ("day", "month")
#: The report dimensions the spend rollup (``spend_days``) keeps, and the column of each in
#: ``jobs`` and ``spend_days``.
ROLLED = {
    "team": "team", "project": "project", "user": "user", "instance_type": "instance_type",
    "account": "account_id", "region": "region", "status": "status",
}  # fmt: skip
# Engine flags that name a part of a job left without a price (storage-unpriced,
# artifact-unpriced, unpriced:<instance type>, unpriced:tokens) all contain this.
UNPRICED_MARK = "unpriced"


@dataclass(frozen=True)
class Window:
    """Inclusive UTC days and equality filters (team, project, account, ...) for a query."""

    since: date | None = None
    until: date | None = None
    filters: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Where filters from every face (CLI flags, URL parameters, config keys) enter SQL:
        # PostgreSQL text cannot hold NUL, so it is refused here in one line for every
        # backend, rather than as a driver error on one of them.
        for name, value in self.filters.items():
            check_text(name, value)

    def with_filter(self, name: str, value: str) -> Window:
        return Window(self.since, self.until, {**self.filters, name: value})

    def without_filter(self, name: str) -> Window:
        return Window(self.since, self.until, {k: v for k, v in self.filters.items() if k != name})


def check_text(name: str, value: str | None) -> None:
    """Text from a user that a query compares with: no NUL (InputError naming ``name``).
    Length needs no bound: a value is one bound parameter, however long."""
    if value is not None and "\x00" in value:
        shown = printable(value)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise InputError(f"{name} '{shown}': a value cannot hold a NUL character")


def rolled(by: Sequence[str], window: Window) -> bool:
    """Whether the rollup (``spend_days``) answers a grouping by ``by`` within ``window``:
    every dimension and filter is one it keeps (not ``job``), days and months included."""
    kept = (*ROLLED, *CHRONOLOGICAL)
    return all(name in kept for name in by) and all(
        name in ROLLED for name, value in window.filters.items() if value is not None
    )
