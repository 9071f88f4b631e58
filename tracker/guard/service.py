"""Launch guardrails as a service: price a CreateTrainingJob request's worst case, read the
budgets' actual and forecast from the store (the same evaluation as ``tracker budgets``), and
apply the team's mode: log, tag and record an estimate, or refuse (docs/guardrails.md).
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from tracker.alert.service import budget_statuses
from tracker.estimate.rules import ESTIMATE_ID_TAG, ESTIMATE_USD_TAG, new_estimate_id
from tracker.estimate.service import record_estimate
from tracker.guard.policy import GuardrailRefused
from tracker.guard.rules import Decision, decide, request_job, unchecked_reason, worst_case
from tracker.settings import Settings
from tracker.store.database import Store

log = logging.getLogger("tracker.guard")


def check_request(
    settings: Settings,
    store: Store | None,
    params: MutableMapping[str, Any],
    region: str,
    now: datetime,
    default_mode: str | None = None,
) -> Decision:
    """The decision about one CreateTrainingJob request (no side effects)."""
    job = request_job(params, region, settings.attribution, now)
    estimate = worst_case(
        job, settings.price_book(), now, settings.cost_policy(), settings.discount_pct
    )
    statuses = (
        budget_statuses(settings, store, now) if store is not None and settings.budgets else []
    )
    return decide(job, estimate, statuses, settings.guard, default_mode)


def open_store(settings: Settings, *, read_only: bool) -> Store | None:
    """The configured store; None when only budgets would need it and there are none."""
    if not settings.budgets and read_only:
        return None
    return Store.open(settings.database_url, read_only=read_only, option="[database] url")


def guard_request(
    settings: Settings,
    params: MutableMapping[str, Any],
    region: str,
    now: datetime,
    default_mode: str | None = None,
) -> Decision | None:
    """Apply the guardrail to a request about to be sent: log one line; in require-estimate
    mode add the estimate tags to ``params`` and record the estimate; in refuse mode raise
    GuardrailRefused when the worst case breaks a budget and no override tag approves it.
    None when the request cannot be priced (``unchecked_reason``): logged, let through."""
    reason = unchecked_reason(params)
    if reason is not None:
        log.info("guard: %s: not checked", reason)
        return None
    store = open_store(settings, read_only=False) if settings.budgets else None
    decision = check_request(settings, store, params, region, now, default_mode)
    if decision.refused:
        log.warning("guard: %s", decision.refusal())
        raise GuardrailRefused(decision.refusal())
    if decision.override is not None:
        log.warning("guard: %s", decision.summary())
    else:
        log.info("guard: %s", decision.summary())
    if decision.mode == "require-estimate" and not decision.unpriced:
        estimate = replace(decision.estimate, estimate_id=new_estimate_id())
        record_estimate(store or open_store(settings, read_only=False), estimate)
        tags = [
            t
            for t in params.get("Tags") or []
            if t.get("Key") not in (ESTIMATE_ID_TAG, ESTIMATE_USD_TAG)
        ]
        params["Tags"] = [*tags, *estimate.sagemaker_tags()]
        decision = replace(decision, estimate=estimate)
    return decision
