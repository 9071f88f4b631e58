"""config/iam-policy.json grants exactly what the code can call: nothing missing, nothing extra.

Two records of the AWS operations the tracker uses:

- static: every boto3 client method and paginator named in tracker/ and jobs/ (the services
  the code makes clients for, from botocore's own service models), plus the STS AssumeRole
  botocore's credential fetcher makes for a source with ``role_arn``;
- dynamic: every operation botocore's ``before-call`` event sees during a real collection
  (moto in-process, an assumed role, tags, artifacts), which must be a subset of the static one.

Each operation maps to one IAM action (S3's ListObjectsV2 is ``s3:ListBucket``, HeadObject
is ``s3:GetObject``). Statements whose Sid starts with ``Collect`` are the read-only core
the collector needs; ``Optional...`` statements are for the features named in their Sid.
"""

from __future__ import annotations

import ast
import functools
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore import xform_name
from botocore.loaders import Loader
from botocore.model import ServiceModel

from tests.conftest import REPO

POLICY = REPO / "config" / "iam-policy.json"
SCANNED = [REPO / "tracker", REPO / "jobs"]
# These only seed the local moto server of the demo and tests: never run against AWS.
NOT_AWS = {"tracker/aws/simulate.py", "tracker/aws/moto_search.py", "tracker/demo.py"}
# Every AWS service the tracker may talk to; a client for any other fails the scan.
SERVICES = {"sagemaker", "resourcegroupstaggingapi", "s3", "sts", "pricing", "ce", "sns", "ses",
            "sesv2", "organizations", "events", "sqs", "cloudwatch"}  # fmt: skip
IAM_PREFIX = {"resourcegroupstaggingapi": "tag", "sesv2": "ses"}
IAM_ACTION = {
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "ListObjects"): "s3:ListBucket",
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("sqs", "DeleteMessageBatch"): "sqs:DeleteMessage",
}
READ_VERBS = ("List", "Describe", "Get", "Search")
# Statement Sid prefix -> what must be true of its actions.
OPTIONAL_PURPOSE = {
    "OptionalPriceListRefresh": {"pricing:GetProducts"},
    "OptionalCostExplorerReconcile": {"ce:GetCostAndUsage"},
    "OptionalGpuUtilisation": {"cloudwatch:GetMetricData"},  # idle-GPU cost (docs/cost-model.md)
    # The models collection (`tracker collect-models`, the models job; docs/collection.md).
    "OptionalModelLineage": {
        "sagemaker:ListModelPackages", "sagemaker:DescribeModelPackage",
        "sagemaker:ListModels", "sagemaker:DescribeModel",
    },
    "OptionalCurFilesRead": {"s3:ListBucket", "s3:GetObject"},
    "OptionalSnsAlerts": {"sns:Publish"},
    "OptionalSesAlerts": {"ses:SendEmail"},
    "OptionalReportUploads": {"s3:PutObject"},
    # Event-driven collection (docs/events.md): `tracker events setup|teardown` once, by an
    # administrator; the listener (`tracker listen`, the daemon) only reads and deletes.
    "OptionalEventsSetup": {
        "events:DescribeRule", "events:PutRule", "events:ListTargetsByRule", "events:PutTargets",
        "events:RemoveTargets", "events:DeleteRule", "sqs:GetQueueUrl", "sqs:CreateQueue",
        "sqs:GetQueueAttributes", "sqs:SetQueueAttributes", "sqs:DeleteQueue",
    },
    "OptionalEventsListen": {
        "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl",
    },
    # Runaway-job enforcement, [enforce] mode = "stop" (docs/enforcement-and-anomalies.md).
    "OptionalEnforceStopJobs": {"sagemaker:StopTrainingJob"},
}  # fmt: skip
# Statements that may carry a Condition, and the one they carry.
CONDITIONS = {
    "OptionalEnforceStopJobs": {
        "StringNotEqualsIfExists": {"aws:ResourceTag/tracker:enforce": "off"}
    },
}


def iam_action(service: str, operation: str) -> str:
    """The IAM action that authorises one API operation."""
    return IAM_ACTION.get((service, operation), f"{IAM_PREFIX.get(service, service)}:{operation}")


def policy_statements() -> list[dict[str, Any]]:
    return json.loads(POLICY.read_text())["Statement"]


def _actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def granted() -> set[str]:
    return {a for s in policy_statements() for a in _actions(s)}


# -- static record -------------------------------------------------------------------------
def _sources(roots: list[Path], base: Path) -> Iterator[tuple[str, ast.Module]]:
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            relative = path.relative_to(base).as_posix()
            if relative not in NOT_AWS and "/migrations/" not in relative:
                yield relative, ast.parse(path.read_text(), relative)


def _client_services(trees: list[tuple[str, ast.Module]]) -> set[str]:
    """Services the code makes clients for: literals passed to ``*.client("...")`` or to
    ``make_client("...")`` (tracker.aws.session's one client factory)."""
    services = set()
    for _, tree in trees:
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and (getattr(node.func, "attr", None) or getattr(node.func, "id", None))
                in ("client", "make_client")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                services.add(node.args[0].value)
    return services


def _imports(tree: ast.Module) -> tuple[set[str], set[str]]:
    """(modules imported, local names bound to modules) of one file."""
    modules: set[str] = set()
    aliases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                modules.add(alias.name)
                aliases.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
            for alias in node.names:
                modules.add(f"{node.module}.{alias.name}")
                if alias.name.islower() and f"{node.module}.{alias.name}".startswith("tracker."):
                    aliases.add(alias.asname or alias.name)  # e.g. ``from tracker.aws import s3``
    return modules, aliases


def _aws_facing(relative: str, modules: set[str]) -> bool:
    """Code that can hold a boto3 client: tracker/aws itself, or code importing from it."""
    return relative.startswith("tracker/aws/") or any(
        m.split(".")[0] in ("boto3", "botocore") or m.startswith("tracker.aws") for m in modules
    )


def _method_map(services: set[str]) -> dict[str, set[tuple[str, str]]]:
    """Python method name (``describe_training_job``) -> {(service, OperationName)}."""
    loader = Loader()
    methods: dict[str, set[tuple[str, str]]] = {}
    for service in services:
        model = ServiceModel(loader.load_service_model(service, "service-2"), service)
        for operation in model.operation_names:
            methods.setdefault(xform_name(operation), set()).add((service, operation))
    return methods


def static_operations(
    roots: list[Path] = SCANNED, base: Path = REPO
) -> dict[tuple[str, str], set[str]]:
    """(service, operation) -> files under ``roots`` that call it."""
    trees = list(_sources(roots, base))
    unknown = _client_services(trees) - SERVICES
    assert not unknown, f"new AWS service(s) {unknown}: add them to SERVICES and the policy"
    methods = _method_map(SERVICES)
    found: dict[tuple[str, str], set[str]] = {}
    for relative, tree in trees:
        modules, module_names = _imports(tree)
        if not _aws_facing(relative, modules):
            continue
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                receiver = node.func.value
                if not (isinstance(receiver, ast.Name) and receiver.id in module_names):
                    names.append(node.func.attr)
                if node.func.attr in ("get_paginator", "can_paginate") and node.args:
                    arg = node.args[0]
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        names.append(arg.value)
            if isinstance(node, ast.Call):
                # A client method handed to a paging helper (``follow_token(client.get_x, ...)``).
                names.extend(
                    arg.attr
                    for arg in node.args
                    if isinstance(arg, ast.Attribute)
                    and not (isinstance(arg.value, ast.Name) and arg.value.id in module_names)
                )
            if isinstance(node, ast.Name) and node.id == "AssumeRoleCredentialFetcher":
                found.setdefault(("sts", "AssumeRole"), set()).add(relative)
            for name in names:
                for operation in methods.get(name, ()):
                    found.setdefault(operation, set()).add(relative)
    return found


@functools.cache
def code_operations() -> dict[tuple[str, str], set[str]]:
    """The static record of tracker/ and jobs/, computed once per test session."""
    return static_operations()


# -- dynamic record -------------------------------------------------------------------------
@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> set[tuple[str, str]]:
    """Every (service, operation) any botocore client makes while the test runs."""
    calls: set[tuple[str, str]] = set()
    original = botocore.session.Session.create_client

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        service = client.meta.service_model.service_name

        def before_call(model: Any, **_: Any) -> None:
            calls.add((service, model.name))

        client.meta.events.register("before-call", before_call)
        return client

    monkeypatch.setattr(botocore.session.Session, "create_client", create_client)
    return calls


def _collect_everything(tmp_path: Path, recorded: set[tuple[str, str]]) -> None:
    """Collections through an assumed role, with tags and S3 artifacts to measure, by each
    ``[collection] method`` (search, then list, into two databases)."""
    from moto import mock_aws

    from tests.conftest import seed_job, update_job
    from tracker.collect.models import collect_models
    from tracker.collect.service import collect
    from tracker.report.collection import collection_text
    from tracker.settings import CollectionSettings, Settings, Source
    from tracker.store.database import Store

    with mock_aws():
        import boto3

        sm = boto3.client("sagemaker", region_name="us-east-1")
        s3 = boto3.client("s3", region_name="us-east-1")
        seed_job(sm, "with-artifacts", s3=s3, artifact_bytes=2048, checkpoint_bytes=1024)
        seed_job(sm, "model-elsewhere", s3=s3, artifact_bytes=10)
        s3.create_bucket(Bucket="models")
        s3.put_object(Bucket="models", Key="m/model.tar.gz", Body=b"\0" * 64)
        update_job("123456789012", "us-east-1", "model-elsewhere",
                   model_artifacts={"S3ModelArtifacts": "s3://models/m/model.tar.gz"})  # fmt: skip
        role = "arn:aws:iam::123456789012:role/SpendTrackerRead"
        # An organization with one member account in a nested OU: the whole-organization
        # listing and the OU walk both run (the member account has no jobs).
        org = boto3.client("organizations", region_name="us-east-1")
        org.create_organization(FeatureSet="ALL")
        root = org.list_roots()["Roots"][0]["Id"]
        outer = org.create_organizational_unit(ParentId=root, Name="ml")["OrganizationalUnit"]
        inner = org.create_organizational_unit(ParentId=outer["Id"], Name="research")
        member = org.create_account(AccountName="research", Email="r@example.com")
        member_id = member["CreateAccountStatus"]["AccountId"]
        org.move_account(AccountId=member_id, SourceParentId=root,
                         DestinationParentId=inner["OrganizationalUnit"]["Id"])  # fmt: skip
        # A registered model of each kind for the models collection to list and describe.
        container = {"Image": "img", "ModelDataUrl": "s3://models/m/model.tar.gz"}
        sm.create_model_package(ModelPackageName="pkg",
                                InferenceSpecification={"Containers": [container],
                                                        "SupportedContentTypes": ["x"],
                                                        "SupportedResponseMIMETypes": ["x"]})  # fmt: skip
        sm.create_model(ModelName="m", ExecutionRoleArn=role,
                        PrimaryContainer=container)  # fmt: skip
        recorded.clear()  # seeding is not the tracker's doing
        now = datetime(2026, 11, 1, tzinfo=UTC)
        for method in ("search", "list"):
            settings = Settings(
                sources=(
                    Source("prod", ("us-east-1",), role_arn=role),
                    Source("org", ("us-east-1",), organization=True, role_name="SpendTrackerRead",
                           exclude=("123456789012",)),
                    Source("ml", ("us-east-1",), organization=True, role_name="SpendTrackerRead",
                           ous=(outer["Id"],)),
                ),
                collection=CollectionSettings(method=method),
            )  # fmt: skip
            store = Store.open(f"sqlite:///{tmp_path / f'iam-{method}.db'}")
            summary = collect(settings, store, settings.price_book(), clock=lambda: now)
            assert summary.ok, collection_text(summary)
            assert summary.total("new") == 2
            models = collect_models(settings, store, clock=lambda: now)
            assert (models.status, models.total("described")) == ("ok", 2), models.detail()


# -- the checks ----------------------------------------------------------------------------
def test_policy_is_valid_iam_with_named_statements() -> None:
    document = json.loads(POLICY.read_text())
    assert document["Version"] == "2012-10-17"
    sids = [s["Sid"] for s in document["Statement"]]
    assert len(sids) == len(set(sids))
    for statement in document["Statement"]:
        assert statement["Sid"].isalnum(), statement["Sid"]
        assert statement["Sid"].startswith(("Collect", "Optional")), statement["Sid"]
        assert statement["Effect"] == "Allow"
        assert set(statement) - {"Condition"} == {"Sid", "Effect", "Action", "Resource"}
        assert statement.get("Condition") == CONDITIONS.get(statement["Sid"]), statement["Sid"]
        for action in _actions(statement):
            assert "*" not in action, f"{statement['Sid']}: wildcard action {action}"


def test_collector_statements_are_read_only() -> None:
    for statement in policy_statements():
        if not statement["Sid"].startswith("Collect"):
            continue
        for action in _actions(statement):
            verb = action.split(":", 1)[1]
            assert verb.startswith(READ_VERBS) or action == "sts:AssumeRole", action


def test_optional_statements_grant_only_their_feature() -> None:
    for statement in policy_statements():
        sid = statement["Sid"]
        if sid.startswith("Optional"):
            assert sid in OPTIONAL_PURPOSE, f"{sid}: name the feature in OPTIONAL_PURPOSE"
            assert _actions(statement) == OPTIONAL_PURPOSE[sid]


def test_policy_grants_every_operation_the_code_calls() -> None:
    missing = {
        iam_action(*op): sorted(files)
        for op, files in code_operations().items()
        if iam_action(*op) not in granted()
    }
    assert missing == {}, f"add to config/iam-policy.json: {missing}"


def test_policy_grants_nothing_the_code_does_not_call() -> None:
    used = {iam_action(*op) for op in code_operations()}
    assert granted() - used == set()


def test_collector_statements_are_what_the_collector_uses() -> None:
    """The Collect* statements cover exactly the operations of the collection modules."""
    collector_files = {"tracker/collect/service.py", "tracker/aws/sagemaker.py", "tracker/aws/tagging.py",
                       "tracker/aws/s3.py", "tracker/aws/session.py",
                       "tracker/aws/organizations.py"}  # fmt: skip
    used = {iam_action(*op) for op, files in code_operations().items() if files & collector_files}
    core = {a for s in policy_statements() if s["Sid"].startswith("Collect") for a in _actions(s)}
    assert core == used


def test_events_statements_split_setup_from_the_listener() -> None:
    """The listener's statement covers exactly the SQS calls the listener makes (through
    tracker/aws/events.py's receive, delete, queue_depth, resolve_queue_url); nothing in it
    creates or deletes a queue or a rule."""
    listen = next(s for s in policy_statements() if s["Sid"] == "OptionalEventsListen")
    setup = next(s for s in policy_statements() if s["Sid"] == "OptionalEventsSetup")
    assert {a.split(":", 1)[1] for a in _actions(listen)} == {
        "ReceiveMessage",
        "DeleteMessage",
        "GetQueueAttributes",
        "GetQueueUrl",
    }
    assert not any(a.startswith("events:") for a in _actions(listen))
    assert {a for a in _actions(setup) if ":Create" in a or ":Delete" in a or ":Put" in a} == {
        "sqs:CreateQueue", "sqs:DeleteQueue", "events:PutRule", "events:PutTargets",
        "events:DeleteRule",
    }  # fmt: skip


def test_real_collection_calls_only_granted_operations(
    tmp_path: Path, recorded: set[tuple[str, str]]
) -> None:
    _collect_everything(tmp_path, recorded)

    assert {("sagemaker", "ListTrainingJobs"), ("sagemaker", "DescribeTrainingJob"),
            ("sagemaker", "Search"),
            ("resourcegroupstaggingapi", "GetResources"), ("s3", "ListObjectsV2"),
            ("s3", "HeadObject"), ("sts", "AssumeRole"), ("sts", "GetCallerIdentity"),
            ("organizations", "ListAccounts"), ("organizations", "ListAccountsForParent"),
            ("organizations", "ListOrganizationalUnitsForParent"),
            ("sagemaker", "ListModelPackages"), ("sagemaker", "DescribeModelPackage"),
            ("sagemaker", "ListModels"), ("sagemaker", "DescribeModel")} <= recorded  # fmt: skip
    assert recorded <= set(code_operations()), "the scan missed an operation the code calls"
    assert {iam_action(*op) for op in recorded} <= granted()


def test_scan_finds_a_new_call(tmp_path: Path) -> None:
    """The static record is not vacuous: a new client call shows up as a missing action."""
    extra = tmp_path / "tracker" / "extra.py"
    extra.parent.mkdir()
    extra.write_text(
        "from tracker.aws.session import AwsContext\n\n\n"
        "def stop(ctx: AwsContext) -> None:\n"
        '    ctx.client("sagemaker").delete_training_job(TrainingJobName="x")\n'
    )

    operations = static_operations([tmp_path / "tracker"], tmp_path)

    assert operations == {("sagemaker", "DeleteTrainingJob"): {"tracker/extra.py"}}
    assert iam_action("sagemaker", "DeleteTrainingJob") not in granted()
