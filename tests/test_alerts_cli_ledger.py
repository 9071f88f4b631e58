"""What ``tracker alerts`` and ``tracker status`` say about the delivery ledger after a crash
(issue 12, row 15): a delivery resent under the key of a dead sender's claim is ``"repeat":
true`` in ``alerts --format json``; one whose resend's sender died too is ``unconfirmed``, and
``status`` counts it (before, the JSON rows had no ``repeat`` and ``status`` left
``unconfirmed`` rows out of its counts)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.reconcile_data import NOW, make_job, save
from tracker.cli.main import main
from tracker.store.database import Store
from tracker.store.ops import AlertLedger

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)  # any wall time: every lease since has run out


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], Store]:
    """Budget nlp $0.40 a month, threshold 50%; nlp-1 spent $0.23 on 2026-11-20: one alert, on
    the log channel. Returns the global options and the store."""
    db = f"sqlite:///{tmp_path / 't.db'}"
    store = Store.open(db)
    save(store, [make_job("nlp-1", "nlp")])
    config = tmp_path / "tracker.toml"
    config.write_text(
        '[alerts]\nnotify = ["log"]\n\n[[budgets]]\nname = "nlp"\nteam = "nlp"\n'
        "amount_usd = 0.4\nthresholds_pct = [50]\nforecast_pct = []\n"
    )
    monkeypatch.setenv("TRACKER_NOW", NOW.isoformat())
    return ["--config", str(config), "--db", db], store


def _alerts(
    options: list[str], capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, dict]:
    code = main([*options, "alerts", "--format", "json", *extra])
    return code, json.loads(capsys.readouterr().out)


def _dead_claim(store: Store, row: dict, times: int) -> None:
    """``times`` claims of the delivery by senders that died before recording anything."""
    for minutes in range(times):
        ledger = AlertLedger(store, lambda m=minutes: LONG_AGO + timedelta(minutes=11 * m))
        claim = ledger.claim_delivery(
            row["alert"], row["channel"], "budget-actual", row["subject"], {}
        )
        assert claim is not None


def test_alerts_json_rows_say_repeat(world, capsys: pytest.CaptureFixture[str]) -> None:
    options, store = world
    code, dry = _alerts(options, capsys, "--dry-run")
    [row] = dry["deliveries"]
    assert (code, row["state"], row["repeat"]) == (0, "would-send", False)
    _dead_claim(store, row, 1)  # a sender claimed it and died: it may have sent
    code, run = _alerts(options, capsys)
    assert code == 0
    assert run["deliveries"] == [
        {"alert": row["alert"], "channel": "log", "state": "sent", "subject": row["subject"],
         "error": None, "repeat": True},
    ]  # fmt: skip
    code, again = _alerts(options, capsys)
    assert [(r["state"], r["repeat"]) for r in again["deliveries"]] == [("already-sent", False)]


def test_status_counts_unconfirmed_deliveries(world, capsys: pytest.CaptureFixture[str]) -> None:
    options, store = world
    _, dry = _alerts(options, capsys, "--dry-run")
    [row] = dry["deliveries"]
    _dead_claim(store, row, 2)  # its sender died, and so did the one that resent it
    code, run = _alerts(options, capsys)
    assert (code, [r["state"] for r in run["deliveries"]]) == (1, ["unconfirmed"])
    assert main([*options, "status", "--format", "json"]) == 0
    alerts = json.loads(capsys.readouterr().out)["alerts"]
    assert alerts == {"sent": 0, "failed": 0, "sending": 0, "unconfirmed": 1}
    assert main([*options, "status"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "Alerts: 0 delivered, 1 unconfirmed (resent once after a crash, whose sender died too; "
        "never sent again: check the receiver)"
    )
