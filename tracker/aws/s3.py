"""Bytes a training job left in S3: output prefix, model artifact, checkpoint prefix.

Every object is counted once even when the locations overlap (the model artifact
usually lies under the output prefix). A missing bucket or object, or a denied call,
counts 0 bytes and adds a warning: measuring artifacts never stops a collection.

:func:`measure_many` measures a batch of jobs with the same result per job as
:func:`measure`, in fewer calls: job prefixes that share a parent folder
(``<S3OutputPath>/<job>/`` of jobs writing to one S3OutputPath, ``checkpoints/<job>/``) are
listed together, once, from the first job's folder to the last (ListObjectsV2, 1,000 keys a
page, ``StartAfter``), and every key goes to the job whose folder it lies in. A shared
listing that is no cheaper than listing each folder (other objects in between) stops after
as many pages as it has folders, and the folders it has not reached are listed one by one.
"""

from __future__ import annotations

import queue
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
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
    listed: dict[Location, dict[Location, int]] = {}
    failed: dict[Location, str] = {}
    for bucket, prefix in prefixes:
        try:
            listed[(bucket, prefix)] = _list_prefix(client, bucket, prefix)
        except (ClientError, BotoCoreError) as exc:
            failed[(bucket, prefix)] = _reason(exc)
    return _size(client, prefixes, model, listed, failed)


Location = tuple[str, str]  # (bucket, key or prefix)
JobPaths = tuple[str, str | None, str | None, str | None]  # name, output, model, checkpoint


def measure_many(
    client: BaseClient, jobs: Sequence[JobPaths], *, more_clients: Sequence[BaseClient] = ()
) -> list[ArtifactSize]:
    """:func:`measure` for each job (name, output path, model artifact, checkpoint URI), in order.

    Prefixes sharing a parent folder with another prefix of the batch are listed in one
    range; the rest one by one, as :func:`measure` does. With ``more_clients`` the folders
    are listed concurrently, one thread per client (each client used by one thread at a
    time), so the pool is bounded by the clients the caller made.
    """
    located = [job_locations(*job) for job in jobs]
    by_parent: dict[Location, set[str]] = {}
    for prefixes, _ in located:
        for bucket, prefix in prefixes:
            by_parent.setdefault((bucket, _parent(prefix)), set()).add(prefix)
    listed: dict[Location, dict[Location, int]] = {}  # prefix -> its objects
    failed: dict[Location, str] = {}  # prefix -> why it could not be listed
    groups = list(by_parent.items())
    clients = [client, *more_clients]
    if len(clients) == 1 or len(groups) == 1:
        for (bucket, parent), prefixes in groups:
            _list_group(client, bucket, parent, prefixes, listed, failed)
    else:
        idle: queue.SimpleQueue[BaseClient] = queue.SimpleQueue()
        for each in clients:
            idle.put(each)

        def work(group: tuple[Location, set[str]]) -> None:
            (bucket, parent), prefixes = group
            mine = idle.get()
            try:  # dict writes of distinct keys: safe under the GIL
                _list_group(mine, bucket, parent, prefixes, listed, failed)
            finally:
                idle.put(mine)

        with ThreadPoolExecutor(max_workers=min(len(clients), len(groups))) as pool:
            list(pool.map(work, groups))
    return [_size(client, prefixes, model, listed, failed) for prefixes, model in located]


def _list_group(
    client: BaseClient,
    bucket: str,
    parent: str,
    prefixes: set[str],
    listed: dict[Location, dict[Location, int]],
    failed: dict[Location, str],
) -> None:
    pending = sorted(prefixes)
    if len(pending) > 1:
        pending = _list_shared(client, bucket, parent, pending, listed)
    for prefix in pending:
        try:
            listed[(bucket, prefix)] = _list_prefix(client, bucket, prefix)
        except (ClientError, BotoCoreError) as exc:
            failed[(bucket, prefix)] = _reason(exc)


def _size(
    client: BaseClient,
    prefixes: list[Location],
    model: Location | None,
    listed: dict[Location, dict[Location, int]],
    failed: dict[Location, str],
) -> ArtifactSize:
    """One job's bytes from the listed prefixes, in :func:`measure`'s order and rules."""
    sizes: dict[Location, int] = {}
    warnings: list[str] = []
    for bucket, prefix in prefixes:
        if (bucket, prefix) in failed:
            warnings.append(f"s3://{bucket}/{prefix}: {failed[(bucket, prefix)]}")
        else:
            sizes.update(listed[(bucket, prefix)])
    if model is not None and model not in sizes:
        covered = any(model[0] == b and model[1].startswith(p) for b, p in prefixes)
        if not covered:
            try:
                sizes[model] = _object_size(client, *model)
            except (ClientError, BotoCoreError) as exc:
                warnings.append(f"s3://{model[0]}/{model[1]}: {_reason(exc)}")
    return ArtifactSize(sum(sizes.values()), tuple(warnings))


def _parent(prefix: str) -> str:
    """``a/b/job/`` -> ``a/b/``; ``job/`` -> ``""``."""
    head = prefix.rstrip("/").rpartition("/")[0]
    return f"{head}/" if head else ""


def _list_shared(
    client: BaseClient,
    bucket: str,
    parent: str,
    prefixes: list[str],
    listed: dict[Location, dict[Location, int]],
) -> list[str]:
    """List ``prefixes`` (sorted, all directly under ``parent``) in one key range.

    Fills ``listed`` for the prefixes it covers and returns those left to list one by one
    (when the range held so many other objects that it stopped early, or the call failed).
    """
    found: dict[str, dict[Location, int]] = {p: {} for p in prefixes}
    last, pages = "", 0
    try:
        paginator = client.get_paginator("list_objects_v2")
        # Keys of the first folder sort after the folder name without its "/".
        for page in paginator.paginate(Bucket=bucket, Prefix=parent, StartAfter=prefixes[0][:-1]):
            pages += 1
            for obj in page.get("Contents", []):
                key = obj["Key"]
                last = key
                folder = key[len(parent) :].partition("/")
                prefix = f"{parent}{folder[0]}/" if folder[1] else None
                if prefix in found:
                    found[prefix][(bucket, key)] = int(obj.get("Size", 0))
            if last >= prefixes[-1] and not last.startswith(prefixes[-1]):
                break  # past the last folder of the batch
            if pages >= len(prefixes) and page.get("IsTruncated"):
                break  # no cheaper than one listing per folder: finish those one by one
        else:
            last = ""  # listed to the end: every folder is complete
    except (ClientError, BotoCoreError):
        # The folders one by one give each its own answer (a policy may allow some).
        return prefixes
    left = []
    for prefix in prefixes:
        if not last or (last >= prefix and not last.startswith(prefix)):
            listed[(bucket, prefix)] = found[prefix]
        else:
            left.append(prefix)
    return left


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
