"""Channels: parsing, and delivery through moto's SNS and SES and a local webhook server."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import socket

import boto3
import pytest
from moto import mock_aws

from tests.webhook_server import WebhookServer
from tracker.alert.notify import (
    Channel,
    DeliveryError,
    Message,
    Notifier,
    NotifySettings,
    parse_channel,
    slack_payload,
    sns_subject,
)
from tracker.aws.notify import ses_client, sns_client

ACCOUNT = "123456789012"
MESSAGE = Message(
    key="budget:nlp-monthly:2026-11:actual:80",
    kind="budget-actual",
    subject="Budget nlp-monthly crossed 80% of $5,000.00 for 2026-11 (spent $4,100.00)",
    text="Actual:    $4,100.00 of $5,000.00 (82.00%)\nSee more:\n  tracker budgets",
    fields={"budget": "nlp-monthly"},
)


@pytest.mark.parametrize(
    ("spec", "kind", "key"),
    [
        ("log", "log", "log"),
        (
            "sns:arn:aws:sns:us-east-1:123456789012:budget-alerts",
            "sns",
            "sns:arn:aws:sns:us-east-1:123456789012:budget-alerts",
        ),
        (
            "sns:arn:aws:sns:eu-west-1:123456789012:alerts.fifo",
            "sns",
            "sns:arn:aws:sns:eu-west-1:123456789012:alerts.fifo",
        ),
        ("webhook:env:SLACK_WEBHOOK_URL", "webhook", "webhook:env:SLACK_WEBHOOK_URL"),
        ("email:finops@example.com", "email", "email:finops@example.com"),
    ],
)
def test_parse_channel_accepts_documented_forms(spec: str, kind: str, key: str) -> None:
    channel = parse_channel(spec)
    assert (channel.kind, channel.key) == (kind, key)


def test_parse_channel_webhook_url_key_hides_the_url() -> None:
    channel = parse_channel("webhook:https://hooks.slack.com/services/T0/B0/very-secret")
    assert channel.key.startswith("webhook:sha256:")
    assert "very-secret" not in channel.key and "very-secret" not in str(channel)


@pytest.mark.parametrize(
    "spec",
    ["sms:+15550100", "sns:arn:aws:sqs:us-east-1:123456789012:q", "sns:topic", "email:not-an-address",
     "webhook:ftp://x", "webhook:env:1BAD", "log:extra", ""],
)  # fmt: skip
def test_parse_channel_rejects_with_what_is_expected(spec: str) -> None:
    with pytest.raises(ValueError, match="expected"):
        parse_channel(spec)


def test_parse_channel_error_never_echoes_a_webhook_url() -> None:
    with pytest.raises(ValueError) as info:
        parse_channel("webhook:hxxps://hooks.slack.com/services/T0/B0/very-secret")
    assert "very-secret" not in str(info.value)


def test_sns_subject_is_ascii_one_line_and_short() -> None:
    subject = sns_subject("Budget ü crossed\n" + "x" * 200)
    assert subject.isascii() and "\n" not in subject and len(subject) == 100


def test_slack_payload_has_text_and_blocks() -> None:
    payload = slack_payload(MESSAGE, "0123abcd")
    assert payload["text"].startswith(MESSAGE.subject)
    assert "tracker budgets" in payload["text"]
    assert payload["blocks"][0]["text"]["text"] == MESSAGE.subject


# -- SNS and SES through moto ------------------------------------------------------------------
@mock_aws
def test_send_sns_publishes_to_the_topic_in_its_region() -> None:
    from moto.sns.models import sns_backends

    arn = boto3.client("sns", region_name="eu-west-1").create_topic(Name="budget-alerts")[
        "TopicArn"
    ]
    Notifier().send(parse_channel(f"sns:{arn}"), MESSAGE)
    [(_, body, subject, _, _)] = sns_backends[ACCOUNT]["eu-west-1"].topics[arn].sent_notifications
    assert subject == MESSAGE.subject
    assert "$4,100.00 of $5,000.00" in body and "tracker budgets" in body


@mock_aws
def test_send_sns_fifo_topic_sets_group_and_deduplication() -> None:
    from moto.sns.models import sns_backends

    client = boto3.client("sns", region_name="us-east-1")
    arn = client.create_topic(Name="alerts.fifo", Attributes={"FifoTopic": "true"})["TopicArn"]
    Notifier().send(parse_channel(f"sns:{arn}"), MESSAGE)
    [(_, _, _, _, group)] = sns_backends[ACCOUNT]["us-east-1"].topics[arn].sent_notifications
    assert group == "sagemaker-spend-tracker"


@mock_aws
def test_send_sns_missing_topic_is_a_delivery_error() -> None:
    arn = "arn:aws:sns:us-east-1:123456789012:missing"
    with pytest.raises(DeliveryError, match="NotFound"):
        Notifier().send(parse_channel(f"sns:{arn}"), MESSAGE)


@mock_aws
def test_send_email_through_ses() -> None:
    from moto.ses.models import ses_backends

    boto3.client("ses", region_name="us-east-1").verify_email_identity(
        EmailAddress="tracker@example.com"
    )
    notifier = Notifier(NotifySettings(email_from="tracker@example.com", email_region="us-east-1"))
    notifier.send(parse_channel("email:finops@example.com"), MESSAGE)
    [sent] = ses_backends[ACCOUNT]["us-east-1"].sent_messages
    assert sent.source == "tracker@example.com"
    assert set(sent.destinations) == {"finops@example.com"}  # moto adds the To header's too
    mail = email.message_from_string(sent.raw_data, policy=email.policy.default)
    assert (mail["From"], mail["To"]) == ("tracker@example.com", "finops@example.com")
    assert mail["Subject"] == MESSAGE.subject
    body = mail.get_content()
    assert "$4,100.00" in body and MESSAGE.key in body


@mock_aws
def test_send_email_unverified_sender_is_a_delivery_error() -> None:
    notifier = Notifier(NotifySettings(email_from="nobody@example.com", email_region="us-east-1"))
    with pytest.raises(DeliveryError, match=r"MessageRejected.*\[alerts\] email_from"):
        notifier.send(parse_channel("email:finops@example.com"), MESSAGE)


@mock_aws
def test_send_email_without_sender_sends_from_the_recipient() -> None:
    """No [alerts] email_from: the recipient, verified (here by its domain), is the sender."""
    from moto.ses.models import ses_backends

    boto3.client("ses", region_name="us-east-1").verify_domain_identity(Domain="example.com")
    Notifier().send(parse_channel("email:finops@example.com"), MESSAGE)
    [sent] = ses_backends[ACCOUNT]["us-east-1"].sent_messages
    assert (sent.source, set(sent.destinations)) == ("finops@example.com", {"finops@example.com"})


# -- webhook on a local server -----------------------------------------------------------------
def test_send_webhook_posts_slack_json() -> None:
    with WebhookServer() as hook:
        Notifier().send(parse_channel(f"webhook:{hook.url}"), MESSAGE)
    [body] = hook.received
    assert body["text"].startswith(MESSAGE.subject)


def test_send_webhook_url_from_environment() -> None:
    with WebhookServer() as hook:
        notifier = Notifier(environ={"SLACK_WEBHOOK_URL": hook.url})
        notifier.send(parse_channel("webhook:env:SLACK_WEBHOOK_URL"), MESSAGE)
    assert len(hook.received) == 1


def test_send_webhook_unset_variable_is_a_delivery_error() -> None:
    with pytest.raises(DeliveryError, match="SLACK_WEBHOOK_URL is not set"):
        Notifier(environ={}).send(parse_channel("webhook:env:SLACK_WEBHOOK_URL"), MESSAGE)


def test_send_webhook_http_error_never_shows_the_url(caplog: pytest.LogCaptureFixture) -> None:
    with WebhookServer(fail_first=1) as hook, pytest.raises(DeliveryError) as info:
        Notifier(environ={"HOOK": hook.url}).send(parse_channel("webhook:env:HOOK"), MESSAGE)
    assert str(info.value) == "webhook answered HTTP 500"
    assert "secret-token" not in caplog.text


def test_send_webhook_unreachable_never_shows_the_url() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/services/secret-token"
    with pytest.raises(DeliveryError) as info:
        Notifier(NotifySettings(timeout_seconds=2)).send(Channel("webhook", url), MESSAGE)
    assert "unreachable" in str(info.value)
    assert "secret-token" not in str(info.value) and str(port) not in str(info.value)


def test_send_log_writes_the_alert_with_its_key(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="tracker.alert.rules"):
        Notifier().send(parse_channel("log"), MESSAGE)
    [record] = caplog.records
    assert MESSAGE.subject in record.getMessage()
    assert record.alert_key == MESSAGE.key


def test_log_channel_in_json_format_carries_structured_fields() -> None:
    from tracker.logs import JsonFormatter

    record = logging.LogRecord(
        "tracker.alert.rules", logging.WARNING, __file__, 1, "ALERT %s", (MESSAGE.subject,), None
    )
    record.alert_key = MESSAGE.key
    payload = json.loads(JsonFormatter().format(record))
    assert payload["alert_key"] == MESSAGE.key and payload["level"] == "warning"


def test_alert_clients_have_short_timeouts_few_attempts_and_our_user_agent(monkeypatch):
    monkeypatch.delenv("AWS_REGION", raising=False)  # AWS_DEFAULT_REGION is us-east-1
    sns, ses = sns_client("eu-west-1"), ses_client(None)
    assert (sns.meta.region_name, ses.meta.region_name) == ("eu-west-1", "us-east-1")
    for client in (sns, ses):
        config = client.meta.config
        assert (config.connect_timeout, config.read_timeout) == (5, 15)
        assert config.retries == {"mode": "standard", "total_max_attempts": 4}
        assert config.user_agent_extra == "sagemaker-spend-tracker"
