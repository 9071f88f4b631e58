"""Unit costs in SQL: per group of finished jobs, their compute cost and the work it bought
(instance-hours, GPU-hours, epochs, training tokens), for ``report --view units``.

Every sum is over the ``jobs`` table, one row a job, in exact integers: micro-dollars,
instance-seconds, GPU-seconds, thousandths of an epoch, tokens. A job counts whole in the UTC
day it ended (``end_time``, else its last modification): a unit cost divides a job's whole
cost by its whole work, so neither is split over days. Each measure has its own counted jobs:
a job counts for a measure when it is priced, billed some compute and reports that measure
(``counted`` below); the others are left out of that measure's cost and work alike.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, and_, case, cast, func, or_, select

from tracker.store.database import Repository, Store
from tracker.store.query import dimension, within
from tracker.store.schema import Job
from tracker.store.window import Window

ENDED = func.coalesce(Job.end_time, Job.last_modified_time)
_PRICED = and_(Job.unpriced == False, Job.compute_micros > 0)  # noqa: E712 - SQL expression
_ON_INSTANCES = and_(
    _PRICED,
    Job.serverless_base_model_arn.is_(None),
    Job.billable_seconds > 0,
    Job.instance_count > 0,
)
_BILLABLE = cast(Job.billable_seconds, BigInteger)
# measure -> (when a job counts for it, its work in exact integer units)
MEASURES: dict[str, tuple[ColumnElement, ColumnElement]] = {
    "instance": (_ON_INSTANCES, _BILLABLE * Job.instance_count),  # instance-seconds
    "gpu": (and_(_ON_INSTANCES, Job.gpu_count > 0), _BILLABLE * Job.gpu_count),  # GPU-seconds
    "epoch": (and_(_PRICED, Job.milli_epochs > 0), Job.milli_epochs),  # thousandths of an epoch
    "token": (and_(_PRICED, Job.train_tokens > 0), Job.train_tokens),  # tokens
}


def _ended_within(window: Window) -> ColumnElement:
    """The job ended (``ENDED``) in the window's days, written so that the index
    ``ix_jobs_ended`` (end_time, last_modified_time) seeks both branches."""
    ended: list[ColumnElement] = []
    modified: list[ColumnElement] = []
    if window.since is not None:
        start = datetime.combine(window.since, time())
        ended.append(Job.end_time >= start)
        modified.append(Job.last_modified_time >= start)
    if window.until is not None:
        stop = datetime.combine(window.until + timedelta(days=1), time())
        ended.append(Job.end_time < stop)
        modified.append(Job.last_modified_time < stop)
    return or_(and_(*ended), and_(Job.end_time.is_(None), *modified))


def _sum(amount: ColumnElement, when: ColumnElement | None = None) -> ColumnElement:
    value = amount if when is None else case((when, amount), else_=0)
    return func.coalesce(func.sum(value), 0)


class UnitQueries(Repository):
    """The unit-cost sums of one Store."""

    def __init__(self, store: Store):
        super().__init__(store)
        self.dialect = store.engine.dialect.name

    def key(self, by: str) -> ColumnElement:
        """The grouping expression: a job dimension (``tracker.store.query.dimension``), or
        the UTC month the job ended."""
        if by != "month":
            return dimension(by, self.dialect)
        if self.dialect == "sqlite":
            return func.strftime("%Y-%m", ENDED)
        return func.to_char(ENDED, "YYYY-MM")

    def units(self, by: str, window: Window) -> list[dict[str, Any]]:
        """One row per value of ``by`` among finished jobs that ended in the window (and pass
        its filters): ``by``, ``jobs``, ``unpriced_jobs``, ``compute`` (micro-dollars), and
        for each measure M of :data:`MEASURES`, ``M_jobs``, ``M_micros`` and ``M_units``.
        Months in time order, anything else most compute first, then by value."""
        expression = self.key(by)
        key = expression.label(by)
        unpriced = Job.unpriced == True  # noqa: E712 - SQL expression
        columns = [
            key,
            func.count(Job.id).label("jobs"),
            _sum(case((unpriced, 1), else_=0)).label("unpriced_jobs"),
            _sum(Job.compute_micros).label("compute"),
        ]
        for name, (counted, work) in MEASURES.items():
            columns += [
                _sum(case((counted, 1), else_=0)).label(f"{name}_jobs"),
                _sum(Job.compute_micros, counted).label(f"{name}_micros"),
                _sum(work, counted).label(f"{name}_units"),
            ]
        query = select(*columns).select_from(Job).where(Job.final == True)  # noqa: E712
        if window.since is not None or window.until is not None:
            query = query.where(_ended_within(window))
        query = within(query, Window(filters=window.filters)).group_by(key)
        if by == "month":
            query = query.order_by(key)
        else:
            # Most compute first, then by value in code-point order on either backend.
            ordered = expression.collate("C") if self.dialect == "postgresql" else expression
            query = query.order_by(_sum(Job.compute_micros).desc(), ordered)
        with self.store.session() as session:
            rows = session.execute(query).all()
        return [
            {
                name: (value if name == by else int(value or 0))
                for name, value in row._mapping.items()
            }
            for row in rows
        ]
