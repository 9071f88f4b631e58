"""Alert delivery: the channels (log, SNS, webhook, email) and what each message looks like.

A channel is written ``log``, ``sns:<topic arn>``, ``webhook:<url>``, ``webhook:env:<VAR>``
(the URL read from the environment at send time) or ``email:<address>``. A webhook URL is
a secret: it is never logged, never stored (the ledger keeps ``webhook:sha256:<hash>``) and
scrubbed from any error text. Every send either returns or raises :class:`DeliveryError`
with a one-line reason that is safe to log; the caller (``tracker.alert.rules``) records it.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tracker.alert.channels import (  # noqa: F401 - the channel values, re-exported for callers
    CHANNEL_KINDS,
    Channel,
    Message,
    parse_channel,
    shown_value,
)
from tracker.errors import TrackerError

if TYPE_CHECKING:
    from tracker.aws.session import AwsClient

log = logging.getLogger("tracker.alert.rules")

SNS_SUBJECT_MAX = 100
SLACK_TEXT_MAX = 3900


class DeliveryError(TrackerError):
    """A delivery that failed; the message is safe to log (no secrets)."""


@dataclass(frozen=True)
class NotifySettings:
    """The ``[alerts]`` keys channels need."""

    email_from: str | None = None  # None: each recipient address is its own sender
    email_region: str | None = None
    timeout_seconds: float = 10.0


class Notifier:
    """Sends one message on one channel. AWS senders are injectable for tests."""

    def __init__(
        self,
        settings: NotifySettings = NotifySettings(),
        *,
        environ: Mapping[str, str] | None = None,
        sns_publish: Callable[..., str] | None = None,
        ses_send: Callable[..., str] | None = None,
    ) -> None:
        self.settings = settings
        self.environ = os.environ if environ is None else environ
        self._sns_publish = sns_publish
        self._ses_send = ses_send
        # One AWS client per region and run.
        self._clients: dict[tuple[str, str | None], AwsClient] = {}

    def send(self, channel: Channel, message: Message) -> None:
        """Deliver or raise DeliveryError (reason safe to log)."""
        sender = getattr(self, f"_send_{channel.kind}")
        sender(channel, message)

    # -- channels --------------------------------------------------------------------------
    def _send_log(self, _channel: Channel, message: Message) -> None:
        log.warning(
            "ALERT %s\n%s",
            message.subject,
            message.text,
            extra={"alert_key": message.key, "alert_kind": message.kind, **_log_fields(message)},
        )

    def _send_webhook(self, channel: Channel, message: Message) -> None:
        url = channel.target
        if channel.from_env:
            url = self.environ.get(channel.target, "")
            if not url:
                raise DeliveryError(
                    f"environment variable {channel.target} is not set (webhook URL)"
                )
        body = json.dumps(slack_payload(message)).encode()
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.settings.timeout_seconds) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            raise DeliveryError(f"webhook answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise DeliveryError(
                f"webhook unreachable: {_scrub(str(getattr(exc, 'reason', exc)), url)}"
            ) from None
        if not 200 <= status < 300:
            raise DeliveryError(f"webhook answered HTTP {status}")

    def _send_sns(self, channel: Channel, message: Message) -> None:
        from tracker.aws import AWS_ERRORS, describe_error

        publish = self._sns_publish or _default_sns(self._clients)
        try:
            publish(
                channel.target,
                sns_subject(message.subject),
                sns_text(message),
                dedup_id=message.key,
            )
        except AWS_ERRORS as exc:
            raise DeliveryError(f"SNS publish to {channel.target}: {describe_error(exc)}") from None

    def _send_email(self, channel: Channel, message: Message) -> None:
        from tracker.aws import AWS_ERRORS, describe_error

        # Without email_from the recipient sends to itself: SES's sandbox verifies recipients
        # anyway, so that address (or its domain) is the one identity sure to be verified.
        sender = self.settings.email_from or channel.target
        send = self._ses_send or _default_ses(self._clients)
        try:
            send(
                sender,
                channel.target,
                message.subject,
                email_text(message),
                region=self.settings.email_region,
            )
        except AWS_ERRORS as exc:
            raise DeliveryError(
                f"SES send_email from {sender} to {channel.target}: {describe_error(exc)} "
                "(the sender must be verified in SES: [alerts] email_from)"
            ) from None


def _default_sns(clients: dict[tuple[str, str | None], AwsClient]) -> Callable[..., str]:
    from tracker.aws.notify import publish_sns, sns_client

    def publish(topic_arn: str, subject: str, text: str, **kw: Any) -> str:
        region = topic_arn.split(":")[3]
        if ("sns", region) not in clients:
            clients[("sns", region)] = sns_client(region)
        return publish_sns(topic_arn, subject, text, client=clients[("sns", region)], **kw)

    return publish


def _default_ses(clients: dict[tuple[str, str | None], AwsClient]) -> Callable[..., str]:
    from tracker.aws.notify import send_email, ses_client

    def send(sender: str, to: str, subject: str, text: str, *, region: str | None = None) -> str:
        if ("ses", region) not in clients:
            clients[("ses", region)] = ses_client(region)
        return send_email(sender, to, subject, text, client=clients[("ses", region)])

    return send


def _scrub(text: str, secret: str) -> str:
    return text.replace(secret, "<webhook url>") if secret else text


def _log_fields(message: Message) -> dict[str, Any]:
    keep = (
        "budget",
        "period",
        "threshold_pct",
        "actual_usd",
        "forecast_usd",
        "amount_usd",
        "job",
        "team",
    )
    return {f"alert_{k}": str(message.fields[k]) for k in keep if k in message.fields}


# -- renderings ----------------------------------------------------------------------------------
def slack_payload(message: Message) -> dict[str, Any]:
    """Slack-compatible incoming-webhook JSON: ``text`` (fallback) and a section block."""
    body = (
        message.text
        if len(message.text) <= SLACK_TEXT_MAX
        else message.text[:SLACK_TEXT_MAX] + "..."
    )
    return {
        "text": f"{message.subject}\n{body}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": message.subject[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"```{body}```"}},
        ],
    }


def sns_subject(subject: str) -> str:
    """SNS subjects: ASCII, one line, at most 100 characters."""
    ascii_only = subject.encode("ascii", "replace").decode().replace("\n", " ").strip()
    return (
        ascii_only
        if len(ascii_only) <= SNS_SUBJECT_MAX
        else ascii_only[: SNS_SUBJECT_MAX - 3] + "..."
    )


def sns_text(message: Message) -> str:
    return f"{message.subject}\n\n{message.text}"


def email_text(message: Message) -> str:
    return f"{message.text}\n\n-- \nSent by SageMaker Spend Tracker (alert {message.key}).\n"
