"""What every scheduled job gets (a JobContext) and gives back (a JobOutcome)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from tracker.settings import Settings
from tracker.store.database import Store


@dataclass(frozen=True)
class JobContext:
    """What a job needs: settings, store, the business clock and real (wall) time."""

    settings: Settings
    store: Store
    clock: Callable[[], datetime]
    wall: Callable[[], datetime]
    trigger: str = "cli"  # cli | daemon
    owner: str = ""


@dataclass(frozen=True)
class JobOutcome:
    """``ok``, ``partial`` (done, with failures to look at) or ``failed``; one line of detail."""

    status: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"
