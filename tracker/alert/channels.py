"""Alert channels and messages as plain values: parsing a channel spec, shaping a message.

Pure (no network, no AWS): the alert rules build :class:`Message` values for
:class:`Channel` values, and :mod:`tracker.alert.notify` delivers them. A webhook URL is a
secret, so a channel's ``key`` (what logs and the ledger show) never contains it.

:func:`idempotency_key` names one alert on one channel for its receiver: the same on every
attempt, in every process, on every database (docs/operations.md, "Alert delivery guarantees").
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CHANNEL_KINDS = ("log", "sns", "webhook", "email")
SNS_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:sns:([a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}):\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$"
)
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Channel:
    """A parsed channel. ``key`` is what logs and the ledger show: never a secret."""

    kind: str
    target: str = ""
    from_env: bool = False

    @property
    def key(self) -> str:
        if self.kind == "log":
            return "log"
        if self.kind == "webhook" and not self.from_env:
            digest = hashlib.sha256(self.target.encode()).hexdigest()[:16]
            return f"webhook:sha256:{digest}"
        if self.kind == "webhook":
            return f"webhook:env:{self.target}"
        return f"{self.kind}:{self.target}"

    def __str__(self) -> str:
        return self.key


def parse_channel(spec: str) -> Channel:
    """``"sns:arn:..."`` -> Channel; ValueError saying what is expected."""
    if not isinstance(spec, str):
        raise ValueError(f"must be a channel string, got {shown_value(spec)!r}")
    kind, _, target = spec.strip().partition(":")
    if kind == "log" and not target:
        return Channel("log")
    if kind == "sns":
        if not SNS_ARN_RE.match(target):
            raise ValueError(
                f"{spec!r}: expected sns:<topic arn>, e.g. sns:arn:aws:sns:us-east-1:123456789012:budget-alerts"
            )
        return Channel("sns", target)
    if kind == "webhook":
        if target.startswith("env:"):
            name = target[4:]
            if not ENV_RE.match(name):
                raise ValueError(
                    f"webhook:env:{name}: expected an environment variable name like SLACK_WEBHOOK_URL"
                )
            return Channel("webhook", name, from_env=True)
        if not target.startswith(("https://", "http://")):
            # Do not echo the value: it may be a secret URL with a typo.
            raise ValueError(
                "webhook: expected webhook:https://... or webhook:env:VAR (the URL itself is not shown)"
            )
        return Channel("webhook", target)
    if kind == "email":
        if not EMAIL_RE.match(target):
            raise ValueError(f"{spec!r}: expected email:<address>, e.g. email:finops@example.com")
        return Channel("email", target)
    raise ValueError(
        f"{_shown(spec)!r} is not a channel; expected log, sns:<topic arn>, webhook:<url>, "
        "webhook:env:<VAR> or email:<address>"
    )


def _shown(spec: str) -> str:
    return spec if "://" not in spec else spec.split("://", 1)[0] + "://..."


def shown_value(value: object) -> object:
    """A config value as an error may show it: every URL in it cut after its scheme."""
    if isinstance(value, str):
        return _shown(value)
    if isinstance(value, list):
        return [shown_value(item) for item in value]
    if isinstance(value, dict):
        return {key: shown_value(item) for key, item in value.items()}
    return value


@dataclass(frozen=True)
class Message:
    """What every channel renders: a subject line, a plain-text body, structured fields."""

    key: str
    kind: str
    subject: str
    text: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    severity: str = "warning"


IDEMPOTENCY_KEY_HEX = 32  # 128 bits of SHA-256: unique per (alert, channel), short enough anywhere


def idempotency_key(alert_key: str, channel_key: str) -> str:
    """The stable key one alert carries on one channel: hex SHA-256 of both, cut to 32 digits.

    Derived from the ledger's identity of the delivery (the alert key, e.g.
    ``budget:nlp-monthly:2026-11:actual:80``, and the channel key, which never holds a secret),
    so a resend after a crash carries the same key and a receiver can drop it. Migration
    0004 back-fills ledger rows with this same formula: keep them identical.
    """
    digest = hashlib.sha256(f"{alert_key}\n{channel_key}".encode()).hexdigest()
    return digest[:IDEMPOTENCY_KEY_HEX]
