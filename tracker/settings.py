"""One typed Settings tree from config/tracker.toml.

Every problem in the file is collected and reported at once, as
``<file>: <key>: <what is wrong and what is expected>``; nothing is read from AWS or the
database while loading. Relative paths resolve against the config file's folder.

The core sections (database, sources, attribution, pricing, collection) are parsed when the
file is loaded. Each feature section has a typed accessor on :class:`Settings` (``budgets``,
``alerts``, ``schedule``, ``daemon``, ``reports``, ``reconcile``, ``estimates``, ``web``) that parses
and validates it on first use and keeps the result; ``load_settings`` validates them all up
front unless asked for the core only, so a command fails on any bad section as before.

What the tracker writes by default (the SQLite database, refreshed price snapshots, the demo)
goes to one state directory, decided by :func:`state_dir`; the shipped price book is package
data (``tracker.cost.prices.shipped_prices``), so nothing is read from or written to the
source tree or site-packages.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from tracker import bounds
from tracker.alert.budgets import (
    COST_MEASURES,
    DEFAULT_FORECAST,
    DEFAULT_RUN_RATE_DAYS,
    DEFAULT_THRESHOLDS,
    FILTER_KEYS,
    PERIODS,
    Budget,
)
from tracker.alert.channels import parse_channel, shown_value
from tracker.bounds import (
    BUDGET_USD,
    COLLECT_WORKERS,
    CONFIG_BYTES,
    CONFIG_DEPTH,
    DAILY_WINDOW_DAYS,
    DISCOUNT_PCT,
    EVENT_QUEUES,
    EVENTS_DRAIN_MESSAGES,
    EVENTS_WAIT_SECONDS,
    MAX_DAILY_DAYS_SETTING,
    PERCENT,
    RATE_USD,
    REMEASURE_DAYS,
    REQUEST_SECONDS,
    Bound,
)
from tracker.cost.engine import DEFAULT_LOCAL_STORAGE_FAMILIES, CostPolicy
from tracker.cost.prices import PriceBook, read_price_csv
from tracker.errors import ConfigError, InputError, PriceBookError
from tracker.records import REGION_RE, decimal_or_none, whole_or_none
from tracker.schedule import (
    DEFAULT_SCHEDULE,
    EVENTS_SAFETY_NET,
    JOB_NAMES,
    DaemonSettings,
    ScheduleSettings,
    make_trigger,
)

if TYPE_CHECKING:  # imported by the parsers of their sections, on first use (lazy sections)
    from tracker.alert.anomalies import AnomalySettings
    from tracker.alert.enforce import EnforceSettings
    from tracker.alert.rules import AlertSettings
    from tracker.collect.allocate import AllocationRule
    from tracker.cost.shared import SharedPool
    from tracker.estimate.rules import EstimateSettings
    from tracker.guard.policy import GuardSettings
    from tracker.reconcile.rules import ReconcileSettings

DEFAULT_CONFIG = Path("config/tracker.toml")
# Where the tracker keeps its state when no config key says otherwise (see state_dir).
STATE_ENV = "TRACKER_HOME"
APP_NAME = "sagemaker-spend-tracker"
DB_FILE = "tracker.db"
SNAPSHOT_FOLDER = "prices"
DEMO_FOLDER = "demo"
ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
ROLE_NAME_RE = re.compile(r"^[\w+=,.@-]+(/[\w+=,.@-]+)*$")  # a role name, optionally path/name
ACCOUNT_ID_RE = re.compile(r"^\d{12}$")
OU_ID_RE = re.compile(r"^(ou-[0-9a-z]{4,32}-[0-9a-z]{8,32}|r-[0-9a-z]{4,32})$")
SOURCE_KEYS = {"name", "role_arn", "regions", "external_id", "organization", "role_name",
               "include", "exclude", "ous"}  # fmt: skip
FAMILY_RE = re.compile(r"^ml\.[a-z0-9-]+$")
RETRY_MODES = ("standard", "adaptive")
COLLECTION_METHODS = ("search", "list")

# Parsed when the file is loaded.
CORE_SECTIONS = ("database", "sources", "attribution", "pricing", "collection")
# Each a typed accessor on Settings, parsed on first use; in the order their problems are reported.
FEATURE_SECTIONS = (
    "reports", "budgets", "alerts", "schedule", "daemon", "reconcile", "estimates", "web",
    "events", "guard", "enforce", "anomalies", "allocation",
)  # fmt: skip
KNOWN_SECTIONS = {*CORE_SECTIONS, *FEATURE_SECTIONS}
T = TypeVar("T")
DEFAULT_DESTINATION = "reports/showback"
DEFAULT_MONTHS = 3


def state_dir(config_path: Path | None = None) -> Path:
    """The folder for the tracker's own files: ``$TRACKER_HOME`` when set, else the config
    file's folder, else the user's data directory (``platformdirs``: on Linux
    ``$XDG_DATA_HOME/sagemaker-spend-tracker``, by default ``~/.local/share/...``).

    Never the current folder and never the package: an installed tracker works from
    anywhere. ``[database] url`` and ``[pricing] snapshot_dir`` override it per file.
    """
    env = os.environ.get(STATE_ENV, "").strip()
    if env:
        return Path(env).expanduser().resolve()
    if config_path is not None:
        return config_path.resolve().parent
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_database_url(config_path: Path | None = None) -> str:
    """``sqlite:///<state dir>/tracker.db``."""
    return f"sqlite:///{state_dir(config_path) / DB_FILE}"


def default_snapshot_dir(config_path: Path | None = None) -> Path:
    """``<state dir>/prices``: where ``tracker prices refresh`` writes its snapshots."""
    return state_dir(config_path) / SNAPSHOT_FOLDER


def default_demo_dir() -> Path:
    """``<state dir>/demo``: where ``tracker demo`` writes its database and config."""
    return state_dir() / DEMO_FOLDER


@dataclass(frozen=True)
class Source:
    """One AWS account to collect from (optionally through an assumed role), or with
    ``organization`` every ACTIVE account of the AWS Organization the base credentials see,
    each through ``arn:aws:iam::<account>:role/<role_name>`` (``include``/``exclude``
    account ids, ``ous`` organizational unit or root ids narrow it)."""

    name: str
    regions: tuple[str, ...]
    role_arn: str | None = None
    external_id: str | None = None
    organization: bool = False
    role_name: str | None = None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    ous: tuple[str, ...] = ()


@dataclass(frozen=True)
class Attribution:
    team_tag: str = "team"
    project_tag: str = "project"
    user_tag: str = "owner"


@dataclass(frozen=True)
class PricingSettings:
    snapshot_dir: Path = field(default_factory=default_snapshot_dir)
    overrides: Path | None = None
    discount_pct: Decimal = Decimal(0)
    local_storage_families: frozenset[str] = DEFAULT_LOCAL_STORAGE_FAMILIES
    storage_usd_per_gb_month: Mapping[str, Decimal] = field(default_factory=dict)
    s3_usd_per_gb_month: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class CollectionSettings:
    overlap_seconds: int = 900
    measure_artifacts: bool = True
    page_size: int = 100
    retry_mode: str = "adaptive"
    max_attempts: int = 10
    workers: int = 4  # (source, account, region) pairs collected at once
    remeasure_days: int = 7  # the daily re-measure covers jobs that ended this recently
    # "search" (SageMaker Search) | "list" (ListTrainingJobs + Describe); docs/collection.md
    method: str = "search"
    search_overlap_seconds: int = 900  # Search is eventually consistent: re-read this much


@dataclass(frozen=True)
class ReportsSettings:
    """``[reports]``: where the monthly showback goes, its rows and how many months it shows."""

    showback_destination: str = DEFAULT_DESTINATION
    showback_by: str = "team"
    showback_months: int = DEFAULT_MONTHS
    #: The widest window of a per-day view (trend, showback by day): bounds.DAILY_WINDOW_DAYS.
    max_daily_days: int = int(DAILY_WINDOW_DAYS.high)

    @property
    def s3(self) -> bool:
        return self.showback_destination.startswith("s3://")


@dataclass(frozen=True)
class WebSettings:
    """``[web]``: the dashboard (``tracker serve``)."""

    #: Seconds one request may take before it is stopped with a 503 (bounds.REQUEST_SECONDS);
    #: ``tracker serve --request-seconds`` wins over it.
    request_seconds: int = bounds.DEFAULT_REQUEST_SECONDS


@dataclass(frozen=True)
class Settings:
    """Everything the tracker reads from its config file."""

    path: Path | None = None
    database_url: str = field(default_factory=default_database_url)
    sources: tuple[Source, ...] = ()
    attribution: Attribution = Attribution()
    pricing: PricingSettings = field(default_factory=PricingSettings)
    collection: CollectionSettings = CollectionSettings()
    # The TOML document as read, for the feature sections parsed on first use.
    document: Mapping[str, object] = field(default_factory=dict, repr=False, compare=False)

    @property
    def discount_pct(self) -> Decimal:
        return self.pricing.discount_pct

    @property
    def base(self) -> Path:
        """The folder relative paths in the file resolve against."""
        return self.path.resolve().parent if self.path else Path.cwd()

    # -- feature sections: parsed and validated on first use, then kept -------------------------
    @cached_property
    def budgets(self) -> tuple[Budget, ...]:
        return self._section("budgets", parse_budgets)

    @cached_property
    def alerts(self) -> AlertSettings:
        return self._section("alerts", parse_alerts)

    @cached_property
    def schedule(self) -> ScheduleSettings:
        schedule = self._section("schedule", parse_schedule)
        # With event queues the poll is a safety net: hourly unless [schedule] collect says.
        explicit = "collect" in (self.document.get("schedule") or {})
        if not explicit and self.document.get("events") and self.events.queues:
            schedule = replace(schedule, collect=EVENTS_SAFETY_NET)
        return schedule

    @cached_property
    def events(self) -> EventsSettings:
        return self._section("events", parse_events)

    @cached_property
    def daemon(self) -> DaemonSettings:
        return self._section("daemon", parse_daemon)

    @cached_property
    def reports(self) -> ReportsSettings:
        return self._section("reports", parse_reports_section)

    @cached_property
    def reconcile(self) -> ReconcileSettings:
        return self._section("reconcile", parse_reconcile_section)

    @cached_property
    def estimates(self) -> EstimateSettings:
        return self._section("estimates", parse_estimates_section)

    @cached_property
    def web(self) -> WebSettings:
        return self._section("web", parse_web_section)

    @cached_property
    def guard(self) -> GuardSettings:
        return self._section("guard", parse_guard_section)

    @cached_property
    def enforce(self) -> EnforceSettings:
        return self._section("enforce", parse_enforce_section)

    @cached_property
    def anomalies(self) -> AnomalySettings:
        return self._section("anomalies", parse_anomalies_section)

    @cached_property
    def allocation(self) -> AllocationSettings:
        return self._section("allocation", parse_allocation_section)

    @property
    def estimate_tolerance_pct(self) -> Decimal:
        """``[estimates] tolerance_pct``, else ``[reconcile] tolerance_pct`` (10 by default)."""
        own = self.estimates.tolerance_pct
        return own if own is not None else self.reconcile.tolerance_pct

    def _section(self, name: str, parser: Callable[[object, SectionContext], T]) -> T:
        ctx = SectionContext(self.path, self.base, [])
        value = parser(self.document.get(name), ctx)
        if ctx.problems:
            raise ConfigError(str(self.path or DEFAULT_CONFIG), ctx.problems)
        return value

    def section_problems(self) -> list[str]:
        """Validate every feature section now (each result is kept); all their problems."""
        problems: list[str] = []
        for name in FEATURE_SECTIONS:
            try:
                getattr(self, name)
            except ConfigError as exc:
                problems += exc.problems
        return problems

    # -- what the settings build -------------------------------------------------------------
    def price_book(self) -> PriceBook:
        """The price book: shipped (package data) < newest refresh < overrides file."""
        return PriceBook.load(
            self.pricing.snapshot_dir,
            self.pricing.overrides,
            storage_overrides=self.pricing.storage_usd_per_gb_month,
            s3_overrides=self.pricing.s3_usd_per_gb_month,
        )

    def cost_policy(self) -> CostPolicy:
        return CostPolicy(local_storage_families=self.pricing.local_storage_families)


def resolve_config_path(explicit: str | None) -> tuple[Path, bool]:
    """(path, must_exist): --config, else $TRACKER_CONFIG, else config/tracker.toml."""
    if explicit:
        return Path(explicit), True
    env = os.environ.get("TRACKER_CONFIG")
    if env:
        return Path(env), True
    return DEFAULT_CONFIG, False


def load_settings(explicit: str | None = None, *, whole_file: bool = True) -> Settings:
    """Load the config file; a missing default file means built-in defaults.

    ``whole_file`` validates every section now; otherwise the feature sections are
    validated when first used (``settings.budgets`` ...)."""
    path, must_exist = resolve_config_path(explicit)
    try:
        exists = path.exists()
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte
        raise ConfigError(
            str(path)[:200], [f"not a usable file name ({exc.__class__.__name__})"]
        ) from None
    if not exists:
        if must_exist:
            raise ConfigError(
                str(path), ["file not found: pass --config PATH to an existing TOML file"]
            )
        return Settings()
    return parse_settings(path, whole_file=whole_file)


def parse_settings(path: Path, *, whole_file: bool = True) -> Settings:
    """Parse and validate ``path``; ConfigError lists every problem found."""
    data = read_toml(path)
    validator = _Validator(path, data)
    settings = validator.settings()
    problems = validator.problems + (settings.section_problems() if whole_file else [])
    if problems:
        raise ConfigError(str(path), problems)
    return settings


def read_toml(path: Path) -> dict[str, Any]:
    """The TOML document in ``path``, within bounds.CONFIG_BYTES and bounds.CONFIG_DEPTH:
    a huge or deeply nested file is one ConfigError naming the file, never a RecursionError
    or a long parse."""
    limit = int(CONFIG_BYTES.high)
    try:
        with path.open("rb") as handle:
            raw = handle.read(limit + 1)
        if len(raw) > limit:
            raise ConfigError(
                str(path), [f"the file is larger than {limit:,} bytes; no tracker config is"]
            )
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            str(path), [f"cannot read the file ({exc.__class__.__name__}): {exc}"]
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [f"invalid TOML: {exc}"]) from None
    except RecursionError:
        data = None  # tomllib recurses into nested arrays and inline tables
    if data is None or bounds.depth(data) > CONFIG_DEPTH.high:
        raise ConfigError(
            str(path),
            [
                f"tables and arrays nest more than {CONFIG_DEPTH.high} levels deep; no tracker config does"
            ],
        )
    return data


@dataclass
class SectionContext:
    """What a section parser gets: where the file is, and where problems go."""

    path: Path | None
    base: Path
    problems: list[str]

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{key}: {message}")

    def section(self, name: str, value: object) -> dict[str, Any] | None:
        """``[name]`` as a table; None when absent, or when not a table (a problem)."""
        if value is None:
            return None
        if not isinstance(value, dict):
            self.problem(name, f"must be a table ([{name}]), got {type(value).__name__}")
            return None
        return value

    def flag(self, key: str, value: object, default: bool) -> bool:
        """``true`` or ``false`` (``default`` when absent or bad)."""
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problem(key, f"must be true or false, got {value!r}")
            return default
        return value

    def choice(self, key: str, value: object, choices: tuple[str, ...], default: str) -> str:
        """One of ``choices`` (``default`` when bad)."""
        if value not in choices:
            self.problem(key, f"must be one of {', '.join(choices)}, got {value!r}")
            return default
        return str(value)

    def unknown_keys(self, section: str, table: Mapping[str, object], keys: set[str]) -> None:
        """A problem for each key of ``table`` that is not one of ``keys``."""
        for key in table:
            if key not in keys:
                self.problem(
                    f"{section}.{key}", f"unknown key; expected one of {', '.join(sorted(keys))}"
                )

    def whole(
        self, key: str, value: object, default: int, minimum: int, maximum: int, unit: str = ""
    ) -> int:
        """A whole number from ``minimum`` to ``maximum`` (``default`` when absent or bad)."""
        if value is None:
            return default
        number = whole_or_none(value, minimum, maximum)
        if number is None:
            of = f" of {unit}" if unit else ""
            self.problem(
                key, f"must be a whole number{of} from {minimum} to {maximum}, got {value!r}"
            )
            return default
        return number

    def number(
        self,
        key: str,
        value: object,
        bound: Bound,
        *,
        positive: bool = False,
        what: str = "a number",
    ) -> Decimal | None:
        """A finite number within ``bound`` (tracker.bounds; ``positive``: above zero), else a
        problem naming ``key`` and None: 1e308, inf, nan and text are never accepted."""
        try:
            return bounds.decimal(key, value, bound, positive=positive)
        except InputError:
            low = "more than" if positive else "from"
            self.problem(
                key,
                f"must be {what} {low} {bound.low:,} to {bound.high:,}, got {shown_value(value)!r}",
            )
            return None

    def resolve(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base / path


class _Validator(SectionContext):
    """Walks the TOML document once, collecting every problem before raising."""

    def __init__(self, path: Path, data: dict[str, Any]):
        super().__init__(path, path.resolve().parent, [])
        self.path: Path = path
        self.data = data

    def settings(self) -> Settings:
        """The core sections parsed (problems collected in ``self.problems``)."""
        for key in self.data:
            if key not in KNOWN_SECTIONS:
                self.problem(
                    key, f"unknown section; expected one of {', '.join(sorted(KNOWN_SECTIONS))}"
                )
        return Settings(
            path=self.path,
            database_url=self._database(),
            sources=self._sources(),
            attribution=self._attribution(),
            pricing=self._pricing(),
            collection=self._collection(),
            document=self.data,
        )

    # -- helpers ---------------------------------------------------------------
    def _table(self, name: str) -> dict[str, Any]:
        return self.section(name, self.data.get(name)) or {}

    def _str(
        self, key: str, value: Any, default: str | None = None, *, empty_ok: bool = False
    ) -> str | None:
        if value is None:
            return default
        if not isinstance(value, str) or (not empty_ok and not value.strip()):
            self.problem(key, f"must be a non-empty string, got {value!r}")
            return default
        return value

    def _path(self, key: str, value: Any) -> Path | None:
        text = self._str(key, value)
        if text is None:
            return None
        path = Path(text).expanduser()
        return path if path.is_absolute() else self.base / path

    def _region(self, key: str, value: Any) -> str | None:
        if not isinstance(value, str) or not REGION_RE.match(value):
            self.problem(key, f"{value!r} is not an AWS region; expected a code like 'us-east-1'")
            return None
        return value

    # -- sections --------------------------------------------------------------
    def _database(self) -> str:
        table = self._table("database")
        self.unknown_keys("database", table, {"url"})
        url = self._str("database.url", table.get("url"))
        if url is None:
            return default_database_url(self.path)
        return resolve_sqlite_url(url, self.base)

    def _sources(self) -> tuple[Source, ...]:
        raw = self.data.get("sources", [])
        if not isinstance(raw, list) or not all(isinstance(s, dict) for s in raw):
            self.problem("sources", "must be an array of tables ([[sources]])")
            return ()
        sources, names = [], set()
        for i, table in enumerate(raw):
            key = f"sources[{i}]"
            self.unknown_keys(key, table, SOURCE_KEYS)
            name = self._str(f"{key}.name", table.get("name"))
            if name is None and "name" not in table:
                self.problem(
                    f"{key}.name", "is required: a short name for this account, e.g. 'prod'"
                )
            if name in names:
                self.problem(
                    f"{key}.name", f"{name!r} is used by another source; names must be unique"
                )
            names.add(name)
            role = self._str(f"{key}.role_arn", table.get("role_arn"), empty_ok=True) or None
            if role and not ROLE_ARN_RE.match(role):
                self.problem(
                    f"{key}.role_arn",
                    f"{role!r} is not an IAM role ARN; expected arn:aws:iam::<12 digits>:role/<name>",
                )
            external_id = (
                self._str(f"{key}.external_id", table.get("external_id"), empty_ok=True) or None
            )
            regions_raw = table.get("regions")
            regions: list[str] = []
            if not isinstance(regions_raw, list) or not regions_raw:
                self.problem(
                    f"{key}.regions",
                    f'must be a non-empty list of region codes like ["us-east-1"], got {regions_raw!r}',
                )
            else:
                for j, r in enumerate(regions_raw):
                    region = self._region(f"{key}.regions[{j}]", r)
                    if region and region not in regions:
                        regions.append(region)
            org = self._organization(key, table, role)
            if name:
                sources.append(Source(name, tuple(regions), role, external_id, **org))
        return tuple(sources)

    def _organization(self, key: str, table: dict[str, Any], role_arn: str | None) -> dict:
        """The organization keys of one ``[[sources]]`` (problems for bad combinations)."""
        organization = self.flag(f"{key}.organization", table.get("organization"), False)
        role_name = self._str(f"{key}.role_name", table.get("role_name"))
        if role_name is not None and not ROLE_NAME_RE.match(role_name):
            self.problem(
                f"{key}.role_name",
                f"{role_name!r} is not an IAM role name; expected a name like "
                "'SpendTrackerRead' (not an ARN)",
            )
            role_name = None
        lists = {
            "include": self._ids(f"{key}.include", table.get("include"), ACCOUNT_ID_RE,
                                 "12-digit account ids"),
            "exclude": self._ids(f"{key}.exclude", table.get("exclude"), ACCOUNT_ID_RE,
                                 "12-digit account ids"),
            "ous": self._ids(f"{key}.ous", table.get("ous"), OU_ID_RE,
                             "organizational unit ids like 'ou-ab12-cd34ef56' or root ids 'r-ab12'"),
        }  # fmt: skip
        if organization:
            if "role_name" not in table:
                self.problem(
                    f"{key}.role_name",
                    "is required with organization = true: the role to assume in each "
                    "account, e.g. 'SpendTrackerRead'",
                )
            if role_arn:
                self.problem(
                    f"{key}.role_arn",
                    "not allowed with organization = true (each account's role is "
                    "arn:aws:iam::<account>:role/<role_name>); use role_name",
                )
            both = sorted(set(lists["include"]) & set(lists["exclude"]))
            if both:
                self.problem(f"{key}.exclude", f"{', '.join(both)} also in include")
        else:
            for extra in ("role_name", "include", "exclude", "ous"):
                if extra in table:
                    self.problem(
                        f"{key}.{extra}", "only for organization sources: add organization = true"
                    )
        return {"organization": organization, "role_name": role_name if organization else None,
                **(lists if organization else {})}  # fmt: skip

    def _ids(self, key: str, value: Any, pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
        """A list of ids matching ``pattern`` (a problem naming ``what`` otherwise)."""
        if value is None:
            return ()
        if not isinstance(value, list) or not all(
            isinstance(v, str) and pattern.match(v) for v in value
        ):
            self.problem(key, f"must be a list of {what}, got {value!r}")
            return ()
        return tuple(dict.fromkeys(value))

    def _attribution(self) -> Attribution:
        table = self._table("attribution")
        self.unknown_keys("attribution", table, {"team_tag", "project_tag", "user_tag"})
        default = Attribution()
        return Attribution(
            team_tag=self._str("attribution.team_tag", table.get("team_tag"), default.team_tag),
            project_tag=self._str(
                "attribution.project_tag", table.get("project_tag"), default.project_tag
            ),
            user_tag=self._str("attribution.user_tag", table.get("user_tag"), default.user_tag),
        )

    def _rate_table(self, key: str, value: Any) -> dict[str, Decimal]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(
                key, 'must be a table of region = USD per GB-month, e.g. { "us-east-1" = 0.14 }'
            )
            return {}
        rates = {}
        for region, rate in value.items():
            if self._region(f"{key}.{region}", region):
                number = self.number(f"{key}.{region}", rate, RATE_USD)
                if number is not None:
                    rates[region] = number
        return rates

    def _pricing(self) -> PricingSettings:
        table = self._table("pricing")
        self.unknown_keys("pricing", table, {
            "snapshot_dir", "overrides", "discount_pct", "local_storage_families",
            "storage_usd_per_gb_month", "s3_usd_per_gb_month",
        })  # fmt: skip
        default = PricingSettings(snapshot_dir=default_snapshot_dir(self.path))
        snapshot = (
            self._path("pricing.snapshot_dir", table.get("snapshot_dir")) or default.snapshot_dir
        )
        # A folder not made yet is fine: `tracker prices refresh` creates it.
        if snapshot.exists() and not snapshot.is_dir():
            self.problem(
                "pricing.snapshot_dir",
                f"{snapshot} is not a folder; expected the folder refreshed price snapshots go to",
            )
        overrides = self._path("pricing.overrides", table.get("overrides"))
        if overrides is not None:
            self._check_overrides(overrides)
        discount = default.discount_pct
        if "discount_pct" in table:
            number = self.number("pricing.discount_pct", table["discount_pct"], DISCOUNT_PCT)
            discount = number if number is not None else discount
        families = default.local_storage_families
        raw_families = table.get("local_storage_families")
        if raw_families is not None:
            if not isinstance(raw_families, list) or not all(
                isinstance(f, str) and FAMILY_RE.match(f) for f in raw_families
            ):
                self.problem(
                    "pricing.local_storage_families",
                    'must be a list of instance families like ["ml.p4d", "ml.g5"]',
                )
            else:
                families = frozenset(raw_families)
        return PricingSettings(
            snapshot_dir=snapshot,
            overrides=overrides,
            discount_pct=discount,
            local_storage_families=families,
            storage_usd_per_gb_month=self._rate_table(
                "pricing.storage_usd_per_gb_month", table.get("storage_usd_per_gb_month")
            ),
            s3_usd_per_gb_month=self._rate_table(
                "pricing.s3_usd_per_gb_month", table.get("s3_usd_per_gb_month")
            ),
        )

    def _check_overrides(self, path: Path) -> None:
        try:
            read_price_csv(path)
        except PriceBookError as exc:
            self.problem("pricing.overrides", str(exc))

    def _collection(self) -> CollectionSettings:
        table = self._table("collection")
        self.unknown_keys(
            "collection",
            table,
            {"overlap_seconds", "measure_artifacts", "page_size", "retry_mode", "max_attempts",
             "workers", "remeasure_days", "method", "search_overlap_seconds"},
        )  # fmt: skip
        default = CollectionSettings()
        measure = self.flag(
            "collection.measure_artifacts",
            table.get("measure_artifacts"),
            default.measure_artifacts,
        )
        mode = self.choice(
            "collection.retry_mode",
            table.get("retry_mode", default.retry_mode),
            RETRY_MODES,
            default.retry_mode,
        )
        method = self.choice(
            "collection.method", table.get("method", default.method), COLLECTION_METHODS,
            default.method,
        )  # fmt: skip
        bounds = {"overlap_seconds": (0, 86400), "page_size": (1, 100), "max_attempts": (1, 20),
                  "search_overlap_seconds": (60, 86400),
                  "workers": (COLLECT_WORKERS.low, COLLECT_WORKERS.high),
                  "remeasure_days": (REMEASURE_DAYS.low, REMEASURE_DAYS.high)}  # fmt: skip
        numbers = {
            key: self.whole(f"collection.{key}", table.get(key), getattr(default, key), low, high)
            for key, (low, high) in bounds.items()
        }
        return CollectionSettings(
            **numbers, measure_artifacts=measure, retry_mode=mode, method=method
        )


# == feature sections ================================================================================
BUDGET_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
BUDGET_KEYS = {
    "name", "period", "amount_usd", "thresholds_pct", "forecast_pct", "notify",
    "run_rate_days", "cost", "description", *FILTER_KEYS,
}  # fmt: skip
ALERT_KEYS = {
    "notify", "job_tolerance_pct", "job_lookback_days", "running_jobs", "email_from",
    "email_region", "webhook_timeout_seconds", "top_jobs", "lease_seconds", "tolerance_pct",
}  # fmt: skip
SCHEDULE_KEYS = {*JOB_NAMES, "misfire_grace_seconds"}
DAEMON_KEYS = {
    "heartbeat_seconds", "stale_after_seconds", "collect_on_start", "metrics_port", "metrics_host",
}  # fmt: skip
ROW_DIMENSIONS = ("team", "project", "user", "instance_type", "account", "region", "status")
REPORTS_KEYS = {"showback_destination", "showback_by", "showback_months", "max_daily_days"}


# -- [[budgets]] -------------------------------------------------------------------------------
def parse_budgets(value: object, ctx: SectionContext) -> tuple[Budget, ...]:
    """``[[budgets]]`` -> Budgets; every problem goes to ``ctx.problem(key, message)``."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        ctx.problem("budgets", "must be an array of tables ([[budgets]])")
        return ()
    budgets: list[Budget] = []
    names: set[str] = set()
    for index, table in enumerate(value):
        name = table.get("name")
        if isinstance(name, str) and name in names:
            ctx.problem(f"budgets[{index}].name", f"{name!r} is used twice; names must be unique")
            continue
        if isinstance(name, str):
            names.add(name)
        budget = _parse_budget(f"budgets[{index}]", table, ctx)
        if budget is not None:
            budgets.append(budget)
    return tuple(budgets)


def _parse_budget(key: str, table: dict[str, Any], ctx: SectionContext) -> Budget | None:
    before = len(ctx.problems)
    ctx.unknown_keys(key, table, BUDGET_KEYS)
    name = table.get("name")
    if not isinstance(name, str) or not BUDGET_NAME_RE.match(name):
        ctx.problem(
            f"{key}.name",
            f"must be a short name (letters, digits, '-', '_', '.'), e.g. 'nlp-monthly', got {name!r}",
        )
    period = table.get("period", "monthly")
    if period not in PERIODS:
        ctx.problem(f"{key}.period", f"must be one of {', '.join(PERIODS)}, got {period!r}")
    amount = ctx.number(
        f"{key}.amount_usd", table.get("amount_usd"), BUDGET_USD, what="a number of US dollars"
    )
    filters = []
    for filter_key in FILTER_KEYS:
        if filter_key in table:
            filter_value = table[filter_key]
            if not isinstance(filter_value, str) or not filter_value.strip():
                ctx.problem(
                    f"{key}.{filter_key}", f"must be a non-empty string, got {filter_value!r}"
                )
            else:
                filters.append((filter_key, filter_value))
    thresholds = _percentages(
        f"{key}.thresholds_pct", table.get("thresholds_pct"), DEFAULT_THRESHOLDS, ctx
    )
    forecast = _percentages(f"{key}.forecast_pct", table.get("forecast_pct"), DEFAULT_FORECAST, ctx)
    notify = table.get("notify", ["log"])
    if not isinstance(notify, list) or not all(isinstance(item, str) for item in notify):
        ctx.problem(
            f"{key}.notify",
            f'must be a list of channels like ["log", "email:finops@example.com"], got {shown_value(notify)!r}',
        )
        notify = ["log"]
    for position, spec in enumerate(notify):
        try:
            parse_channel(spec)
        except ValueError as exc:
            ctx.problem(f"{key}.notify[{position}]", str(exc))
    days = table.get("run_rate_days", DEFAULT_RUN_RATE_DAYS)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 366:
        ctx.problem(
            f"{key}.run_rate_days", f"must be a whole number of days from 1 to 366, got {days!r}"
        )
    cost = table.get("cost", "list")
    if cost not in COST_MEASURES:
        ctx.problem(f"{key}.cost", f"must be one of {', '.join(COST_MEASURES)}, got {cost!r}")
    if len(ctx.problems) > before:
        return None
    return Budget(
        name=name,
        amount_usd=amount,
        period=period,
        filters=tuple(filters),
        thresholds_pct=thresholds,
        forecast_pct=forecast,
        notify=tuple(dict.fromkeys(notify)),
        run_rate_days=days,
        cost=cost,
    )


def _percentages(
    key: str, value: object, default: tuple[Decimal, ...], ctx: SectionContext
) -> tuple[Decimal, ...]:
    if value is None:
        return default
    items = value if isinstance(value, list) else [value]
    parsed = []
    for item in items:
        number = decimal_or_none(item)
        if number is None or not PERCENT.low < number <= PERCENT.high:
            ctx.problem(
                key,
                f"must be a percentage from 0 to 1000 or a list of them, e.g. [50, 80, 100], got {value!r}",
            )
            return default
        parsed.append(number)
    return tuple(sorted(set(parsed)))


# -- [alerts] ----------------------------------------------------------------------------------
def parse_alerts(value: object, ctx: SectionContext) -> AlertSettings:
    """``[alerts]`` -> AlertSettings; problems go to ``ctx.problem``."""
    from tracker.alert.rules import AlertSettings

    table = ctx.section("alerts", value)
    if table is None:
        return AlertSettings()
    ctx.unknown_keys("alerts", table, ALERT_KEYS)
    default = AlertSettings()
    notify = table.get("notify", list(default.notify))
    if not isinstance(notify, list):
        ctx.problem(
            "alerts.notify",
            f'must be a list of channels like ["log", "webhook:env:SLACK_WEBHOOK_URL"], got {shown_value(notify)!r}',
        )
        notify = list(default.notify)
    for index, spec in enumerate(notify):
        try:
            parse_channel(spec)
        except ValueError as exc:
            ctx.problem(f"alerts.notify[{index}]", str(exc))
    tolerance = None
    for key in ("job_tolerance_pct", "tolerance_pct"):  # tolerance_pct: the short spelling
        if key not in table:
            continue
        tolerance = ctx.number(f"alerts.{key}", table[key], PERCENT, what="a percentage")
        break
    email_from = table.get("email_from")
    if email_from is not None:
        try:
            parse_channel(f"email:{email_from}")
        except ValueError:
            ctx.problem(
                "alerts.email_from", f"must be an email address verified in SES, got {email_from!r}"
            )
            email_from = None
    region = table.get("email_region")
    if region is not None and not isinstance(region, str):
        ctx.problem(
            "alerts.email_region", f"must be a region code like 'us-east-1', got {region!r}"
        )
        region = None
    running = ctx.flag("alerts.running_jobs", table.get("running_jobs"), True)
    timeout = decimal_or_none(table.get("webhook_timeout_seconds", default.webhook_timeout_seconds))
    if timeout is None or not 0 < timeout <= 300:
        ctx.problem("alerts.webhook_timeout_seconds", "must be a number of seconds from 0 to 300")
        timeout = Decimal(10)
    return AlertSettings(
        notify=tuple(dict.fromkeys(s for s in notify if isinstance(s, str))),  # others: reported
        job_tolerance_pct=tolerance,
        job_lookback_days=ctx.whole(
            "alerts.job_lookback_days", table.get("job_lookback_days"), 7, 1, 366
        ),
        running_jobs=running,
        email_from=email_from,
        email_region=region,
        webhook_timeout_seconds=float(timeout),
        top_jobs=ctx.whole("alerts.top_jobs", table.get("top_jobs"), 5, 0, 50),
        lease_seconds=ctx.whole("alerts.lease_seconds", table.get("lease_seconds"), 600, 10, 86400),
    )


# -- [schedule] and [daemon] -------------------------------------------------------------------
def parse_schedule(value: object, ctx: SectionContext) -> ScheduleSettings:
    """``[schedule]`` -> ScheduleSettings; every bad expression goes to ``ctx.problem``."""
    table = ctx.section("schedule", value)
    if table is None:
        return ScheduleSettings()
    ctx.unknown_keys("schedule", table, SCHEDULE_KEYS)
    chosen = dict(DEFAULT_SCHEDULE)
    for job in JOB_NAMES:
        if job not in table:
            continue
        expression = table[job]
        try:
            if isinstance(expression, int) and not isinstance(expression, bool):
                expression = f"@every {expression}s"  # a bare number: every N seconds
            if not isinstance(expression, str):
                raise ValueError("not a string")
            make_trigger(expression, allow_after_collect=job == "alerts")
            chosen[job] = " ".join(expression.split())
        except ValueError as exc:
            extra = ", 'after collect'" if job == "alerts" else ""
            ctx.problem(
                f"schedule.{job}",
                f"{expression!r} is not a schedule ({exc}); expected a cron expression like "
                f"'*/15 * * * *' (or 6 fields with leading seconds), '@every 10m', a number of "
                f"seconds, 'off'{extra}",
            )
    grace = ctx.whole(
        "schedule.misfire_grace_seconds", table.get("misfire_grace_seconds"), 300, 1, 86400
    )
    return ScheduleSettings(**chosen, misfire_grace_seconds=grace)


def parse_daemon(value: object, ctx: SectionContext) -> DaemonSettings:
    """``[daemon]`` -> DaemonSettings."""
    table = ctx.section("daemon", value)
    if table is None:
        return DaemonSettings()
    ctx.unknown_keys("daemon", table, DAEMON_KEYS)
    numbers = {
        key: ctx.whole(f"daemon.{key}", table.get(key), default, 1, 3600, "seconds")
        for key, default in (("heartbeat_seconds", 15), ("stale_after_seconds", 60))
    }
    if numbers["stale_after_seconds"] <= numbers["heartbeat_seconds"]:
        ctx.problem(
            "daemon.stale_after_seconds",
            "must be longer than heartbeat_seconds (e.g. 4 x heartbeat)",
        )
    on_start = ctx.flag("daemon.collect_on_start", table.get("collect_on_start"), True)
    port = ctx.whole("daemon.metrics_port", table.get("metrics_port"), 0, 0, 65535)
    host = table.get("metrics_host", DaemonSettings.metrics_host)
    if not isinstance(host, str) or not host.strip() or host != host.strip():
        ctx.problem(
            "daemon.metrics_host",
            f"must be the address to listen on, such as 127.0.0.1, got {host!r}",
        )
        host = DaemonSettings.metrics_host
    return DaemonSettings(
        **numbers, collect_on_start=on_start, metrics_port=port, metrics_host=host
    )


# -- [reports] ---------------------------------------------------------------------------------
def parse_reports_section(value: object, ctx: SectionContext) -> ReportsSettings:
    """Validate ``[reports]``; problems go to ``ctx.problem``; relative folders resolve against the config."""
    default = ReportsSettings(showback_destination=str(ctx.base / DEFAULT_DESTINATION))
    table = ctx.section("reports", value)
    if table is None:
        return default
    ctx.unknown_keys("reports", table, REPORTS_KEYS)
    destination = table.get("showback_destination", DEFAULT_DESTINATION)
    if not isinstance(destination, str) or not destination.strip():
        ctx.problem(
            "reports.showback_destination",
            f"must be a folder or s3://bucket/prefix, got {destination!r}",
        )
        destination = DEFAULT_DESTINATION
    elif destination.startswith("s3://"):
        if not destination[5:].split("/", 1)[0]:
            ctx.problem(
                "reports.showback_destination",
                f"{destination!r} has no bucket; expected s3://bucket/prefix",
            )
    else:
        destination = str(ctx.resolve(destination))
    by = ctx.choice("reports.showback_by", table.get("showback_by", "team"), ROW_DIMENSIONS, "team")
    months = ctx.whole(
        "reports.showback_months", table.get("showback_months"), DEFAULT_MONTHS, 2, 24
    )
    max_days = ctx.whole(
        "reports.max_daily_days",
        table.get("max_daily_days"),
        int(DAILY_WINDOW_DAYS.high),
        int(MAX_DAILY_DAYS_SETTING.low),
        int(MAX_DAILY_DAYS_SETTING.high),
        "days",
    )
    return ReportsSettings(destination, by, months, max_days)


# -- [reconcile] -------------------------------------------------------------------------------
def parse_reconcile_section(value: object, ctx: SectionContext) -> ReconcileSettings:
    """``[reconcile]`` -> ReconcileSettings; None gives the defaults."""
    from tracker.reconcile.rules import GRANULARITIES, ReconcileSettings

    default = ReconcileSettings()
    table = ctx.section("reconcile", value)
    if table is None:
        return default
    known = {"settle_days", "drift_pct", "tolerance_pct", "granularity", "source"}
    ctx.unknown_keys("reconcile", table, known)
    settle = ctx.whole(
        "reconcile.settle_days", table.get("settle_days"), default.settle_days, 0, 62, "days"
    )
    drift = default.drift_pct
    if "drift_pct" in table:
        parsed = ctx.number("reconcile.drift_pct", table["drift_pct"], PERCENT)
        drift = parsed if parsed is not None else drift
    tolerance = default.tolerance_pct
    if "tolerance_pct" in table:
        parsed = ctx.number("reconcile.tolerance_pct", table["tolerance_pct"], PERCENT)
        tolerance = parsed if parsed is not None else tolerance
    granularity = ctx.choice(
        "reconcile.granularity",
        table.get("granularity", default.granularity),
        GRANULARITIES,
        default.granularity,
    )
    source = table.get("source", default.source)
    if not isinstance(source, str) or not source.strip():
        ctx.problem("reconcile.source", f"must be 'ce', a path or an s3:// URI, got {source!r}")
        source = default.source
    elif source != "ce" and not source.startswith("s3://"):
        source = str(ctx.resolve(source))
    return ReconcileSettings(settle, drift, tolerance, granularity, source)


# -- [estimates] -------------------------------------------------------------------------------
def parse_estimates_section(value: object, ctx: SectionContext) -> EstimateSettings:
    """``[estimates]`` -> EstimateSettings; None gives the defaults."""
    from tracker.estimate.rules import EstimateSettings

    table = ctx.section("estimates", value)
    if table is None:
        return EstimateSettings()
    for key in table:
        if key != "tolerance_pct":
            ctx.problem(f"estimates.{key}", "unknown key; expected tolerance_pct")
    if "tolerance_pct" not in table:
        return EstimateSettings()
    number = ctx.number("estimates.tolerance_pct", table["tolerance_pct"], PERCENT)
    return EstimateSettings() if number is None else EstimateSettings(number)


# -- [guard] -----------------------------------------------------------------------------------
GUARD_KEYS = {"mode", "override_tag", "teams"}
TAG_KEY_MAX = 128  # the longest tag key AWS accepts


def parse_guard_section(value: object, ctx: SectionContext) -> GuardSettings:
    """``[guard]`` -> GuardSettings (docs/guardrails.md); None gives the defaults."""
    from tracker.guard.policy import DEFAULT_MODE, DEFAULT_OVERRIDE_TAG, MODES, GuardSettings

    table = ctx.section("guard", value)
    if table is None:
        return GuardSettings()
    ctx.unknown_keys("guard", table, GUARD_KEYS)
    mode = ctx.choice("guard.mode", table.get("mode", DEFAULT_MODE), MODES, DEFAULT_MODE)
    tag = table.get("override_tag", DEFAULT_OVERRIDE_TAG)
    if not isinstance(tag, str) or not tag.strip() or len(tag) > TAG_KEY_MAX:
        ctx.problem(
            "guard.override_tag",
            f"must be a tag key of 1 to {TAG_KEY_MAX} characters, got {shown_value(tag)!r}",
        )
        tag = DEFAULT_OVERRIDE_TAG
    teams: list[tuple[str, str]] = []
    raw_teams = table.get("teams", {})
    if not isinstance(raw_teams, dict):
        ctx.problem("guard.teams", 'must be a table of team = mode, e.g. nlp = "refuse"')
    else:
        for team, team_mode in raw_teams.items():
            chosen = ctx.choice(f"guard.teams.{team}", team_mode, MODES, DEFAULT_MODE)
            teams.append((team, chosen))
    return GuardSettings(mode, tag, tuple(teams))


# -- [web] -------------------------------------------------------------------------------------
WEB_KEYS = {"request_seconds"}


def parse_web_section(value: object, ctx: SectionContext) -> WebSettings:
    """``[web]`` -> WebSettings; None gives the defaults."""
    table = ctx.section("web", value)
    if table is None:
        return WebSettings()
    ctx.unknown_keys("web", table, WEB_KEYS)
    seconds = ctx.whole(
        "web.request_seconds",
        table.get("request_seconds"),
        bounds.DEFAULT_REQUEST_SECONDS,
        int(REQUEST_SECONDS.low),
        int(REQUEST_SECONDS.high),
        "seconds",
    )
    return WebSettings(seconds)


# -- [events] ----------------------------------------------------------------------------------
EVENTS_KEYS = {"queues", "wait_seconds", "drain_messages"}
QUEUE_KEYS = {"url", "source", "account", "region"}
QUEUE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:sqs:([a-z0-9-]+):(\d{12}):([\w-]{1,80})$")
QUEUE_URL_RE = re.compile(r"^https?://([^/\s]+)/(\d{12})/([\w-]{1,80})$")
SQS_HOST_RE = re.compile(
    r"^(?:sqs\.([a-z0-9-]+)\.amazonaws\.com|([a-z0-9-]+)\.queue\.amazonaws\.com)$"
)


@dataclass(frozen=True)
class EventQueue:
    """One SQS queue EventBridge delivers a (source account, region)'s job events to."""

    url: str  # the queue URL, or its ARN (resolved through GetQueueUrl)
    source: str | None  # a [[sources]] name; None: the only source
    account_id: str
    region: str

    @property
    def label(self) -> str:
        return f"{self.account_id}/{self.region}"


@dataclass(frozen=True)
class EventsSettings:
    """``[events]``: the queues ``tracker listen`` and the daemon's listener poll."""

    queues: tuple[EventQueue, ...] = ()
    wait_seconds: int = int(EVENTS_WAIT_SECONDS.high)
    drain_messages: int = bounds.DEFAULT_DRAIN_MESSAGES


def parse_events(value: object, ctx: SectionContext) -> EventsSettings:
    """``[events]`` -> EventsSettings: each queue's account and region from its ARN or URL,
    else its ``account`` / ``region`` keys (which must agree with them when both are given)."""
    table = ctx.section("events", value)
    if table is None:
        return EventsSettings()
    ctx.unknown_keys("events", table, EVENTS_KEYS)
    raw = table.get("queues", [])
    queues: list[EventQueue] = []
    if not isinstance(raw, list) or not (
        int(EVENT_QUEUES.low) <= len(raw) <= int(EVENT_QUEUES.high)
    ):
        ctx.problem(
            "events.queues",
            f"must be a list of {EVENT_QUEUES.low} to {EVENT_QUEUES.high} queues like "
            '{ url = "https://sqs.us-east-1.amazonaws.com/123456789012/sagemaker-spend-tracker-events", '
            'source = "prod" }',
        )
        raw = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        queue = _event_queue(f"events.queues[{i}]", item, ctx)
        if queue is None:
            continue
        if queue.url in seen:
            ctx.problem(f"events.queues[{i}].url", f"{queue.url!r} is listed twice")
            continue
        seen.add(queue.url)
        queues.append(queue)
    wait = ctx.whole(
        "events.wait_seconds", table.get("wait_seconds"), int(EVENTS_WAIT_SECONDS.high),
        int(EVENTS_WAIT_SECONDS.low), int(EVENTS_WAIT_SECONDS.high), "seconds",
    )  # fmt: skip
    drain = ctx.whole(
        "events.drain_messages", table.get("drain_messages"), bounds.DEFAULT_DRAIN_MESSAGES,
        int(EVENTS_DRAIN_MESSAGES.low), int(EVENTS_DRAIN_MESSAGES.high), "messages",
    )  # fmt: skip
    return EventsSettings(tuple(queues), wait, drain)


def _event_queue(key: str, item: object, ctx: SectionContext) -> EventQueue | None:
    if isinstance(item, str):
        item = {"url": item}
    if not isinstance(item, dict):
        ctx.problem(key, f"must be a table like {{ url = ..., source = ... }}, got {item!r}")
        return None
    ctx.unknown_keys(key, item, QUEUE_KEYS)
    url = item.get("url")
    account = region = None
    if isinstance(url, str) and (arn := QUEUE_ARN_RE.match(url)):
        region, account = arn.group(1), arn.group(2)
    elif isinstance(url, str) and (found := QUEUE_URL_RE.match(url)):
        account = found.group(2)
        host = SQS_HOST_RE.match(found.group(1))
        region = (host.group(1) or host.group(2)) if host else None
    else:
        ctx.problem(
            f"{key}.url",
            f"{url!r} is not an SQS queue URL or ARN; expected "
            "https://sqs.REGION.amazonaws.com/ACCOUNT/NAME or arn:aws:sqs:REGION:ACCOUNT:NAME",
        )
        return None
    for name, inferred, pattern, what in (
        ("account", account, ACCOUNT_ID_RE, "a 12-digit account id"),
        ("region", region, REGION_RE, "a region code like 'us-east-1'"),
    ):
        given = item.get(name)
        if given is None:
            continue
        if not isinstance(given, str) or not pattern.match(given):
            ctx.problem(f"{key}.{name}", f"{given!r}: expected {what}")
            return None
        if inferred is not None and given != inferred:
            ctx.problem(
                f"{key}.{name}", f"{given!r} disagrees with the queue's {name} {inferred!r}"
            )
            return None
        if name == "account":
            account = given
        else:
            region = given
    if region is None:
        ctx.problem(
            f"{key}.region",
            f'the URL {url!r} names no region; add region = "us-east-1" (its region)',
        )
        return None
    source = item.get("source")
    if source is not None and (not isinstance(source, str) or not source.strip()):
        ctx.problem(f"{key}.source", f"must be the name of a [[sources]] entry, got {source!r}")
        return None
    return EventQueue(url, source, str(account), region)


def resolve_sqlite_url(url: str, base: Path) -> str:
    """Make a relative SQLite file path absolute against ``base``; other URLs pass through."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith("sqlite:////"):
        rest = url[len(prefix) :]
        if rest and rest != ":memory:" and not rest.startswith("file:"):
            return prefix + str((base / rest).resolve())
    return url


# -- [enforce] and [anomalies] (docs/enforcement-and-anomalies.md) ----------------------------
ENFORCE_KEYS = {"enabled", "mode", "rules", "estimate_factor", "max_spot_restarts"}
ANOMALY_KEYS = {"enabled", "job_factor", "day_factor", "min_peers", "lookback_days"}


def parse_enforce_section(value: object, ctx: SectionContext) -> EnforceSettings:
    """``[enforce]`` -> EnforceSettings; None gives the defaults (nothing enforced)."""
    from tracker.alert.enforce import MODES, RULES, EnforceSettings

    default = EnforceSettings()
    table = ctx.section("enforce", value)
    if table is None:
        return default
    ctx.unknown_keys("enforce", table, ENFORCE_KEYS)
    rules = table.get("rules", list(default.rules))
    if not isinstance(rules, list) or not rules or any(r not in RULES for r in rules):
        ctx.problem(
            "enforce.rules", f"must be a list of {', '.join(RULES)}, got {shown_value(rules)!r}"
        )
        rules = list(default.rules)
    factor = default.estimate_factor
    if "estimate_factor" in table:
        factor = (
            ctx.number("enforce.estimate_factor", table["estimate_factor"], bounds.FACTOR) or factor
        )
    restarts = bounds.SPOT_RESTARTS
    return EnforceSettings(
        ctx.flag("enforce.enabled", table.get("enabled"), default.enabled),
        ctx.choice("enforce.mode", table.get("mode", default.mode), MODES, default.mode),
        tuple(dict.fromkeys(rules)),
        factor,
        ctx.whole("enforce.max_spot_restarts", table.get("max_spot_restarts"),
                  default.max_spot_restarts, int(restarts.low), int(restarts.high), "restarts"),
    )  # fmt: skip


def parse_anomalies_section(value: object, ctx: SectionContext) -> AnomalySettings:
    """``[anomalies]`` -> AnomalySettings; None gives the defaults (no anomaly alerts)."""
    from tracker.alert.anomalies import AnomalySettings

    default = AnomalySettings()
    table = ctx.section("anomalies", value)
    if table is None:
        return default
    ctx.unknown_keys("anomalies", table, ANOMALY_KEYS)
    factors = {}
    for key in ("job_factor", "day_factor"):
        factors[key] = getattr(default, key)
        if key in table:
            parsed = ctx.number(f"anomalies.{key}", table[key], bounds.FACTOR)
            factors[key] = parsed if parsed is not None else factors[key]
    peers, days = bounds.ANOMALY_PEERS, bounds.ANOMALY_DAYS
    return AnomalySettings(
        ctx.flag("anomalies.enabled", table.get("enabled"), default.enabled),
        factors["job_factor"],
        factors["day_factor"],
        ctx.whole("anomalies.min_peers", table.get("min_peers"), default.min_peers,
                  int(peers.low), int(peers.high), "jobs"),
        ctx.whole("anomalies.lookback_days", table.get("lookback_days"), default.lookback_days,
                  int(days.low), int(days.high), "days"),
    )  # fmt: skip


# -- [allocation]: [[allocation.rules]] and [[allocation.shared]] (docs/allocation.md) ---------
ALLOCATION_KEYS = {"rules", "shared"}
ALLOCATION_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SHARED_KEYS = {"name", "pool", "team", "monthly_usd", "method", "over"}


@dataclass(frozen=True)
class AllocationSettings:
    """``[allocation]``: the rules that give untagged jobs a team, in order (the first match
    wins), and the shared-cost pools split over the teams in the showback."""

    rules: tuple[AllocationRule, ...] = ()
    shared: tuple[SharedPool, ...] = ()


def parse_allocation_section(value: object, ctx: SectionContext) -> AllocationSettings:
    """``[allocation]`` -> AllocationSettings; None gives none (no rule, no pool)."""
    table = ctx.section("allocation", value)
    if table is None:
        return AllocationSettings()
    ctx.unknown_keys("allocation", table, ALLOCATION_KEYS)
    rules = _allocation_tables("allocation.rules", table.get("rules"), ctx)
    pools = _allocation_tables("allocation.shared", table.get("shared"), ctx)
    parsed_rules = [_allocation_rule(f"allocation.rules[{i}]", t, ctx) for i, t in rules]
    parsed_pools = [_shared_pool(f"allocation.shared[{i}]", t, ctx) for i, t in pools]
    sources: dict[str, str] = {}
    for (index, _), pool in zip(pools, parsed_pools, strict=True):
        if pool is not None and pool.team is not None:
            if pool.team in sources:
                ctx.problem(
                    f"allocation.shared[{index}]",
                    f"team {pool.team!r} is already the pool of {sources[pool.team]!r}; "
                    "a team's spend can be split once",
                )
            sources.setdefault(pool.team, pool.name)
    return AllocationSettings(
        tuple(r for r in parsed_rules if r is not None),
        tuple(p for p in parsed_pools if p is not None),
    )


def _allocation_tables(
    key: str, value: object, ctx: SectionContext
) -> list[tuple[int, dict[str, Any]]]:
    """An array of tables (``[[allocation.rules]]``) as (index, table), names unique."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        ctx.problem(key, f"must be an array of tables ([[{key}]])")
        return []
    found, names = [], set()
    for index, table in enumerate(value):
        name = table.get("name")
        if not isinstance(name, str) or not ALLOCATION_NAME_RE.match(name):
            ctx.problem(
                f"{key}[{index}].name",
                f"must be a short name (letters, digits, '-', '_', '.'), got {shown_value(name)!r}",
            )
            continue
        if name in names:
            ctx.problem(f"{key}[{index}].name", f"{name!r} is used twice; names must be unique")
            continue
        names.add(name)
        found.append((index, table))
    return found


def _allocation_text(key: str, value: object, ctx: SectionContext) -> str | None:
    """A non-empty string (a problem naming ``key`` otherwise)."""
    if not isinstance(value, str) or not value.strip():
        ctx.problem(key, f"must be a non-empty string, got {shown_value(value)!r}")
        return None
    return value.strip()


def _allocation_rule(key: str, table: dict[str, Any], ctx: SectionContext) -> AllocationRule | None:
    """One ``[[allocation.rules]]`` table (its name already checked) -> AllocationRule."""
    from tracker.collect.allocate import (
        FIELD_PATTERN_KEYS,
        MATCH_KEYS,
        RESERVED_NAMES,
        TAG_PREFIX,
        AllocationRule,
        make_match,
        matchable_fields,
    )
    from tracker.records import UNALLOCATED

    before = len(ctx.problems)
    name = table["name"]
    ctx.unknown_keys(
        key, table, {"name", "team", "project", "field", *MATCH_KEYS, *FIELD_PATTERN_KEYS}
    )
    if name in RESERVED_NAMES:
        ctx.problem(
            f"{key}.name", f"{name!r} is what team_source says without a rule; pick another"
        )
    team = _allocation_text(f"{key}.team", table.get("team"), ctx)
    if team == UNALLOCATED:
        ctx.problem(f"{key}.team", f"must name a team, not {UNALLOCATED!r}")
    project = None
    if "project" in table:
        project = _allocation_text(f"{key}.project", table["project"], ctx)
    wanted: list[tuple[str, str, object, str]] = [
        (match_key, target, table[match_key], how)
        for match_key, (target, how) in MATCH_KEYS.items()
        if match_key in table
    ]
    patterns = [k for k in FIELD_PATTERN_KEYS if k in table]
    if "field" in table:
        target = table["field"]
        allowed = (*matchable_fields(), "domain", "user_profile")
        is_tag = isinstance(target, str) and target.startswith(TAG_PREFIX) and len(target) > 4
        if not is_tag and target not in allowed:
            ctx.problem(
                f"{key}.field",
                f"must be tag:<key> or a job field ({', '.join(allowed)}), got {shown_value(target)!r}",
            )
        elif len(patterns) != 1:
            ctx.problem(f"{key}.field", "needs exactly one of value, glob or regex beside it")
        else:
            how = {"value": "exact"}.get(patterns[0], patterns[0])
            wanted.append((patterns[0], str(target), table[patterns[0]], how))
    elif patterns:
        ctx.problem(
            f"{key}.{patterns[0]}", 'compares a field: set field = "<job field or tag:key>" too'
        )
    if not wanted and "field" not in table:
        ctx.problem(
            key,
            f"rule {name!r} matches every untagged job; give at least one of "
            f"{', '.join([*MATCH_KEYS, 'field'])}",
        )
    matches = []
    for match_key, target, pattern, how in wanted:
        text = _allocation_text(f"{key}.{match_key}", pattern, ctx)
        if text is None:
            continue
        if match_key == "account" and not ACCOUNT_ID_RE.match(text):
            ctx.problem(f"{key}.account", f"must be a 12-digit account id, got {text!r}")
            continue
        try:
            matches.append(make_match(match_key, target, text, how))
        except re.error as exc:
            ctx.problem(f"{key}.{match_key}", f"rule {name!r}: not a regular expression ({exc})")
    if len(ctx.problems) > before or team is None:
        return None
    return AllocationRule(name, team, tuple(matches), project)


def _shared_pool(key: str, table: dict[str, Any], ctx: SectionContext) -> SharedPool | None:
    """One ``[[allocation.shared]]`` table (its name already checked) -> SharedPool."""
    from tracker.cost.shared import METHODS, SharedPool
    from tracker.records import UNALLOCATED

    before = len(ctx.problems)
    ctx.unknown_keys(key, table, SHARED_KEYS)
    given = [k for k in ("pool", "team", "monthly_usd") if k in table]
    team = monthly = None
    if len(given) != 1:
        ctx.problem(
            key,
            'needs exactly one of pool = "unallocated", team = "<team>" or monthly_usd = <amount>'
            + (f", got {' and '.join(given)}" if given else ""),
        )
    elif given[0] == "pool":
        if table["pool"] != UNALLOCATED:
            ctx.problem(
                f"{key}.pool",
                f'must be "{UNALLOCATED}" (a team\'s spend is team = "<team>"), '
                f"got {shown_value(table['pool'])!r}",
            )
        team = UNALLOCATED
    elif given[0] == "team":
        team = _allocation_text(f"{key}.team", table["team"], ctx)
    else:
        monthly = ctx.number(
            f"{key}.monthly_usd", table["monthly_usd"], BUDGET_USD, positive=True,
            what="a number of US dollars",
        )  # fmt: skip
    method = table.get("method")
    if method not in METHODS:
        ctx.problem(
            f"{key}.method", f"must be one of {', '.join(METHODS)}, got {shown_value(method)!r}"
        )
    over = table.get("over", [])
    if not isinstance(over, list) or not all(isinstance(t, str) and t.strip() for t in over):
        ctx.problem(
            f"{key}.over",
            f'must be a list of team names, e.g. ["nlp", "vision"], got {shown_value(over)!r}',
        )
        over = []
    for name in over:
        if name in (team, UNALLOCATED):
            ctx.problem(f"{key}.over", f"{name!r} cannot receive a share of this pool")
    if len(ctx.problems) > before:
        return None
    return SharedPool(table["name"], str(method), team, monthly, tuple(dict.fromkeys(over)))
