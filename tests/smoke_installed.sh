#!/usr/bin/env bash
# The installed package as a new user gets it: build the wheel, install it (not editable, with
# the demo extra) into a fresh virtualenv, run it from an empty folder with HOME and
# TRACKER_HOME in temporary folders, and check that it wrote nothing under site-packages or
# the repository. `make smoke` runs it; .ci/run runs it after the test suite.
#
# The Dockerfile builds and installs with the same two pip commands (WHEEL_CMD, INSTALL_CMD
# below); docker is not available on the CI machine, so this script is what tests them.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PY:-python3}"
EXTRAS="${EXTRAS:-demo}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
say() { printf 'smoke: %s\n' "$*"; }
fail() { printf 'smoke: FAILED: %s\n' "$*" >&2; exit 1; }

repo_state() {
  if git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$REPO" status --porcelain --untracked-files=all
  else
    (cd "$REPO" && find . -path ./.venv -prune -o -type f -print | sort)
  fi
}
REPO_BEFORE="$(repo_state)"

# Build from a copy, so the build's own scratch files (build/, *.egg-info) stay out of the repo.
say "building the wheel"
mkdir "$WORK/src"
tar -C "$REPO" --exclude=./.venv --exclude=./.git --exclude='*.egg-info' --exclude=./build \
  --exclude='__pycache__' --exclude=./.tracker-demo -cf - . | tar -C "$WORK/src" -xf -
cd "$WORK/src"
"$PY" -m pip wheel --no-deps --quiet -w "$WORK/dist" .          # WHEEL_CMD
WHEEL="$(ls "$WORK"/dist/sagemaker_spend_tracker-*.whl)"
cd "$WORK"  # out of the source copy, so Python cannot import tracker from it

say "installing $(basename "$WHEEL")[$EXTRAS] into a fresh virtualenv"
"$PY" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install --quiet --upgrade pip
"$WORK/venv/bin/python" -m pip install --quiet "$WHEEL[$EXTRAS]"  # INSTALL_CMD
SITE="$("$WORK/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
"$WORK/venv/bin/python" -c 'import sys, sysconfig, tracker; sys.exit(not tracker.__file__.startswith(sysconfig.get_path("purelib")))' \
  || fail "tracker is not imported from site-packages"
# Python's own bytecode caches are not the tracker's state: they are left out of the listing.
site_listing() { (cd "$SITE" && find . -name __pycache__ -prune -o -print | sort); }
SITE_BEFORE="$(site_listing)"

export HOME="$WORK/home" TRACKER_HOME="$WORK/state" XDG_DATA_HOME="$WORK/home/.local/share"
unset TRACKER_CONFIG AWS_PROFILE AWS_ENDPOINT_URL || true
mkdir -p "$HOME" "$WORK/empty"
cd "$WORK/empty"
PATH="$WORK/venv/bin:$PATH"

say "tracker --version"
tracker --version | grep -q '^tracker [0-9]' || fail "tracker --version"

say "tracker demo"
tracker demo > "$WORK/demo.out" || { cat "$WORK/demo.out"; fail "tracker demo"; }
grep -q "Database: $TRACKER_HOME/demo/demo.db" "$WORK/demo.out" || { cat "$WORK/demo.out"; fail "the demo database is not in the state directory"; }
DEMO_CONFIG="$TRACKER_HOME/demo/tracker.toml"

say "tracker init"
tracker init --dir "$WORK/init" || fail "tracker init"
[ -f "$WORK/init/tracker.toml" ] || fail "tracker init wrote no tracker.toml"
python -c 'import sys; from tracker.settings import load_settings; load_settings(sys.argv[1])' \
  "$WORK/init/tracker.toml" || fail "the starter config written by tracker init does not load"

say "tracker prices check"
tracker --config "$DEMO_CONFIG" prices check || fail "tracker prices check"

say "tracker report --by team --format json"
tracker --config "$DEMO_CONFIG" report --by team --format json > "$WORK/report.json"
python3 - "$WORK/report.json" <<'PY' || fail "the report is not a JSON array of teams with totals"
import json, sys
rows = json.load(open(sys.argv[1]))
assert isinstance(rows, list) and rows, rows
assert all("team" in row and "total_usd" in row and "jobs" in row for row in rows), rows
PY

say "tracker lineage nlp-llm/1 --format html"
tracker --config "$DEMO_CONFIG" lineage nlp-llm/1 --format html --output "$WORK/lineage.html" \
  || fail "tracker lineage"
grep -q "nlp-llm-sweep-001" "$WORK/lineage.html" || fail "the lineage page lists no sweep job"

# The same demo run from the source tree (what `make demo` runs) gives the same money to the
# cent: the installed package reads the same price book, as package data.
say "the same demo from the source tree"
(cd "$WORK/src" && python -m tracker demo --dir "$WORK/srcdemo" > "$WORK/srcdemo.out") \
  || { cat "$WORK/srcdemo.out"; fail "the demo from the source tree"; }
(cd "$WORK/src" && python -m tracker --config "$WORK/srcdemo/tracker.toml" report --by team --format json) \
  > "$WORK/srcreport.json"
cmp -s "$WORK/report.json" "$WORK/srcreport.json" \
  || fail "installed and source-tree demos differ: $(diff "$WORK/report.json" "$WORK/srcreport.json" || true)"

# The [demo] install has neither the web nor the charts extra: each command needing one says so.
expect_extra() {  # MODULE EXTRA EXPECTED-LINE -- COMMAND...
  local module="$1" extra="$2" line="$3"; shift 4
  if python -c "import $module" 2>/dev/null; then say "$extra extra installed as a dependency; not checked"; return; fi
  say "without the $extra extra: $*"
  if "$@" > /dev/null 2> "$WORK/extra.err"; then fail "$* ran without the $extra extra"; fi
  [ "$(cat "$WORK/extra.err")" = "$line" ] || fail "$*: $(cat "$WORK/extra.err")"
}
expect_extra fastapi web "Error: tracker serve needs the web extra: pip install 'sagemaker-spend-tracker[web]'" \
  -- tracker --config "$DEMO_CONFIG" serve
expect_extra matplotlib charts "Error: --format png needs the charts extra: pip install 'sagemaker-spend-tracker[charts]'" \
  -- tracker --config "$DEMO_CONFIG" report --format png --output "$WORK/spend.png"

say "checking where it wrote"
[ -z "$(ls -A "$WORK/empty")" ] || fail "wrote into the current folder: $(ls -A "$WORK/empty")"
[ "$(site_listing)" = "$SITE_BEFORE" ] || fail "wrote under site-packages: $(diff <(echo "$SITE_BEFORE") <(site_listing) || true)"
[ "$(repo_state)" = "$REPO_BEFORE" ] || fail "wrote into the repository: $(diff <(echo "$REPO_BEFORE") <(repo_state) || true)"
say "ok"
