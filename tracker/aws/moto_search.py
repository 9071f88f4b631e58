"""A test-and-demo shim giving moto's SageMaker ``Search`` the semantics AWS documents.

moto 5.x answers ``Search(Resource="TrainingJob")`` but (checked against moto 5.2.1,
``moto/sagemaker/models.py`` ``SageMakerModelBackend.search`` and ``responses.py``):

- ignores ``MaxResults`` and ``NextToken`` (every match in one answer, never a token);
- ignores ``SortBy`` and ``SortOrder`` (creation order);
- compares every operator other than ``Contains`` and ``NotEquals`` as ``Equals``
  (``GreaterThan``, ``LessThan``..., ``In``, ``Exists`` and ``NotExists`` included), and
  compares times and numbers as the text the request carries;
- ignores ``SearchExpression.Operator`` (``Or``) and ``SubExpressions``.

The API reference (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_Search.html,
``API_Filter.html``, ``API_SearchExpression.html``; the same text is in botocore's service
model) says instead, and this shim does, for ``Resource="TrainingJob"`` only:

- ``MaxResults`` 1..100 (no documented default; moto's own paginators use 100, kept here);
  ``NextToken`` continues the same expression and sort; a token is opaque text.
- ``SortBy`` any property, default ``LastModifiedTime``; ``SortOrder`` ``Ascending`` or
  ``Descending``, default ``Descending``. Ties are broken by the job name, so pages are stable.
- Operators: ``Equals``, ``NotEquals``, ``GreaterThan``, ``GreaterThanOrEqualTo``,
  ``LessThan``, ``LessThanOrEqualTo`` (numbers and times; "not supported for text
  properties"), ``Contains`` and ``In`` ("one of the comma delimited strings in Value"; text
  only), ``Exists``, ``NotExists``. A filter without an operator is ``Equals``.
- ``SearchExpression.Operator`` ``And`` (default) or ``Or`` over its ``Filters`` and
  ``SubExpressions``; ``NestedFilters`` are not implemented (the tracker sends none) and are
  refused, never silently ignored.
- Property names are dotted paths into the TrainingJob record (``ResourceConfig.InstanceType``)
  or ``Tags.<key>``; times compare as times (ISO 8601 text or epoch seconds in ``Value``).

What it does not model: Search's eventual consistency (moto answers from its store at once)
and request-rate limits. It changes nothing for the other resources: their calls go to
moto's own implementation.

Installed explicitly by :func:`install` (idempotent; :func:`uninstall` restores moto) —
never on import. It patches moto's response class, which both ``mock_aws`` and a
``ThreadedMotoServer`` in the same process use, so it serves both. The seeders of
:mod:`tracker.aws.simulate` call :func:`install` before they seed.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_RESULTS = 100
DEFAULT_MAX_RESULTS = 100
OPERATORS = frozenset(
    {
        "Equals", "NotEquals", "GreaterThan", "GreaterThanOrEqualTo", "LessThan",
        "LessThanOrEqualTo", "Contains", "Exists", "NotExists", "In",
    }
)  # fmt: skip
ORDERED = {
    "GreaterThan": lambda c: c > 0,
    "GreaterThanOrEqualTo": lambda c: c >= 0,
    "LessThan": lambda c: c < 0,
    "LessThanOrEqualTo": lambda c: c <= 0,
}
_ORIGINAL: dict[str, Callable[..., Any]] = {}


def install() -> None:
    """Give moto's Search the documented semantics for training jobs (idempotent)."""
    from moto.sagemaker.responses import SageMakerResponse

    if "search" in _ORIGINAL:
        return
    _ORIGINAL["search"] = SageMakerResponse.search
    SageMakerResponse.search = _search_response  # type: ignore[method-assign]


def uninstall() -> None:
    """Put moto's own Search back."""
    from moto.sagemaker.responses import SageMakerResponse

    original = _ORIGINAL.pop("search", None)
    if original is not None:
        SageMakerResponse.search = original  # type: ignore[method-assign]


def installed() -> bool:
    return "search" in _ORIGINAL


def _search_response(self: Any) -> Any:
    from moto.core.responses import ActionResult

    if self._get_param("Resource") != "TrainingJob":
        return _ORIGINAL["search"](self)
    return ActionResult(
        search_training_jobs(
            list(self.sagemaker_backend.training_jobs.values()),
            search_expression=self._get_param("SearchExpression"),
            sort_by=self._get_param("SortBy"),
            sort_order=self._get_param("SortOrder"),
            max_results=self._get_param("MaxResults"),
            next_token=self._get_param("NextToken"),
        )
    )


def search_training_jobs(
    jobs: list[Any],
    *,
    search_expression: Mapping[str, Any] | None = None,
    sort_by: str | None = None,
    sort_order: str | None = None,
    max_results: int | None = None,
    next_token: str | None = None,
) -> dict[str, Any]:
    """One Search page over moto's FakeTrainingJob objects, as AWS documents it."""
    from moto.sagemaker.exceptions import ValidationError

    limit = DEFAULT_MAX_RESULTS if max_results is None else int(max_results)
    if not 1 <= limit <= MAX_RESULTS:
        raise ValidationError(message=f"MaxResults must be between 1 and {MAX_RESULTS}")
    order = sort_order or "Descending"
    if order not in ("Ascending", "Descending"):
        raise ValidationError(message=f"SortOrder {order!r} is not Ascending or Descending")
    key = sort_by or "LastModifiedTime"
    if search_expression is not None:
        _check_expression(search_expression)
    matching = [
        job for job in jobs if search_expression is None or _matches(job, search_expression)
    ]
    matching.sort(key=lambda job: _sort_key(job, key), reverse=order == "Descending")
    start = _decode_token(next_token, ValidationError)
    page = matching[start : start + limit]
    result: dict[str, Any] = {"Results": [{"TrainingJob": _record(job)} for job in page]}
    if start + limit < len(matching):
        result["NextToken"] = _encode_token(start + limit)
    return result


def _check_expression(expression: Mapping[str, Any]) -> None:
    from moto.sagemaker.exceptions import ValidationError

    if expression.get("NestedFilters"):
        raise ValidationError(message="NestedFilters are not implemented by this moto shim")
    if expression.get("Operator", "And") not in ("And", "Or"):
        raise ValidationError(message=f"SearchExpression Operator {expression['Operator']!r}")
    for item in expression.get("Filters") or []:
        operator = item.get("Operator", "Equals")
        if operator not in OPERATORS:
            raise ValidationError(
                message=f"Operator {operator!r} is not one of {sorted(OPERATORS)}"
            )
        if operator not in ("Exists", "NotExists") and item.get("Value") is None:
            raise ValidationError(message=f"Filter on {item.get('Name')} needs a Value")
    for sub in expression.get("SubExpressions") or []:
        _check_expression(sub)


def _matches(job: Any, expression: Mapping[str, Any]) -> bool:
    tests = [_filter_matches(job, f) for f in expression.get("Filters") or []]
    tests += [_matches(job, sub) for sub in expression.get("SubExpressions") or []]
    return any(tests) if expression.get("Operator") == "Or" else all(tests)


def _filter_matches(job: Any, item: Mapping[str, Any]) -> bool:
    from moto.sagemaker.exceptions import ValidationError

    operator = item.get("Operator", "Equals")
    actual = _property(job, item["Name"])
    if operator == "Exists":
        return actual is not None
    if operator == "NotExists":
        return actual is None
    value = str(item["Value"])
    if operator in ("In", "Contains"):
        if actual is not None and not isinstance(actual, str):
            raise ValidationError(message=f"{operator} is only supported for text properties")
        if actual is None:
            return False
        return actual in value.split(",") if operator == "In" else value in actual
    if actual is None:
        return operator == "NotEquals"
    if operator in ORDERED and isinstance(actual, str):
        raise ValidationError(message=f"{operator} is not supported for text properties")
    comparison = _compare(actual, value)
    if operator == "Equals":
        return comparison == 0
    if operator == "NotEquals":
        return comparison != 0
    return ORDERED[operator](comparison)


def _property(job: Any, name: str) -> Any:
    """The value a dotted property name points at in the job's record, or None."""
    if name.startswith("Tags."):
        key = name[len("Tags.") :]
        return next((t.get("Value") for t in job.tags or [] if t.get("Key") == key), None)
    head, _, rest = name.partition(".")
    value: Any = getattr(job, _snake(head), None)
    if head == "TrainingJobArn":
        value = job.arn
    for part in rest.split(".") if rest else []:
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _compare(actual: Any, text: str) -> int:
    """-1, 0 or 1: ``actual`` against the filter's text, read in the type of ``actual``."""
    other: Any
    if isinstance(actual, datetime):
        mine, other = _aware(actual), _time(text)
    elif isinstance(actual, bool):
        mine, other = actual, text.strip().lower() == "true"
    elif isinstance(actual, int | float | Decimal):
        try:
            mine, other = Decimal(str(actual)), Decimal(text)
        except InvalidOperation:
            return 1  # a number never equals text that is not one
    else:
        mine, other = str(actual), text
    return (mine > other) - (mine < other)


def _time(text: str) -> datetime:
    text = text.strip()
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except ValueError:
        return _aware(datetime.fromisoformat(text.replace("Z", "+00:00")))


def _aware(value: datetime) -> datetime:
    # moto keeps naive UTC datetimes.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sort_key(job: Any, name: str) -> tuple[int, Any, str]:
    value = _property(job, name)
    if isinstance(value, datetime):
        value = _aware(value).timestamp()
    elif value is not None and not isinstance(value, int | float):
        value = str(value)
    # Missing values sort first (ascending); ties by name keep the pages stable.
    return (value is not None, value if value is not None else 0, job.training_job_name)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def _record(job: Any) -> dict[str, Any]:
    """The TrainingJob record of a SearchRecord: DescribeTrainingJob's fields plus Tags.

    moto's serializer keeps only the members of botocore's ``TrainingJob`` shape, so the
    fields Search lacks (ServerlessJobConfig, BillableTokenCount...) never reach the caller.
    """
    record = dict(job.response_object)
    record["Tags"] = list(job.tags or [])
    return record


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_token(token: str | None, error: type[Exception]) -> int:
    if not token:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
    except (ValueError, KeyError, TypeError):
        raise error(message=f"NextToken {token!r} is not valid") from None
