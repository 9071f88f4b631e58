#!/usr/bin/env bash
# Re-render the samples in docs/views/ from the demo data (run from the repository root).
# The samples were made with the clock pinned, so the demo organisation is the same each time.
set -euo pipefail
export TRACKER_NOW=2026-11-26T12:00:00Z
DIR=${DEMO_DIR:-.tracker-demo}
tracker demo --dir "$DIR" >/dev/null 2>&1
T="tracker --config $DIR/tracker.toml report"
OUT=docs/views/samples
mkdir -p "$OUT" docs/views/img
$T --view showback > "$OUT/showback.txt"
$T --view showback --pivot instance_type,month --format markdown > "$OUT/showback-pivot.md"
$T --top 10 > "$OUT/top.txt"
$T --view waste > "$OUT/waste.txt"
$T --view trend --since 2026-11-20 > "$OUT/trend.txt"
$T --view anomalies --team nlp > "$OUT/anomalies.txt"
$T --view units > "$OUT/units.txt"
$T --view units --by month --format markdown > "$OUT/units-month.md"
for view in showback top waste trend; do
  $T --view "$view" --format png --output "docs/views/img/$view.png"
  $T --view "$view" --format html --output "$OUT/$view.html"
done
