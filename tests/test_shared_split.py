"""The shared-cost split (tracker.cost.shared) and its showback column and ``--show-shared``
view: exact to the cent, per month, through both read paths and the CLI."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tests.factories import make_job
from tracker.cli.main import main
from tracker.cost.engine import CostPolicy, cost_job
from tracker.cost.shared import (
    SharedPool,
    monthly_micros,
    shared_by_team,
    split_cents,
    split_shared,
)
from tracker.errors import InputError
from tracker.records import Rates
from tracker.report.views import ViewRequest, build
from tracker.store.database import Store
from tracker.store.lite import LiteStore

M = 1_000_000  # micro-dollars in a dollar
UNTAGGED = SharedPool("untagged", "proportional", team="unallocated")
PLATFORM = SharedPool("platform", "even", team="platform")


# -- the pure split ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cents", "bases", "method", "expected"),
    [
        # 100 cents over 3 evenly: 33.33 each, the missing cent to the first (tie: earlier).
        (100, [5, 5, 5], "even", [34, 33, 33]),
        # Proportional to 1:2: 33.33 and 66.67 -> the cent to the larger remainder (.67).
        (100, [1 * M, 2 * M], "proportional", [33, 67]),
        # 1 cent over 3 teams: one gets it.
        (1, [3 * M, 1 * M, 2 * M], "proportional", [1, 0, 0]),
        (7, [0, 0], "even", [4, 3]),  # even needs no basis
        (7, [0, 0], "proportional", None),  # nothing to be proportional to
        (7, [], "even", None),  # no receiver
    ],
)
def test_split_cents_adds_up_exactly(cents, bases, method, expected) -> None:
    assert split_cents(cents, bases, method) == expected


def test_split_cents_sums_to_the_pool_for_any_input() -> None:
    """Seeded random pools and bases: the shares always sum to the pool, never negative."""
    chance = random.Random(16)
    for _ in range(500):
        bases = [chance.randrange(0, 10**9) for _ in range(chance.randrange(1, 9))]
        cents = chance.randrange(0, 10**7)
        for method in ("even", "proportional"):
            shares = split_cents(cents, bases, method)
            if shares is not None:
                assert sum(shares) == cents and min(shares) >= 0


@pytest.mark.parametrize(
    ("period", "since", "until", "expected_usd"),
    [
        ("2026-11", None, None, "1200"),  # the whole month
        ("2026-11", date(2026, 11, 1), date(2026, 11, 30), "1200"),
        ("2026-11", date(2026, 11, 16), None, "600"),  # 15 of 30 days
        ("2026-11", None, date(2026, 11, 26), "1040"),  # 26 of 30 days (to today)
        ("2026-02", date(2026, 2, 1), date(2026, 2, 7), "300"),  # 7 of 28 days
        ("2026-10", date(2026, 10, 31), None, "38.709677"),  # 1 of 31 days, to the micro
        ("2026-12", date(2027, 1, 1), None, "0"),  # outside the window
    ],
)
def test_monthly_amount_is_prorated_by_days_of_the_month_in_the_window(
    period, since, until, expected_usd
) -> None:
    assert monthly_micros(Decimal(1200), period, since, until) == int(Decimal(expected_usd) * M)


def test_split_shared_per_month_with_pool_rows_and_default_receivers() -> None:
    """Two months; own spend in USD:

    =========  =====  ======  ===========  ========
    month      nlp    vision  unallocated  platform
    =========  =====  ======  ===========  ========
    2026-10    30.00  10.00   4.00         9.00
    2026-11    0.00   50.00   10.005       0.00
    =========  =====  ======  ===========  ========

    October: untagged 4.00 by 3:1 -> nlp 3.00, vision 1.00, unallocated -4.00; platform 9.00
    evenly -> 4.50 each, platform -9.00. November: untagged 10.005 -> 10.01 (half up), all to
    vision (the only receiver with spend), unallocated -10.01; platform has nothing to split.
    Totals: nlp 7.50, vision 15.51, unallocated -14.01, platform -9.00: sum 0."""
    own = {
        "2026-10": {"nlp": 30 * M, "vision": 10 * M, "unallocated": 4 * M, "platform": 9 * M},
        "2026-11": {"vision": 50 * M, "unallocated": 10_005_000},
    }
    splits = split_shared((UNTAGGED, PLATFORM), own)
    assert [(s.pool.name, s.period, s.pool_micros) for s in splits] == [
        ("untagged", "2026-10", 4 * M), ("platform", "2026-10", 9 * M),
        ("untagged", "2026-11", 10_010_000), ("platform", "2026-11", 0),
    ]  # fmt: skip
    assert {(s.team, s.shared_micros) for s in splits[0].shares} == {
        ("nlp", 3 * M), ("vision", 1 * M), ("unallocated", -4 * M),
    }  # fmt: skip
    assert shared_by_team(splits) == {
        "nlp": 7_500_000, "vision": 15_510_000, "unallocated": -14_010_000, "platform": -9 * M,
    }  # fmt: skip
    assert sum(shared_by_team(splits).values()) == 0


def test_split_shared_over_named_teams_and_unsplittable_pools() -> None:
    """``over`` names the receivers, with or without spend; a proportional pool over teams
    without spend is not split, and says so."""
    own = {"2026-11": {"nlp": 10 * M, "unallocated": 3 * M}}
    even = SharedPool("u", "even", team="unallocated", over=("nlp", "ops"))
    (split,) = split_shared((even,), own)
    assert {(s.team, s.shared_micros) for s in split.shares} == {
        ("nlp", 1_500_000), ("ops", 1_500_000), ("unallocated", -3 * M),
    }  # fmt: skip
    stuck = SharedPool("u", "proportional", team="unallocated", over=("ops",))
    (split,) = split_shared((stuck,), own)
    assert (split.shares, split.note) == ((), "not split: no receiving team had spend")
    alone = split_shared((UNTAGGED,), {"2026-11": {"unallocated": 3 * M}})[0]
    assert (alone.shares, alone.note) == ((), "not split: no receiving team")


# -- the showback ----------------------------------------------------------------------------------
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
RATES = Rates(hourly={"ml.m5.xlarge": Decimal("0.23")})
NOV = {"since": date(2026, 11, 1), "until": date(2026, 11, 30)}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """November, ml.m5.xlarge at $0.23/h: nlp 30 h = 6.90, vision 10 h = 2.30, untagged
    20 h = 4.60, platform 4 h = 0.92 (account 111122223333), and an nlp job of 10 h = 2.30 in
    account 444455556666."""
    path = tmp_path_factory.mktemp("shared") / "tracker.db"
    store = Store.open(f"sqlite:///{path}")
    start = datetime(2026, 11, 10, 0, 0, tzinfo=UTC)
    jobs = [
        make_job("n", "nlp", seconds=30 * 3600, start_time=start),
        make_job("v", "vision", seconds=10 * 3600, start_time=start),
        make_job("u", seconds=20 * 3600, start_time=start),
        make_job("p", "platform", seconds=4 * 3600, start_time=start),
        make_job("n2", "nlp", seconds=10 * 3600, start_time=start, account_id="444455556666"),
    ]
    store.save_jobs([(j, cost_job(j, RATES, NOW, CostPolicy()), {}) for j in jobs], NOW)
    return store


def shown(table) -> dict[str, tuple]:
    return {r["team"]: (r["total_usd"], r["shared_usd"]) for r in table.rows}


def test_showback_shared_column_beside_own_cost(store: Store) -> None:
    """untagged 4.60 over nlp 9.20 : vision 2.30 (4:1) -> 3.68, 0.92; platform 0.92 evenly
    -> 0.46 each. nlp 4.14, vision 1.38, unallocated -4.60, platform -0.92; total 0.00."""
    request = ViewRequest("showback", **NOV, shared=(UNTAGGED, PLATFORM))
    table = build(store, request, NOW)
    D = Decimal
    assert shown(table) == {
        "nlp": (D("9.20"), D("4.14")), "vision": (D("2.30"), D("1.38")),
        "unallocated": (D("4.60"), D("-4.60")), "platform": (D("0.92"), D("-0.92")),
    }  # fmt: skip
    assert (table.total["total_usd"], table.total["shared_usd"]) == (D("17.02"), D("0.00"))
    assert table.keys.index("shared_usd") == table.keys.index("total_usd") + 1
    # The light read path (the rollup, no ORM) shows the same.
    lite = build(LiteStore.open(store.url), request, NOW)
    assert lite.rows == table.rows and lite.total == table.total


def test_showback_team_filter_narrows_rows_not_the_split(store: Store) -> None:
    """vision's shares as without the filter: 0.92 of untagged, 0.46 of platform."""
    pools = (UNTAGGED, PLATFORM)
    request = ViewRequest("showback", **NOV, filters={"team": "vision"}, shared=pools)
    table = build(store, request, NOW)
    assert shown(table) == {"vision": (Decimal("2.30"), Decimal("1.38"))}
    assert table.total["shared_usd"] == Decimal("1.38")


def test_showback_other_filters_narrow_the_pools_and_bases(store: Store) -> None:
    """Account 444455556666 has only nlp's 2.30: no untagged spend there to split."""
    request = ViewRequest(
        "showback", **NOV, filters={"account": "444455556666"}, shared=(UNTAGGED,)
    )
    assert shown(build(store, request, NOW)) == {"nlp": (Decimal("2.30"), Decimal("0.00"))}


def test_showback_without_team_rows_has_no_shared_column_but_a_note(store: Store) -> None:
    request = ViewRequest("showback", **NOV, rows_by="account", shared=(UNTAGGED,))
    table = build(store, request, NOW)
    assert "shared_usd" not in table.keys
    assert any("--show-shared" in note for note in table.notes)


def test_show_shared_breakdown_rows(store: Store) -> None:
    """As in the showback above, plus a fixed $30 a month split evenly over nlp and vision."""
    monthly = SharedPool("tools", "even", monthly_usd=Decimal(30))
    pools = (UNTAGGED, PLATFORM, monthly)
    request = ViewRequest("showback", **NOV, shared=pools, show_shared=True)
    table = build(store, request, NOW)
    found = [(r["pool"], r["team"], r["basis_usd"], r["share_pct"], r["shared_usd"])
             for r in table.rows]  # fmt: skip
    D = Decimal
    assert found == [
        ("untagged", "nlp", D("9.20"), D("80.0"), D("3.68")),
        ("untagged", "vision", D("2.30"), D("20.0"), D("0.92")),
        ("untagged", "unallocated", D("4.60"), D("-100.0"), D("-4.60")),
        ("platform", "nlp", D("9.20"), D("50.0"), D("0.46")),
        ("platform", "vision", D("2.30"), D("50.0"), D("0.46")),
        ("platform", "platform", D("0.92"), D("-100.0"), D("-0.92")),
        ("tools", "nlp", D("9.20"), D("50.0"), D("15.00")),
        ("tools", "vision", D("2.30"), D("50.0"), D("15.00")),
    ]
    assert table.total["shared_usd"] == D("30.00")


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"view": "top", "shared": (UNTAGGED,)}, "--show-shared applies to the showback view"),
        ({"view": "showback"}, "no [[allocation.shared]] pool"),
    ],
)
def test_show_shared_refuses_what_it_cannot_show(request_: dict, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("[", r"\[")):
        ViewRequest(**request_, show_shared=True)


def test_cli_show_shared_json_and_errors(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "tracker.toml"
    config.write_text('[[allocation.shared]]\nname = "u"\npool = "unallocated"\nmethod = "even"\n')
    window = ["--since", "2026-11-01", "--until", "2026-11-30", "--db", str(store.url)]
    assert (
        main(["--config", str(config), "report", "--show-shared", "--format", "json", *window]) == 0
    )
    rows = json.loads(capsys.readouterr().out)
    # 4.60 evenly over nlp, platform, vision: 1.5333 each, the odd cent to the first.
    assert {r["team"]: r["shared_usd"] for r in rows} == {
        "nlp": 1.54, "platform": 1.53, "vision": 1.53, "unallocated": -4.6,
    }  # fmt: skip
    assert set(rows[0]) == {"period", "pool", "source", "method", "team", "basis_usd",
                            "share_pct", "shared_usd", "note"}  # fmt: skip
    assert main(["report", "--show-shared", "--view", "top", *window]) == 2
    assert "--show-shared applies to the showback view" in capsys.readouterr().err
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    assert main(["--config", str(empty), "report", "--show-shared", *window]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no [[allocation.shared]] pool" in err


def test_dashboard_showback_splits_the_configured_pools(store: Store, tmp_path: Path) -> None:
    """The dashboard's showback (page and JSON) takes the pools from the settings, as the CLI
    does: the same shared_usd as test_showback_shared_column_beside_own_cost."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette's notice about its httpx-based client
        from fastapi.testclient import TestClient

    from tracker.settings import parse_settings
    from tracker.web.app import create_app

    config = tmp_path / "tracker.toml"
    config.write_text(
        '[[allocation.shared]]\nname = "untagged"\npool = "unallocated"\nmethod = "proportional"\n'
        '\n[[allocation.shared]]\nname = "platform"\nteam = "platform"\nmethod = "even"\n'
    )
    client = TestClient(create_app(store, settings=parse_settings(config), clock=lambda: NOW))
    query = "since=2026-11-01&until=2026-11-30"
    rows = client.get(f"/api/views/showback?{query}").json()
    assert {r["team"]: r["shared_usd"] for r in rows} == {
        "nlp": 4.14, "vision": 1.38, "unallocated": -4.60, "platform": -0.92
    }  # fmt: skip
    assert "shared_usd" in client.get(f"/views/showback?{query}").text
    # Without pools configured, no shared column.
    plain = TestClient(create_app(store, clock=lambda: NOW)).get(f"/api/views/showback?{query}")
    assert all("shared_usd" not in row for row in plain.json())
