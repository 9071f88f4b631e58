"""``tracker report`` (``--by DIM`` rows and ``--view NAME``: showback, top, waste, trend,
anomalies, units) and ``tracker serve``.

The ``report`` parser is made in tracker/cli/main.py; :func:`add_report_arguments` adds its
output and view options and ``cmd_report`` hands every run to :func:`run_report`: one path
that checks the window, builds one Table (rows or a view), renders it and writes it. Heavy
imports (SQLAlchemy, matplotlib, FastAPI, uvicorn) happen inside the handlers.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from tracker.bounds import DEFAULT_REQUEST_SECONDS, PORT, REQUEST_SECONDS, TOP_JOBS
from tracker.cli.wiring import (
    add_command,
    add_format_option,
    filters_from,
    settings_from,
    store_from,
    whole_arg,
    write_output,
)
from tracker.errors import InputError
from tracker.report.formats import FORMATS, MACHINE_FORMATS

if TYPE_CHECKING:
    from tracker.cost.shared import SharedPool
    from tracker.report.table import Table
    from tracker.report.views import ViewRequest
    from tracker.settings import Settings
    from tracker.store.database import Store
    from tracker.store.lite import LiteStore

VIEW_NAMES = ("showback", "top", "waste", "trend", "anomalies", "units")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def add_report_arguments(report: argparse.ArgumentParser) -> None:
    """The output and view options of ``tracker report``."""
    add_format_option(report, FORMATS)
    report.add_argument("--output", help="write to this file instead of standard output")
    report.add_argument(
        "--view",
        choices=VIEW_NAMES,
        help="a report view instead of plain spend --by DIM (units: cost per instance-hour, "
        "GPU-hour, epoch and million tokens, --by team|instance_type|base_model|month)",
    )
    report.add_argument(
        "--pivot",
        metavar="[ROWS,]COLUMNS",
        help="showback dimensions: COLUMNS (rows from --by) or ROWS,COLUMNS (default team,month)",
    )
    report.add_argument(
        "--top",
        type=whole_arg("--top", TOP_JOBS),
        metavar="N",
        help=f"the N most expensive jobs (the top view; default 10, {TOP_JOBS.low} to {TOP_JOBS.high:,})",
    )
    report.add_argument(
        "--show-shared",
        action="store_true",
        help="the showback's [[allocation.shared]] pools split per month, a row per team",
    )


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``tracker serve``."""
    serve = add_command(
        sub,
        "serve",
        "the read-only web dashboard",
        ["tracker serve", "tracker serve --port 8081 --db sqlite:///tracker.db"],
    )
    serve.add_argument(
        "--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST})"
    )
    serve.add_argument(
        "--port",
        type=whole_arg("--port", PORT),
        default=DEFAULT_PORT,
        help=f"port, {PORT.low} to {PORT.high} (default {DEFAULT_PORT})",
    )
    serve.add_argument(
        "--request-seconds",
        type=whole_arg("--request-seconds", REQUEST_SECONDS),
        metavar="N",
        help=(
            "stop a request after N seconds with a 503, "
            f"{REQUEST_SECONDS.low} to {REQUEST_SECONDS.high} (default [web] request_seconds, "
            f"else {DEFAULT_REQUEST_SECONDS})"
        ),
    )
    serve.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host (the dashboard has no login: anyone who can reach it sees all spend)",
    )
    serve.set_defaults(handler=cmd_serve)


def progress_printer(stream: TextIO | None = None) -> Callable[[str], None]:
    """Progress lines on a terminal's stderr; silent when stderr is piped or redirected."""
    stream = stream or sys.stderr
    if not stream.isatty():
        return lambda _message: None

    def show(message: str) -> None:
        stream.write(f"\r\033[K{message}...")
        stream.flush()

    return show


def _finish_progress(stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    if stream.isatty():
        stream.write("\r\033[K")
        stream.flush()


def view_request(
    args: argparse.Namespace, max_daily_days: int, shared: tuple[SharedPool, ...] = ()
) -> ViewRequest | None:
    """The ViewRequest the report arguments ask for, or None for plain ``--by DIM`` rows.
    ``max_daily_days`` is ``[reports] max_daily_days``: the widest per-day view; ``shared``
    the ``[[allocation.shared]]`` pools a showback shows (``--show-shared`` implies it)."""
    from tracker.report.views import DEFAULT_TOP, ViewRequest, parse_pivot

    view = args.view
    if args.top is not None:
        if view not in (None, "top"):
            raise InputError(f"--top applies to the top view, not --view {view}")
        view = "top"
    if args.pivot:
        if view not in (None, "showback"):
            raise InputError(f"--pivot applies to the showback view, not --view {view}")
        view = "showback"
    if getattr(args, "show_shared", False):
        if view not in (None, "showback"):
            raise InputError(f"--show-shared applies to the showback view, not --view {view}")
        view = "showback"
    if view is None:
        return None
    rows_by, cols_by = parse_pivot(args.pivot, args.by) if args.pivot else (args.by, "month")
    return ViewRequest(
        view=view,
        since=args.since,
        until=args.until,
        filters=filters_from(args),
        rows_by=rows_by,
        cols_by=cols_by,
        top=DEFAULT_TOP if args.top is None else args.top,
        max_daily_days=max_daily_days,
        shared=shared if view == "showback" else (),
        show_shared=bool(getattr(args, "show_shared", False)),
    )


def run_report(args: argparse.Namespace) -> int:
    """``tracker report``: rows ``--by DIM`` or a view, in any format, to stdout or --output."""
    from tracker.report.render import render
    from tracker.report.views import check_window

    check_window(args.since, args.until)
    settings = settings_from(args, whole_file=False)
    # Views are bounded by ViewRequest (a per-day view spans at most max_daily_days); the
    # plain rows, even --by day or --by job, are one row per day or job that has spend:
    # bounded by the collected data, not by the window asked for.
    showback = args.view == "showback" or (args.view is None and (args.pivot or args.show_shared))
    shared = settings.allocation.shared if showback else ()
    request = view_request(args, settings.reports.max_daily_days, shared)
    if request is not None and request.view == "anomalies":
        from dataclasses import replace

        request = replace(request, anomaly=settings.anomalies)
    store = lite_store(args, settings, request) or store_from(args, settings, read_only=True)
    show = progress_printer()
    try:
        table = report_table(args, request, store, show)
        show(f"rendering {args.format}")
        output = render(table, args.format)
    finally:
        _finish_progress()
    write_output(output, args.output)
    if request is None and args.format in MACHINE_FORMATS:
        # Data other tools parse stays alone on stdout; what is unpriced still gets said.
        # (A view's JSON and CSV keep stderr empty, as scripts rely on; its other formats
        # carry the same notes under the table.)
        for note in table.notes:
            print(f"note: {note}", file=sys.stderr)
    return 0


def lite_store(
    args: argparse.Namespace, settings: Settings, request: ViewRequest | None
) -> LiteStore | None:
    """The light read path's store when the spend rollup answers this run (``--by`` rows or a
    showback over kept dimensions and filters, a plain SQLite file at this schema), else None."""
    from tracker.store.lite import LiteStore
    from tracker.store.window import Window, rolled

    if request is None:
        by = [args.by]
    elif request.view == "showback":
        by = [request.rows_by, request.cols_by]
    else:
        return None
    if not rolled(by, Window(filters=filters_from(args))):
        return None
    return LiteStore.open(args.db if args.db is not None else settings.database_url)


def report_table(
    args: argparse.Namespace,
    request: ViewRequest | None,
    store: Store | LiteStore,
    show: Callable[[str], None],
) -> Table:
    """The one Table a ``tracker report`` run renders: a view, or the ``--by`` rows."""
    if request is not None:
        from tracker.clock import system_clock
        from tracker.report.views import build

        return build(store, request, system_clock(), show)
    from tracker.report.spend import spend_notes, spend_rows, spend_table

    show(f"summing spend by {args.by}")
    window = {"since": args.since, "until": args.until, "filters": filters_from(args)}
    rows = spend_rows(store, args.by, **window)
    return spend_table(rows, args.by, spend_notes(store, **window))


def check_bind(host: str, allow_remote: bool) -> bool:
    """True when ``host`` is a loopback bind; a remote one needs --allow-remote (else InputError)."""
    if host == "localhost":
        return True
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not allow_remote:
        raise InputError(
            f"--host {host} is not a loopback address and the dashboard has no login; "
            "pass --allow-remote to serve it on the network anyway"
        )
    return loopback


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the dashboard until interrupted."""
    loopback = check_bind(args.host, args.allow_remote)
    # Imported here, not at the top, so that `tracker --help` stays a cold start.
    from tracker.extras import require

    require("web", "tracker serve")
    import uvicorn

    from tracker.web.app import create_app

    settings = settings_from(args)
    store = store_from(args, settings, read_only=True)
    seconds = args.request_seconds or settings.web.request_seconds  # the flag wins
    app = create_app(store, settings=settings, request_seconds=seconds)
    _check_free(args.host, args.port)
    if not loopback:
        print(
            f"Warning: serving on {args.host}, a non-loopback address: anyone who can reach "
            f"port {args.port} sees every team's spend (the dashboard has no login).",
            file=sys.stderr,
        )
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"Dashboard on http://{host}:{args.port}/ (read-only; Ctrl-C stops it)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _check_free(host: str, port: int) -> None:
    """Fail with one line when the address cannot be bound (port in use, unknown host)."""
    import socket

    from tracker.errors import TrackerError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        raise TrackerError(
            f"--host {host} --port {port}: cannot listen ({exc.strerror or exc})"
        ) from None
