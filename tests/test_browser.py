"""End to end in a real browser: ``tracker serve`` on 127.0.0.1, the overview in headless Chromium.

Debian's ``chromium`` (installed by .ci/run) loads the page the server renders; the test
reads the DOM Chromium built and checks the teams and totals of November 2026 from
tests/views_data.py: vision 6.80, nlp 2.25, unallocated 0.25, total 9.55. The hostile team
must arrive as text, never as a script element.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.views_data import NOW, make_store

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not os.access(CHROMIUM, os.X_OK),
        reason=f"{CHROMIUM} is absent: install Debian's chromium (apt-get install chromium), as .ci/run does",
    ),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``tracker serve`` as a subprocess on a free loopback port; its base URL."""
    folder = tmp_path_factory.mktemp("browser")
    store = make_store(folder)
    port = free_port()
    env = {**os.environ, "TRACKER_NOW": NOW.isoformat()}
    command = [
        sys.executable,
        "-m",
        "tracker",
        "--db",
        str(store.engine.url),
        "serve",
        "--port",
        str(port),
    ]
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    out, err = process.communicate(timeout=5)
                    pytest.fail(f"tracker serve did not start: {err.decode()[-2000:]}")
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-dev-shm-usage", "--no-first-run", f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip


def test_overview_in_headless_chromium_shows_teams_and_totals(server: str, tmp_path: Path) -> None:
    result = chromium("--dump-dom", f"{server}/", profile=tmp_path / "profile")
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert 'id="month-total">9.55<' in dom
    for team, total in (("vision", "6.80"), ("nlp", "2.25"), ("unallocated", "0.25")):
        assert f">{team}</a>" in dom and f'<td class="num">{total}</td>' in dom
    assert "<svg" in dom and "Daily spend per team" in dom
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert "<script" not in dom.lower()


def test_overview_screenshot_is_drawn(server: str, tmp_path: Path) -> None:
    shot = tmp_path / "overview.png"
    result = chromium(
        f"--screenshot={shot}", "--window-size=1200,1400", f"{server}/", profile=tmp_path / "p"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 20_000
