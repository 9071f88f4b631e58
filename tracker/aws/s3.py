"""Bytes a training job left in S3: output prefix, model artifact, checkpoint prefix.

Every object is counted once even when the locations overlap (the model artifact
usually lies under the output prefix). A missing bucket or object, or a denied call,
counts 0 bytes and adds a warning: measuring artifacts never stops a collection.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError


@dataclass(frozen=True)
class ArtifactSize:
    """Total bytes found and why any location could not be measured."""

    bytes: int
    warnings: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.warnings


def split_s3_uri(uri: str) -> tuple[str, str] | None:
    """``s3://bucket/key`` -> ``(bucket, key)``; None when it is not an S3 URI."""
    if not uri or not uri.startswith("s3://"):
        return None
    bucket, _, key = uri[len("s3://") :].partition("/")
    return (bucket, key) if bucket else None


def job_locations(
    job_name: str,
    output_path: str | None,
    model_artifact: str | None,
    checkpoint_uri: str | None,
) -> tuple[list[tuple[str, str]], tuple[str, str] | None]:
    """The prefixes to list and the single object to check for one job.

    The output prefix is ``<S3OutputPath>/<job name>/``; prefixes end with ``/`` so
    ``job-1`` never matches ``job-10``. A prefix inside another one is dropped, and so is
    a checkpoint URI that is a bare bucket.
    """
    prefixes: list[tuple[str, str]] = []
    for uri, suffix in ((output_path, job_name), (checkpoint_uri, "")):
        where = split_s3_uri(uri or "")
        if where is None:
            continue
        bucket, key = where
        key = "/".join(p for p in (key.strip("/"), suffix) if p)
        if key:  # never list a whole bucket: it holds other jobs' objects too
            prefixes.append((bucket, f"{key}/"))
    kept: list[tuple[str, str]] = []
    for bucket, prefix in prefixes:
        if any(b == bucket and prefix.startswith(p) for b, p in kept):
            continue
        kept = [(b, p) for b, p in kept if not (b == bucket and p.startswith(prefix))]
        kept.append((bucket, prefix))
    return kept, split_s3_uri(model_artifact or "")


def measure(
    client: BaseClient,
    job_name: str,
    output_path: str | None,
    model_artifact: str | None,
    checkpoint_uri: str | None,
) -> ArtifactSize:
    """Bytes of every object under the job's output and checkpoint prefixes plus its model."""
    prefixes, model = job_locations(job_name, output_path, model_artifact, checkpoint_uri)
    sizes: dict[tuple[str, str], int] = {}
    warnings: list[str] = []
    for bucket, prefix in prefixes:
        try:
            sizes.update(_list_prefix(client, bucket, prefix))
        except (ClientError, BotoCoreError) as exc:
            warnings.append(f"s3://{bucket}/{prefix}: {_reason(exc)}")
    if model is not None and model not in sizes:
        covered = any(model[0] == b and model[1].startswith(p) for b, p in prefixes)
        if not covered:
            try:
                sizes[model] = _object_size(client, *model)
            except (ClientError, BotoCoreError) as exc:
                warnings.append(f"s3://{model[0]}/{model[1]}: {_reason(exc)}")
    return ArtifactSize(sum(sizes.values()), tuple(warnings))


def _list_prefix(client: BaseClient, bucket: str, prefix: str) -> dict[tuple[str, str], int]:
    found: dict[tuple[str, str], int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            found[(bucket, obj["Key"])] = int(obj.get("Size", 0))
    return found


def _object_size(client: BaseClient, bucket: str, key: str) -> int:
    return int(client.head_object(Bucket=bucket, Key=key)["ContentLength"])


def _reason(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return str(error.get("Code") or error.get("Message") or type(exc).__name__)
    return type(exc).__name__
