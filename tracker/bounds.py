"""Every limit on the work one request, flag, config value or file can ask for, stated once.

The CLI, the dashboard, the JSON API and the scheduled jobs check user input here before it
reaches SQL, ``Decimal`` arithmetic or a loop, so no single request can exhaust the tracker.
docs/operations.md ("Bounds") lists each limit with its reason; a test keeps the two equal.

A bound is a :class:`Bound`: a name people read, the smallest and largest value, the unit,
and why. ``whole(...)`` and ``usd(...)`` parse and range-check; they raise ``InputError``
naming the option or key, the value and what is expected, so every face says it the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from tracker.errors import InputError

#: Text shown as typed in an error: a plain ASCII number (``-1``, ``1e308``).
_PLAIN = re.compile(r"[+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?", re.ASCII)
#: Digits a person types: ASCII only (Python's int() also reads '٣' and '²'-like digits).
_ASCII_DIGITS = frozenset("0123456789")


@dataclass(frozen=True)
class Bound:
    """A closed range ``low..high`` of ``unit``, with the reason it exists."""

    name: str
    low: int | Decimal
    high: int | Decimal
    unit: str
    why: str


#: Days a per-day view (the trend, showback or report columns by day) may span. Configurable
#: as ``[reports] max_daily_days``; wider windows must ask for months (``--pivot team,month``).
DAILY_WINDOW_DAYS = Bound(
    "per-day window", 1, 400, "days",
    "a per-day view builds one column or point a day: a window of centuries is millions of cells",
)  # fmt: skip
#: The upper limit any configured ``max_daily_days`` may raise the window to.
DAILY_WINDOW_DAYS_CEILING = 3_660
#: What ``[reports] max_daily_days`` may be set to.
MAX_DAILY_DAYS_SETTING = Bound(
    "[reports] max_daily_days", 1, DAILY_WINDOW_DAYS_CEILING, "days",
    "ten years of days: the most one per-day view may be allowed to draw",
)  # fmt: skip
#: Jobs the top view ranks (``--top``, ``?top=``).
TOP_JOBS = Bound("top jobs", 1, 1_000, "jobs", "one row a job: a table people read")
#: Rows one dashboard page or API page renders; beyond it, ``page=`` pages.
PAGE_ROWS = Bound("rows per page", 1, 500, "rows", "a page renders every row it holds")
#: Page numbers (``?page=``).
PAGE_NUMBER = Bound("page", 1, 1_000_000, "", "beyond it no store holds rows")
#: Instances of one job (estimates, guardrails): far above any SageMaker quota.
INSTANCE_COUNT = Bound("instance count", 1, 10_000, "instances", "above every SageMaker quota")
#: Hours of one job (estimates): SageMaker's longest MaxRuntimeInSeconds is 28 days; a year
#: leaves room for training plans and what-ifs.
JOB_HOURS = Bound("hours", Decimal("0"), Decimal("8784"), "hours", "one leap year")
#: ML storage volume per instance (estimates): SageMaker's VolumeSizeInGB allows up to 16384.
VOLUME_GB = Bound("volume size", 0, 16_384, "GB", "SageMaker's largest VolumeSizeInGB")
#: Any amount of money a user gives (budgets, fixed monthly amounts, estimates' results).
USD = Bound(
    "amount", Decimal("0"), Decimal("1000000000000"), "USD",
    "a trillion dollars: far above any training budget, far below Decimal's and the database's limits",
)  # fmt: skip
#: A budget's amount: a cent at least (a smaller one makes every percentage of it absurd).
BUDGET_USD = Bound(
    "budget amount", Decimal("0.01"), Decimal("1000000000000"), "USD",
    "from a cent to the largest amount of money (USD above)",
)  # fmt: skip
#: An instance rate in a price file (shipped, refreshed or the overrides file,
#: ``usd_per_hour``): USD per instance-hour. The dearest SageMaker training instance costs
#: about $100 an hour.
#:
#: Why it fits the database: a job's cost is stored as a signed 64-bit count of micro-dollars
#: (largest 2**63 - 1, about 9.22e18). The dearest job the bounds allow is
#: compute  10,000 USD/h x 10,000 instances (INSTANCE_COUNT) x 8,784 h (JOB_HOURS)
#:          = 8.784e11 USD = 8.784e17 micro-dollars, plus
#: storage  16,384 GB (VOLUME_GB) x 10,000 instances x 1,000 USD/GB-month (RATE_USD)
#:          x 13 months (8,784 h touch at most 13 calendar months; each month's share of
#:          its GB-month is at most 1)
#:          = 2.130e12 USD = 2.130e18 micro-dollars;
#: together 3.008e18, under a third of 9.22e18.
HOURLY_RATE_USD = Bound(
    "hourly rate", Decimal("0"), Decimal("10000"), "USD per instance-hour",
    "a hundred times the dearest training instance; with the instance count and hours "
    "bounds a job's cost stays inside a 64-bit count of micro-dollars",
)  # fmt: skip
#: A rate per GB-month or per million tokens: the config file's ``[pricing]
#: storage_usd_per_gb_month`` and ``s3_usd_per_gb_month``, and the price files'
#: ``usd_per_gb_month`` and ``usd_per_million_tokens``. The dearest real GB-month rate is under
#: $1.
RATE_USD = Bound(
    "rate", Decimal("0"), Decimal("1000"), "USD per unit",
    "a thousand times the dearest real rate; keeps every job's cost inside a 64-bit "
    "count of micro-dollars",
)  # fmt: skip
#: A percentage from the config or a flag (thresholds, tolerances, drift).
PERCENT = Bound("percentage", Decimal("0"), Decimal("1000"), "%", "ten times the whole")
#: A discount off the list price (``[pricing] discount_pct``).
DISCOUNT_PCT = Bound("discount", Decimal("0"), Decimal("100"), "%", "a share of the list price")
#: A spot ratio: the share of training time managed spot bills.
SPOT_RATIO = Bound("spot ratio", Decimal("0"), Decimal("1"), "", "a share of the training time")
#: A TCP port to listen on (``tracker serve --port``, ``[daemon] metrics_port``).
PORT = Bound("port", 1, 65_535, "", "TCP ports")
#: Random demo jobs (``tracker demo --jobs``).
DEMO_JOBS = Bound("demo jobs", 1, 100_000, "jobs", "the demo seeds every job into moto in memory")
#: Seeds and other plain whole numbers that only need to fit a 64-bit integer.
SEED = Bound("seed", 0, 2**63 - 1, "", "a 64-bit integer")
#: Database row ids in URLs (``/jobs/<id>``): a signed 64-bit integer.
ROW_ID = Bound("id", 1, 2**63 - 1, "", "a signed 64-bit database integer")
#: Nesting depth of a TOML config file (tables and arrays inside each other).
CONFIG_DEPTH = Bound("nesting depth", 0, 32, "levels", "deeper nesting is no tracker config")
#: Size of a config file.
CONFIG_BYTES = Bound("size", 0, 1_048_576, "bytes", "a config file is read whole")
#: Rows of a bill file (CUR / FOCUS) read at once; larger files are streamed in batches.
BILL_BATCH_ROWS = Bound("bill batch", 1, 50_000, "rows", "one batch of a streamed bill file")
#: Bill files one reconciliation reads (a folder's files, an S3 prefix's objects). Each file is
#: streamed (S3 objects through a temporary file, one at a time), so size is not the limit:
#: the count is, because every file is opened and every S3 object listed and fetched.
BILL_FILES = Bound(
    "bill files", 1, 10_000, "files",
    "a CUR 2.0 or FOCUS export writes a few files a day: ten thousand is decades of them; "
    "listing and fetching more is work no one asked for (a prefix at the bucket's root)",
)  # fmt: skip
#: (source, account, region) pairs one collector collects at once (``[collection] workers``):
#: each holds its own AWS clients and, on PostgreSQL, a connection and an advisory lock.
COLLECT_WORKERS = Bound(
    "collect workers", 1, 32, "pairs at once",
    "each pair is a thread with its own clients and connection; more would only queue on "
    "SageMaker's request-rate quotas and the database",
)  # fmt: skip
#: How far back the daily artifact re-measure reaches (``[collection] remeasure_days``): one
#: S3 listing per job that ended in that many days.
REMEASURE_DAYS = Bound(
    "re-measure days", 1, 90, "days",
    "one S3 listing per job a day: checkpoints copied after a job ends arrive within days",
)  # fmt: skip
#: Seconds one dashboard or API request may take before it is cancelled with a 503.
REQUEST_SECONDS = Bound("request time", 1, 300, "seconds", "the server stays responsive")
DEFAULT_REQUEST_SECONDS = 10
#: SQS queues the listener long-polls (``[events] queues``): one per source account and region.
EVENT_QUEUES = Bound(
    "event queues", 1, 100, "queues",
    "one listener thread polls them in turn, each long poll up to 20 s: beyond a hundred, "
    "split the accounts over several trackers",
)  # fmt: skip
#: Seconds one long poll waits for a message (``[events] wait_seconds``).
EVENTS_WAIT_SECONDS = Bound("event wait", 1, 20, "seconds", "SQS's longest long poll is 20 s")
#: Messages one ``tracker listen --once`` takes before it exits (``[events] drain_messages``).
EVENTS_DRAIN_MESSAGES = Bound(
    "event drain", 1, 1_000_000, "messages",
    "--once drains what is there and exits: a queue that never empties must not keep it running",
)  # fmt: skip
DEFAULT_DRAIN_MESSAGES = 10_000
#: A multiple of an estimate or a baseline (``[enforce] estimate_factor``, ``[anomalies]
#: job_factor``, ``day_factor``).
FACTOR = Bound("factor", Decimal("1"), Decimal("1000"), "x", "a thousand times is no longer a rule")
#: Spot restarts a job without checkpoints may make before it is stopped.
SPOT_RESTARTS = Bound("spot restarts", 0, 1_000, "restarts", "far above any real restart count")
#: Peers a job needs before it can be an anomaly (``[anomalies] min_peers``).
ANOMALY_PEERS = Bound(
    "peers", 5, 1_000, "jobs", "fewer than five make a median of noise; the issue asks for five"
)
#: Days of finished jobs the anomaly rules read (``[anomalies] peer_days``).
ANOMALY_DAYS = Bound(
    "anomaly window", 1, 366, "days", "one query of a year of finished jobs per alerts run"
)

ALL = (
    DAILY_WINDOW_DAYS, MAX_DAILY_DAYS_SETTING, TOP_JOBS, PAGE_ROWS, PAGE_NUMBER, INSTANCE_COUNT, JOB_HOURS, VOLUME_GB,
    USD, BUDGET_USD, HOURLY_RATE_USD, RATE_USD, PERCENT, DISCOUNT_PCT, SPOT_RATIO, PORT, DEMO_JOBS, SEED, ROW_ID, CONFIG_DEPTH, CONFIG_BYTES, BILL_BATCH_ROWS, BILL_FILES,
    COLLECT_WORKERS, REMEASURE_DAYS, REQUEST_SECONDS, EVENT_QUEUES, EVENTS_WAIT_SECONDS,
    EVENTS_DRAIN_MESSAGES, FACTOR, SPOT_RESTARTS, ANOMALY_PEERS, ANOMALY_DAYS,
)  # fmt: skip


def _expected(bound: Bound) -> str:
    unit = f" {bound.unit}" if bound.unit else ""
    return f"expected a whole number from {bound.low:,} to {bound.high:,}{unit}"


def whole(label: str, value: object, bound: Bound) -> int:
    """``value`` (text of ASCII digits, or an int) as an int within ``bound``.

    ``label`` names what the user typed (``--top``, ``top``, ``budgets[0].amount_usd``); the
    error says it, the value and the range, on one line."""
    if isinstance(value, bool):
        raise InputError(f"{label} {value!r}: {_expected(bound)}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text[:1] in "+-" else text
        if not digits or not set(digits) <= _ASCII_DIGITS or len(digits) > 30:
            raise InputError(f"{label} {_shown(value)}: {_expected(bound)}")
        number = int(text)
    else:
        raise InputError(f"{label} {_shown(value)}: {_expected(bound)}")
    if not bound.low <= number <= bound.high:
        raise InputError(f"{label} {_shown(value)}: {_expected(bound)}")
    return number


def usd(label: str, value: object, bound: Bound = USD, *, positive: bool = False) -> Decimal:
    """``value`` (int, finite float, Decimal or numeric text) as a Decimal of dollars in ``bound``;
    ``positive`` excludes zero."""
    return decimal(label, value, bound, positive=positive)


def decimal(label: str, value: object, bound: Bound, *, positive: bool = False) -> Decimal:
    """``value`` as a finite Decimal within ``bound`` (``positive`` excludes zero)."""
    number: Decimal | None = None
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int | float | str) and not isinstance(value, bool):
        text = str(value).strip()
        if len(text) <= 64:
            try:
                number = Decimal(text)
            except (InvalidOperation, ValueError):
                number = None
    low = "more than" if positive else "from"
    unit = f" {bound.unit}" if bound.unit else ""
    expected = f"expected a number {low} {bound.low:,} to {bound.high:,}{unit}"
    if (
        number is None
        or not number.is_finite()
        or number < bound.low
        or number > bound.high
        or (positive and number == 0)
    ):
        raise InputError(f"{label} {_shown(value)}: {expected}")
    return number


def check_daily_window(
    since: date,
    until: date,
    *,
    max_days: int = int(DAILY_WINDOW_DAYS.high),
    what: str = "per-day view",
) -> None:
    """A per-day view may span at most ``max_days`` days; the error says how to ask by month."""
    days = (until - since).days + 1
    if days > max_days:
        raise InputError(
            f"--since {since} --until {until} is {days:,} days; a {what} shows at most "
            f"{max_days:,} days (set [reports] max_daily_days to change it): narrow the window "
            "or group by month (--by month, or --pivot ROWS,month)"
        )


def day_after(day: date, days: int = 1) -> date | None:
    """The day ``days`` after ``day``, or None past the calendar's last day (9999-12-31).

    Every exclusive end of a user's window (``--until``, a period, a bill line) is found here:
    None means "no end", so ``--until 9999-12-31`` reads every day to the end of the calendar
    instead of overflowing ``date``."""
    if (date.max - day).days < days:
        return None
    return day + timedelta(days=days)


def depth(value: object) -> int:
    """How deeply tables and arrays nest in ``value`` (a parsed TOML or JSON document), found
    without recursion: 0 for a plain value, 1 for a flat table. Stops counting past
    ``CONFIG_DEPTH.high + 1``, so a hostile document costs no more than a legal one."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    limit = int(CONFIG_DEPTH.high) + 1
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: list[object] = list(item.values())
        elif isinstance(item, list):
            children = list(item)
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        if deepest >= limit:
            return deepest
        stack.extend((child, level) for child in children)
    return deepest


def _shown(value: object) -> str:
    """A value as the error shows it: a plain token (``-1``, ``1e308``) as typed, anything else
    as its repr; cut to 40 characters, one line."""
    text = repr(value)
    if isinstance(value, str) and _PLAIN.fullmatch(value):
        text = value
    elif isinstance(value, int | Decimal) and not isinstance(value, bool):
        text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."
