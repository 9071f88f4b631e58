"""The member accounts of an AWS Organization, for ``[[sources]]`` with ``organization = true``.

Called with the base credentials (the management account or a delegated administrator):
``ListAccounts`` for the whole organization, or ``ListAccountsForParent`` for each named
organizational unit (or root) and, recursively through ``ListOrganizationalUnitsForParent``,
every OU nested under it. Only ``ACTIVE`` accounts are returned (suspended and closing ones
have nothing to collect and refuse AssumeRole); ``include`` keeps only the listed ids,
``exclude`` drops them. Every call uses botocore's paginators.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from botocore.client import BaseClient

ACTIVE = "ACTIVE"
# Organizations is a global service answered in us-east-1 (aws partition).
ORGANIZATIONS_REGION = "us-east-1"
# OUs nest at most five levels below the root (AWS Organizations quotas); a deeper walk
# could only be a cycle in a faked response.
MAX_OU_DEPTH = 5


@dataclass(frozen=True)
class MemberAccount:
    """One account of the organization: its id, name and status (``ACTIVE``...)."""

    account_id: str
    name: str
    status: str


def member_accounts(
    client: BaseClient,
    *,
    ous: Iterable[str] = (),
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
) -> list[MemberAccount]:
    """The ACTIVE accounts to collect, each once, sorted by id."""
    parents = tuple(ous)
    listed = _under(client, parents) if parents else _all(client)
    keep, drop = set(include), set(exclude)
    found: dict[str, MemberAccount] = {}
    for item in listed:
        account = MemberAccount(str(item["Id"]), str(item.get("Name", "")), _status(item))
        if account.status != ACTIVE or account.account_id in drop:
            continue
        if keep and account.account_id not in keep:
            continue
        found[account.account_id] = account
    return [found[key] for key in sorted(found)]


def _status(item: dict) -> str:
    # "State" replaces the deprecated "Status" (from September 2026); either may be present.
    return str(item.get("State") or item.get("Status") or "")


def _all(client: BaseClient) -> Iterator[dict]:
    for page in client.get_paginator("list_accounts").paginate():
        yield from page.get("Accounts", [])


def _under(client: BaseClient, parents: tuple[str, ...]) -> Iterator[dict]:
    """Accounts directly in each parent and in every OU below it."""
    accounts = client.get_paginator("list_accounts_for_parent")
    children = client.get_paginator("list_organizational_units_for_parent")
    seen: set[str] = set()
    level = [p for p in dict.fromkeys(parents)]
    for _ in range(MAX_OU_DEPTH + 1):
        following: list[str] = []
        for parent in level:
            if parent in seen:
                continue
            seen.add(parent)
            for page in accounts.paginate(ParentId=parent):
                yield from page.get("Accounts", [])
            for page in children.paginate(ParentId=parent):
                following.extend(ou["Id"] for ou in page.get("OrganizationalUnits", []))
        if not following:
            return
        level = following
