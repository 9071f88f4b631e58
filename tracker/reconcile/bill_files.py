"""Reading the AWS bill from files: Cost and Usage Report 2.0 and FOCUS 1.x exports.

Parquet or CSV (gzipped or not), one file or many (a folder is read recursively; S3 objects
are listed by ``tracker.aws.billing`` and each streamed to a temporary file just before it is
read, deleted once read). At most ``tracker.bounds.BILL_FILES`` files make one bill. The
layout is detected from the columns: CUR 2.0 has ``line_item_*`` columns (the legacy
``lineItem/UsageType`` headers are accepted too), FOCUS has ``BilledCost`` and
``ChargePeriodStart``.

Only Amazon SageMaker lines are kept: CUR line item types Usage, DiscountedUsage and
SavingsPlanCoveredUsage; FOCUS charge category Usage. Lines are aggregated per (UTC day,
team, usage type, resource id, account, line type) into :class:`tracker.reconcile.rules.BillLine`.
Costs are read as exact decimals; a value that is not a number is an InputError naming the
file, the column and the value.

Files are never read whole: the layout is told from the CSV header or the Parquet schema
alone, then the rows are streamed in batches of at most ``tracker.bounds.BILL_BATCH_ROWS``
(pandas ``read_csv(chunksize=...)``, gzip decompressed as it is read; pyarrow
``ParquetFile.iter_batches``), only the columns the tracker reads. Only the running sums per
line key stay in memory; they are exact Decimals added in the file's row order, so any batch
size gives the same lines. A file whose columns are neither layout's says which columns it
has (the first few, control characters escaped) and which a CUR 2.0 or FOCUS file needs.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import re
import tempfile
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracker.bounds import BILL_BATCH_ROWS, BILL_FILES, day_after, whole
from tracker.errors import InputError, printable
from tracker.reconcile.rules import BillLine, classify_usage_type
from tracker.records import UNALLOCATED, decimal_or_none

if TYPE_CHECKING:
    import pandas as pd

CUR = "cur2"
FOCUS = "focus"
SAGEMAKER_PRODUCT_CODE = "AmazonSageMaker"
CUR_LINE_TYPES = ("Usage", "DiscountedUsage", "SavingsPlanCoveredUsage")
FOCUS_CHARGE_CATEGORY = "Usage"
SUFFIXES = (".parquet", ".csv.gz", ".csv", ".gz")

CUR_COLUMNS = (
    "line_item_line_item_type", "line_item_product_code", "line_item_usage_type",
    "line_item_usage_start_date", "line_item_unblended_cost", "line_item_net_unblended_cost",
    "line_item_resource_id", "line_item_usage_account_id", "pricing_public_on_demand_cost",
    "savings_plan_savings_plan_effective_cost", "reservation_effective_cost", "resource_tags",
    "product_servicecode",
)  # fmt: skip
CUR_REQUIRED = (
    "line_item_line_item_type", "line_item_usage_type", "line_item_usage_start_date",
    "line_item_unblended_cost",
)  # fmt: skip
FOCUS_COLUMNS = (
    "ChargeCategory", "ChargePeriodStart", "BilledCost", "ListCost", "EffectiveCost",
    "ServiceName", "ResourceId", "SubAccountId", "Tags", "x_UsageType", "x_ServiceCode",
)  # fmt: skip
FOCUS_REQUIRED = ("ChargeCategory", "ChargePeriodStart", "BilledCost")


@dataclass(frozen=True)
class BillFile:
    """One bill file: its name (a path or an s3:// URI) and where its bytes are: the path
    itself, ``data`` in memory, or ``fetch``, which writes them to a local file just before
    the file is read (an S3 object, streamed to a temporary file and deleted once read)."""

    name: str
    data: bytes | None = None
    fetch: Callable[[Path], None] | None = field(default=None, compare=False, repr=False)
    local: str | None = None


@dataclass
class BillRead:
    """What reading a set of bill files found."""

    lines: list[BillLine] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    layouts: set[str] = field(default_factory=set)
    rows_read: int = 0
    rows_kept: int = 0

    @property
    def first_day(self) -> date | None:
        return min((line.period_start for line in self.lines), default=None)

    @property
    def last_day(self) -> date | None:
        return max((line.period_start for line in self.lines), default=None)


def is_bill_file(name: str) -> bool:
    """A name with a bill file suffix (.parquet, .csv, .csv.gz, .gz)."""
    return name.lower().endswith(SUFFIXES)


def local_bill_files(path: str) -> list[BillFile]:
    """The bill files at a local path: the file itself, or every bill file under a folder (at
    most ``tracker.bounds.BILL_FILES`` of them; the search stops at the first one beyond)."""
    where = Path(path).expanduser()
    if where.is_file():
        return [BillFile(str(where))]
    if where.is_dir():
        files = (p for p in where.rglob("*") if is_bill_file(p.name) and p.is_file())
        found = sorted(itertools.islice(files, int(BILL_FILES.high) + 1))
        check_bill_files(f"--source {path}", len(found), "in this folder")
        if not found:
            raise InputError(
                f"--source {path}: no .parquet, .csv or .csv.gz files in this folder; expected "
                "CUR 2.0 or FOCUS export files"
            )
        return [BillFile(str(p)) for p in found]
    raise InputError(
        f"--source {path}: no such file or folder; expected 'ce', a CUR 2.0 / FOCUS file or "
        "folder, or an s3://bucket/prefix URI"
    )


def check_bill_files(label: str, found: int, where: str) -> None:
    """A source of more than ``BILL_FILES.high`` bill files is an InputError naming it;
    ``found`` is what a listing stopped at (one past the bound)."""
    if found > BILL_FILES.high:
        raise InputError(
            f"{label}: more than {BILL_FILES.high:,} bill files {where}; a reconciliation reads "
            f"at most {BILL_FILES.high:,} {BILL_FILES.unit}: point it at a narrower folder or "
            "prefix (one billing period's, say)"
        )


def read_bill(
    files: Iterable[BillFile],
    team_tag: str,
    source: str,
    *,
    batch_rows: int = int(BILL_BATCH_ROWS.high),
) -> BillRead:
    """Read every file and return its SageMaker lines, aggregated per day (see module doc).

    Each file is streamed in batches of at most ``batch_rows`` rows (``tracker.bounds.
    BILL_BATCH_ROWS``); only the running sums per line key stay in memory. Sums are exact
    Decimals added in the file's row order, so the result is the same for any batch size."""
    batch_rows = whole("bill batch rows", batch_rows, BILL_BATCH_ROWS)
    result = BillRead()
    totals: dict[tuple[Any, ...], list[Decimal]] = {}
    for listed in files:
        with _readable(listed) as bill_file:
            layout, batches = _open(bill_file, batch_rows)
            result.files.append(bill_file.name)
            result.layouts.add(layout)
            rows = _cur_rows if layout == CUR else _focus_rows
            with closing(batches):  # the file is closed at once, also when a row is bad
                for frame in batches:
                    result.rows_read += len(frame)
                    for key, list_usd, effective_usd in rows(frame, bill_file.name, team_tag):
                        result.rows_kept += 1
                        sums = totals.setdefault(key, [Decimal(0), Decimal(0)])
                        sums[0] += list_usd
                        sums[1] += effective_usd
    for (day, team, usage_type, resource_id, account_id, line_type), sums in sorted(
        totals.items(), key=lambda item: tuple("" if v is None else str(v) for v in item[0])
    ):
        result.lines.append(
            BillLine(
                source=source,
                period_start=day,
                period_end=day + timedelta(days=1),  # before date.max: _days checks
                team=team,
                usage_type=usage_type,
                kind=classify_usage_type(usage_type),
                list_usd=sums[0],
                effective_usd=sums[1],
                resource_id=resource_id,
                account_id=account_id,
                line_type=line_type,
            )
        )
    return result


@contextmanager
def _readable(bill_file: BillFile) -> Iterator[BillFile]:
    """``bill_file``, its bytes fetched first to a temporary file when it has ``fetch``; the
    temporary file is deleted once the file is read (also when reading it fails), so a
    reconciliation holds one fetched file on disk at a time and none in memory."""
    if bill_file.fetch is None:
        yield bill_file
        return
    with tempfile.TemporaryDirectory(prefix="tracker-bill-") as folder:
        local = Path(folder) / "object"
        bill_file.fetch(local)
        yield replace(bill_file, fetch=None, local=str(local))


# -- reading one file ----------------------------------------------------------------------
#: Column names a "not a bill file" error shows before "... (N more)", and the characters
#: of each name it shows (a message, not a limit on work).
SHOWN_COLUMNS = 8
SHOWN_NAME_CHARS = 60


def _open(bill_file: BillFile, batch_rows: int) -> tuple[str, Generator[pd.DataFrame, None, None]]:
    """The file's layout (CUR or FOCUS), from its header or schema alone, and its relevant
    columns as pandas DataFrames of at most ``batch_rows`` rows, read lazily."""
    name = bill_file.name
    lower = name.lower()
    if lower.endswith(".parquet"):
        kind, compression = "Parquet", None
    elif lower.endswith((".csv", ".csv.gz", ".gz")):
        kind, compression = "CSV", ("gzip" if lower.endswith(".gz") else None)
    else:
        raise InputError(f"{printable(name)}: not a bill file; expected .parquet, .csv or .csv.gz")
    with _reading(name, kind):
        names = (
            _parquet_names(bill_file) if kind == "Parquet" else _csv_names(bill_file, compression)
        )
    layout = _layout(name, names)
    wanted = [c for c in names if _wanted(c)]
    if kind == "Parquet":
        frames = _parquet_batches(bill_file, wanted, batch_rows)
    else:
        frames = _csv_batches(bill_file, compression, set(wanted), batch_rows)
    return layout, _renamed(_guarded(frames, name, kind))


@contextmanager
def _reading(name: str, kind: str) -> Iterator[None]:
    """Errors of pandas and pyarrow (many types for a bad file) as one-line InputErrors."""
    try:
        yield
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(f"{printable(name)}: file not found") from None
    except Exception as exc:  # noqa: BLE001 - pandas/pyarrow raise many types for a bad file
        raise InputError(
            f"{printable(name)}: cannot read as {kind} ({printable(_first_line(exc))})"
        ) from None


def _guarded(frames: Iterator[pd.DataFrame], name: str, kind: str) -> Iterator[pd.DataFrame]:
    """``frames``, with an error met while reading a later batch said like one met first."""
    with _reading(name, kind):
        yield from frames


def _renamed(frames: Iterator[pd.DataFrame]) -> Generator[pd.DataFrame, None, None]:
    for frame in frames:
        legacy = {c: _legacy_name(c) for c in frame.columns if "/" in str(c)}
        yield frame.rename(columns=legacy) if legacy else frame


def _layout(name: str, names: list[str]) -> str:
    """CUR or FOCUS by the column names (legacy CUR headers read as CUR 2.0 names); else an
    error naming the columns found (as in the file) and the columns expected."""
    columns = {_legacy_name(c) if "/" in c else c for c in names}
    if "line_item_usage_type" in columns:
        _require(name, names, columns, CUR_REQUIRED, "CUR 2.0")
        if not columns & {"line_item_product_code", "product_servicecode"}:
            raise InputError(
                f"{printable(name)}: CUR 2.0 file without column line_item_product_code"
            )
        return CUR
    if "BilledCost" in columns and "ChargePeriodStart" in columns:
        _require(name, names, columns, FOCUS_REQUIRED, "FOCUS")
        if not columns & {"ServiceName", "x_ServiceCode"}:
            raise InputError(f"{printable(name)}: FOCUS file without column ServiceName")
        return FOCUS
    raise InputError(
        f"{printable(name)}: neither a CUR 2.0 file (expected columns {', '.join(CUR_REQUIRED)}) "
        f"nor a FOCUS file (expected columns {', '.join(FOCUS_REQUIRED)}); "
        f"found columns: {shown_columns(names)}"
    )


def shown_columns(names: list[str]) -> str:
    """Column names for a message: in file order, each cut to SHOWN_NAME_CHARS and its control
    characters escaped (``tracker.errors.printable``, as every error message), the first
    SHOWN_COLUMNS and "... (N more)"; "none" for none."""
    if not names:
        return "none"
    shown = []
    for column in names[:SHOWN_COLUMNS]:
        text = str(column)  # cut before escaping, so no escape is cut in half
        cut = text if len(text) <= SHOWN_NAME_CHARS else text[: SHOWN_NAME_CHARS - 3] + "..."
        shown.append(printable(cut))
    more = len(names) - SHOWN_COLUMNS
    return ", ".join(shown) + (f", ... ({more:,} more)" if more > 0 else "")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _wanted(column: str) -> bool:
    return (
        column in CUR_COLUMNS
        or column in FOCUS_COLUMNS
        or column.startswith(("resource_tags", "resourceTags/", "lineItem/", "pricing/"))
        or column.startswith(("savingsPlan/", "reservation/", "product/"))
    )


def _handle(bill_file: BillFile) -> Any:
    """A fresh readable source: the path (or the local copy of a fetched object), or the
    bytes from their start."""
    if bill_file.data is not None:
        return io.BytesIO(bill_file.data)
    return bill_file.local or bill_file.name


def _parquet_names(bill_file: BillFile) -> list[str]:
    import pyarrow.parquet as pq

    return [str(n) for n in pq.read_schema(_handle(bill_file)).names]


def _parquet_batches(
    bill_file: BillFile, columns: list[str], batch_rows: int
) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    with pq.ParquetFile(_handle(bill_file)) as parquet:
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns):
            yield batch.to_pandas()


def _csv_names(bill_file: BillFile, compression: str | None) -> list[str]:
    import pandas as pd

    header = pd.read_csv(
        _handle(bill_file), dtype=str, keep_default_na=False, compression=compression, nrows=0
    )
    return [str(c) for c in header.columns]


def _csv_batches(
    bill_file: BillFile, compression: str | None, columns: set[str], batch_rows: int
) -> Iterator[pd.DataFrame]:
    import pandas as pd

    with pd.read_csv(
        _handle(bill_file),
        dtype=str,
        keep_default_na=False,
        compression=compression,
        usecols=lambda column: str(column) in columns,
        chunksize=batch_rows,
    ) as reader:
        yield from reader


def _legacy_name(column: str) -> str:
    """Legacy CUR headers (``lineItem/UsageType``) -> CUR 2.0 names (``line_item_usage_type``);
    ``resourceTags/user:team`` -> ``resource_tags_user_team``."""
    head, _, tail = column.partition("/")
    if head == "resourceTags":
        return "resource_tags_" + re.sub(r"[^0-9A-Za-z]", "_", tail)

    def snake(text: str) -> str:
        return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text).lower()

    return f"{snake(head)}_{snake(tail)}"


def _require(
    name: str, names: list[str], columns: set[str], required: tuple[str, ...], layout: str
) -> None:
    missing = [c for c in required if c not in columns]
    if missing:
        raise InputError(
            f"{printable(name)}: {layout} file without column(s) {', '.join(missing)}; "
            f"found columns: {shown_columns(names)}"
        )


# -- values ----------------------------------------------------------------------------------
def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str) and not value.strip():
        return True
    try:
        import pandas as pd

        return bool(pd.isna(value)) if not isinstance(value, list | tuple | dict) else False
    except (TypeError, ValueError):
        return False


def _decimal(value: Any, name: str, column: str) -> Decimal | None:
    """A cost cell as an exact Decimal; None when empty; InputError when not a number."""
    if _blank(value):
        return None
    if isinstance(value, Decimal):
        return value
    # a cell of another type (a numpy scalar, say) is read through its text
    number = decimal_or_none(value if isinstance(value, int | float) else str(value), finite=False)
    if number is None:
        raise InputError(f"{name}: {column}: {value!r} is not a number")
    if not number.is_finite():
        raise InputError(f"{name}: {column}: {value!r} is not a finite number")
    return number


def _days(frame: pd.DataFrame, column: str, name: str) -> list[date]:
    """A timestamp column as UTC days; InputError naming the first bad value."""
    import pandas as pd

    stamps = pd.to_datetime(frame[column], utc=True, errors="coerce", format="mixed")
    bad = stamps.isna()
    if bad.any():
        value = frame[column][bad].iloc[0]
        raise InputError(f"{name}: {column}: {value!r} is not a date or time; expected ISO 8601")
    days = [stamp.date() for stamp in stamps]
    if days and day_after(max(days)) is None:  # a line ends the day after its day: none follows
        value = frame[column].iloc[days.index(max(days))]
        raise InputError(
            f"{name}: {column}: {value!r} is the calendar's last day; a bill line ends the "
            "day after its usage day, so usage must be dated before 9999-12-31"
        )
    return days


def _text(value: Any) -> str:
    return "" if _blank(value) else str(value).strip()


def tag_map(value: Any) -> dict[str, str]:
    """A tags cell as a dict: a mapping, a list of (key, value) pairs (Parquet maps), or JSON."""
    if _blank(value):
        return {}
    if isinstance(value, Mapping):
        return {str(k): _text(v) for k, v in value.items()}
    if isinstance(value, list | tuple) or hasattr(value, "tolist"):
        items = value.tolist() if hasattr(value, "tolist") else value
        pairs = {}
        for item in items:
            if isinstance(item, Mapping) and "key" in item:
                pairs[str(item["key"])] = _text(item.get("value"))
            elif isinstance(item, list | tuple) and len(item) == 2:
                pairs[str(item[0])] = _text(item[1])
        return pairs
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return {}
        return {str(k): _text(v) for k, v in parsed.items()} if isinstance(parsed, dict) else {}
    return {}


def _team(tags: Mapping[str, str], keys: tuple[str, ...]) -> str:
    for key in keys:
        value = tags.get(key)
        if value:
            return value
    lowered = {k.lower(): v for k, v in tags.items()}
    for key in keys:
        value = lowered.get(key.lower())
        if value:
            return value
    return UNALLOCATED


# -- CUR 2.0 ---------------------------------------------------------------------------------
def _cur_rows(
    frame: pd.DataFrame, name: str, team_tag: str
) -> Iterator[tuple[tuple[Any, ...], Decimal, Decimal]]:
    columns = set(frame.columns)
    if "line_item_product_code" in columns:
        product = frame["line_item_product_code"]
    elif "product_servicecode" in columns:
        product = frame["product_servicecode"]
    else:
        raise InputError(f"{name}: CUR 2.0 file without column line_item_product_code")
    keep = product.astype(str).str.strip().eq(SAGEMAKER_PRODUCT_CODE) & frame[
        "line_item_line_item_type"
    ].astype(str).str.strip().isin(CUR_LINE_TYPES)
    frame = frame[keep]
    if frame.empty:
        return
    days = _days(frame, "line_item_usage_start_date", name)
    legacy_tag = f"resource_tags_user_{re.sub(r'[^0-9A-Za-z]', '_', team_tag)}"
    keys = (f"user_{team_tag}", team_tag, f"user:{team_tag}")
    records = frame.to_dict("records")
    for day, row in zip(days, records, strict=True):
        line_type = _text(row["line_item_line_item_type"])
        unblended = _decimal(row["line_item_unblended_cost"], name, "line_item_unblended_cost")
        unblended = unblended if unblended is not None else Decimal(0)
        list_usd = _cell(row, "pricing_public_on_demand_cost", name)
        effective = _cur_effective(row, line_type, name)
        tags = tag_map(row.get("resource_tags"))
        if legacy_tag in row and _text(row[legacy_tag]):
            tags.setdefault(f"user_{team_tag}", _text(row[legacy_tag]))
        key = (
            day,
            _team(tags, keys),
            _text(row["line_item_usage_type"]),
            _text(row.get("line_item_resource_id")) or None,
            _text(row.get("line_item_usage_account_id")) or None,
            line_type,
        )
        yield (
            key,
            list_usd if list_usd is not None else unblended,
            effective if effective is not None else unblended,
        )


def _cell(row: Mapping[str, Any], column: str, name: str) -> Decimal | None:
    return _decimal(row[column], name, column) if column in row else None


def _cur_effective(row: Mapping[str, Any], line_type: str, name: str) -> Decimal | None:
    """Savings Plan or reservation effective cost for covered usage, else net unblended."""
    specific = {
        "SavingsPlanCoveredUsage": "savings_plan_savings_plan_effective_cost",
        "DiscountedUsage": "reservation_effective_cost",
    }.get(line_type)
    for column in (specific, "line_item_net_unblended_cost"):
        if column:
            value = _cell(row, column, name)
            if value is not None:
                return value
    return None


# -- FOCUS 1.x -------------------------------------------------------------------------------
def _focus_rows(
    frame: pd.DataFrame, name: str, team_tag: str
) -> Iterator[tuple[tuple[Any, ...], Decimal, Decimal]]:
    columns = set(frame.columns)
    category = frame["ChargeCategory"].astype(str).str.strip().eq(FOCUS_CHARGE_CATEGORY)
    if "x_ServiceCode" in columns:
        service = frame["x_ServiceCode"].astype(str).str.strip().eq(SAGEMAKER_PRODUCT_CODE)
        if "ServiceName" in columns:
            service |= frame["ServiceName"].astype(str).str.contains("SageMaker", case=False)
    elif "ServiceName" in columns:
        service = frame["ServiceName"].astype(str).str.contains("SageMaker", case=False)
    else:
        raise InputError(f"{name}: FOCUS file without column ServiceName")
    frame = frame[category & service]
    if frame.empty:
        return
    days = _days(frame, "ChargePeriodStart", name)
    keys = (team_tag, f"user:{team_tag}", f"user_{team_tag}")
    for day, row in zip(days, frame.to_dict("records"), strict=True):
        billed = _cell(row, "BilledCost", name) or Decimal(0)
        list_usd = _cell(row, "ListCost", name)
        effective = _cell(row, "EffectiveCost", name)
        resource = _text(row.get("ResourceId")) or None
        usage_type = _text(row.get("x_UsageType")) or _focus_usage_type(resource)
        key = (
            day,
            _team(tag_map(row.get("Tags")), keys),
            usage_type,
            resource,
            _text(row.get("SubAccountId")) or None,
            FOCUS_CHARGE_CATEGORY,
        )
        yield (
            key,
            list_usd if list_usd is not None else billed,
            effective if effective is not None else billed,
        )


# SageMaker resources that are not training: their cost is never a training job's.
_NOT_TRAINING = (
    ":endpoint/", ":endpoint-config/", ":notebook-instance/", ":processing-job/",
    ":transform-job/", ":app/", ":domain/", ":space/", ":inference-component/", ":cluster/",
)  # fmt: skip
NO_USAGE_TYPE = "Train:(no usage type in file)"


def _focus_usage_type(resource: str | None) -> str:
    """A FOCUS line without ``x_UsageType`` (FOCUS itself has no usage type column): unless its
    resource is a SageMaker resource that does not train, it is counted as training of an
    unrecognised kind (and reported), never dropped."""
    lowered = (resource or "").lower()
    if any(marker in lowered for marker in _NOT_TRAINING):
        return ""
    return NO_USAGE_TYPE
