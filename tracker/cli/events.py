"""Event-driven collection commands: ``tracker events setup|teardown`` and ``tracker listen``
(docs/events.md)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from tracker.cli.wiring import (
    add_actions,
    add_command,
    add_format_option,
    settings_from,
    store_from,
)
from tracker.errors import InputError

if TYPE_CHECKING:
    from tracker.settings import Settings, Source


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``tracker events`` and ``tracker listen``."""
    events = add_command(
        sub,
        "events",
        "the EventBridge rule and SQS queues that deliver job state changes",
        ["tracker events setup", "tracker events setup --source prod --region us-east-1",
         "tracker events teardown --source prod"],
    )  # fmt: skip
    actions = add_actions(events, "events_command")
    setup = add_command(
        actions,
        "setup",
        "create (or find) the rule, queue and dead-letter queue per source account and region",
        ["tracker events setup", "tracker events setup --source prod --region eu-west-1"],
    )
    teardown = add_command(
        actions,
        "teardown",
        "remove the rule, queue and dead-letter queue setup created",
        ["tracker events teardown", "tracker events teardown --source prod --region eu-west-1"],
    )
    for parser in (setup, teardown):
        parser.add_argument("--source", help="only this [[sources]] name (default: every source)")
        parser.add_argument("--region", help="only this region (default: the source's regions)")
        add_format_option(parser, ["table", "json"])
    setup.set_defaults(handler=cmd_setup)
    teardown.set_defaults(handler=cmd_teardown)
    events.set_defaults(handler=_missing_action)

    listen = add_command(
        sub,
        "listen",
        "collect jobs as their state-change events arrive on the [events] queues",
        ["tracker listen", "tracker listen --once --format json"],
    )
    listen.add_argument(
        "--once",
        action="store_true",
        help="drain what the queues hold now, then exit (cron, tests)",
    )
    add_format_option(listen, ["table", "json"])
    listen.set_defaults(handler=cmd_listen)


def _missing_action(args: argparse.Namespace) -> int:
    raise InputError("tracker events: expected an action: setup or teardown")


# -- setup and teardown -------------------------------------------------------------------------
def _targets(settings: Settings, args: argparse.Namespace) -> list[tuple[Source, str]]:
    from tracker.settings import REGION_RE

    sources = list(settings.sources)
    if not sources:
        raise InputError(f"{settings.path or 'config'}: sources: no [[sources]] configured")
    if args.source is not None:
        sources = [s for s in sources if s.name == args.source]
        if not sources:
            names = ", ".join(s.name for s in settings.sources)
            raise InputError(f"--source {args.source!r}: expected one of {names}")
    if args.region is not None and not REGION_RE.match(args.region):
        raise InputError(f"--region {args.region!r}: expected a region code like us-east-1")
    organizations = [s.name for s in sources if s.organization]
    if organizations:
        raise InputError(
            f"source {organizations[0]!r} is an organization: run setup in each member account "
            "(a [[sources]] entry with its role_arn) or with a StackSet; docs/events.md"
        )
    return [
        (source, region)
        for source in sources
        for region in ((args.region,) if args.region else source.regions)
    ]


def _run_setup(args: argparse.Namespace, *, remove: bool) -> int:
    from tracker.aws import AWS_ERRORS, describe_error
    from tracker.aws import events as aws_events
    from tracker.aws.session import AwsContextFactory

    settings = settings_from(args)
    factory = AwsContextFactory(settings.collection)
    results: list[dict[str, Any]] = []
    failed = False
    for source, region in _targets(settings, args):
        try:
            ctx = factory(source, region)
            act = aws_events.teardown if remove else aws_events.setup
            result = act(ctx.client("events"), ctx.client("sqs"), ctx.account_id, region)
            results.append({"source": source.name, **result.to_dict()})
        except AWS_ERRORS as exc:
            failed = True
            results.append({"source": source.name, "region": region, "error": describe_error(exc)})
    if args.format == "json":
        from tracker.report.render import json_text

        sys.stdout.write(json_text(results))
    else:
        sys.stdout.write(_setup_text(results, remove=remove))
    return 1 if failed else 0


def _setup_text(results: list[dict[str, Any]], *, remove: bool) -> str:
    out: list[str] = []
    for r in results:
        where = f"{r['source']} {r.get('account_id', '?')}/{r['region']}"
        if "error" in r:
            out.append(f"{where}: FAILED: {r['error']}")
            continue
        if remove:
            out.append(f"{where}: removed {', '.join(r['removed']) or 'nothing (none found)'}")
            continue
        out.append(f"{where}: created {', '.join(r['created']) or 'nothing'}; "
                   f"found {', '.join(r['found']) or 'nothing'}")  # fmt: skip
        out.append(
            f"  rule {r['rule_arn']} -> queue {r['queue_url']} (dead letters: {r['dlq_url']})"
        )
    ok = [r for r in results if "error" not in r]
    if ok and not remove:
        out += ["", "Add to the config file:", "", "[events]", "queues = ["]
        for r in ok:
            region = f', region = "{r["region"]}"' if ".amazonaws.com" not in r["queue_url"] else ""
            out.append(f'  {{ url = "{r["queue_url"]}", source = "{r["source"]}"{region} }},')
        out.append("]")
    return "\n".join(out) + "\n"


def cmd_setup(args: argparse.Namespace) -> int:
    return _run_setup(args, remove=False)


def cmd_teardown(args: argparse.Namespace) -> int:
    return _run_setup(args, remove=True)


# -- listen -------------------------------------------------------------------------------------
def cmd_listen(args: argparse.Namespace) -> int:
    import signal
    import threading

    from tracker.clock import system_clock, wall_clock
    from tracker.collect.listen import Listener
    from tracker.daemon.runner import run_job
    from tracker.daemon.tasks import JobContext

    settings = settings_from(args)
    if not settings.events.queues:
        raise InputError(
            f"{settings.path or 'config'}: events.queues: no queues configured; "
            "run `tracker events setup` and add the [events] it prints"
        )
    store = store_from(args, settings)
    context = JobContext(settings, store, system_clock, wall_clock, "cli")

    def alerts() -> str:
        outcome = run_job("alerts", context)
        return f"{outcome.status}: {outcome.detail}"

    listener = Listener(
        settings, store, settings.price_book(), clock=system_clock, wall=wall_clock,
        alerts=alerts, trigger="cli",
    )  # fmt: skip
    stop = threading.Event()
    if not args.once:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
    summary = listener.run(stop, once=args.once)
    if args.format == "json":
        from tracker.report.render import json_text

        sys.stdout.write(json_text(summary.to_dict()))
    else:
        lines = [
            f"{q.account_id}/{q.region} ({q.source}): {q.messages} message(s), {q.jobs} job(s) "
            f"collected, {q.duplicates} duplicate(s), {q.poison} poison"
            + (f"; last error: {q.last_error}" if q.last_error else "")
            for q in summary.queues
        ]
        lines += [f"alerts: {line}" for line in summary.alerts[-3:]]
        sys.stdout.write("\n".join(lines) + "\n")
    return 1 if any(q.failed_batches for q in summary.queues) else 0
