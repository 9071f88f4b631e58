"""Allocation rules (``[[allocation.rules]]``): the pure rule, its settings, and the rule
applied at collection and retroactively by a recost, on SQLite and PostgreSQL, with the
spend rollup following the jobs that move (docs/allocation.md)."""

from __future__ import annotations

import warnings
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from moto import mock_aws

from tests.backends import db_url_fixture  # noqa: F401 - the db_url fixture
from tests.factories import make_job
from tests.test_rollups import assert_rollup_exact
from tracker.aws.simulate import SimJob, seed_organisation
from tracker.cli.main import main
from tracker.collect.allocate import allocate, reattribute
from tracker.collect.recost import recost
from tracker.collect.service import collect
from tracker.cost.engine import CostPolicy, cost_job
from tracker.errors import ConfigError
from tracker.records import Rates
from tracker.report.spend import spend_rows
from tracker.settings import (
    Attribution,
    SectionContext,
    Settings,
    Source,
    parse_allocation_section,
    parse_settings,
)
from tracker.store.database import Store

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
RATES = Rates(hourly={"ml.m5.xlarge": Decimal("0.23")})
ROLE = "arn:aws:iam::111122223333:role/research/SageMakerExec"
DOMAIN = "arn:aws:sagemaker:us-east-1:111122223333:domain/d-abc123"
PROFILE = "arn:aws:sagemaker:us-east-1:111122223333:user-profile/d-abc123/alice"


def rules_of(*tables: dict) -> tuple:
    """The rules of ``[[allocation.rules]]`` tables; a problem fails the test."""
    ctx = SectionContext(None, Path("."), [])
    parsed = parse_allocation_section({"rules": list(tables)}, ctx)
    assert ctx.problems == []
    return parsed.rules


def rule(match: dict, team: str = "research", **more: object) -> dict:
    return {"name": "r", "team": team, **match, **more}


# -- the pure rule -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("match", "job", "matched"),
    [
        ({"name_glob": "sweep-*"}, {"name": "sweep-7"}, True),
        ({"name_glob": "sweep-*"}, {"name": "bert-sweep-7"}, False),
        ({"name_regex": r"^bert-\d+$"}, {"name": "bert-12"}, True),
        ({"name_regex": r"^bert-\d+$"}, {"name": "bert-12x"}, False),
        ({"name_regex": "ft"}, {"name": "llama-ft-3"}, True),  # re.search: anywhere
        ({"role_arn": ROLE}, {"role_arn": ROLE}, True),
        ({"role_arn": "arn:aws:iam::*:role/research/*"}, {"role_arn": ROLE}, True),
        ({"role_arn": "arn:aws:iam::*:role/prod/*"}, {"role_arn": ROLE}, False),
        ({"role_arn": ROLE}, {}, False),  # no role stored: no match
        ({"account": "111122223333"}, {}, True),
        ({"account": "444455556666"}, {}, False),
        ({"domain": "d-abc123"}, {"tags": {"sagemaker:domain-arn": DOMAIN}}, True),
        ({"domain": "d-other"}, {"tags": {"sagemaker:domain-arn": DOMAIN}}, False),
        ({"user_profile": "alice"}, {"tags": {"sagemaker:user-profile-arn": PROFILE}}, True),
        ({"user_profile": "a*"}, {"tags": {"sagemaker:user-profile-arn": PROFILE}}, True),
        ({"user_profile": "bob"}, {"tags": {"sagemaker:user-profile-arn": PROFILE}}, False),
        ({"field": "instance_type", "value": "ml.m5.xlarge"}, {}, True),
        ({"field": "instance_type", "glob": "ml.p4d.*"}, {}, False),
        ({"field": "tag:cost-center", "regex": "^CC-4"}, {"tags": {"cost-center": "CC-42"}}, True),
        ({"field": "tag:cost-center", "value": "CC-42"}, {}, False),  # tag absent
        ({"field": "spot", "value": "true"}, {"spot": True}, True),
        ({"field": "tuning_job", "glob": "hpo-*"}, {"tuning_job": "hpo-lr"}, True),
        # Every key of a rule must match (AND).
        ({"name_glob": "sweep-*", "account": "111122223333"}, {"name": "sweep-1"}, True),
        ({"name_glob": "sweep-*", "account": "444455556666"}, {"name": "sweep-1"}, False),
    ],
)
def test_allocate_rule_match_keys(match: dict, job: dict, matched: bool) -> None:
    (one,) = rules_of(rule(match))
    found = allocate(make_job(**job), (one,))
    expected = ("research", "r") if matched else ("unallocated", "unallocated")
    assert (found.team, found.team_source) == expected


def test_allocate_first_match_wins_and_sets_project_only_when_missing() -> None:
    rules = rules_of(
        {"name": "sweeps", "team": "research", "project": "hpo", "name_glob": "sweep-*"},
        {"name": "everyone", "team": "platform", "account": "111122223333"},
    )
    sweep = allocate(make_job("sweep-1"), rules)
    assert (sweep.team, sweep.project, sweep.team_source) == ("research", "hpo", "sweeps")
    own = allocate(make_job("sweep-2", project="mine"), rules)
    assert (own.team, own.project) == ("research", "mine")
    other = allocate(make_job("etl-1"), rules)
    assert (other.team, other.project, other.team_source) == ("platform", None, "everyone")


def test_allocate_never_touches_a_tagged_job() -> None:
    rules = rules_of(rule({"name_glob": "*"}))
    tagged = replace(make_job("sweep-1", "nlp"), team_source="tag")
    assert allocate(tagged, rules) == tagged


def test_reattribute_derives_from_the_stored_tags_then_the_current_rules() -> None:
    """A stored job keeps what its tags say; the rules decide only for untagged jobs, so a
    removed rule sends its jobs back to unallocated."""
    rules = rules_of(rule({"name_glob": "sweep-*"}))
    stored = replace(make_job("sweep-1"), team="research", team_source="r")
    assert reattribute(stored, Attribution(), ()).team_source == "unallocated"
    assert reattribute(stored, Attribution(), rules).team == "research"
    tagged = make_job("sweep-1", tags={"group": "nlp"})
    again = reattribute(tagged, Attribution(team_tag="group"), rules)
    assert (again.team, again.team_source) == ("nlp", "tag")


# -- settings ------------------------------------------------------------------------------------
BAD = """
[[allocation.rules]]
name = "sweeps"
team = "research"
name_regex = "sweep-(["

[[allocation.rules]]
name = "sweeps"
team = "x"
account = "1"

[[allocation.rules]]
name = "all"
team = "platform"

[[allocation.rules]]
name = "odd"
team = "unallocated"
field = "tags"
value = "x"
colour = "red"

[[allocation.shared]]
name = "untagged"
pool = "everything"
method = "fair"

[[allocation.shared]]
name = "both"
team = "platform"
monthly_usd = 10
method = "even"
"""


def test_settings_report_every_allocation_problem_at_once(tmp_path: Path) -> None:
    path = tmp_path / "tracker.toml"
    path.write_text(BAD)
    with pytest.raises(ConfigError) as caught:
        parse_settings(path)
    assert caught.value.problems == [
        "allocation.rules[1].name: 'sweeps' is used twice; names must be unique",
        "allocation.rules[0].name_regex: rule 'sweeps': not a regular expression "
        "(unterminated character set at position 7)",
        "allocation.rules[2]: rule 'all' matches every untagged job; give at least one of "
        "name_glob, name_regex, role_arn, account, domain, user_profile, field",
        "allocation.rules[3].colour: unknown key; expected one of account, domain, field, glob, "
        "name, name_glob, name_regex, project, regex, role_arn, team, user_profile, value",
        "allocation.rules[3].team: must name a team, not 'unallocated'",
        "allocation.rules[3].field: must be tag:<key> or a job field ("
        + caught.value.problems[5].split("(", 1)[1],
        'allocation.shared[0].pool: must be "unallocated" (a team\'s spend is team = "<team>"), '
        "got 'everything'",
        "allocation.shared[0].method: must be one of even, proportional, got 'fair'",
        'allocation.shared[1]: needs exactly one of pool = "unallocated", team = "<team>" or '
        "monthly_usd = <amount>, got team and monthly_usd",
    ]
    assert "account_id, " in caught.value.problems[5] and "tags, " not in caught.value.problems[5]


def test_cli_bad_allocation_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tracker.toml"
    path.write_text('[[allocation.rules]]\nname = "a"\nteam = "t"\nname_regex = "("\n')
    code = main(["--config", str(path), "--db", f"sqlite:///{tmp_path / 't.db'}", "recost"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "allocation.rules[0].name_regex: rule 'a'" in err


# -- applied at collection and retroactively -----------------------------------------------------
ALLOCATION = {
    "rules": [
        {"name": "sweeps", "team": "research", "name_glob": "sweep-*"},
        {"name": "etl-role", "team": "platform", "role_arn": "*:role/etl-*"},
    ]
}


def saved(store: Store, *jobs) -> None:
    store.save_jobs([(job, cost_job(job, RATES, NOW, CostPolicy()), {}) for job in jobs], NOW)


def teams(store: Store) -> dict[str, tuple[str, str]]:
    """Job name -> (team, team_source), as ``report --by job`` shows them."""
    return {r["job"]: (r["team"], r["team_source"]) for r in spend_rows(store, "job")}


def team_totals(store: Store) -> dict[str, tuple[int, Decimal]]:
    return {r["team"]: (r["jobs"], r["total_usd"]) for r in spend_rows(store, "team")}


def test_recost_moves_untagged_jobs_retroactively_and_back(db_url: str) -> None:
    """Three 1-hour ml.m5.xlarge jobs at $0.23/h ($0.23 each), collected before any rule:

    ======================  ========  ==========================  ==========================
    job                     team tag  after recost with the rules  after the rules are removed
    ======================  ========  ==========================  ==========================
    sweep-1                 -         research (sweeps)            unallocated
    sweep-2                 nlp       nlp (tag): never moved       nlp (tag)
    etl-1 (role etl-daily)  -         platform (etl-role)          unallocated
    ======================  ========  ==========================  ==========================

    By team: unallocated 2 jobs $0.46, nlp $0.23 -> research $0.23, platform $0.23, nlp
    $0.23 -> back. The rollup equals its recomputation after every step."""
    store = Store.open(db_url)
    role = "arn:aws:iam::111122223333:role/etl-daily"
    saved(store, make_job("sweep-1"), make_job("sweep-2", "nlp", team_source="tag"),
          make_job("etl-1", role_arn=role))  # fmt: skip
    assert team_totals(store) == {"unallocated": (2, Decimal("0.46")), "nlp": (1, Decimal("0.23"))}
    ruled = Settings(document={"allocation": ALLOCATION})
    recost(store, ruled.price_book(), CostPolicy(), Decimal(0), NOW,
           allocation=(ruled.attribution, ruled.allocation.rules))  # fmt: skip
    assert_rollup_exact(store)
    assert teams(store) == {
        "sweep-1": ("research", "sweeps"), "sweep-2": ("nlp", "tag"),
        "etl-1": ("platform", "etl-role"),
    }  # fmt: skip
    assert team_totals(store) == {
        "research": (1, Decimal("0.23")), "nlp": (1, Decimal("0.23")),
        "platform": (1, Decimal("0.23")),
    }  # fmt: skip
    plain = Settings()
    recost(store, plain.price_book(), CostPolicy(), Decimal(0), NOW,
           allocation=(plain.attribution, plain.allocation.rules))  # fmt: skip
    assert_rollup_exact(store)
    assert teams(store)["sweep-1"] == ("unallocated", "unallocated")
    assert team_totals(store) == {"unallocated": (2, Decimal("0.46")), "nlp": (1, Decimal("0.23"))}


def test_recost_without_allocation_keeps_the_stored_attribution(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 't.db'}")
    saved(store, replace(make_job("sweep-1"), team="research", team_source="sweeps"))
    recost(store, Settings().price_book(), CostPolicy(), Decimal(0), NOW)
    assert teams(store) == {"sweep-1": ("research", "sweeps")}


def sim(name: str, tags: dict[str, str] | None = None) -> SimJob:
    start = NOW.replace(hour=8)
    return SimJob(name, "123456789012", "us-east-1", start=start, end=start.replace(hour=9),
                  billable_seconds=3600, training_seconds=3600, tags=tags or {})  # fmt: skip


def test_collect_applies_the_rules_and_report_filters_by_team_source(tmp_path: Path) -> None:
    """Through moto: the untagged sweep gets the rule's team as it is collected; the tagged
    one keeps its tag; ``--team-source sweeps`` and ``--by team_source`` see it."""
    with mock_aws():
        seed_organisation([sim("sweep-a"), sim("sweep-b", {"team": "nlp"}), sim("other")])
        settings = Settings(
            sources=(Source("prod", ("us-east-1",)),), document={"allocation": ALLOCATION}
        )
        store = Store.open(f"sqlite:///{tmp_path / 't.db'}")
        summary = collect(settings, store, settings.price_book(), clock=lambda: NOW)
        assert summary.ok, summary.to_dict()
    assert teams(store) == {
        "sweep-a": ("research", "sweeps"), "sweep-b": ("nlp", "tag"),
        "other": ("unallocated", "unallocated"),
    }  # fmt: skip
    ruled = spend_rows(store, "job", filters={"team_source": "sweeps"})
    assert [r["job"] for r in ruled] == ["sweep-a"]
    by_source = {r["team_source"]: r["jobs"] for r in spend_rows(store, "team_source")}
    assert by_source == {"sweeps": 1, "tag": 1, "unallocated": 1}


def test_job_page_says_where_the_team_came_from(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette's notice about its httpx-based client
        from fastapi.testclient import TestClient

    from tracker.web.app import create_app

    store = Store.open(f"sqlite:///{tmp_path / 't.db'}")
    saved(store, replace(make_job("sweep-1"), team="research", team_source="sweeps"))
    (job,) = store.jobs()
    page = TestClient(create_app(store)).get(f"/jobs/{job.id}").text
    assert "<th>team source</th><td>rule: sweeps ([[allocation.rules]])</td>" in page
