"""The one place that reads the clock. Logic takes ``now`` or a clock as a parameter.

Two clocks: :func:`system_clock` is the business clock (``TRACKER_NOW`` pins it, so reports
and costs are reproducible); :func:`wall_clock` is real time, for scheduling, heartbeats,
leases and run history, which must not stand still when the business clock is pinned.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime

from tracker.errors import InputError

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """Current UTC time; ``TRACKER_NOW`` (ISO 8601) pins it for reproducible runs and tests."""
    pinned = os.environ.get("TRACKER_NOW")
    if pinned:
        return parse_instant(pinned, "TRACKER_NOW")
    return datetime.now(UTC)


def wall_clock() -> datetime:
    """Real UTC time for scheduling, heartbeats and run history (TRACKER_NOW does not apply)."""
    return datetime.now(UTC)


def parse_instant(text: str, name: str) -> datetime:
    """ISO 8601 -> aware UTC datetime (a naive value is taken as UTC)."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"{name}: {text!r} is not a time; expected ISO 8601 like 2026-11-01T00:00:00Z"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
