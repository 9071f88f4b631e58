"""Shared-cost split (``[[allocation.shared]]``, docs/allocation.md): a pool of cost spread
over the teams, per calendar month, beside their own cost and never mixed into it.

A pool is the spend of ``unallocated``, the spend of a named team (``platform``), or a fixed
``monthly_usd``. Each month it is rounded to the cent (half up) and split in whole cents,
``even``ly or in proportion to each receiving team's own spend that month, by largest
remainder (:func:`tracker.records.largest_remainder`): the shares add up to the pool exactly,
in every month and every total. The team a pool comes from shows minus the pool, so over a
team pool the shares sum to zero; a fixed amount comes from outside the tracked spend, so its
shares sum to the amount.

Receivers, each month: the pool's ``over`` teams when given, else every team with own spend
that month except ``unallocated`` and the teams other pools come from. Pools are split
independently, each on the teams' own spend (a share never becomes a basis).

Pure: plain numbers in (own spend in micro-dollars per month and team), shares out.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from tracker.records import MICROS_PER_CENT, UNALLOCATED, format_usd, largest_remainder, to_micros

METHODS = ("even", "proportional")
MICROS_PER_CENT_INT = int(MICROS_PER_CENT)


@dataclass(frozen=True)
class SharedPool:
    """One ``[[allocation.shared]]`` pool: from ``team`` (``unallocated`` or a team name) or
    a fixed ``monthly_usd``, split by ``method`` over ``over`` (empty: the default receivers)."""

    name: str
    method: str
    team: str | None = None
    monthly_usd: Decimal | None = None
    over: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        """Where the pool comes from, in words."""
        if self.team is not None:
            return f"team {self.team}"
        return f"{format_usd(self.monthly_usd or Decimal(0), symbol=True)} a month"


@dataclass(frozen=True)
class Share:
    """One team's part of one pool in one month: ``basis_micros`` its own spend that month,
    ``shared_micros`` its share (whole cents; minus the pool for the team it comes from)."""

    team: str
    basis_micros: int
    shared_micros: int


@dataclass(frozen=True)
class PoolSplit:
    """One pool split in one month (``period``, ``YYYY-MM``); ``note`` says why a pool with
    money was not split (no receiving team, or none with spend to be proportional to)."""

    pool: SharedPool
    period: str
    pool_micros: int
    shares: tuple[Share, ...]
    note: str | None = None


def pool_cents(micros: int) -> int:
    """A pool's micro-dollars rounded to whole cents, half up (as every output shows money)."""
    return int((Decimal(micros) / MICROS_PER_CENT).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def split_cents(cents: int, bases: Sequence[int], method: str) -> list[int] | None:
    """``cents`` over receivers with own spend ``bases`` (micro-dollars), as whole cents that
    add up to ``cents``; None when it cannot be split (no receiver, or ``proportional`` with
    no basis)."""
    if not bases:
        return None
    weights = [Decimal(1)] * len(bases) if method == "even" else [Decimal(b) for b in bases]
    whole = sum(weights)
    if whole <= 0:
        return None
    return largest_remainder(cents, [Decimal(cents) * w / whole for w in weights])


def monthly_micros(
    monthly_usd: Decimal, period: str, since: date | None, until: date | None
) -> int:
    """A fixed monthly amount's part in ``period`` (``YYYY-MM``) for a window from ``since``
    to ``until`` (inclusive; None: open): whole when the window covers the month, else the
    days of the month in the window over the days of the month (as AWS prorates GB-month)."""
    year, month = (int(part) for part in period.split("-"))
    days = calendar.monthrange(year, month)[1]
    first, last = date(year, month, 1), date(year, month, days)
    start = max(first, since) if since else first
    end = min(last, until) if until else last
    covered = max((end - start).days + 1, 0)
    return to_micros(monthly_usd * covered / days)


def split_shared(
    pools: Sequence[SharedPool],
    own: Mapping[str, Mapping[str, int]],
    since: date | None = None,
    until: date | None = None,
) -> list[PoolSplit]:
    """Every pool split in every month of ``own`` (month -> team -> own spend, micro-dollars,
    for the window ``since``..``until``), months in order, pools in configured order."""
    sources = {pool.team for pool in pools if pool.team is not None}
    splits = []
    for period in sorted(own):
        spend = {team: int(micros) for team, micros in own[period].items()}
        for pool in pools:
            splits.append(_split_one(pool, period, spend, sources, since, until))
    return splits


def _split_one(
    pool: SharedPool,
    period: str,
    spend: Mapping[str, int],
    sources: set[str],
    since: date | None,
    until: date | None,
) -> PoolSplit:
    if pool.team is not None:
        amount = spend.get(pool.team, 0)
    else:
        amount = monthly_micros(pool.monthly_usd or Decimal(0), period, since, until)
    cents = pool_cents(amount)
    if pool.over:
        receivers = sorted(team for team in set(pool.over) if team != pool.team)
    else:
        excluded = {UNALLOCATED, *sources}
        receivers = sorted(t for t, m in spend.items() if m > 0 and t not in excluded)
    if cents == 0:
        return PoolSplit(pool, period, 0, ())
    bases = [spend.get(team, 0) for team in receivers]
    parts = split_cents(cents, bases, pool.method)
    if parts is None:
        why = "no receiving team" if not receivers else "no receiving team had spend"
        return PoolSplit(pool, period, cents * MICROS_PER_CENT_INT, (), f"not split: {why}")
    shares = [
        Share(team, basis, part * MICROS_PER_CENT_INT)
        for team, basis, part in zip(receivers, bases, parts, strict=True)
    ]
    if pool.team is not None:
        shares.append(Share(pool.team, amount, -cents * MICROS_PER_CENT_INT))
    return PoolSplit(pool, period, cents * MICROS_PER_CENT_INT, tuple(shares))


def shared_by_team(splits: Sequence[PoolSplit]) -> dict[str, int]:
    """Team -> the sum of its shares over every pool and month (micro-dollars, whole cents)."""
    found: dict[str, int] = {}
    for split in splits:
        for share in split.shares:
            found[share.team] = found.get(share.team, 0) + share.shared_micros
    return found
