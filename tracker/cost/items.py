"""The cost-item catalogue: every money amount the tracker knows about a job, declared once.

The store's money columns, the ``report`` columns and JSON keys, the FOCUS export and the
dashboard's tables are all derived from :data:`COST_ITEMS`; adding an item is one entry here
(plus a migration for its column). Imports nothing of the project: pure data.

Each item is kept in integer micro-dollars in the database (``<column>``) and shown in USD
rounded to cents (``<key>``). ``in_total`` says whether it adds to the job's total (list
cost); items outside the total (spot savings, plan value, effective cost, the S3 run-rate)
are shown beside it, never summed into it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CostItem:
    """One money amount of a job's cost.

    name: the item's short name (``compute``), also the key of aggregated query rows.
    key: the JSON key and report column (``compute_usd``).
    column: the integer micro-dollar column in ``jobs`` (and ``job_cost_days``, ``estimates``).
    label: a human column heading.
    unit: what the amount measures: ``USD`` or ``USD/month`` (a run-rate).
    in_total: the item adds to the job's total (list cost).
    per_day: the item is split over the UTC days of the job (``job_cost_days``).
    focus_item: the FOCUS charge row the item becomes (``x_TrackerItem``), or None when the
        item is not a charge of its own (savings, effective cost, totals).
    """

    name: str
    key: str
    column: str
    label: str
    unit: str = "USD"
    in_total: bool = False
    per_day: bool = True
    focus_item: str | None = None


COMPUTE = CostItem(
    "compute", "compute_usd", "compute_micros", "Compute", in_total=True, focus_item="compute"
)
SPOT_SAVINGS = CostItem("spot_savings", "spot_savings_usd", "spot_savings_micros", "Spot savings")
WARM_POOL = CostItem(
    "warm_pool", "warm_pool_usd", "warm_pool_micros", "Warm pool", in_total=True,
    focus_item="warm-pool",
)  # fmt: skip
STORAGE = CostItem(
    "storage", "storage_usd", "storage_micros", "Storage", in_total=True, focus_item="storage"
)
LIST = CostItem("list", "total_usd", "list_micros", "Total")
EFFECTIVE = CostItem("effective", "effective_usd", "effective_micros", "Effective")
PLAN_VALUE = CostItem(
    "plan_value", "plan_value_usd", "plan_value_micros", "Plan value", per_day=False
)
ARTIFACT_PER_MONTH = CostItem(
    "artifact_per_month", "artifact_usd_per_month", "artifact_micros_per_month",
    "Artifacts (S3)/month", unit="USD/month",
)  # fmt: skip

#: Every item, in the order of the database columns.
COST_ITEMS: tuple[CostItem, ...] = (
    COMPUTE, SPOT_SAVINGS, WARM_POOL, STORAGE, LIST, EFFECTIVE, ARTIFACT_PER_MONTH, PLAN_VALUE,
)  # fmt: skip
#: The items whose sum is the total (list cost): compute + warm pool + storage.
TOTAL_PARTS: tuple[CostItem, ...] = tuple(item for item in COST_ITEMS if item.in_total)
#: The items split over days (columns of ``job_cost_days``, in their order).
DAY_ITEMS: tuple[CostItem, ...] = tuple(item for item in COST_ITEMS if item.per_day)
#: The day items that are money a job-day incurred (the S3 run-rate is not): the money
#: columns of ``estimates`` and of the FOCUS export's job-days.
CHARGE_ITEMS: tuple[CostItem, ...] = tuple(i for i in DAY_ITEMS if i is not ARTIFACT_PER_MONTH)
#: The items ``report --by`` shows (JSON keys other tools rely on), total first.
REPORT_ITEMS: tuple[CostItem, ...] = (LIST, *(item for item in DAY_ITEMS if item is not LIST))
#: The items that become FOCUS charge rows.
FOCUS_ITEMS: tuple[CostItem, ...] = tuple(item for item in COST_ITEMS if item.focus_item)

BY_NAME = {item.name: item for item in COST_ITEMS}


def item(name: str) -> CostItem:
    """The catalogue entry named ``name`` (``compute``, ``list``, ...)."""
    return BY_NAME[name]
