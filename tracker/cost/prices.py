"""The price book: which on-demand training, storage and token rate applies to a job.

Rates come from CSV files, later layers winning per (region, instance type):

1. ``training-on-demand.csv`` shipped in the package (``tracker/cost/data``, traced rates
   only, read through ``importlib.resources`` so an installed wheel needs no source tree);
2. the newest ``refreshed-YYYYMMDD.csv`` in the snapshot folder, a state folder outside the
   package (written by ``tracker prices refresh``);
3. the overrides file (same columns), if one is configured.

Storage rates layer the same way: shipped ``storage.csv`` < the newest
``refreshed-storage-YYYYMMDD.csv`` in the snapshot folder (same columns as ``storage.csv``)
< the ``[pricing]`` storage and S3 settings.

A (region, type) in none of them has no rate: callers flag the job unpriced, never
cost it at zero. Values are parsed as ``Decimal`` from the CSV text, never via float.
No boto3 here; the Price List API lives in ``tracker.aws.pricing``.
"""

from __future__ import annotations

import csv
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from tracker import bounds
from tracker.bounds import HOURLY_RATE_USD, RATE_USD
from tracker.errors import InputError, PriceBookError
from tracker.records import INSTANCE_TYPE_RE, REGION_RE, JobRecord, Rates

TRAINING_FILE = "training-on-demand.csv"
STORAGE_FILE = "storage.csv"
TOKENS_FILE = "tokens.csv"
SNAPSHOT_COLUMNS = (
    "region",
    "instance_type",
    "usd_per_hour",
    "source",
    "source_date",
    "confidence",
)
PRICE_COLUMNS = ("region", "instance_type", "usd_per_hour")
STORAGE_COLUMNS = ("region", "kind", "usd_per_gb_month")
STORAGE_SNAPSHOT_COLUMNS = (
    "region",
    "kind",
    "usd_per_gb_month",
    "source",
    "source_date",
    "confidence",
)
TOKEN_COLUMNS = ("region", "base_model", "usd_per_million_tokens")
ML_STORAGE = "ml-storage"
S3_STANDARD = "s3-standard"
STORAGE_KINDS = (ML_STORAGE, S3_STANDARD)
ANY_MODEL = "*"
# Refreshed rows come straight from the AWS Price List API, the authoritative source.
REFRESHED_CONFIDENCE = "high"

_DECIMAL_RE = re.compile(r"^[0-9]+(\.[0-9]+)?$")
_REFRESHED_RE = re.compile(r"^refreshed-[0-9]{8}\.csv$")
_REFRESHED_STORAGE_RE = re.compile(r"^refreshed-storage-[0-9]{8}\.csv$")
_BASE_MODEL_RE = re.compile(r"^\S+$")


@dataclass(frozen=True)
class PriceRow:
    """One on-demand training rate: USD per instance-hour for (region, instance type)."""

    region: str
    instance_type: str
    usd_per_hour: Decimal
    source: str = ""
    source_date: str = ""


@dataclass(frozen=True)
class StorageRow:
    """One storage rate: USD per GB-month for (region, kind), kind one of STORAGE_KINDS."""

    region: str
    kind: str
    usd_per_gb_month: Decimal
    source: str = ""
    source_date: str = ""


def shipped_prices() -> Traversable:
    """The price files shipped inside the package (``tracker/cost/data``)."""
    return resources.files("tracker.cost") / "data"


def _error(path: Traversable, line: int, field: str, problem: str) -> PriceBookError:
    return PriceBookError(f"{path}: line {line}: {field}: {problem}")


# What a price-file cell must look like, by column; the problem names what was expected.
_REGION_CELL = (REGION_RE, "is not an AWS region code; expected one like us-east-1")
_INSTANCE_CELL = (
    INSTANCE_TYPE_RE,
    "is not a SageMaker instance type; expected ml.<family>.<size> like ml.g5.2xlarge",
)
_USD_CELL = (_DECIMAL_RE, "is not a non-negative decimal; expected US dollars like 1.408")


def _cell(
    path: Traversable, line: int, field: str, value: str, check: tuple[re.Pattern[str], str]
) -> str:
    """``value`` when it matches its column's pattern; else the error naming file, line, field."""
    pattern, problem = check
    if not pattern.match(value):
        raise _error(path, line, field, f"{value!r} {problem}")
    return value


def _region(path: Traversable, line: int, value: str) -> str:
    return _cell(path, line, "region", value, _REGION_CELL)


def _instance_type(path: Traversable, line: int, value: str) -> str:
    return _cell(path, line, "instance_type", value, _INSTANCE_CELL)


#: The range each rate column is checked against (tracker.bounds).
_RATE_BOUNDS = {"usd_per_hour": HOURLY_RATE_USD}


def _usd(path: Traversable, line: int, field: str, value: str) -> Decimal:
    """A rate cell: a plain decimal within its bound (``HOURLY_RATE_USD`` for instance-hours,
    ``RATE_USD`` for GB-months and million tokens); else one line naming file, line, column."""
    text = _cell(path, line, field, value, _USD_CELL)
    try:
        return bounds.decimal(
            f"{path}: line {line}: {field}:", text, _RATE_BOUNDS.get(field, RATE_USD)
        )
    except InputError as exc:
        raise PriceBookError(str(exc)) from None


def _price_row(path: Traversable, line: int, cells: Mapping[str, str]) -> PriceRow:
    """One instance rate from its cells, each checked as a price file's column is."""
    return PriceRow(
        region=_region(path, line, cells["region"]),
        instance_type=_instance_type(path, line, cells["instance_type"]),
        usd_per_hour=_usd(path, line, "usd_per_hour", cells["usd_per_hour"]),
        source=cells.get("source", ""),
        source_date=cells.get("source_date", ""),
    )


def _read_table(
    path: Traversable, required: tuple[str, ...]
) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, stripped cells by column) for each data row of a CSV file."""
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise PriceBookError(
            f"{path}: file not found; expected a CSV price file with columns {','.join(required)}"
        ) from None
    except UnicodeDecodeError:
        raise PriceBookError(
            f"{path}: cannot read: not UTF-8 text; expected a CSV file "
            f"with columns {','.join(required)}"
        ) from None
    except OSError as exc:
        raise PriceBookError(f"{path}: cannot read: {exc.strerror or exc}") from None
    reader = csv.reader(text.splitlines(keepends=True))
    try:
        header = [cell.strip() for cell in next(reader)]
    except StopIteration:
        raise _error(
            path, 1, "header", f"file is empty; expected a header row {','.join(required)}"
        ) from None
    except csv.Error as exc:
        raise _error(path, 1, "header", f"not valid CSV ({exc})") from None
    missing = [name for name in required if name not in header]
    if missing:
        raise _error(
            path,
            1,
            "header",
            f"missing column(s) {','.join(missing)}; expected at least {','.join(required)}",
        )
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise _error(
            path,
            1,
            "header",
            f"column(s) {','.join(repeated)} appear more than once; expected each column once",
        )
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _error(path, reader.line_num, "row", f"not valid CSV ({exc})") from None
        if not cells:
            continue
        if len(cells) != len(header):
            raise _error(
                path,
                reader.line_num,
                "row",
                f"has {len(cells)} fields but the "
                f"header has {len(header)}; expected one value per column "
                "(quote values that contain commas)",
            )
        yield (
            reader.line_num,
            {name: cell.strip() for name, cell in zip(header, cells, strict=True)},
        )


def _read_training(path: Traversable) -> list[tuple[int, PriceRow]]:
    rows: list[tuple[int, PriceRow]] = []
    first_line: dict[tuple[str, str], int] = {}
    for line, cells in _read_table(path, PRICE_COLUMNS):
        row = _price_row(path, line, cells)
        key = (row.region, row.instance_type)
        if key in first_line:
            raise _error(
                path,
                line,
                "instance_type",
                f"duplicate rate for {row.region} "
                f"{row.instance_type} (first on line {first_line[key]}); "
                "expected one row per region and instance type",
            )
        first_line[key] = line
        rows.append((line, row))
    return rows


def read_price_csv(path: Path) -> list[PriceRow]:
    """Read and validate a training price file (shipped, refreshed or overrides).

    Raises PriceBookError with one line, ``<path>: line N: <field>: <problem>``,
    on the first bad line, or naming the file when it is missing or unreadable.
    """
    return [row for _, row in _read_training(Path(path))]


def _read_storage(path: Traversable) -> Iterator[tuple[int, str, str, Decimal, str]]:
    seen: dict[tuple[str, str], int] = {}
    for line, cells in _read_table(path, STORAGE_COLUMNS):
        region = _region(path, line, cells["region"])
        kind = cells["kind"]
        if kind not in STORAGE_KINDS:
            raise _error(
                path,
                line,
                "kind",
                f"{kind!r} is not a storage kind; expected one of {', '.join(STORAGE_KINDS)}",
            )
        usd = _usd(path, line, "usd_per_gb_month", cells["usd_per_gb_month"])
        if (region, kind) in seen:
            raise _error(
                path,
                line,
                "kind",
                f"duplicate {kind} rate for {region} (first on "
                f"line {seen[region, kind]}); expected one row per region and kind",
            )
        seen[region, kind] = line
        yield line, region, kind, usd, cells.get("source", "")


def _read_tokens(path: Traversable) -> Iterator[tuple[int, str, str, Decimal, str]]:
    seen: dict[tuple[str, str], int] = {}
    for line, cells in _read_table(path, TOKEN_COLUMNS):
        region = _region(path, line, cells["region"])
        model = cells["base_model"]
        if not _BASE_MODEL_RE.match(model):
            raise _error(
                path,
                line,
                "base_model",
                f"{model!r} is not a base model id; "
                "expected the model id or ARN without spaces, or * for any model",
            )
        usd = _usd(path, line, "usd_per_million_tokens", cells["usd_per_million_tokens"])
        if (region, model) in seen:
            raise _error(
                path,
                line,
                "base_model",
                f"duplicate rate for {region} {model} "
                f"(first on line {seen[region, model]}); expected one row per "
                "region and base model",
            )
        seen[region, model] = line
        yield line, region, model, usd, cells.get("source", "")


def _origin(path: Traversable, line: int, source: str) -> str:
    return f"{path} line {line}" + (f" ({source})" if source else "")


def _decimal(value: object) -> Decimal:
    # str() first so a float from a config file becomes its shortest decimal text.
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _newest(snapshot_dir: Path, pattern: re.Pattern[str]) -> Path | None:
    snapshot_dir = Path(snapshot_dir)
    if not snapshot_dir.exists():
        return None
    if not snapshot_dir.is_dir():
        raise PriceBookError(
            f"{snapshot_dir}: not a folder; expected the folder of refreshed-YYYYMMDD.csv "
            "price snapshots ([pricing] snapshot_dir)"
        )
    found = [p for p in snapshot_dir.iterdir() if pattern.match(p.name)]
    return max(found, key=lambda p: p.name) if found else None


def newest_refreshed(snapshot_dir: Path) -> Path | None:
    """The newest ``refreshed-YYYYMMDD.csv`` in the snapshot folder; None when there is none
    (or no folder yet: ``tracker prices refresh`` creates it)."""
    return _newest(snapshot_dir, _REFRESHED_RE)


def newest_refreshed_storage(snapshot_dir: Path) -> Path | None:
    """The newest ``refreshed-storage-YYYYMMDD.csv`` (storage rates a refresh found), or None."""
    return _newest(snapshot_dir, _REFRESHED_STORAGE_RE)


class PriceBook:
    """Rates looked up by region and instance type (or storage kind, or base model)."""

    def __init__(
        self,
        hourly: Mapping[tuple[str, str], Decimal],
        *,
        storage: Mapping[str, Decimal] = {},  # noqa: B006 - read only
        s3: Mapping[str, Decimal] = {},  # noqa: B006
        tokens: Mapping[tuple[str, str], Decimal] = {},  # noqa: B006
        sources: Mapping[tuple[str, str], str] = {},  # noqa: B006
        files: Iterable[Traversable] = (),
    ):
        self._hourly = dict(hourly)
        self._storage = dict(storage)
        self._s3 = dict(s3)
        self._tokens = dict(tokens)
        self._sources = dict(sources)
        self.files: tuple[Traversable, ...] = tuple(files)  # training files, lowest first

    @classmethod
    def load(
        cls,
        snapshot_dir: Path | None = None,
        overrides: Path | None = None,
        *,
        shipped: Traversable | None = None,
        storage_overrides: Mapping[str, Decimal] = {},  # noqa: B006
        s3_overrides: Mapping[str, Decimal] = {},  # noqa: B006
        token_overrides: Mapping[tuple[str, str], Decimal] = {},  # noqa: B006
    ) -> PriceBook:
        """Load shipped < newest refreshed snapshot < overrides file, then the mappings.

        ``shipped`` (the package's price files unless given) must hold
        ``training-on-demand.csv``; its ``storage.csv`` and ``tokens.csv`` are read when
        present. ``snapshot_dir`` is the folder ``tracker prices refresh`` writes to: its
        newest ``refreshed-YYYYMMDD.csv`` is layered on top (a folder not made yet has none),
        and its newest ``refreshed-storage-YYYYMMDD.csv`` on top of ``storage.csv``.
        ``storage_overrides``/``s3_overrides`` map region -> USD per GB-month;
        ``token_overrides`` maps (region, base model or "*") -> USD per million tokens; each
        wins over the files.
        """
        shipped = shipped_prices() if shipped is None else shipped
        if not shipped.is_dir():
            raise PriceBookError(
                f"{shipped}: price snapshot directory not found; "
                f"expected a directory holding {TRAINING_FILE}"
            )
        files: list[Traversable] = [shipped / TRAINING_FILE]
        refreshed = newest_refreshed(snapshot_dir) if snapshot_dir is not None else None
        if refreshed is not None:
            files.append(refreshed)
        if overrides is not None:
            files.append(Path(overrides))
        hourly: dict[tuple[str, str], Decimal] = {}
        sources: dict[tuple[str, str], str] = {}
        for path in files:
            for line, row in _read_training(path):
                key = (row.region, row.instance_type)
                hourly[key] = row.usd_per_hour
                sources[key] = _origin(path, line, row.source)

        storage: dict[str, Decimal] = {}
        s3: dict[str, Decimal] = {}
        storage_files: list[Traversable] = []
        if (shipped / STORAGE_FILE).is_file():
            storage_files.append(shipped / STORAGE_FILE)
        refreshed_storage = (
            newest_refreshed_storage(snapshot_dir) if snapshot_dir is not None else None
        )
        if refreshed_storage is not None:
            storage_files.append(refreshed_storage)
        for path in storage_files:
            for _, region, kind, usd, _ in _read_storage(path):
                (storage if kind == ML_STORAGE else s3)[region] = usd
        storage.update({r: _decimal(v) for r, v in storage_overrides.items()})
        s3.update({r: _decimal(v) for r, v in s3_overrides.items()})

        tokens: dict[tuple[str, str], Decimal] = {}
        if (shipped / TOKENS_FILE).is_file():
            for _, region, model, usd, _ in _read_tokens(shipped / TOKENS_FILE):
                tokens[region, model] = usd
        tokens.update({key: _decimal(v) for key, v in token_overrides.items()})
        return cls(hourly, storage=storage, s3=s3, tokens=tokens, sources=sources, files=files)

    def hourly(self, region: str, instance_type: str) -> Decimal | None:
        """On-demand training USD per instance-hour, or None when unpriced."""
        return self._hourly.get((region, instance_type))

    def source(self, region: str, instance_type: str) -> str | None:
        """Which file and line the rate came from, with that row's source text."""
        return self._sources.get((region, instance_type))

    def priced_pairs(self) -> list[tuple[str, str]]:
        """Every (region, instance type) with a training rate, sorted."""
        return sorted(self._hourly)

    def storage_usd_per_gb_month(self, region: str) -> Decimal | None:
        """Training ML storage volume USD per GB-month, or None when unknown."""
        return self._storage.get(region)

    def s3_usd_per_gb_month(self, region: str) -> Decimal | None:
        """S3 Standard USD per GB-month, or None when unknown."""
        return self._s3.get(region)

    def tokens_usd_per_million(self, region: str, base_model: str | None) -> Decimal | None:
        """Serverless training USD per million tokens: the exact base model, else "*"."""
        if base_model is not None and (region, base_model) in self._tokens:
            return self._tokens[region, base_model]
        return self._tokens.get((region, ANY_MODEL))

    def rates_for(self, job: JobRecord, discount_pct: Decimal = Decimal(0)) -> Rates:
        """The rates one job needs; a billed type with no price is left out of ``hourly``."""
        hourly: dict[str, Decimal] = {}
        for group in job.billed_groups():
            rate = self.hourly(job.region, group.instance_type)
            if rate is not None:
                hourly[group.instance_type] = rate
        tokens = None
        if job.is_serverless:
            tokens = self.tokens_usd_per_million(job.region, job.serverless_base_model_arn)
        return Rates(
            hourly=hourly,
            storage_usd_per_gb_month=self.storage_usd_per_gb_month(job.region),
            s3_usd_per_gb_month=self.s3_usd_per_gb_month(job.region),
            usd_per_million_tokens=tokens,
            discount_pct=discount_pct,
        )

    def unpriced_types(self, pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """The (region, instance type) pairs without a training rate, sorted, each once."""
        return sorted({pair for pair in pairs if self.hourly(*pair) is None})


def _plain(value: Decimal) -> str:
    """Decimal as plain text without exponent or trailing zeros: 1.5150000000 -> 1.515."""
    return format(value.normalize(), "f")


def _snapshot_day(now: datetime) -> str:
    day = now.astimezone(UTC) if now.tzinfo else now
    return f"{day:%Y%m%d}"


def _write_atomically(target: Path, header: Iterable[str], rows: Iterable[list[str]]) -> None:
    """Write a CSV file so a reader sees the old file or the whole new one, never a part."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".refreshed-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(list(header))
            writer.writerows(rows)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_snapshot(rows: list[PriceRow], snapshot_dir: Path, now: datetime) -> Path:
    """Write ``refreshed-YYYYMMDD.csv`` (UTC date of ``now``) atomically; return its path.

    Rows are validated like a price file and written sorted by region and type, with
    the columns of ``training-on-demand.csv``.
    """
    target = Path(snapshot_dir) / f"refreshed-{_snapshot_day(now)}.csv"
    ordered = sorted(rows, key=lambda r: (r.region, r.instance_type))
    seen: dict[tuple[str, str], int] = {}
    for line, row in enumerate(ordered, start=2):
        cells = {"region": row.region, "instance_type": row.instance_type}
        _price_row(target, line, cells | {"usd_per_hour": _plain(row.usd_per_hour)})
        key = (row.region, row.instance_type)
        if key in seen:
            raise _error(
                target,
                line,
                "instance_type",
                f"duplicate rate for {key[0]} "
                f"{key[1]}; expected one row per region and instance type",
            )
        seen[key] = line
    _write_atomically(
        target,
        SNAPSHOT_COLUMNS,
        (
            [
                row.region,
                row.instance_type,
                _plain(row.usd_per_hour),
                row.source,
                row.source_date,
                REFRESHED_CONFIDENCE,
            ]
            for row in ordered
        ),
    )
    return target


def write_storage_snapshot(rows: list[StorageRow], snapshot_dir: Path, now: datetime) -> Path:
    """Write ``refreshed-storage-YYYYMMDD.csv`` atomically, in ``storage.csv``'s columns.

    Rows are validated as ``storage.csv`` rows are (region code, kind, plain decimal, one
    row per region and kind) before anything is written.
    """
    target = Path(snapshot_dir) / f"refreshed-storage-{_snapshot_day(now)}.csv"
    ordered = sorted(rows, key=lambda r: (r.region, r.kind))
    seen: dict[tuple[str, str], int] = {}
    for line, row in enumerate(ordered, start=2):
        _region(target, line, row.region)
        if row.kind not in STORAGE_KINDS:
            raise _error(
                target,
                line,
                "kind",
                f"{row.kind!r} is not a storage kind; expected one of {', '.join(STORAGE_KINDS)}",
            )
        _usd(target, line, "usd_per_gb_month", _plain(row.usd_per_gb_month))
        key = (row.region, row.kind)
        if key in seen:
            raise _error(
                target,
                line,
                "kind",
                f"duplicate {row.kind} rate for {row.region}; expected one row per region and kind",
            )
        seen[key] = line
    _write_atomically(
        target,
        STORAGE_SNAPSHOT_COLUMNS,
        (
            [
                row.region,
                row.kind,
                _plain(row.usd_per_gb_month),
                row.source,
                row.source_date,
                REFRESHED_CONFIDENCE,
            ]
            for row in ordered
        ),
    )
    return target
