"""Paging for the AWS operations botocore has no paginator for (Cost Explorer's GetCostAndUsage).

Every other listing uses ``client.get_paginator(operation)``; this is the one hand-written
token loop, so its rules (follow the token through empty pages, stop at a bound) live once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any


class PageLimitError(Exception):
    """More pages than the caller's bound: the request asks for too much at once."""

    def __init__(self, max_pages: int) -> None:
        super().__init__(f"more than {max_pages} pages")
        self.max_pages = max_pages


def follow_token(
    call: Callable[..., dict[str, Any]],
    request: Mapping[str, Any],
    token: str,
    *,
    max_pages: int,
) -> Iterator[dict[str, Any]]:
    """Every page of ``call(**request)``, passing each answer's ``token`` into the next request.

    An empty page that still carries a token is followed, not taken as the end (AWS and moto
    filter after paginating). Raises :class:`PageLimitError` rather than fetch page
    ``max_pages + 1``.
    """
    current = dict(request)
    for _ in range(max_pages):
        page = call(**current)
        yield page
        next_token = page.get(token)
        if not next_token:
            return
        current[token] = next_token
    raise PageLimitError(max_pages)
