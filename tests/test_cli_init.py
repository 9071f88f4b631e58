"""``tracker init`` writes a starter tracker.toml that loads with tracker.settings.

    AWS set-up                                         [[sources]] written
    -------------------------------------------------  -----------------------------------------
    moto, AWS_DEFAULT_REGION=eu-west-1                 live: "main", 123456789012, ["eu-west-1"]
    moto, AWS_PROFILE=prod (region ap-south-1)         live: "prod", ["ap-south-1"]
    moto, no region anywhere                           placeholder (account found, no region)
    no credentials (env cleared, empty AWS files)      placeholder (no AWS credentials found)
    credentials, STS unreachable (closed port)         placeholder (the connection error)

Uncommenting every example setting of the starter (``# key = value`` lines) also loads: the
keys it shows are real.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest
from moto import mock_aws

from tests.conftest import run_cli
from tests.processes import run_module
from tracker.cli.main import main
from tracker.settings import Source, load_settings, parse_settings

MOTO_ACCOUNT = "123456789012"
EXAMPLE_LINE = re.compile(r"^# (?=\[|[a-z_]+ = )", re.M)


def uncommented(text: str) -> str:
    """The starter with every commented-out example setting and table header uncommented."""
    return EXAMPLE_LINE.sub("", text)


def no_credentials_env(tmp_path: Path) -> dict[str, str]:
    """An environment where boto3's chain finds nothing, quickly: no keys, empty AWS files,
    no instance metadata lookup."""
    empty = tmp_path / "empty-aws-file"
    empty.write_text("", encoding="utf-8")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_") or key in ("AWS_DEFAULT_REGION",)
    }
    env.update(
        AWS_CONFIG_FILE=str(empty),
        AWS_SHARED_CREDENTIALS_FILE=str(empty),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_init_fills_sources_from_the_current_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with mock_aws():
        assert main(["init", "--dir", str(tmp_path)]) == 0
    path = tmp_path / "tracker.toml"
    text = path.read_text(encoding="utf-8")
    assert f"account {MOTO_ACCOUNT} of AWS profile" in text
    settings = load_settings(str(path))
    assert settings.sources == (Source("main", ("eu-west-1",)),)
    assert settings.database_url == f"sqlite:///{tmp_path / 'tracker.db'}"
    out = capsys.readouterr().out
    config = tmp_path / "tracker.toml"
    assert out == (
        f"Wrote {config} with one source: account {MOTO_ACCOUNT}, region eu-west-1.\n"
        "Add the other regions and accounts you train in, then run:\n"
        f"  tracker --config {config} collect\n"
        f"  tracker --config {config} report --by team\n"
    )
    examples = parse_settings(_write(tmp_path / "all.toml", uncommented(text)))
    assert [s.name for s in examples.sources] == ["main", "other"]
    assert examples.sources[1].role_arn == "arn:aws:iam::123456789012:role/SpendTrackerRead"
    assert [b.name for b in examples.budgets] == ["team-monthly"]


def test_init_names_the_source_after_a_named_profile_and_takes_its_region(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws = tmp_path / "aws"
    aws.mkdir()
    (aws / "config").write_text("[profile prod]\nregion = ap-south-1\n", encoding="utf-8")
    (aws / "credentials").write_text(
        "[prod]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(aws / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(aws / "credentials"))
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_PROFILE", "prod")
    with mock_aws():
        assert main(["init", "--dir", str(tmp_path / "cfg")]) == 0
    settings = load_settings(str(tmp_path / "cfg" / "tracker.toml"))
    assert settings.sources == (Source("prod", ("ap-south-1",)),)


def test_init_without_a_region_writes_a_placeholder_naming_the_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with mock_aws():
        assert main(["init", "--dir", str(tmp_path)]) == 0
    text = (tmp_path / "tracker.toml").read_text(encoding="utf-8")
    problem = f"account {MOTO_ACCOUNT} found, but the AWS profile names no region"
    assert f"#   {problem}.\n" in text
    assert load_settings(str(tmp_path / "tracker.toml")).sources == ()
    assert f"with a placeholder source ({problem})." in capsys.readouterr().out
    placeholders = parse_settings(_write(tmp_path / "all.toml", uncommented(text)))
    assert placeholders.sources[0] == Source("main", ("us-east-1",))


def test_init_without_credentials_writes_a_placeholder_that_loads(tmp_path: Path) -> None:
    started = time.monotonic()
    result = _run_without_credentials(tmp_path)
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert seconds < 30, f"init took {seconds:.0f} s without credentials"
    path = tmp_path / "cfg" / "tracker.toml"
    text = path.read_text(encoding="utf-8")
    assert "#   no AWS account found: no AWS credentials found.\n" in text
    assert "\n[[sources]]" not in text and '\n# [[sources]]\n# name = "main"' in text
    settings = load_settings(str(path))
    assert settings.sources == ()
    assert result.stdout.splitlines() == [
        f"Wrote {path} with a placeholder source (no AWS account found: no AWS credentials found).",
        f"Fill in [[sources]] in {path} and uncomment it, then run:",
        f"  tracker --config {path} collect",
        f"  tracker --config {path} report --by team",
    ]
    # The placeholder fails where it should: collect names the missing [[sources]].
    collect = run_cli("--config", str(path), "collect")
    assert collect.returncode == 2
    assert collect.stderr == (
        f"Error: {path}: sources: no [[sources]] configured; add one with name and regions\n"
    )
    examples = parse_settings(_write(tmp_path / "all.toml", uncommented(text)))
    assert [source.name for source in examples.sources] == ["main", "other"]


def test_init_when_sts_is_unreachable_writes_a_placeholder_quickly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", f"http://127.0.0.1:{closed_port()}")
    started = time.monotonic()
    assert main(["init", "--dir", str(tmp_path)]) == 0
    assert time.monotonic() - started < 15
    text = (tmp_path / "tracker.toml").read_text(encoding="utf-8")
    assert "#   no AWS account found: Could not connect to the endpoint URL" in text
    assert load_settings(str(tmp_path / "tracker.toml")).sources == ()
    assert "with a placeholder source (no AWS account found: " in capsys.readouterr().out


def test_init_never_overwrites_without_force(tmp_path: Path) -> None:
    path = tmp_path / "tracker.toml"
    path.write_text("# mine\n", encoding="utf-8")
    refused = run_cli("init", "--dir", str(tmp_path))
    assert refused.returncode == 2
    assert refused.stdout == ""
    assert refused.stderr == f"Error: {path} already exists; pass --force to overwrite it\n"
    assert path.read_text(encoding="utf-8") == "# mine\n"
    forced = run_cli("init", "--dir", str(tmp_path), "--force")
    assert forced.returncode == 0, forced.stderr
    assert path.read_text(encoding="utf-8").startswith("# SageMaker Spend Tracker configuration")


def test_init_defaults_to_the_current_folder_and_says_so(tmp_path: Path) -> None:
    result = _run_without_credentials(tmp_path, "init", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "tracker.toml").is_file()
    assert result.stdout.startswith(f"Wrote {tmp_path.resolve() / 'tracker.toml'} ")
    assert "  tracker --config tracker.toml collect\n" in result.stdout


def test_init_into_a_file_is_bad_input(tmp_path: Path) -> None:
    file = tmp_path / "not-a-folder"
    file.write_text("", encoding="utf-8")
    result = run_cli("init", "--dir", str(file))
    assert result.returncode == 2
    assert result.stderr == f"Error: --dir {file}: not a folder\n"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _run_without_credentials(
    tmp_path: Path, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The real ``tracker`` (default ``init --dir TMP/cfg``) where no credentials resolve;
    run_cli cannot, as it keeps this process's fake keys."""
    argv = args or ("init", "--dir", str(tmp_path / "cfg"))
    return run_module("tracker", argv, env=no_credentials_env(tmp_path), cwd=cwd or tmp_path,
                      timeout=60)  # fmt: skip
