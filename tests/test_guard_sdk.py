"""The launch guardrail under the real SageMaker Python SDK (issue 15): ``Estimator(...).fit
(wait=False)`` against a moto server, with the guard installed on the SDK's ``Session``.

Needs the ``sdk`` extra (``pip install '.[sdk]'``); skipped, saying so, without it. The world
(budget nlp-monthly $100, $40 spent, room $60; ml.g5.12xlarge $10/h) is tests/test_guard.py's.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

import tracker.guard
from tests.test_guard import IMAGE, NOW, ROLE, World, world  # noqa: F401 - the fixture
from tracker.guard import GuardrailRefused

sagemaker = pytest.importorskip(
    "sagemaker",
    reason="the SageMaker Python SDK is not installed: pip install '.[sdk]' (tests/test_guard_sdk.py)",
)


def estimator(session: Any, hours: int) -> Any:
    from sagemaker.estimator import Estimator

    return Estimator(
        image_uri=IMAGE,
        role=ROLE,
        instance_count=1,
        instance_type="ml.g5.12xlarge",
        max_run=hours * 3600,
        output_path="s3://guard-bucket/out",
        sagemaker_session=session,
        tags=[{"Key": "team", "Value": "nlp"}],
    )


def sdk_session(endpoint: str) -> Any:
    boto_session = boto3.Session(region_name="us-east-1")
    boto_session.client("s3").create_bucket(Bucket="guard-bucket")
    return sagemaker.Session(boto_session=boto_session)


def test_sdk_fit_is_refused_before_any_aws_call(world: World, moto_endpoint: str) -> None:  # noqa: F811
    session = sdk_session(moto_endpoint)
    tracker.guard.install(session, config=world.settings, mode="refuse", clock=lambda: NOW)
    sent: list[str] = []
    session.sagemaker_client.meta.events.register(
        "before-send.sagemaker", lambda request, **_: sent.append(request.url)
    )
    with pytest.raises(GuardrailRefused, match=r"worst case \$70\.00"):
        estimator(session, 7).fit(wait=False, job_name="sdk-big")
    assert sent == []
    jobs = session.sagemaker_client.list_training_jobs()["TrainingJobSummaries"]
    assert jobs == []


def test_sdk_fit_that_fits_is_sent(world: World, moto_endpoint: str) -> None:  # noqa: F811
    session = sdk_session(moto_endpoint)
    tracker.guard.install(session, config=world.settings, mode="refuse", clock=lambda: NOW)
    estimator(session, 5).fit(wait=False, job_name="sdk-fits")
    jobs = session.sagemaker_client.list_training_jobs()["TrainingJobSummaries"]
    assert [j["TrainingJobName"] for j in jobs] == ["sdk-fits"]
