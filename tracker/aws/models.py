"""SageMaker calls the models collection makes: list and describe model packages and models.

ListModelPackages lists only *unversioned* packages unless asked otherwise (its
``ModelPackageType`` defaults to ``Unversioned`` in the API reference, and moto does the same),
so the registry's versioned packages, the ones a Model Registry group holds, are asked for with
``ModelPackageType="Both"``. The listings page through botocore's paginators; each package or
model is described by its ARN (a package) or name (a model) only when the caller has not
stored it yet (:mod:`tracker.collect.models`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.client import BaseClient

from tracker.aws.sagemaker import MAX_PAGE_SIZE, describe_or_none

# Both versioned (Model Registry) and unversioned packages; the API's default is Unversioned.
MODEL_PACKAGE_TYPE = "Both"


def list_model_packages(client: BaseClient) -> Iterator[dict[str, Any]]:
    """Every ModelPackageSummary of the region, versioned and unversioned."""
    pages = client.get_paginator("list_model_packages").paginate(
        ModelPackageType=MODEL_PACKAGE_TYPE, PaginationConfig={"PageSize": MAX_PAGE_SIZE}
    )
    for page in pages:
        yield from page.get("ModelPackageSummaryList", [])


def list_models(client: BaseClient) -> Iterator[dict[str, Any]]:
    """Every ModelSummary (ModelName, ModelArn, CreationTime) of the region."""
    pages = client.get_paginator("list_models").paginate(
        PaginationConfig={"PageSize": MAX_PAGE_SIZE}
    )
    for page in pages:
        yield from page.get("Models", [])


def describe_model_package(client: BaseClient, arn: str) -> dict[str, Any] | None:
    """The DescribeModelPackage response (by ARN: a versioned package's name is its group's),
    without ResponseMetadata; None when it was deleted since the listing."""
    return describe_or_none(client.describe_model_package, ModelPackageName=arn)


def describe_model(client: BaseClient, name: str) -> dict[str, Any] | None:
    """The DescribeModel response without ResponseMetadata; None when it was deleted since."""
    return describe_or_none(client.describe_model, ModelName=name)
