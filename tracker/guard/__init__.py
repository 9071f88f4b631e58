"""Launch guardrails: check a training job against its team's budgets before it starts.

::

    import boto3, tracker.guard
    session = boto3.Session()
    tracker.guard.install(session, mode="refuse")
    session.client("sagemaker").create_training_job(...)   # may raise GuardrailRefused

``install`` registers one botocore handler for ``CreateTrainingJob`` (the
``before-parameter-build`` event, before anything is sent) on a boto3 ``Session`` (every
SageMaker client it makes afterwards), a SageMaker client, or a SageMaker Python SDK
``Session`` (its client and its boto session). Rules in :mod:`tracker.guard.rules`, the
store and the budgets in :mod:`tracker.guard.service`; docs/guardrails.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracker.guard.policy import MODES, GuardrailRefused, GuardSettings, check_mode
from tracker.guard.rules import Decision

if TYPE_CHECKING:
    from tracker.settings import Settings

__all__ = ["MODES", "Decision", "GuardSettings", "GuardrailRefused", "install"]

EVENT = "before-parameter-build.sagemaker.CreateTrainingJob"
HANDLER_ID = "tracker.guard"


def install(
    target: Any,
    *,
    config: Settings | str | Path | None = None,
    mode: str | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Callable[..., None]:
    """Guard every CreateTrainingJob made through ``target``; returns the handler.

    ``config``: a Settings, a config file path, or None for the usual one (``$TRACKER_CONFIG``,
    else config/tracker.toml). ``mode``: warn, require-estimate or refuse for teams without
    their own ``[guard.teams]`` entry (default: ``[guard] mode``, itself warn by default).
    """
    from tracker.clock import system_clock
    from tracker.settings import Settings, load_settings

    settings = (
        config
        if isinstance(config, Settings)
        else load_settings(None if config is None else str(config))
    )
    settings.guard  # noqa: B018 - a bad [guard] section is an error now, not at launch
    default_mode = None if mode is None else check_mode(mode)
    now = clock or system_clock

    def handler(
        params: dict[str, Any], context: Mapping[str, object] | None = None, **_: Any
    ) -> None:
        from tracker.guard.service import guard_request

        region = str((context or {}).get("client_region") or "us-east-1")
        guard_request(settings, params, region, now(), default_mode)

    registered = False
    for events in _event_emitters(target):
        # Installing again replaces the handler (a new mode or config), never adds a second.
        events.unregister(EVENT, unique_id=HANDLER_ID)
        events.register(EVENT, handler, unique_id=HANDLER_ID)
        registered = True
    if not registered:
        raise TypeError(
            "tracker.guard.install: expected a boto3 Session, a SageMaker client or a SageMaker "
            f"Python SDK Session, got {type(target).__name__}"
        )
    return handler


def _event_emitters(target: Any) -> list[Any]:
    """The botocore event emitters of a client, a boto3 Session or an SDK Session."""
    meta = getattr(target, "meta", None)
    if meta is not None and hasattr(meta, "events") and hasattr(meta, "service_model"):
        if meta.service_model.service_name != "sagemaker":
            raise TypeError(
                f"tracker.guard.install: a {meta.service_model.service_name} client cannot "
                "create training jobs; pass a SageMaker client or a Session"
            )
        return [meta.events]
    if hasattr(target, "boto_session"):  # the SageMaker Python SDK's Session
        emitters = _event_emitters(target.boto_session)
        client = getattr(target, "sagemaker_client", None)
        if client is not None:
            emitters += _event_emitters(client)
        return emitters
    if hasattr(target, "events") and hasattr(target, "client"):  # boto3.Session
        return [target.events]
    return []
