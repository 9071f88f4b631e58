"""Whole AWS Organizations: ``[[sources]]`` with ``organization = true`` collects every
ACTIVE member account through ``arn:aws:iam::<account>:role/<role_name>``.

moto's Organizations holds the organization (management account 123456789012, the base
credentials); moto's STS answers AssumeRole for any account and moto keeps each account's
SageMaker jobs apart by the account of the credentials, so jobs seeded through one member's
role are seen only through that member's role. Jobs: 1 x ml.m5.xlarge at $0.20/h, 1800 s
each = 0.10.

| account      | where           | jobs | collected by `org` | by `ml` (ous = [ml]) |
|--------------|-----------------|------|--------------------|----------------------|
| 123456789012 | root (mgmt)     | 1    | yes (via role)     | no                   |
| nlp          | ou ml           | 2    | yes                | yes                  |
| vision       | ou ml/research  | 3    | yes                | yes (nested)         |
| ops          | root            | 1    | yes                | no                   |
| gone         | root, SUSPENDED | 1    | no (not ACTIVE)    | no                   |
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber
from moto import mock_aws

from tests.conftest import T0, seed_job
from tracker.aws.organizations import member_accounts
from tracker.aws.session import AwsContextFactory
from tracker.cli.ops import status_report
from tracker.collect.service import collect
from tracker.cost.prices import PriceBook
from tracker.errors import ConfigError
from tracker.settings import CollectionSettings, Settings, Source, load_settings
from tracker.store.database import Store

NOW = datetime(2026, 10, 1, 15, 0, tzinfo=UTC)
MGMT = "123456789012"
ROLE_NAME = "SpendTrackerRead"
BOOK = PriceBook({("us-east-1", "ml.m5.xlarge"): Decimal("0.20")})


def _role_session(account: str) -> boto3.Session:
    creds = boto3.client("sts", region_name="us-east-1").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{ROLE_NAME}", RoleSessionName="seed"
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def _organization() -> dict[str, str]:
    """The organization of the module docstring, its jobs seeded; name -> account id (+ OU)."""
    org = boto3.client("organizations", region_name="us-east-1")
    org.create_organization(FeatureSet="ALL")
    root = org.list_roots()["Roots"][0]["Id"]
    ml = org.create_organizational_unit(ParentId=root, Name="ml")["OrganizationalUnit"]["Id"]
    research = org.create_organizational_unit(ParentId=ml, Name="research")
    ids = {"mgmt": MGMT, "ml": ml}
    for name, parent in (("nlp", ml), ("vision", research["OrganizationalUnit"]["Id"]),
                         ("ops", root), ("gone", root)):  # fmt: skip
        account = org.create_account(AccountName=name, Email=f"{name}@example.com")
        ids[name] = account["CreateAccountStatus"]["AccountId"]
        if parent != root:
            org.move_account(AccountId=ids[name], SourceParentId=root, DestinationParentId=parent)
    for name, jobs in (("mgmt", 1), ("nlp", 2), ("vision", 3), ("ops", 1), ("gone", 1)):
        sm = _role_session(ids[name]).client("sagemaker", region_name="us-east-1")
        for i in range(jobs):
            seed_job(sm, f"{name}-{i}", billable=1800, start=T0 + timedelta(minutes=i),
                     tags={"team": name})  # fmt: skip
    org.close_account(AccountId=ids["gone"])
    return ids


def _run(store: Store, *sources: Source, base: boto3.Session | None = None):
    cfg = Settings(sources=sources, collection=CollectionSettings(max_attempts=2, workers=3))
    factory = AwsContextFactory(cfg.collection, base_session=base)
    return collect(cfg, store, BOOK, clock=lambda: NOW, context_factory=factory)


def _stored(store: Store) -> dict[str, tuple[str, int]]:
    return {job.name: (job.account_id, job.list_micros) for job in store.jobs()}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(f"sqlite:///{tmp_path / 'tracker.db'}")


def test_collect_organization_collects_every_active_member_account(store: Store) -> None:
    with mock_aws():
        ids = _organization()
        summary = _run(store, Source("org", ("us-east-1",), organization=True, role_name=ROLE_NAME))

    assert summary.ok, summary.to_dict()
    members = sorted(ids[n] for n in ("mgmt", "nlp", "vision", "ops"))
    assert summary.organizations == {"org": members}
    assert sorted((r.source, r.account_id, r.new) for r in summary.regions) == sorted(
        (f"org/{ids[n]}", ids[n], jobs)
        for n, jobs in (("mgmt", 1), ("nlp", 2), ("vision", 3), ("ops", 1))
    )
    assert _stored(store) == {
        "mgmt-0": (MGMT, 100_000), "nlp-0": (ids["nlp"], 100_000),
        "nlp-1": (ids["nlp"], 100_000), "vision-0": (ids["vision"], 100_000),
        "vision-1": (ids["vision"], 100_000), "vision-2": (ids["vision"], 100_000),
        "ops-0": (ids["ops"], 100_000),
    }  # fmt: skip


def test_collect_organization_ous_walks_nested_units_and_honours_exclude(store: Store) -> None:
    with mock_aws():
        ids = _organization()
        summary = _run(store, Source("ml", ("us-east-1",), organization=True,
                                     role_name=ROLE_NAME, ous=(ids["ml"],)))  # fmt: skip
        assert summary.organizations == {"ml": sorted([ids["nlp"], ids["vision"]])}
        assert sorted(_stored(store)) == ["nlp-0", "nlp-1", "vision-0", "vision-1", "vision-2"]

        again = _run(store, Source("org2", ("us-east-1",), organization=True,
                                   role_name=ROLE_NAME, exclude=(MGMT, ids["nlp"]),
                                   include=()))  # fmt: skip
    assert again.organizations == {"org2": sorted([ids["vision"], ids["ops"]])}


def test_collect_organization_account_whose_role_is_denied_is_recorded_others_go_on(
    store: Store,
) -> None:
    """AssumeRole into ``ops`` answers AccessDenied (a before-call handler on the base
    session, in this test only: moto's STS never denies)."""
    with mock_aws():
        ids = _organization()
        denied = f"arn:aws:iam::{ids['ops']}:role/{ROLE_NAME}"

        def deny(params, **_):
            if params["body"].get("RoleArn") == denied:  # the serialized query request
                body = {"Error": {"Code": "AccessDenied", "Message": "not authorized"},
                        "ResponseMetadata": {"HTTPStatusCode": 403}}  # fmt: skip
                return AWSResponse("https://sts.amazonaws.com", 403, {}, None), body
            return None

        base = boto3.Session()
        base.events.register("before-call.sts.AssumeRole", deny)
        source = Source("org", ("us-east-1",), organization=True, role_name=ROLE_NAME)
        summary = _run(store, source, base=base)

    failed = [(r.source, r.account_id, r.region, r.error) for r in summary.regions if r.error]
    assert failed == [(f"org/{ids['ops']}", ids["ops"], "us-east-1",
                       "AccessDenied on AssumeRole: not authorized")]  # fmt: skip
    assert summary.status == "partial"
    assert sorted(_stored(store)) == ["mgmt-0", "nlp-0", "nlp-1", "vision-0", "vision-1",
                                      "vision-2"]  # fmt: skip
    report = status_report(Settings(sources=(source,)), store, now=NOW, wall=NOW)
    errors = {(m["account"], m["region"]): m["last_error"] for m in report["collection"]}
    assert errors[(ids["ops"], "us-east-1")] == "AccessDenied on AssumeRole: not authorized"
    assert errors[(ids["nlp"], "us-east-1")] is None
    assert errors[("organization", "us-east-1")] is None  # the listing itself worked


def test_collect_organization_listing_denied_is_recorded_like_a_region(store: Store) -> None:
    """ListAccounts answers AccessDeniedException (the base credentials are not the
    management account's): the organization's row says so, the other source goes on."""

    def deny(**_):
        body = {"Error": {"Code": "AccessDeniedException", "Message": "not the management account"},
                "ResponseMetadata": {"HTTPStatusCode": 400}}  # fmt: skip
        return AWSResponse("https://organizations.us-east-1.amazonaws.com", 400, {}, None), body

    with mock_aws():
        base = boto3.Session()
        base.events.register("before-call.organizations.ListAccounts", deny)
        summary = _run(store, Source("org", ("us-east-1",), organization=True,
                                     role_name=ROLE_NAME),
                       Source("prod", ("us-east-1",)), base=base)  # fmt: skip
    assert [(r.source, r.account_id, r.error) for r in summary.regions] == [
        ("org", "organization",
         "AccessDeniedException on ListAccounts: not the management account"),
        ("prod", MGMT, None),
    ]  # fmt: skip
    assert summary.status == "partial"
    (mark,) = [m for m in store.watermarks() if m.account_id == "organization"]
    assert (mark.source, mark.last_error) == (
        "org", "AccessDeniedException on ListAccounts: not the management account",
    )  # fmt: skip


# -- the listing, on real response shapes ---------------------------------------------------
def _account(account_id: str, state: str) -> dict:
    """An Account as ListAccounts returns it (both Status and its successor State)."""
    return {"Id": account_id, "Arn": f"arn:aws:organizations::{MGMT}:account/o-x/{account_id}",
            "Email": f"{account_id}@example.com", "Name": f"acct-{account_id}",
            "Status": state if state != "PENDING_ACTIVATION" else "ACTIVE", "State": state,
            "JoinedMethod": "CREATED", "JoinedTimestamp": datetime(2024, 1, 1, tzinfo=UTC)}  # fmt: skip


def test_member_accounts_follows_pages_keeps_active_and_filters() -> None:
    client = boto3.client("organizations", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_response("list_accounts", {"Accounts": [_account("111111111111", "ACTIVE"),
                          _account("222222222222", "SUSPENDED")], "NextToken": "t1"}, {})  # fmt: skip
        stub.add_response("list_accounts", {"Accounts": [_account("333333333333", "ACTIVE"),
                          _account("444444444444", "PENDING_CLOSURE"),
                          _account("555555555555", "ACTIVE")]}, {"NextToken": "t1"})  # fmt: skip
        found = member_accounts(client, exclude=["555555555555"])
        stub.assert_no_pending_responses()
    assert [(a.account_id, a.name) for a in found] == [
        ("111111111111", "acct-111111111111"), ("333333333333", "acct-333333333333"),
    ]  # fmt: skip


def test_member_accounts_include_keeps_only_those_listed() -> None:
    client = boto3.client("organizations", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_response("list_accounts", {"Accounts": [_account("111111111111", "ACTIVE"),
                          _account("333333333333", "ACTIVE")]}, {})  # fmt: skip
        found = member_accounts(client, include=["333333333333", "999999999999"])
    assert [a.account_id for a in found] == ["333333333333"]


# -- configuration -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("organization = true",
         "sources[0].role_name: is required with organization = true"),
        ('role_name = "SpendTrackerRead"',
         "sources[0].role_name: only for organization sources: add organization = true"),
        ('organization = true\nrole_name = "SpendTrackerRead"\ninclude = ["12345"]',
         "sources[0].include: must be a list of 12-digit account ids, got ['12345']"),
        ('organization = true\nrole_name = "SpendTrackerRead"\nexclude = [123456789012]',
         "sources[0].exclude: must be a list of 12-digit account ids, got [123456789012]"),
        ('organization = true\nrole_name = "SpendTrackerRead"\nous = ["finance"]',
         "sources[0].ous: must be a list of organizational unit ids"),
        ('organization = true\nrole_name = "arn:aws:iam::123456789012:role/X"',
         "sources[0].role_name: 'arn:aws:iam::123456789012:role/X' is not an IAM role name"),
        ('organization = true\nrole_name = "R"\nrole_arn = "arn:aws:iam::123456789012:role/R"',
         "sources[0].role_arn: not allowed with organization = true"),
        ('organization = true\nrole_name = "R"\ninclude = ["111111111111"]\n'
         'exclude = ["111111111111"]', "sources[0].exclude: 111111111111 also in include"),
        ('organization = "yes"\nrole_name = "R"',
         "sources[0].organization: must be true or false, got 'yes'"),
    ],
)  # fmt: skip
def test_config_organization_bad_combination_is_one_line(
    tmp_path: Path, body: str, problem: str
) -> None:
    path = tmp_path / "tracker.toml"
    path.write_text(f'[[sources]]\nname = "org"\nregions = ["us-east-1"]\n{body}\n')
    with pytest.raises(ConfigError) as info:
        load_settings(str(path))
    assert "\n" not in str(info.value)
    assert problem in str(info.value)


def test_config_organization_source_parses(tmp_path: Path) -> None:
    path = tmp_path / "tracker.toml"
    path.write_text(
        '[[sources]]\nname = "org"\nregions = ["us-east-1", "eu-west-1"]\norganization = true\n'
        'role_name = "SpendTrackerRead"\nexclude = ["111111111111"]\n'
        'ous = ["ou-ab12-cd34ef56", "r-ab12"]\nexternal_id = "x-1"\n'
    )
    (source,) = load_settings(str(path)).sources
    assert source == Source("org", ("us-east-1", "eu-west-1"), None, "x-1", organization=True,
                            role_name="SpendTrackerRead", exclude=("111111111111",),
                            ous=("ou-ab12-cd34ef56", "r-ab12"))  # fmt: skip
