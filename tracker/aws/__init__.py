"""The AWS edge: the only package that imports boto3 or botocore.

Callers outside this package catch :data:`AWS_ERRORS` and describe them with
:func:`describe_error`, so they never import botocore themselves.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

#: Everything an AWS call can raise on purpose: error responses and transport failures.
AWS_ERRORS: tuple[type[Exception], ...] = (ClientError, BotoCoreError)


def error_code(exc: BaseException) -> str:
    """The AWS error code (``AccessDenied``, ``ThrottlingException``...) or the class name."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or type(exc).__name__)
    return type(exc).__name__


def describe_error(exc: BaseException) -> str:
    """One line naming the error code and what AWS said, for summaries and the store."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        operation = getattr(exc, "operation_name", "") or "call"
        message = error.get("Message") or ""
        head = f"{error_code(exc)} on {operation}"
        return f"{head}: {message}" if message else head
    return f"{type(exc).__name__}: {exc}"
