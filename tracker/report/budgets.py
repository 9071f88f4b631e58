"""``tracker budgets`` and the dashboard's budget panel: budget standings as one Table."""

from __future__ import annotations

from collections.abc import Sequence

from tracker.alert.budgets import BudgetStatus, format_pct
from tracker.report.table import Column, Table, count, money, percent, text

BUDGET_COLUMNS: tuple[Column, ...] = (
    text("budget"), text("scope"), text("period_label", "period"),
    money("amount_usd", "amount", symbol=True), money("actual_usd", "actual", symbol=True),
    percent("pct_used", "used", places=2, symbol=True),
    money("forecast_usd", "forecast", symbol=True),
    percent("forecast_pct_used", "fcst %", places=2, symbol=True), text("crossed"),
    count("unpriced_jobs", "unpriced jobs"),
)  # fmt: skip


def budget_table(statuses: Sequence[BudgetStatus]) -> Table:
    """One row per budget: amount, actual, forecast at period end and thresholds crossed."""
    rows = [{**s.row(), "crossed": crossed_text(s)} for s in statuses]
    return Table("Budgets", list(BUDGET_COLUMNS), rows, view="budgets", blank="-")


def crossed_text(status: BudgetStatus) -> str:
    """The thresholds crossed, actual then forecast: ``50%, forecast 100%`` (``-`` for none)."""
    parts = [f"{format_pct(t)}%" for t in status.thresholds_crossed]
    parts += [f"forecast {format_pct(t)}%" for t in status.forecast_crossed]
    return ", ".join(parts) or "-"
