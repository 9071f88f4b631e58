"""The Search path: request shapes (botocore Stubber, real-shape fixtures), what Search lacks,
the moto shim's documented semantics, and the collector's calls with ``method = "search"``.

Costs use tests/test_collect.py's override book (ml.m5.xlarge $0.20/h, storage $0.001/GB-h).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from tests.conftest import DEFAULT_ACCOUNT, T0, seed_job, update_job
from tests.test_collect import BOOK, MIXED, NOW, by_name, seed_mixed, session
from tests.test_faults import client_hooks, no_backoff, throttle_response  # noqa: F401 (fixtures)
from tests.test_real_shapes import as_boto3, load_describe, output_shape, shape_problems
from tracker.aws import moto_search
from tracker.aws import sagemaker as aws_sagemaker
from tracker.aws.session import AwsContextFactory
from tracker.collect import parse
from tracker.collect.service import collect
from tracker.settings import Attribution, CollectionSettings, Settings, Source
from tracker.store.database import Store

REPO = Path(__file__).resolve().parent.parent
SEARCH_DIR = Path(__file__).parent / "fixtures" / "aws" / "search"
PAGES = sorted(p.name for p in SEARCH_DIR.glob("*.json"))
SEARCH_SHAPE = output_shape("sagemaker", "Search")
DOC = REPO / "docs" / "collection.md"


def load_page(name: str) -> dict:
    return json.loads((SEARCH_DIR / name).read_text(encoding="utf-8"))


def search_lacks() -> list[str]:
    """Members of DescribeTrainingJob's response that Search's TrainingJob record lacks."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    record = set(model.shape_for("TrainingJob").members)
    describe = set(model.operation_model("DescribeTrainingJob").output_shape.members)
    return sorted(describe - record)


# -- shapes and the documented gap ------------------------------------------------------------


@pytest.mark.parametrize("name", PAGES)
def test_search_fixture_matches_botocore_output_shape(name: str) -> None:
    assert shape_problems(load_page(name), SEARCH_SHAPE) == []


def test_search_lacks_exactly_the_fields_docs_collection_lists() -> None:
    """docs/collection.md's table of fields Search lacks is botocore's, not a copy that drifts."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("<!-- search-lacks:start -->")[1].split("<!-- search-lacks:end -->")[0]
    documented = sorted(re.findall(r"^\| `(\w+)` \|", section, flags=re.MULTILINE))
    assert documented == search_lacks()
    assert (
        "Tags"
        in botocore.session.get_session()
        .get_service_model("sagemaker")
        .shape_for("TrainingJob")
        .members
    )


class _Reads(dict):
    """A describe response that records which keys the parser asks for."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.read: set[str] = set()

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)


def test_parse_needs_from_describe_only_the_fields_named_describe_only() -> None:
    """Of the fields Search lacks, the parser reads exactly BillableTokenCount and
    ServerlessJobConfig: the only ones worth a DescribeTrainingJob call."""
    desc = _Reads(as_boto3(load_describe("constructed-serverless.json"), output_shape(
        "sagemaker", "DescribeTrainingJob")))  # fmt: skip
    parse.job_from_describe(desc, DEFAULT_ACCOUNT, "us-east-1", {}, 0, Attribution())
    assert sorted(desc.read & set(search_lacks())) == sorted(parse.DESCRIBE_ONLY_FIELDS)
    assert sorted(parse.DESCRIBE_ONLY_FIELDS) == ["BillableTokenCount", "ServerlessJobConfig"]


def test_needs_describe_only_for_records_without_instances() -> None:
    serverless = load_describe("constructed-serverless.json")
    instance = load_describe("ack-completed.json")
    groups = load_describe("ack-instance-groups-in-progress.json")
    preferences = load_describe("constructed-instance-preferences-training-plan.json")
    assert parse.needs_describe(serverless) is True
    assert [parse.needs_describe(r) for r in (instance, groups, preferences)] == [False] * 3


def test_search_record_parts_split_tags_from_the_describe_fields() -> None:
    record = as_boto3(load_page("constructed-page-1.json"), SEARCH_SHAPE)["Results"][1]
    desc, tags = parse.search_record_parts(record["TrainingJob"])
    assert tags == {"team": "nlp", "project": "xgb"}
    assert "Tags" not in desc and desc["TrainingJobName"] == "xgboost-completed"
    job = parse.job_from_describe(desc, DEFAULT_ACCOUNT, "us-west-2", tags, 0, Attribution())
    assert (job.team, job.project, job.billable_seconds) == ("nlp", "xgb", 159)


# -- requests, with botocore's Stubber and real-shaped answers ------------------------------------


def stubbed_sagemaker():
    client = boto3.client("sagemaker", region_name="us-west-2")
    return client, Stubber(client)


def test_search_changed_jobs_pages_with_next_token_oldest_first() -> None:
    client, stub = stubbed_sagemaker()
    first, second = (as_boto3(load_page(n), SEARCH_SHAPE) for n in PAGES)
    request = {
        "Resource": "TrainingJob",
        "SortBy": "LastModifiedTime",
        "SortOrder": "Ascending",
        "MaxResults": 100,
        "SearchExpression": {
            "Filters": [
                {"Name": "LastModifiedTime", "Operator": "GreaterThan",
                 "Value": "2021-10-12T05:00:00Z"}
            ]
        },
    }  # fmt: skip
    stub.add_response("search", first, request)
    stub.add_response("search", second, {**request, "NextToken": first["NextToken"]})
    with stub:
        since = datetime(2021, 10, 12, 5, 0, 0, 999_000, tzinfo=UTC)
        names = [r["TrainingJobName"] for r in aws_sagemaker.search_changed_jobs(client, since)]
    stub.assert_no_pending_responses()
    assert names == ["xgboost-warm-pool", "xgboost-completed", "xgboost-instance-groups"]


def test_search_changed_jobs_without_watermark_sends_no_expression() -> None:
    client, stub = stubbed_sagemaker()
    stub.add_response(
        "search",
        {"Results": []},
        {"Resource": "TrainingJob", "SortBy": "LastModifiedTime", "SortOrder": "Ascending",
         "MaxResults": 50},
    )  # fmt: skip
    with stub:
        assert list(aws_sagemaker.search_changed_jobs(client, None, page_size=50)) == []


def test_search_jobs_by_name_packs_in_filters_within_the_value_limit() -> None:
    """150 names of 63 characters: 16 fit a 1024-character Value (16 x 64 - 1 = 1023), so the
    first 100 names take 7 In filters OR-ed in one call, the other 50 take 4."""
    names = [f"{i:03d}".ljust(63, "x") for i in range(150)]
    client, stub = stubbed_sagemaker()
    for chunk in (names[:100], names[100:]):
        values = [",".join(chunk[i : i + 16]) for i in range(0, len(chunk), 16)]
        assert max(len(v) for v in values) <= 1024
        stub.add_response(
            "search",
            {"Results": []},
            {
                "Resource": "TrainingJob",
                "MaxResults": 100,
                "SearchExpression": {
                    "Filters": [
                        {"Name": "TrainingJobName", "Operator": "In", "Value": v} for v in values
                    ],
                    "Operator": "Or",
                },
            },
        )
    with stub:
        assert list(aws_sagemaker.search_jobs_by_name(client, names + names[:5])) == []
    stub.assert_no_pending_responses()


def test_in_is_an_operator_of_botocore_search_model() -> None:
    model = botocore.session.get_session().get_service_model("sagemaker")
    assert "In" in model.shape_for("Operator").enum
    assert model.shape_for("FilterValue").metadata["max"] == aws_sagemaker.FILTER_VALUE_MAX


# -- the moto shim --------------------------------------------------------------------------------


@pytest.fixture
def sm():
    with mock_aws():
        yield session().client("sagemaker", region_name="us-east-1")


def seed_five(sm) -> None:
    """job-0 .. job-4, modified at 10:00, 10:10, ... 10:40; job-3 tagged team=vision."""
    for i in range(5):
        tags = {"team": "vision" if i == 3 else "nlp"}
        seed_job(sm, f"job-{i}", start=T0, modified=datetime(2026, 10, 1, 10, 10 * i), tags=tags)


def names(answer: dict) -> list[str]:
    return [r["TrainingJob"]["TrainingJobName"] for r in answer["Results"]]


def after(value: str) -> dict:
    return {"Filters": [{"Name": "LastModifiedTime", "Operator": "GreaterThan", "Value": value}]}


def test_moto_without_the_shim_treats_greater_than_as_equals_and_ignores_max_results(sm) -> None:
    seed_five(sm)
    moto_search.uninstall()
    try:
        assert names(sm.search(Resource="TrainingJob", SearchExpression=after(
            "2026-10-01T10:15:00Z"))) == []  # fmt: skip
        assert len(sm.search(Resource="TrainingJob", MaxResults=2)["Results"]) == 5
    finally:
        moto_search.install()


def test_moto_shim_greater_than_sorts_and_pages(sm) -> None:
    seed_five(sm)
    expression = after("2026-10-01T10:15:00Z")
    pages, token = [], None
    while True:
        extra = {"NextToken": token} if token else {}
        answer = sm.search(Resource="TrainingJob", SearchExpression=expression,
                           SortBy="LastModifiedTime", SortOrder="Ascending", MaxResults=2, **extra)  # fmt: skip
        pages.append(names(answer))
        token = answer.get("NextToken")
        if not token:
            break
    assert pages == [["job-2", "job-3"], ["job-4"]]
    # Default order is Descending by LastModifiedTime.
    assert names(sm.search(Resource="TrainingJob")) == [f"job-{i}" for i in (4, 3, 2, 1, 0)]


def test_moto_shim_in_or_tags_and_exists(sm) -> None:
    seed_five(sm)
    by_name_in = {"Filters": [{"Name": "TrainingJobName", "Operator": "In",
                               "Value": "job-1,job-4,nope"}]}  # fmt: skip
    assert sorted(names(sm.search(Resource="TrainingJob", SearchExpression=by_name_in))) == [
        "job-1", "job-4",
    ]  # fmt: skip
    either = {
        "Operator": "Or",
        "Filters": [
            {"Name": "TrainingJobName", "Operator": "Equals", "Value": "job-0"},
            {"Name": "Tags.team", "Operator": "Equals", "Value": "vision"},
        ],
    }
    assert sorted(names(sm.search(Resource="TrainingJob", SearchExpression=either))) == [
        "job-0", "job-3",
    ]  # fmt: skip
    exists = {"Filters": [{"Name": "WarmPoolStatus", "Operator": "Exists"}]}
    assert names(sm.search(Resource="TrainingJob", SearchExpression=exists)) == []


def test_moto_shim_refuses_ordering_operators_on_text(sm) -> None:
    seed_five(sm)
    bad = {"Filters": [{"Name": "TrainingJobName", "Operator": "GreaterThan", "Value": "job"}]}
    with pytest.raises(ClientError) as info:
        sm.search(Resource="TrainingJob", SearchExpression=bad)
    assert info.value.response["Error"]["Code"] == "ValidationException"


# -- the collector on the Search path -------------------------------------------------------------


@pytest.fixture
def s3(sm):
    return session().client("s3", region_name="us-east-1")


@pytest.fixture
def store(tmp_path):
    return Store.open(f"sqlite:///{tmp_path / 'tracker.db'}")


def run(store, now=NOW, **collection):
    cfg = Settings(
        sources=(Source(name="prod", regions=("us-east-1",)),),
        collection=CollectionSettings(**{"max_attempts": 3, "method": "search", **collection}),
    )
    factory = AwsContextFactory(cfg.collection, base_session=session())
    return collect(cfg, store, BOOK, clock=lambda: now, context_factory=factory)


def test_collect_search_first_run_is_one_search_call_and_no_tag_calls(sm, s3, store) -> None:
    seed_mixed(sm, s3)
    region = run(store).regions[0]
    assert region.calls == {
        "sagemaker": {"Search": 1},
        "s3": {"ListObjectsV2": 2},
        "sts": {"GetCallerIdentity": 1},
    }
    assert (region.new, region.updated, region.unchanged) == (len(MIXED), 0, 0)
    jobs = by_name(store)
    assert (jobs["spot-m5"].team, jobs["spot-m5"].project, jobs["spot-m5"].user) == (
        "nlp", "llm", "ana",
    )  # fmt: skip
    assert (jobs["studio"].user, jobs["untagged"].team) == ("carol", "unallocated")
    assert "Tags" not in json.loads(jobs["spot-m5"].raw_json)


def test_collect_search_unchanged_rerun_is_one_search_call(sm, s3, store) -> None:
    seed_mixed(sm, s3)
    run(store)
    region = run(store, now=NOW + timedelta(minutes=5)).regions[0]
    assert region.calls == {"sagemaker": {"Search": 1}, "sts": {"GetCallerIdentity": 1}}
    assert (region.new, region.updated) == (0, 0)


def test_collect_search_pages_by_page_size_and_sees_each_job_once(sm, store) -> None:
    for i in range(7):
        seed_job(sm, f"job-{i}", start=T0 + timedelta(minutes=i))
    region = run(store, page_size=3, measure_artifacts=False).regions[0]
    assert region.calls["sagemaker"] == {"Search": 3}
    assert (region.new, store.count_jobs()) == (7, 7)


def test_collect_search_rereads_open_warm_pool_by_name_until_it_ends(sm, store) -> None:
    """As tests/test_collect.py's warm-pool case, on the Search path: 0.66 once it ends.

    A later job (modified 14:00) moves the watermark past the overlap, so the pool job (10:00)
    comes back only through the by-name re-read."""
    seed_job(sm, "pool", count=2, volume_gb=20, billable=3600, warm_pool_seconds=0)
    seed_job(sm, "later", start=datetime(2026, 10, 1, 13, 0))
    update_job(DEFAULT_ACCOUNT, "us-east-1", "pool", warm_pool_status={"Status": "Available"})
    run(store)
    assert by_name(store)["pool"].list_micros == 2_640_000

    update_job(
        DEFAULT_ACCOUNT, "us-east-1", "pool",
        warm_pool_status={"Status": "Terminated", "ResourceRetainedBillableTimeInSeconds": 1800},
    )  # fmt: skip
    region = run(store, now=NOW + timedelta(hours=1)).regions[0]
    # One Search for changes (nothing new), one by name for the open pool.
    assert region.calls["sagemaker"] == {"Search": 2}
    assert (region.new, region.updated, region.unchanged) == (0, 1, 1)
    job = by_name(store)["pool"]
    assert (job.warm_pool_status, job.list_micros) == ("Terminated", 660_000)

    again = run(store, now=NOW + timedelta(hours=2)).regions[0]
    assert again.calls["sagemaker"] == {"Search": 1}


def test_collect_search_rereads_running_jobs_a_late_index_would_miss(sm, store) -> None:
    """A running job finishes, but its new LastModifiedTime (11:30) lies before the window the
    next search asks for (watermark 14:00 - 15 min), as when Search's index shows a change
    late: the by-name re-read of stored running jobs still finds it. 1 x m5 at $0.20/h for
    3600 s + 10 GB for 1 h at $0.001/GB-h = 0.21."""
    seed_job(sm, "run", status="InProgress", billable=None, volume_gb=10,
             start=datetime(2026, 10, 1, 10, 0))  # fmt: skip
    seed_job(sm, "later", start=datetime(2026, 10, 1, 13, 0))
    run(store, measure_artifacts=False)
    update_job(
        DEFAULT_ACCOUNT, "us-east-1", "run",
        training_job_status="Completed", secondary_status="Completed",
        training_end_time=datetime(2026, 10, 1, 11, 0),
        last_modified_time=datetime(2026, 10, 1, 11, 30),
        billable_time_in_seconds=3600, training_time_in_seconds=3600,
    )  # fmt: skip
    region = run(store, now=NOW + timedelta(hours=1), measure_artifacts=False).regions[0]
    assert region.calls["sagemaker"] == {"Search": 2}
    assert (region.new, region.updated) == (0, 1)
    job = by_name(store)["run"]
    assert (job.status, job.final, job.list_micros) == ("Completed", True, 210_000)
    again = run(store, now=NOW + timedelta(hours=2), measure_artifacts=False).regions[0]
    assert again.calls["sagemaker"] == {"Search": 1}


def test_collect_search_open_pool_job_deleted_counts_vanished(sm, store) -> None:
    seed_job(sm, "pool", billable=3600, warm_pool_seconds=0)
    update_job(DEFAULT_ACCOUNT, "us-east-1", "pool", warm_pool_status={"Status": "InUse"})
    run(store)
    from moto.sagemaker.models import sagemaker_backends

    del sagemaker_backends[DEFAULT_ACCOUNT]["us-east-1"].training_jobs["pool"]
    region = run(store, now=NOW + timedelta(hours=1)).regions[0]
    assert (region.vanished, region.updated, region.error) == (1, 0, None)


def test_collect_search_describes_only_the_serverless_job(sm, store) -> None:
    seed_job(sm, "instance", billable=3600)
    seed_job(sm, "tokens", billable=600, start=T0 + timedelta(minutes=5))
    base_model = "arn:aws:sagemaker:us-east-1:aws:hub-content/SageMakerPublicHub/Model/llama/1"
    update_job(
        DEFAULT_ACCOUNT, "us-east-1", "tokens", resource_config=None,
        serverless_job_config={"BaseModelArn": base_model, "JobType": "FineTuning"},
        billable_token_count=1_234_567,
    )  # fmt: skip
    region = run(store, measure_artifacts=False).regions[0]
    assert region.calls["sagemaker"] == {"Search": 1, "DescribeTrainingJob": 1}
    job = by_name(store)["tokens"]
    assert (job.serverless_base_model_arn, job.billable_token_count) == (base_model, 1_234_567)
    assert by_name(store)["instance"].serverless_base_model_arn is None


def test_collect_search_throttled_is_retried_then_fails_the_region_alone(
    sm,
    store,
    client_hooks,  # noqa: F811 (the fixtures imported above)
    no_backoff,  # noqa: F811 (the fixtures imported above)
) -> None:
    """Search throttled twice: retried (standard mode), stored. Throttled on every attempt:
    the region fails with the throttling error and the next run catches up."""
    seed_job(sm, "a", billable=3600)
    throttles = [2]

    def throttle(request, **_):
        if throttles[0] > 0:
            throttles[0] -= 1
            return throttle_response("json", request.url)
        return None

    client_hooks.append(("before-send.sagemaker.Search", throttle, True))
    first = run(store, retry_mode="standard", max_attempts=3).regions[0]
    assert (first.error, first.new, first.retries) == (None, 1, 2)

    seed_job(sm, "b", billable=3600, start=T0 + timedelta(hours=1))
    throttles[0] = 99
    second = run(store, now=NOW + timedelta(minutes=5), retry_mode="standard", max_attempts=3)
    assert (second.regions[0].error or "").startswith("ThrottlingException on Search")
    throttles[0] = 0
    third = run(store, now=NOW + timedelta(minutes=10), retry_mode="standard", max_attempts=3)
    assert (third.regions[0].new, store.count_jobs()) == (1, 2)


# -- settings -------------------------------------------------------------------------------------


def test_settings_method_defaults_to_search_and_refuses_others(tmp_path) -> None:
    from tracker.errors import ConfigError
    from tracker.settings import load_settings

    ok = tmp_path / "ok.toml"
    ok.write_text("[collection]\nsearch_overlap_seconds = 120\n")
    loaded = load_settings(str(ok)).collection
    assert (loaded.method, loaded.search_overlap_seconds) == ("search", 120)
    bad = tmp_path / "bad.toml"
    bad.write_text('[collection]\nmethod = "scan"\nsearch_overlap_seconds = 5\n')
    with pytest.raises(ConfigError) as info:
        load_settings(str(bad))
    assert "collection.method: must be one of search, list, got 'scan'" in str(info.value)
    assert (
        "collection.search_overlap_seconds: must be a whole number from 60 to 86400, got 5"
        in str(info.value)
    )
