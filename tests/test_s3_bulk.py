"""S3 bytes in bulk: ``measure_many`` gives every job exactly what ``measure`` gives it alone,
in fewer ListObjectsV2 calls when jobs share a parent folder (moto in-process, calls counted
by the tracker's own CallCounter)."""

from __future__ import annotations

import pytest
from moto import mock_aws

from tracker.aws import s3 as aws_s3
from tracker.aws.session import CallCounter, make_client


@pytest.fixture
def s3():
    with mock_aws():
        counter = CallCounter()
        client = make_client("s3", "us-east-1", counter=counter)
        client.meta.counter = counter  # for the tests below
        yield client


def put(s3, bucket: str, key: str, size: int) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=b"\0" * size)


def calls(s3) -> dict[str, int]:
    return s3.meta.counter.by_service().get("s3", {})


def reset(s3) -> None:
    s3.meta.counter.calls.clear()


def per_job(s3, jobs):
    return [aws_s3.measure(s3, *job) for job in jobs]


def test_measure_many_equals_measure_alone_on_every_case(s3) -> None:
    """Shared output path, names that prefix each other (job-1, job-10, job-1-a), checkpoints
    under one parent, a model elsewhere, a job alone, a missing bucket, other objects between."""
    for bucket in ("out", "ckpt", "models"):
        s3.create_bucket(Bucket=bucket)
    for name, size in (("job-1", 100), ("job-10", 1000), ("job-1-a", 10), ("job-2", 7)):
        put(s3, "out", f"team/{name}/output/model.tar.gz", size)
        put(s3, "out", f"team/{name}/debug/log.txt", 1)
    put(s3, "out", "team/job-15/output/model.tar.gz", 5000)  # not in the batch, in between
    put(s3, "out", "team/job-1.txt", 3)  # a sibling file, no job's folder
    put(s3, "ckpt", "checkpoints/job-1/c1.pt", 20)
    put(s3, "ckpt", "checkpoints/job-10/c1.pt", 30)
    put(s3, "ckpt", "checkpoints/job-10/c2.pt", 40)
    put(s3, "models", "elsewhere/model.tar.gz", 600)
    put(s3, "out", "solo/job-9/output/model.tar.gz", 9)
    jobs = [
        ("job-1", "s3://out/team", "s3://out/team/job-1/output/model.tar.gz",
         "s3://ckpt/checkpoints/job-1"),
        ("job-10", "s3://out/team/", "s3://out/team/job-10/output/model.tar.gz",
         "s3://ckpt/checkpoints/job-10/"),
        ("job-1-a", "s3://out/team", "s3://models/elsewhere/model.tar.gz", None),
        ("job-2", "s3://out/team", None, "s3://gone/checkpoints/job-2"),
        ("job-9", "s3://out/solo", "s3://out/solo/job-9/output/model.tar.gz", None),
        ("job-3", "s3://out/team", "s3://out/team/job-3/output/model.tar.gz", None),  # empty
    ]  # fmt: skip

    alone = per_job(s3, jobs)
    reset(s3)
    together = aws_s3.measure_many(s3, jobs)

    assert together == alone
    assert [size.bytes for size in together] == [101 + 20, 1001 + 70, 11 + 600, 8, 9, 0]
    assert together[3].warnings == ("s3://gone/checkpoints/job-2/: NoSuchBucket",)
    # out/team/ once for 5 jobs, ckpt/checkpoints/ once for 2, the missing bucket, solo/job-9,
    # and the model elsewhere: 5 calls where measuring alone takes 10.
    assert calls(s3) == {"ListObjectsV2": 4, "HeadObject": 1}


def test_measure_many_lists_a_shared_output_path_once_for_a_batch(s3) -> None:
    s3.create_bucket(Bucket="out")
    jobs = []
    for i in range(50):
        put(s3, "out", f"runs/job-{i:03d}/output/model.tar.gz", 1000 + i)
        jobs.append((f"job-{i:03d}", "s3://out/runs", f"s3://out/runs/job-{i:03d}/output/model.tar.gz", None))  # fmt: skip

    reset(s3)
    alone = per_job(s3, jobs)
    assert calls(s3) == {"ListObjectsV2": 50}
    reset(s3)
    together = aws_s3.measure_many(s3, jobs)

    assert together == alone
    assert sum(size.bytes for size in together) == 50 * 1000 + sum(range(50))
    assert calls(s3) == {"ListObjectsV2": 1}


def test_measure_many_stops_a_shared_listing_no_cheaper_than_one_per_folder(s3) -> None:
    """3 batch folders with 3,500 other objects between them: the shared listing stops after
    3 pages (as many as folders) and lists the folders it has not reached one by one."""
    from moto.s3.models import s3_backends

    s3.create_bucket(Bucket="out")
    for name in ("a-job", "m-job", "z-job"):
        put(s3, "out", f"runs/{name}/model.tar.gz", 10)
    backend = s3_backends["123456789012"]["aws"]
    for i in range(3500):  # straight into moto: 3,500 PutObject calls would be slow
        backend.put_object("out", f"runs/n-other-{i:04d}/x", b"\0")
    jobs = [(name, "s3://out/runs", None, None) for name in ("a-job", "m-job", "z-job")]

    alone = per_job(s3, jobs)
    reset(s3)
    together = aws_s3.measure_many(s3, jobs)

    assert together == alone and [s.bytes for s in together] == [10, 10, 10]
    # 3 pages of the shared range (a-job and m-job covered), then z-job alone.
    assert calls(s3) == {"ListObjectsV2": 4}


def test_measure_many_redoes_a_failed_shared_listing_folder_by_folder(s3) -> None:
    jobs = [("job-1", "s3://missing/runs", None, None), ("job-2", "s3://missing/runs", None, None)]
    together = aws_s3.measure_many(s3, jobs)
    assert together == per_job(s3, jobs)
    assert [s.warnings for s in together] == [
        ("s3://missing/runs/job-1/: NoSuchBucket",),
        ("s3://missing/runs/job-2/: NoSuchBucket",),
    ]
