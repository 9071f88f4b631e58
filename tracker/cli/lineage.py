"""``tracker lineage MODEL``: the jobs that produced a registered model and what they cost.

Thin wiring: find the model's lineage (tracker.report.lineage over the store's one lineage
rule), render its Table through the one renderer per format (JSON: one object, see
docs/lineage.md), write it. An unknown or ambiguous model is an InputError (exit 2).
"""

from __future__ import annotations

import argparse
import sys

from tracker.cli.wiring import (
    add_command,
    add_format_option,
    settings_from,
    store_from,
    write_output,
)
from tracker.report.formats import MACHINE_FORMATS

#: The formats of ``tracker lineage`` (a lineage has no chart, so no PNG).
LINEAGE_FORMATS = ("table", "json", "csv", "markdown", "html")


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``tracker lineage``."""
    parser = add_command(
        sub,
        "lineage",
        "what a registered model cost to produce: its training job, tuning sweep or pipeline "
        "run, failed attempts included",
        [
            "tracker lineage churn-xgb/3",
            "tracker lineage arn:aws:sagemaker:us-east-1:111122223333:model-package/churn-xgb/3 "
            "--format json",
            "tracker lineage churn-model --format html --output churn-lineage.html",
        ],
    )
    parser.add_argument(
        "model",
        metavar="MODEL_OR_PACKAGE_ARN_OR_NAME",
        help="the model or model package: its ARN, or its name (a versioned package: GROUP/VERSION)",
    )
    add_format_option(parser, LINEAGE_FORMATS)
    parser.add_argument("--output", help="write to this file instead of standard output")
    parser.set_defaults(handler=cmd_lineage)


def cmd_lineage(args: argparse.Namespace) -> int:
    from tracker.report.lineage import check_model_ref, find_lineage, lineage_json, lineage_table
    from tracker.report.render import json_text, render

    reference = check_model_ref(args.model)
    settings = settings_from(args, whole_file=False)
    store = store_from(args, settings, read_only=True)
    lineage = find_lineage(store, reference)
    table = lineage_table(lineage)
    if args.format == "json":
        output: str | bytes = json_text(lineage_json(lineage))
    else:
        output = render(table, args.format)
    write_output(output, args.output)
    if args.format in MACHINE_FORMATS:
        # Data other tools parse stays alone on stdout; the totals and what is unpriced
        # still get said (JSON also carries them in "notes").
        for note in table.notes:
            print(f"note: {note}", file=sys.stderr)
    return 0
