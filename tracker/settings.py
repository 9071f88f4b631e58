"""One Settings object from config/tracker.toml, validated in full.

Every problem in the file is collected and reported at once, as
``<file>: <key>: <what is wrong and what is expected>``; nothing is read from AWS
or the database while loading. Relative paths resolve against the config file's folder.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from tracker.errors import ConfigError, PriceBookError

DEFAULT_CONFIG = Path("config/tracker.toml")
REPO_PRICES = Path(__file__).resolve().parent.parent / "config" / "prices"
REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")
ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
FAMILY_RE = re.compile(r"^ml\.[a-z0-9-]+$")
RETRY_MODES = ("standard", "adaptive")
DEFAULT_LOCAL_STORAGE_FAMILIES = (
    # Instance families whose training instances use local NVMe instance storage
    # instead of an ML storage (EBS) volume, so VolumeSizeInGB is not billed.
    "ml.c5d", "ml.c6id", "ml.g4dn", "ml.g5", "ml.g6", "ml.g6e", "ml.m5d", "ml.m6id",
    "ml.p3dn", "ml.p4d", "ml.p4de", "ml.p5", "ml.p5e", "ml.p5en", "ml.r5d",
    "ml.trn1", "ml.trn1n", "ml.trn2",
)  # fmt: skip

KNOWN_SECTIONS = {
    "database", "sources", "attribution", "pricing", "collection",
    "budgets", "alerts", "schedule", "estimates", "reconcile", "reports", "daemon",
}  # fmt: skip
# Sections owned by feature modules: section -> "module:function". The function takes
# (value, ctx: SectionContext) and returns the parsed object, reporting problems through
# ctx.problem(key, message); it is called with None when the section is absent.
SECTION_PARSERS: dict[str, str] = {
    "reports": "jobs.showback:parse_reports_section",
    "budgets": "tracker.alert.budgets:parse_budgets",
    "alerts": "tracker.alert.rules:parse_alerts",
    "schedule": "jobs.scheduler:parse_schedule",
    "daemon": "jobs.scheduler:parse_daemon",
    "reconcile": "tracker.reconcile.rules:parse_reconcile_section",
    "estimates": "tracker.estimate.rules:parse_estimates_section",
}


@dataclass(frozen=True)
class Source:
    """One AWS account to collect from (optionally through an assumed role)."""

    name: str
    regions: tuple[str, ...]
    role_arn: str | None = None
    external_id: str | None = None


@dataclass(frozen=True)
class Attribution:
    team_tag: str = "team"
    project_tag: str = "project"
    user_tag: str = "owner"


@dataclass(frozen=True)
class PricingSettings:
    snapshot_dir: Path = REPO_PRICES
    overrides: Path | None = None
    discount_pct: Decimal = Decimal(0)
    local_storage_families: frozenset[str] = frozenset(DEFAULT_LOCAL_STORAGE_FAMILIES)
    storage_usd_per_gb_month: Mapping[str, Decimal] = field(default_factory=dict)
    s3_usd_per_gb_month: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class CollectionSettings:
    overlap_seconds: int = 900
    measure_artifacts: bool = True
    page_size: int = 100
    retry_mode: str = "adaptive"
    max_attempts: int = 10


@dataclass(frozen=True)
class Settings:
    """Everything the tracker reads from its config file."""

    path: Path | None = None
    database_url: str = "sqlite:///tracker.db"
    sources: tuple[Source, ...] = ()
    attribution: Attribution = Attribution()
    pricing: PricingSettings = PricingSettings()
    collection: CollectionSettings = CollectionSettings()
    raw: Mapping[str, Any] = field(default_factory=dict)
    extras: Mapping[str, Any] = field(default_factory=dict)

    def feature(self, section: str) -> Any:
        """The parsed value of a feature section (budgets, schedule, ...), defaults if absent."""
        if section in self.extras:
            return self.extras[section]
        parsed = _parse_sections(self.path, {}, [section])
        return parsed[section]

    @property
    def discount_pct(self) -> Decimal:
        return self.pricing.discount_pct

    def section(self, name: str) -> Any:
        """A section later features validate themselves (budgets, schedule, ...)."""
        return self.raw.get(name)

    def price_book(self):
        """The price book: shipped snapshot < newest refresh < overrides file."""
        from tracker.cost.prices import PriceBook

        return PriceBook.load(
            self.pricing.snapshot_dir,
            self.pricing.overrides,
            storage_overrides=self.pricing.storage_usd_per_gb_month,
            s3_overrides=self.pricing.s3_usd_per_gb_month,
        )

    def cost_policy(self):
        from tracker.cost.engine import CostPolicy

        return CostPolicy(local_storage_families=self.pricing.local_storage_families)


def resolve_config_path(explicit: str | None) -> tuple[Path, bool]:
    """(path, must_exist): --config, else $TRACKER_CONFIG, else config/tracker.toml."""
    if explicit:
        return Path(explicit), True
    env = os.environ.get("TRACKER_CONFIG")
    if env:
        return Path(env), True
    return DEFAULT_CONFIG, False


def load_settings(explicit: str | None = None) -> Settings:
    """Load and validate the config file; a missing default file means built-in defaults."""
    path, must_exist = resolve_config_path(explicit)
    if not path.exists():
        if must_exist:
            raise ConfigError(
                str(path), ["file not found: pass --config PATH to an existing TOML file"]
            )
        return Settings()
    return parse_settings(path)


def parse_settings(path: Path) -> Settings:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            str(path), [f"cannot read the file ({exc.__class__.__name__}): {exc}"]
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [f"invalid TOML: {exc}"]) from None
    return _Validator(path, data).settings()


class _Validator:
    """Walks the TOML document once, collecting every problem before raising."""

    def __init__(self, path: Path, data: dict[str, Any]):
        self.path = path
        self.base = path.resolve().parent
        self.data = data
        self.problems: list[str] = []

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{key}: {message}")

    def settings(self) -> Settings:
        for key in self.data:
            if key not in KNOWN_SECTIONS:
                self.problem(
                    key, f"unknown section; expected one of {', '.join(sorted(KNOWN_SECTIONS))}"
                )
        settings = Settings(
            path=self.path,
            database_url=self._database(),
            sources=self._sources(),
            attribution=self._attribution(),
            pricing=self._pricing(),
            collection=self._collection(),
            raw=self.data,
            extras=self._features(),
        )
        if self.problems:
            raise ConfigError(str(self.path), self.problems)
        return settings

    def _features(self) -> dict[str, Any]:
        ctx = SectionContext(self.path, self.base, self.problems)
        return {name: _call_parser(name, self.data.get(name), ctx) for name in SECTION_PARSERS}

    # -- helpers ---------------------------------------------------------------
    def _table(self, name: str) -> dict[str, Any]:
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            self.problem(name, f"must be a table ([{name}]), got {type(value).__name__}")
            return {}
        return value

    def _known(self, section: str, table: dict[str, Any], keys: set[str]) -> None:
        for key in table:
            if key not in keys:
                self.problem(
                    f"{section}.{key}", f"unknown key; expected one of {', '.join(sorted(keys))}"
                )

    def _str(
        self, key: str, value: Any, default: str | None = None, *, empty_ok: bool = False
    ) -> str | None:
        if value is None:
            return default
        if not isinstance(value, str) or (not empty_ok and not value.strip()):
            self.problem(key, f"must be a non-empty string, got {value!r}")
            return default
        return value

    def _int(self, key: str, value: Any, default: int, *, minimum: int, maximum: int) -> int:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            self.problem(key, f"must be a whole number from {minimum} to {maximum}, got {value!r}")
            return default
        return value

    def _decimal(
        self, key: str, value: Any, *, minimum: Decimal, maximum: Decimal | None = None
    ) -> Decimal | None:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            self.problem(key, f"must be a number, got {value!r}")
            return None
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            self.problem(key, f"must be a number, got {value!r}")
            return None
        if not number.is_finite() or number < minimum or (maximum is not None and number > maximum):
            bound = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
            self.problem(key, f"must be a number {bound}, got {value!r}")
            return None
        return number

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
        self._known("database", table, {"url"})
        url = self._str("database.url", table.get("url"), "sqlite:///tracker.db")
        return resolve_sqlite_url(url, self.base)

    def _sources(self) -> tuple[Source, ...]:
        raw = self.data.get("sources", [])
        if not isinstance(raw, list) or not all(isinstance(s, dict) for s in raw):
            self.problem("sources", "must be an array of tables ([[sources]])")
            return ()
        sources, names = [], set()
        for i, table in enumerate(raw):
            key = f"sources[{i}]"
            self._known(key, table, {"name", "role_arn", "regions", "external_id"})
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
            if name:
                sources.append(Source(name, tuple(regions), role, external_id))
        return tuple(sources)

    def _attribution(self) -> Attribution:
        table = self._table("attribution")
        self._known("attribution", table, {"team_tag", "project_tag", "user_tag"})
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
                number = self._decimal(f"{key}.{region}", rate, minimum=Decimal(0))
                if number is not None:
                    rates[region] = number
        return rates

    def _pricing(self) -> PricingSettings:
        table = self._table("pricing")
        self._known("pricing", table, {
            "snapshot_dir", "overrides", "discount_pct", "local_storage_families",
            "storage_usd_per_gb_month", "s3_usd_per_gb_month",
        })  # fmt: skip
        default = PricingSettings()
        snapshot = (
            self._path("pricing.snapshot_dir", table.get("snapshot_dir")) or default.snapshot_dir
        )
        if not snapshot.is_dir():
            self.problem("pricing.snapshot_dir", f"{snapshot} is not a folder of price CSV files")
        overrides = self._path("pricing.overrides", table.get("overrides"))
        if overrides is not None:
            self._check_overrides(overrides)
        discount = default.discount_pct
        if "discount_pct" in table:
            number = self._decimal(
                "pricing.discount_pct",
                table["discount_pct"],
                minimum=Decimal(0),
                maximum=Decimal(100),
            )
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
        from tracker.cost.prices import read_price_csv

        try:
            read_price_csv(path)
        except PriceBookError as exc:
            self.problem("pricing.overrides", str(exc))

    def _collection(self) -> CollectionSettings:
        table = self._table("collection")
        self._known(
            "collection",
            table,
            {"overlap_seconds", "measure_artifacts", "page_size", "retry_mode", "max_attempts"},
        )
        default = CollectionSettings()
        measure = table.get("measure_artifacts", default.measure_artifacts)
        if not isinstance(measure, bool):
            self.problem("collection.measure_artifacts", f"must be true or false, got {measure!r}")
            measure = default.measure_artifacts
        mode = table.get("retry_mode", default.retry_mode)
        if mode not in RETRY_MODES:
            self.problem(
                "collection.retry_mode", f"must be one of {', '.join(RETRY_MODES)}, got {mode!r}"
            )
            mode = default.retry_mode
        return CollectionSettings(
            overlap_seconds=self._int(
                "collection.overlap_seconds",
                table.get("overlap_seconds"),
                default.overlap_seconds,
                minimum=0,
                maximum=86400,
            ),
            measure_artifacts=measure,
            page_size=self._int(
                "collection.page_size",
                table.get("page_size"),
                default.page_size,
                minimum=1,
                maximum=100,
            ),
            retry_mode=mode,
            max_attempts=self._int(
                "collection.max_attempts",
                table.get("max_attempts"),
                default.max_attempts,
                minimum=1,
                maximum=20,
            ),
        )


@dataclass
class SectionContext:
    """What a feature's section parser gets: where the file is, and where problems go."""

    path: Path | None
    base: Path
    problems: list[str]

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{key}: {message}")

    def resolve(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base / path


def _call_parser(section: str, value: Any, ctx: SectionContext) -> Any:
    import importlib

    module, _, function = SECTION_PARSERS[section].partition(":")
    return getattr(importlib.import_module(module), function)(value, ctx)


def _parse_sections(
    path: Path | None, data: Mapping[str, Any], sections: list[str]
) -> dict[str, Any]:
    base = path.resolve().parent if path else Path.cwd()
    problems: list[str] = []
    ctx = SectionContext(path, base, problems)
    parsed = {name: _call_parser(name, data.get(name), ctx) for name in sections}
    if problems:
        raise ConfigError(str(path or DEFAULT_CONFIG), problems)
    return parsed


def resolve_sqlite_url(url: str, base: Path) -> str:
    """Make a relative SQLite file path absolute against ``base``; other URLs pass through."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith("sqlite:////"):
        rest = url[len(prefix) :]
        if rest and rest != ":memory:" and not rest.startswith("file:"):
            return prefix + str((base / rest).resolve())
    return url
