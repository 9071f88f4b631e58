"""The collector against moto in-process: what is stored, what it costs, how many calls.

Override price book (us-east-1): ml.m5.xlarge $0.20/h, ml.g5.2xlarge $1.50/h,
ml.p4d.24xlarge $32/h, ml.c5.4xlarge $0.80/h, ml.g6.2xlarge $1.20/h; ML storage
$0.744/GB-month = $0.001/GB-hour (October has 744 h; rule 5 of docs/cost-model.md); g5,
g6, p4d and trn2 use local NVMe (no volume billed). Every job has a 10 GB volume unless said otherwise. ``now`` = 15:00 UTC.

| job          | what                                            | list USD                      |
|--------------|-------------------------------------------------|-------------------------------|
| spot-m5      | 1 m5, spot, trained 3600 s, billed 1440 s       | 0.08 + 0.01 vol = 0.09 (saves 0.12) |
| multi-g5     | 4 g5.2xl, 1800 s                                | 1.50*4*0.5 = 3.00             |
| hetero       | 2 p4d + 4 c5.4xl, 3600 s                        | 64 + 3.20 + 40 GB*1 h*0.001 = 67.24 |
| flex         | asked 1 g5.2xl, got 2 g6.2xl, 3600 s            | 1.20*2 = 2.40                 |
| warm         | 2 m5, 3600 s + 1800 s warm pool, 20 GB each     | 0.40 + 0.20 + 40 GB*1.5 h*0.001 = 0.66 |
| failed-boot  | 1 m5, Failed, no times, no billable seconds     | 0 (no-billable-time)          |
| stopped      | 1 m5, Stopped, 900 s                            | 0.05 + 0.0025 = 0.0525        |
| running      | 1 g5.2xl, InProgress since 13:00                | 1.50*2 = 3.00 so far          |
| untagged     | 1 m5, 3600 s, no tags                           | 0.20 + 0.01 = 0.21            |
| trainium     | 1 trn2.48xl (no price), 3600 s                  | 0, unpriced                   |
| studio       | 1 m5, 1800 s, Studio user-profile tag           | 0.10 + 0.005 = 0.105          |
|              | total                                           | 76.7575 -> $76.76             |
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError
from moto import mock_aws

from tests.conftest import DEFAULT_ACCOUNT, T0, seed_job, update_job
from tracker.aws import s3 as aws_s3
from tracker.aws.session import AwsContextFactory, CallCounter, make_client
from tracker.collect.service import collect
from tracker.cost.prices import PriceBook
from tracker.report.collection import collection_text
from tracker.settings import CollectionSettings, Settings, Source
from tracker.store.database import Store

D = Decimal
NOW = datetime(2026, 10, 1, 15, 0, tzinfo=UTC)
REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
BOOK = PriceBook(
    {
        **{(r, "ml.m5.xlarge"): D("0.20") for r in REGIONS},
        ("us-east-1", "ml.g5.2xlarge"): D("1.50"),
        ("us-east-1", "ml.p4d.24xlarge"): D("32.00"),
        ("us-east-1", "ml.c5.4xlarge"): D("0.80"),
        ("us-east-1", "ml.g6.2xlarge"): D("1.20"),
    },
    storage={r: D("0.744") for r in REGIONS},
    s3={r: D("0.025") for r in REGIONS},
)
STUDIO_ARN = "arn:aws:sagemaker:us-east-1:123456789012:user-profile/d-1a2b3c/carol"

MIXED = {
    "spot-m5": dict(spot=True, training=3600, billable=1440, artifact_bytes=2048,
                    checkpoint_bytes=1024, tags={"team": "nlp", "project": "llm", "owner": "ana"}),
    "multi-g5": dict(instance_type="ml.g5.2xlarge", count=4, billable=1800,
                     tags={"team": "vision"}),
    "hetero": dict(groups=[("ml.p4d.24xlarge", 2), ("ml.c5.4xlarge", 4)], billable=3600,
                   tags={"team": "nlp"}),
    "flex": dict(instance_type="ml.g5.2xlarge", selected_type="ml.g6.2xlarge", selected_count=2,
                 billable=3600, tags={"team": "vision"}),
    "warm": dict(count=2, volume_gb=20, billable=3600, warm_pool_seconds=1800,
                 keep_alive_seconds=1800, tags={"team": "recsys"}),
    "failed-boot": dict(status="Failed", billable=None, start=None,
                        failure_reason="CapacityError: Unable to provision requested ML compute",
                        tags={"team": "speech"}),
    "stopped": dict(status="Stopped", billable=900, tags={"team": "speech"}),
    "running": dict(instance_type="ml.g5.2xlarge", status="InProgress", billable=None,
                    start=datetime(2026, 10, 1, 13, 0), tags={"team": "vision"}),
    "untagged": dict(tags={}),
    "trainium": dict(instance_type="ml.trn2.48xlarge", tags={"team": "nlp"}),
    "studio": dict(billable=1800, tags={"team": "vision", "sagemaker:user-profile-arn": STUDIO_ARN}),
}  # fmt: skip
EXPECTED_LIST_MICROS = {
    "spot-m5": 90_000, "multi-g5": 3_000_000, "hetero": 67_240_000, "flex": 2_400_000,
    "warm": 660_000, "failed-boot": 0, "stopped": 52_500, "running": 3_000_000,
    "untagged": 210_000, "trainium": 0, "studio": 105_000,
}  # fmt: skip


_SESSION: list[boto3.Session] = []


def session() -> boto3.Session:
    """One boto3 Session for the module: its parsed service models are reused (fast tests).

    Made on first use, inside a test, so it sees the fake credentials from conftest.
    """
    if not _SESSION:
        _SESSION.append(boto3.Session())
    return _SESSION[0]


@pytest.fixture
def aws():
    with mock_aws():
        yield


@pytest.fixture
def sm(aws):
    return session().client("sagemaker", region_name="us-east-1")


@pytest.fixture
def s3(aws):
    return session().client("s3", region_name="us-east-1")


@pytest.fixture
def store(tmp_path):
    return Store.open(f"sqlite:///{tmp_path / 'tracker.db'}")


def settings(*sources: Source, **collection) -> Settings:
    """The list path (ListTrainingJobs + DescribeTrainingJob), whose calls these tests count;
    tests/test_search.py covers the Search path and tests/test_search_parity.py both."""
    sources = sources or (Source(name="prod", regions=("us-east-1",)),)
    return Settings(
        sources=sources,
        collection=CollectionSettings(**{"max_attempts": 3, "method": "list", **collection}),
    )


def run(store, cfg=None, factory=None, now=NOW):
    cfg = cfg or settings()
    factory = factory or AwsContextFactory(cfg.collection, base_session=session())
    return collect(cfg, store, BOOK, clock=lambda: now, context_factory=factory)


def seed_mixed(sm, s3):
    for i, (name, kw) in enumerate(MIXED.items()):
        kw = {"start": T0 + timedelta(minutes=10 * i), "volume_gb": 10, **kw}
        seed_job(sm, name, s3=s3, **kw)


class HookedFactory:
    """The real context factory, with botocore event handlers added to chosen clients."""

    def __init__(self, collection: CollectionSettings):
        self.inner = AwsContextFactory(collection, base_session=session())
        self.hooks: list[tuple[str | None, str, str, object, bool]] = []
        self.contexts = []

    def on(self, service, event, handler, *, region=None, first=False):
        self.hooks.append((region, service, event, handler, first))
        return self

    def __call__(self, source, region):
        ctx = self.inner(source, region)
        for where, service, event, handler, first in self.hooks:
            if where in (None, region):
                events = ctx.client(service).meta.events
                (events.register_first if first else events.register)(event, handler)
        self.contexts.append(ctx)
        return ctx


def aws_error(code: str, status: int = 400):
    """A before-call handler answering with an AWS error response, as AWS would."""

    def handler(**_):
        body = {"Error": {"Code": code, "Message": f"injected {code}"},
                "ResponseMetadata": {"HTTPStatusCode": status}}  # fmt: skip
        return AWSResponse("https://aws.invalid", status, {}, None), body

    return handler


def by_name(store):
    return {job.name: job for job in store.jobs()}


# -- a full collection ---------------------------------------------------------------------


def test_collect_mixed_jobs_stores_fields_and_costs_to_the_cent(sm, s3, store):
    seed_mixed(sm, s3)
    summary = run(store)

    assert summary.ok and summary.status == "ok"
    region = summary.regions[0]
    assert (region.account_id, region.new, region.updated, region.unchanged) == (
        DEFAULT_ACCOUNT, 11, 0, 0,
    )  # fmt: skip
    jobs = by_name(store)
    assert {n: j.list_micros for n, j in jobs.items()} == EXPECTED_LIST_MICROS
    assert sum(j.list_micros for j in jobs.values()) == 76_757_500

    spot = jobs["spot-m5"]
    assert (spot.spot, spot.billable_seconds, spot.training_seconds) == (True, 1440, 3600)
    assert (spot.compute_micros, spot.spot_savings_micros, spot.storage_micros) == (
        80_000, 120_000, 10_000,
    )  # fmt: skip
    assert (spot.team, spot.project, spot.user) == ("nlp", "llm", "ana")
    assert spot.artifact_bytes == 2048 + 1024
    assert spot.final and spot.status == "Completed"
    assert spot.model_artifact_uri == "s3://sm-artifacts/output/spot-m5/output/model.tar.gz"
    assert spot.checkpoint_uri == "s3://sm-artifacts/checkpoints/spot-m5"
    assert json.loads(spot.raw_json)["BillableTimeInSeconds"] == 1440

    hetero = jobs["hetero"]
    assert hetero.instance_type == "ml.p4d.24xlarge+ml.c5.4xlarge"
    assert hetero.instance_count == 6
    assert [g["count"] for g in json.loads(hetero.instance_groups_json)] == [2, 4]
    assert (hetero.compute_micros, hetero.storage_micros) == (67_200_000, 40_000)

    flex = jobs["flex"]
    assert (flex.requested_instance_type, flex.instance_type, flex.instance_count) == (
        "ml.g5.2xlarge", "ml.g6.2xlarge", 2,
    )  # fmt: skip

    warm = jobs["warm"]
    assert (warm.warm_pool_retained_seconds, warm.keep_alive_seconds) == (1800, 1800)
    assert warm.warm_pool_status == "Terminated"
    assert (warm.compute_micros, warm.warm_pool_micros, warm.storage_micros) == (
        400_000, 200_000, 60_000,
    )  # fmt: skip

    failed = jobs["failed-boot"]
    assert (failed.status, failed.final, failed.billable_seconds, failed.start_time) == (
        "Failed", True, None, None,
    )  # fmt: skip
    assert failed.failure_reason.startswith("CapacityError")
    assert "no-billable-time" in failed.flags.split(",")

    assert (jobs["stopped"].status, jobs["stopped"].final) == ("Stopped", True)
    running = jobs["running"]
    assert (running.status, running.final) == ("InProgress", False)
    assert "running" in running.flags.split(",")

    assert (jobs["untagged"].team, jobs["untagged"].tags_json) == ("unallocated", "{}")
    trainium = jobs["trainium"]
    assert trainium.unpriced and "unpriced:ml.trn2.48xlarge" in trainium.flags.split(",")
    assert (jobs["studio"].team, jobs["studio"].user) == ("vision", "carol")


def test_collect_first_run_uses_bulk_tags_and_one_describe_per_job(sm, s3, store):
    seed_mixed(sm, s3)
    calls = run(store).regions[0].calls
    assert calls["sagemaker"] == {"ListTrainingJobs": 1, "DescribeTrainingJob": 11}
    assert calls["resource-groups-tagging-api"] == {"GetResources": 1}
    assert calls["sts"] == {"GetCallerIdentity": 1}
    # the 11 jobs share one S3OutputPath: one listing of it; plus the spot job's checkpoints
    assert calls["s3"] == {"ListObjectsV2": 2}


def test_collect_unchanged_rerun_makes_no_describe_call(sm, s3, store):
    seed_mixed(sm, s3)
    run(store)
    summary = run(store, now=NOW + timedelta(minutes=5))

    region = summary.regions[0]
    assert region.calls == {"sagemaker": {"ListTrainingJobs": 1}, "sts": {"GetCallerIdentity": 1}}
    assert region.api_calls == 2
    assert (region.new, region.updated) == (0, 0)
    # Only jobs inside the 15-minute overlap before the watermark are listed again.
    assert region.unchanged >= 1
    assert store.count_jobs() == 11
    # The running job's cost so far moved with the clock, without any AWS call.
    assert by_name(store)["running"].compute_micros == 3_125_000


def test_collect_one_new_job_costs_one_describe(sm, s3, store):
    seed_mixed(sm, s3)
    run(store)
    seed_job(sm, "late", start=datetime(2026, 10, 1, 14, 0), billable=600, volume_gb=10)
    region = run(store, now=NOW + timedelta(minutes=5)).regions[0]

    assert region.calls_to("sagemaker", "DescribeTrainingJob") == 1
    assert region.calls_to("resource-groups-tagging-api") == 1
    assert (region.new, region.updated) == (1, 0)
    assert by_name(store)["late"].list_micros == 33_333 + 1_667  # 0.20/6 + 10 GB*600 s


def test_collect_running_job_that_finishes_is_updated_once(sm, s3, store):
    seed_mixed(sm, s3)
    run(store)
    update_job(
        DEFAULT_ACCOUNT, "us-east-1", "running",
        training_job_status="Completed", secondary_status="Completed",
        training_end_time=datetime(2026, 10, 1, 15, 30),
        last_modified_time=datetime(2026, 10, 1, 15, 31),
        billable_time_in_seconds=9000, training_time_in_seconds=9000,
    )  # fmt: skip
    region = run(store, now=datetime(2026, 10, 1, 16, 0, tzinfo=UTC)).regions[0]

    assert (region.new, region.updated) == (0, 1)
    assert region.calls_to("sagemaker", "DescribeTrainingJob") == 1
    job = by_name(store)["running"]
    assert (job.status, job.final, job.billable_seconds) == ("Completed", True, 9000)
    assert job.list_micros == 3_750_000  # 1.50 * 9000/3600, final: no longer grows
    assert store.count_jobs() == 11


# -- interruption, pagination, failures ----------------------------------------------------


def _stored(store):
    return sorted((j.arn, j.status, j.list_micros, j.team, j.artifact_bytes) for j in store.jobs())


def test_collect_interrupted_then_rerun_equals_uninterrupted(sm, s3, tmp_path, monkeypatch):
    monkeypatch.setattr("tracker.collect.service.BATCH_SIZE", 3)
    seed_mixed(sm, s3)
    cfg = settings(page_size=4)

    reference = Store.open(f"sqlite:///{tmp_path / 'reference.db'}")
    run(reference, cfg)

    describes = []

    def crash_on_fifth(**_):
        describes.append(1)
        if len(describes) == 5:
            raise RuntimeError("injected crash")

    crashed = Store.open(f"sqlite:///{tmp_path / 'crashed.db'}")
    factory = HookedFactory(cfg.collection).on(
        "sagemaker", "before-call.sagemaker.DescribeTrainingJob", crash_on_fifth
    )
    with pytest.raises(RuntimeError, match="injected crash"):
        run(crashed, cfg, factory)
    assert crashed.count_jobs() == 3  # the first batch was committed
    assert crashed.watermark(DEFAULT_ACCOUNT, "us-east-1") is None  # not advanced
    assert crashed.last_runs(1)[0].status == "failed"

    rerun = run(crashed, cfg).regions[0]
    assert (rerun.new, rerun.unchanged) == (8, 3)
    assert rerun.calls_to("sagemaker", "DescribeTrainingJob") == 8
    assert _stored(crashed) == _stored(reference)
    assert len(_stored(crashed)) == 11
    assert crashed.watermark(DEFAULT_ACCOUNT, "us-east-1") == reference.watermark(
        DEFAULT_ACCOUNT, "us-east-1"
    )


def test_collect_follows_empty_pages_that_carry_a_next_token(sm, store):
    for i in range(8):
        seed_job(sm, f"job-{i}", start=T0 + timedelta(hours=i), tags={"team": "a"})
    run(store)
    # job-0 changes and job-8 is new. Moto pages by creation order and filters afterwards:
    # with 2 per page, pages 2 and 3 come back EMPTY with a NextToken; page 4 holds job-7,
    # inside the 15-minute overlap before the watermark (listed again, unchanged).
    update_job(
        DEFAULT_ACCOUNT, "us-east-1", "job-0", last_modified_time=datetime(2026, 10, 1, 20, 0)
    )
    seed_job(sm, "job-8", start=datetime(2026, 10, 1, 19, 0), tags={"team": "a"})
    pages = []
    factory = HookedFactory(settings().collection).on(
        "sagemaker",
        "after-call.sagemaker.ListTrainingJobs",
        lambda parsed, **_: pages.append(len(parsed["TrainingJobSummaries"])),
    )
    region = run(store, settings(page_size=2), factory, now=NOW + timedelta(hours=6)).regions[0]

    assert pages == [1, 0, 0, 1, 1]
    assert (region.new, region.updated, region.unchanged) == (1, 1, 1)
    assert store.count_jobs() == 9


def test_collect_region_access_denied_does_not_stop_the_others(sm, store):
    seed_job(sm, "east", tags={"team": "a"})
    west = session().client("sagemaker", region_name="us-west-2")
    seed_job(west, "west", tags={"team": "b"}, output_bucket="west-artifacts")
    cfg = settings(Source(name="prod", regions=("eu-west-1", "us-east-1", "us-west-2")))
    factory = HookedFactory(cfg.collection).on(
        "sagemaker",
        "before-call.sagemaker.ListTrainingJobs",
        aws_error("AccessDeniedException", 403),
        region="eu-west-1",
    )
    summary = run(store, cfg, factory)

    assert [r.region for r in summary.regions] == ["eu-west-1", "us-east-1", "us-west-2"]
    denied, east, west_region = summary.regions
    assert denied.error.startswith("AccessDeniedException on ListTrainingJobs")
    assert (east.error, east.new, west_region.error, west_region.new) == (None, 1, None, 1)
    assert (summary.ok, summary.status) == (False, "partial")
    assert sorted(by_name(store)) == ["east", "west"]
    marks = {(w.region, w.last_error is not None) for w in store.watermarks()}
    assert marks == {("eu-west-1", True), ("us-east-1", False), ("us-west-2", False)}
    text = collection_text(summary)
    assert "FAILED prod/123456789012/eu-west-1: AccessDeniedException" in text
    assert store.last_runs(1)[0].status == "partial"


def test_collect_skips_a_job_deleted_before_it_is_described(sm, store):
    seed_job(sm, "kept", tags={"team": "a"})
    seed_job(sm, "deleted", start=T0 + timedelta(hours=1), tags={"team": "a"})

    def gone(params, **_):  # params: the serialised request; its body is the JSON sent
        if json.loads(params["body"])["TrainingJobName"] == "deleted":
            return aws_error("ResourceNotFound")()
        return None

    factory = HookedFactory(settings().collection).on(
        "sagemaker", "before-call.sagemaker.DescribeTrainingJob", gone
    )
    summary = run(store, factory=factory)
    region = summary.regions[0]
    assert (region.error, region.new, region.vanished) == (None, 1, 1)
    assert sorted(by_name(store)) == ["kept"]
    assert "deleted between listing and describing (skipped): 1" in collection_text(summary)


def test_collect_endpoint_error_is_a_region_failure(sm, store):
    seed_job(sm, "east")
    cfg = settings(Source(name="prod", regions=("us-east-1", "us-west-2")))

    def unreachable(**_):
        raise EndpointConnectionError(endpoint_url="https://api.sagemaker.us-west-2.amazonaws.com")

    factory = HookedFactory(cfg.collection).on(
        "sagemaker", "before-send.sagemaker.ListTrainingJobs", unreachable, region="us-west-2"
    )
    summary = run(store, cfg, factory)
    assert summary.regions[0].error is None and summary.regions[0].new == 1
    assert summary.regions[1].error.startswith("EndpointConnectionError")
    assert summary.status == "partial"


def test_collect_assumes_role_into_second_account(sm, store):
    role = "arn:aws:iam::222233334444:role/SpendTrackerRead"
    creds = (
        session()
        .client("sts", region_name="us-east-1")
        .assume_role(RoleArn=role, RoleSessionName="seed")["Credentials"]
    )
    research = session().client(
        "sagemaker",
        region_name="us-west-2",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    seed_job(research, "research-job", tags={"team": "science"}, billable=1800)
    seed_job(sm, "prod-job", tags={"team": "a"})

    base = boto3.Session()  # its own: the handler below must not leak into other tests
    assume_calls = []
    base.events.register(
        "before-parameter-build.sts.AssumeRole", lambda params, **_: assume_calls.append(params)
    )
    cfg = settings(
        Source(name="prod", regions=("us-east-1",)),
        Source(name="research", regions=("us-west-2",), role_arn=role, external_id="ext-42"),
    )
    summary = run(store, cfg, AwsContextFactory(cfg.collection, base_session=base))

    assert [(r.source, r.account_id, r.region, r.new) for r in summary.regions] == [
        ("prod", DEFAULT_ACCOUNT, "us-east-1", 1),
        ("research", "222233334444", "us-west-2", 1),
    ]
    jobs = by_name(store)
    assert (jobs["research-job"].account_id, jobs["research-job"].region) == (
        "222233334444", "us-west-2",
    )  # fmt: skip
    assert jobs["research-job"].arn.split(":")[4] == "222233334444"
    assert jobs["prod-job"].account_id == DEFAULT_ACCOUNT
    assert [(p["RoleArn"], p["RoleSessionName"], p["ExternalId"]) for p in assume_calls] == [
        (role, "sagemaker-spend-tracker", "ext-42")
    ]
    assert summary.regions[1].calls["sts"] == {"AssumeRole": 1, "GetCallerIdentity": 1}


def test_collect_throttled_call_is_retried(sm, store, monkeypatch):
    seed_job(sm, "east", tags={"team": "a"})
    slept = []
    monkeypatch.setattr("botocore.endpoint.time.sleep", slept.append)
    throttled = []

    def throttle_once(request, **_):
        if throttled:
            return None
        throttled.append(request.url)
        body = b'{"__type": "ThrottlingException", "message": "Rate exceeded"}'
        return AWSResponse(request.url, 400, {"x-amzn-requestid": "t"}, _Raw(body))

    cfg = settings(retry_mode="standard", max_attempts=3)
    factory = HookedFactory(cfg.collection).on(
        "sagemaker", "before-send.sagemaker.ListTrainingJobs", throttle_once, first=True
    )
    region = run(store, cfg, factory).regions[0]

    assert region.error is None and region.new == 1
    assert len(throttled) == 1 and len(slept) == 1
    assert region.retries == 1
    assert region.calls_to("sagemaker", "ListTrainingJobs") == 1


class _Raw:
    """The minimal raw-body object botocore's AWSResponse reads."""

    def __init__(self, body: bytes):
        self.body = body

    def stream(self, **_):
        yield self.body


# -- tags and S3 ---------------------------------------------------------------------------


def test_collect_tags_fall_back_to_list_tags_when_tagging_api_denied(sm, store):
    seed_job(sm, "a", tags={"team": "nlp", "owner": "ana"})
    seed_job(sm, "b", tags={})
    cfg = settings()
    factory = HookedFactory(cfg.collection).on(
        "resourcegroupstaggingapi",
        "before-call.resource-groups-tagging-api.GetResources",
        aws_error("AccessDeniedException", 400),
    )
    region = run(store, cfg, factory).regions[0]

    assert region.error is None
    assert region.calls_to("sagemaker", "ListTags") == 2
    jobs = by_name(store)
    assert (jobs["a"].team, jobs["a"].user, jobs["b"].team) == ("nlp", "ana", "unallocated")


def test_collect_missing_bucket_counts_zero_bytes_and_flags_the_job(sm, store):
    seed_job(sm, "orphan", output_bucket="deleted-bucket", tags={"team": "a"})
    summary = run(store)
    region = summary.regions[0]

    assert region.error is None and region.artifact_warnings == 1
    job = by_name(store)["orphan"]
    assert job.artifact_bytes == 0
    assert "artifact-bytes-unknown" in job.flags.split(",")
    assert job.list_micros == 200_000 + 30_000  # still costed: 0.20 + 30 GB * 1 h * 0.001
    assert "NoSuchBucket" in collection_text(summary)


def test_collect_skips_s3_when_measuring_is_off(sm, s3, store):
    seed_job(sm, "a", s3=s3, artifact_bytes=100)
    region = run(store, settings(measure_artifacts=False)).regions[0]
    assert "s3" not in region.calls
    assert by_name(store)["a"].artifact_bytes == 0


def test_measure_artifacts_counts_every_object_once(s3):
    for bucket in ("out", "models", "ckpt"):
        s3.create_bucket(Bucket=bucket)
    objects = {
        ("out", "jobs/j1/output/model.tar.gz"): 5000,
        ("out", "jobs/j1/output/output.tar.gz"): 300,
        ("out", "jobs/j1/profiler/trace.json"): 20,
        ("out", "jobs/j1/checkpoints/step-1.pt"): 700,
        ("out", "jobs/j10/output/model.tar.gz"): 99_999,  # another job: not counted
        ("models", "final/j1.tar.gz"): 4000,
        ("ckpt", "j1/step-2.pt"): 1,
    }
    for (bucket, key), size in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=b"\0" * size)
    counter = CallCounter()
    counter.register(s3)

    # model artifact under the output prefix, checkpoints inside it too: 5000+300+20+700
    inside = aws_s3.measure(
        s3, "j1", "s3://out/jobs/", "s3://out/jobs/j1/output/model.tar.gz",
        "s3://out/jobs/j1/checkpoints",
    )  # fmt: skip
    assert inside == aws_s3.ArtifactSize(6020)
    assert counter.by_service() == {"s3": {"ListObjectsV2": 1}}

    # model elsewhere (HeadObject) and checkpoints in another bucket: 6020 + 4000 + 1
    spread = aws_s3.measure(
        s3, "j1", "s3://out/jobs", "s3://models/final/j1.tar.gz", "s3://ckpt/j1/"
    )
    assert spread == aws_s3.ArtifactSize(10_021)
    assert counter.by_service()["s3"] == {"HeadObject": 1, "ListObjectsV2": 3}


def test_measure_artifacts_missing_locations_warn_and_count_zero(s3):
    s3.create_bucket(Bucket="out")
    s3.put_object(Bucket="out", Key="jobs/j1/output/model.tar.gz", Body=b"\0" * 10)
    size = aws_s3.measure(
        s3, "j1", "s3://out/jobs", "s3://out/models/gone.tar.gz", "s3://also-gone/ckpt/j1"
    )
    assert size.bytes == 10
    assert not size.complete
    assert size.warnings == (
        "s3://also-gone/ckpt/j1/: NoSuchBucket",
        "s3://out/models/gone.tar.gz: 404",
    )


def test_measure_artifacts_pages_through_large_prefixes(s3):
    from moto.s3.models import s3_backends

    s3.create_bucket(Bucket="out")
    backend = s3_backends[DEFAULT_ACCOUNT]["aws"]  # 1005 objects: faster than the API
    for i in range(1005):
        backend.put_object("out", f"jobs/big/part-{i:04d}", b"\0" * 3)
    counter = CallCounter()
    counter.register(s3)
    assert aws_s3.measure(s3, "big", "s3://out/jobs", None, None).bytes == 3015
    assert counter.by_service() == {"s3": {"ListObjectsV2": 2}}


# -- the summary ---------------------------------------------------------------------------


def test_collect_summary_renders_one_screen_and_serialises(sm, s3, store):
    seed_mixed(sm, s3)
    summary = run(store)
    text = collection_text(summary)
    lines = text.splitlines()
    assert lines[0] == "Collection at 2026-10-01 15:00:00 UTC: ok"
    assert len(lines) < 25 and max(map(len, lines)) <= 100
    row = next(line for line in lines if line.startswith("prod "))
    assert row.split()[:6] == ["prod", "123456789012", "us-east-1", "11", "0", "0"]
    assert "  sagemaker: DescribeTrainingJob 11, ListTrainingJobs 1" in lines
    data = json.loads(json.dumps(summary.to_dict()))
    assert (data["status"], data["new"], data["updated"], data["unchanged"]) == ("ok", 11, 0, 0)
    assert data["regions"][0]["calls"]["sagemaker"]["DescribeTrainingJob"] == 11
    assert data["recosted_running"] == 1
    stored = json.loads(store.last_runs(1)[0].summary_json)
    assert stored["new"] == 11


# -- sessions ------------------------------------------------------------------------------


def test_make_client_counts_each_page_a_paginator_requests(aws):
    counter = CallCounter()
    s3 = make_client("s3", "us-east-1", counter=counter)
    s3.create_bucket(Bucket="out")
    for i in range(3):
        s3.put_object(Bucket="out", Key=f"k{i}", Body=b"x")
    pages = list(
        s3.get_paginator("list_objects_v2").paginate(Bucket="out", PaginationConfig={"PageSize": 1})
    )
    assert len(pages) == 3
    assert counter.by_service() == {"s3": {"CreateBucket": 1, "ListObjectsV2": 3, "PutObject": 3}}
    assert s3.meta.config.user_agent_extra == "sagemaker-spend-tracker"


def test_context_clients_use_retry_settings_and_honour_endpoint_env(aws, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:4566")
    factory = AwsContextFactory(
        CollectionSettings(retry_mode="adaptive", max_attempts=7), base_session=session()
    )
    ctx = factory(Source(name="prod", regions=("eu-west-1",)), "eu-west-1")

    sagemaker = ctx.client("sagemaker")
    assert sagemaker.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 7}
    assert sagemaker.meta.region_name == "eu-west-1"
    assert sagemaker.meta.endpoint_url == "https://api.sagemaker.eu-west-1.amazonaws.com"
    assert ctx.client("s3").meta.endpoint_url == "http://127.0.0.1:4566"
    assert ctx.client("sagemaker") is sagemaker  # one client per service and region
    assert (ctx.account_id, ctx.counter.by_service()) == (
        DEFAULT_ACCOUNT, {"sts": {"GetCallerIdentity": 1}},
    )  # fmt: skip
    # The account is looked up once per source, not once per region.
    other = factory(Source(name="prod", regions=("eu-west-1",)), "us-west-2")
    assert (other.account_id, other.counter.total()) == (DEFAULT_ACCOUNT, 0)


def test_collect_open_warm_pool_gets_its_retained_cost_once_the_pool_ends(sm, store):
    """2 x ml.m5.xlarge ($0.40/h), 09:00-10:00, 20 GB each; the pool stays Available.

    | run   | pool                    | warm pool                   | list USD             |
    |-------|-------------------------|-----------------------------|----------------------|
    | 15:00 | Available (estimate)    | 0.40 x 5 h = 2.00           | 0.40+2.00+0.04+0.20 = 2.64 |
    | 16:00 | Terminated, 1800 s      | 0.40 x 0.5 h = 0.20         | 0.40+0.20+0.04+0.02 = 0.66 |

    LastModifiedTime never changes: only the stored open pool makes the collector look again.
    """
    seed_job(sm, "pool", count=2, volume_gb=20, billable=3600, warm_pool_seconds=0)
    update_job(DEFAULT_ACCOUNT, "us-east-1", "pool", warm_pool_status={"Status": "Available"})
    run(store)
    job = by_name(store)["pool"]
    assert (job.final, job.warm_pool_status, job.warm_pool_retained_seconds) == (
        True, "Available", None,
    )  # fmt: skip
    assert "warm-pool-open" in job.flags.split(",")
    assert (job.warm_pool_micros, job.list_micros) == (2_000_000, 2_640_000)
    assert store.open_warm_pool_jobs(DEFAULT_ACCOUNT, "us-east-1") == {job.arn: "pool"}

    update_job(
        DEFAULT_ACCOUNT, "us-east-1", "pool",
        warm_pool_status={"Status": "Terminated", "ResourceRetainedBillableTimeInSeconds": 1800},
    )  # fmt: skip
    region = run(store, now=NOW + timedelta(hours=1)).regions[0]

    assert region.calls_to("sagemaker", "DescribeTrainingJob") == 1
    assert (region.new, region.updated) == (0, 1)
    job = by_name(store)["pool"]
    assert (job.warm_pool_status, job.warm_pool_retained_seconds) == ("Terminated", 1800)
    assert "warm-pool-open" not in job.flags.split(",")
    assert (job.warm_pool_micros, job.list_micros) == (200_000, 660_000)
    assert store.open_warm_pool_jobs(DEFAULT_ACCOUNT, "us-east-1") == {}

    again = run(store, now=NOW + timedelta(hours=2)).regions[0]
    assert again.calls_to("sagemaker", "DescribeTrainingJob") == 0
    assert by_name(store)["pool"].list_micros == 660_000


def test_collection_text_names_pairs_held_by_another_collector():
    from tracker.collect.service import CollectSummary, SkippedPair

    summary = CollectSummary(started_at=T0)
    summary.skipped.append(SkippedPair("org/111111111111", "111111111111", "us-east-1"))
    summary.skipped.append(SkippedPair("prod", "222222222222", "eu-west-1"))
    assert (
        "Skipped (held by another collector): org/111111111111/111111111111/us-east-1, "
        "prod/222222222222/eu-west-1"
    ) in collection_text(summary).splitlines()
