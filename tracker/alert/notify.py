"""Alert delivery: the channels (log, SNS, webhook, email) and what each message looks like.

A channel is written ``log``, ``sns:<topic arn>``, ``webhook:<url>``, ``webhook:env:<VAR>``
(the URL read from the environment at send time) or ``email:<address>``. A webhook URL is
a secret: it is never logged, never stored (the ledger keeps ``webhook:sha256:<hash>``) and
scrubbed from any error text. Every send either returns or raises :class:`DeliveryError`
with a one-line reason that is safe to log; the caller (``tracker.alert.service``) records it.

Every send carries the delivery's idempotency key (``tracker.alert.channels.idempotency_key``:
the same for one alert on one channel on every attempt) and whether it is a repeat (an
earlier attempt of the same key may have reached the receiver). Where each channel puts them
and what it guarantees: docs/operations.md, "Alert delivery guarantees".
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from typing import TYPE_CHECKING, Any

from tracker.alert.channels import (  # noqa: F401 - the channel values, re-exported for callers
    CHANNEL_KINDS,
    Channel,
    Message,
    idempotency_key,
    parse_channel,
    shown_value,
)
from tracker.errors import TrackerError

if TYPE_CHECKING:
    from tracker.aws.session import AwsClient

log = logging.getLogger("tracker.alert.rules")

SNS_SUBJECT_MAX = 100
SLACK_TEXT_MAX = 3900
# The header of the IETF draft "The Idempotency-Key HTTP Header Field"
# (draft-ietf-httpapi-idempotency-key-header): what payment and webhook APIs already read.
IDEMPOTENCY_HEADER = "Idempotency-Key"
# Ours: "true" when an earlier attempt with the same key may have reached the receiver.
REPEAT_HEADER = "Tracker-Repeat"


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

    def send(self, channel: Channel, message: Message, *, repeat: bool = False) -> None:
        """Deliver or raise DeliveryError (reason safe to log).

        ``repeat``: an earlier attempt of this (alert, channel) may have reached the receiver
        (the sender died before recording it, or the attempt failed); the message then says so.
        """
        sender = getattr(self, f"_send_{channel.kind}")
        sender(channel, message, idempotency_key(message.key, channel.key), repeat)

    # -- channels --------------------------------------------------------------------------
    def _send_log(self, _channel: Channel, message: Message, key: str, repeat: bool) -> None:
        log.warning(
            "ALERT %s%s\n%s",
            "REPEAT " if repeat else "",
            message.subject,
            message.text,
            extra={"alert_key": message.key, "alert_kind": message.kind,
                   "alert_idempotency_key": key, "alert_repeat": repeat,
                   **_log_fields(message)},
        )  # fmt: skip

    def _send_webhook(self, channel: Channel, message: Message, key: str, repeat: bool) -> None:
        url = channel.target
        if channel.from_env:
            url = self.environ.get(channel.target, "")
            if not url:
                raise DeliveryError(
                    f"environment variable {channel.target} is not set (webhook URL)"
                )
        body = json.dumps(slack_payload(message, key, repeat)).encode()
        headers = {
            "Content-Type": "application/json",
            # The draft's value is a Structured Field string: the key in double quotes.
            IDEMPOTENCY_HEADER: f'"{key}"',
            REPEAT_HEADER: "true" if repeat else "false",
        }
        request = urllib.request.Request(url, data=body, method="POST", headers=headers)
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

    def _send_sns(self, channel: Channel, message: Message, key: str, repeat: bool) -> None:
        from tracker.aws import AWS_ERRORS, describe_error

        publish = self._sns_publish or _default_sns(self._clients)
        try:
            publish(
                channel.target,
                sns_subject(message.subject),
                sns_text(message, key, repeat),
                idempotency_key=key,
                repeat=repeat,
            )
        except AWS_ERRORS as exc:
            raise DeliveryError(f"SNS publish to {channel.target}: {describe_error(exc)}") from None

    def _send_email(self, channel: Channel, message: Message, key: str, repeat: bool) -> None:
        from tracker.aws import AWS_ERRORS, describe_error

        # Without email_from the recipient sends to itself: SES's sandbox verifies recipients
        # anyway, so that address (or its domain) is the one identity sure to be verified.
        sender = self.settings.email_from or channel.target
        send = self._ses_send or _default_ses(self._clients)
        raw = email_message(sender, channel.target, message, key, repeat)
        try:
            send(sender, channel.target, raw, region=self.settings.email_region)
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
    from tracker.aws.notify import send_raw_email, ses_client

    def send(sender: str, to: str, raw: bytes, *, region: str | None = None) -> str:
        if ("ses", region) not in clients:
            clients[("ses", region)] = ses_client(region)
        return send_raw_email(sender, to, raw, client=clients[("ses", region)])

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
REPEAT_NOTE = "repeat: an earlier attempt with this key may have been delivered"


def delivery_line(message: Message, key: str, repeat: bool) -> str:
    """The line every human-read rendering ends with: alert, idempotency key, repeat."""
    line = f"alert {message.key}; idempotency key {key}"
    return f"{line}; {REPEAT_NOTE}" if repeat else line


def slack_payload(message: Message, key: str, repeat: bool = False) -> dict[str, Any]:
    """Slack-compatible incoming-webhook JSON: ``text`` (fallback) and header, section and
    context blocks; ``idempotency_key`` and ``repeat`` at the top level for receivers of your
    own (Slack shows ``text``/``blocks``; the context block shows the key to people).
    """
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
            {"type": "context", "elements": [
                {"type": "plain_text", "text": delivery_line(message, key, repeat)[:2000]}]},
        ],
        "idempotency_key": key,
        "repeat": repeat,
    }  # fmt: skip


def sns_subject(subject: str) -> str:
    """SNS subjects: ASCII, one line, at most 100 characters."""
    ascii_only = subject.encode("ascii", "replace").decode().replace("\n", " ").strip()
    return (
        ascii_only
        if len(ascii_only) <= SNS_SUBJECT_MAX
        else ascii_only[: SNS_SUBJECT_MAX - 3] + "..."
    )


def sns_text(message: Message, key: str, repeat: bool = False) -> str:
    return f"{message.subject}\n\n{message.text}\n\n-- \n{delivery_line(message, key, repeat)}\n"


def email_text(message: Message, key: str, repeat: bool = False) -> str:
    return (
        f"{message.text}\n\n-- \nSent by SageMaker Spend Tracker: "
        f"{delivery_line(message, key, repeat)}.\n"
    )


def email_message(sender: str, to: str, message: Message, key: str, repeat: bool) -> bytes:
    """The raw MIME message SES sends: plain text, with the ``Idempotency-Key`` and
    ``Tracker-Repeat`` headers. SES adds ``Date`` and its own ``Message-ID``."""
    # Lines up to RFC 5322's 998 characters: a subject is never folded right after "Subject:"
    # (which some parsers read back with a leading space).
    mail = EmailMessage(policy=SMTP.clone(max_line_length=998))
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = message.subject
    mail[IDEMPOTENCY_HEADER] = key
    mail[REPEAT_HEADER] = "true" if repeat else "false"
    mail.set_content(email_text(message, key, repeat), charset="utf-8")
    return mail.as_bytes()
