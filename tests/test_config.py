"""Config loading: every problem reported at once, one line, exit 2, no traceback, no data touched."""

from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from tracker.cli.main import main
from tracker.errors import ConfigError
from tracker.settings import Settings, load_settings

GOOD = """
[database]
url = "sqlite:///tracker.db"
[[sources]]
name = "prod"
role_arn = ""
regions = ["us-east-1", "eu-west-1"]
[attribution]
team_tag = "team"
project_tag = "project"
user_tag = "owner"
[pricing]
overrides = "prices-overrides.csv"
discount_pct = 12.5
"""


def write(
    tmp_path: Path, text: str, overrides: str | None = "region,instance_type,usd_per_hour\n"
) -> Path:
    path = tmp_path / "tracker.toml"
    path.write_text(textwrap.dedent(text))
    if overrides is not None:
        (tmp_path / "prices-overrides.csv").write_text(overrides)
    return path


def test_load_settings_good_file_resolves_relative_paths(tmp_path: Path) -> None:
    settings = load_settings(str(write(tmp_path, GOOD)))
    assert settings.database_url == f"sqlite:///{(tmp_path / 'tracker.db').resolve()}"
    assert settings.sources[0].name == "prod"
    assert settings.sources[0].role_arn is None
    assert settings.sources[0].regions == ("us-east-1", "eu-west-1")
    assert settings.pricing.overrides == tmp_path.resolve() / "prices-overrides.csv"
    assert settings.discount_pct == Decimal("12.5")


def test_shipped_example_config_is_valid() -> None:
    settings = load_settings(str(Path(__file__).parent.parent / "config" / "tracker.toml"))
    assert settings.sources and settings.attribution.user_tag == "owner"


def test_load_settings_reports_every_problem_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [[sources]]
        name = "prod"
        role_arn = "not-an-arn"
        regions = ["us-east-1", "mars-north-9x"]
        [attribution]
        team_tag = 3
        [pricing]
        discount_pct = 140
        [collection]
        retry_mode = "sometimes"
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_settings(str(path))
    message = str(info.value)
    assert "\n" not in message
    for fragment in (
        "sources[0].role_arn: 'not-an-arn' is not an IAM role ARN",
        "sources[0].regions[1]: 'mars-north-9x' is not an AWS region",
        "attribution.team_tag: must be a non-empty string, got 3",
        "pricing.discount_pct: must be a number from 0 to 100, got 140",
        "collection.retry_mode: must be one of standard, adaptive, got 'sometimes'",
    ):
        assert fragment in message


BAD_CONFIGS = {
    "bad-toml": ("[database\nurl = 1", None, "invalid TOML"),
    "wrong-type": (
        "[database]\nurl = 5\n",
        None,
        "database.url: must be a non-empty string, got 5",
    ),
    "regions-not-list": (
        '[[sources]]\nname = "a"\nregions = "us-east-1"\n',
        None,
        "sources[0].regions: must be a non-empty list",
    ),
    "bad-region": (
        '[[sources]]\nname = "a"\nregions = ["US_EAST"]\n',
        None,
        "sources[0].regions[0]: 'US_EAST' is not an AWS region; expected a code like 'us-east-1'",
    ),
    "unknown-section": ('[databse]\nurl = "x"\n', None, "databse: unknown section"),
    "missing-overrides": ('[pricing]\noverrides = "nope.csv"\n', None, "pricing.overrides:"),
    "bad-overrides": (
        '[pricing]\noverrides = "prices-overrides.csv"\n',
        "region,instance_type,usd_per_hour\nus-east-1,ml.m5.xlarge,cheap\n",
        "pricing.overrides:",
    ),
}


@pytest.mark.parametrize("text,overrides,expected", BAD_CONFIGS.values(), ids=BAD_CONFIGS.keys())
def test_cli_bad_config_exits_2_with_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    overrides: str | None,
    expected: str,
) -> None:
    path = write(tmp_path, text, overrides)
    db = tmp_path / "kept.db"
    db.write_bytes(b"not touched")
    code = main(["--config", str(path), "--db", f"sqlite:///{db}", "report", "--by", "team"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"Error: {path}: ")
    assert expected in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert db.read_bytes() == b"not touched"


def test_cli_missing_config_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--config", str(tmp_path / "absent.toml"), "report"])
    assert code == 2
    assert (
        capsys.readouterr().err
        == f"Error: {tmp_path / 'absent.toml'}: file not found: pass --config PATH to an existing TOML file\n"
    )


def test_cli_bad_argument_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--since", "2026-13-01"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and "'2026-13-01' is not a date; expected YYYY-MM-DD" in err


def test_feature_sections_are_validated_on_first_use_and_kept(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [[budgets]]
        name = "x"
        amount_usd = "lots"
        period = "fortnightly"
        [daemon]
        heartbeat_seconds = 5
        stale_after_seconds = 20
        """,
    )
    with pytest.raises(ConfigError):
        load_settings(str(path))  # the whole file, as every command loads it
    settings = load_settings(str(path), whole_file=False)
    assert settings.daemon.heartbeat_seconds == 5
    assert settings.daemon is settings.daemon  # parsed once
    with pytest.raises(ConfigError) as info:
        _ = settings.budgets
    assert [p.split(":")[0] for p in info.value.problems] == [
        "budgets[0].period",
        "budgets[0].amount_usd",
    ]
    assert str(info.value).startswith(f"{path}: budgets[0].period: must be one of monthly")


def test_settings_without_a_file_have_every_section_default() -> None:
    settings = Settings()
    assert settings.budgets == ()
    assert settings.alerts.notify == ("log",) and settings.alerts.job_tolerance_pct is None
    assert settings.schedule.collect == "*/15 * * * *"
    assert settings.reports.showback_destination == str(Path.cwd() / "reports" / "showback")
    assert settings.estimate_tolerance_pct == Decimal(10)
    assert settings.section_problems() == []
