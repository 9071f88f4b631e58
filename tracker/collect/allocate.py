"""Allocation rules (``[[allocation.rules]]``, docs/allocation.md): a team, and optionally a
project, for the jobs that have no team tag, chosen by what the job's stored record says.

Pure: a :class:`JobRecord` and the rules in, the record with ``team``, ``project`` and
``team_source`` set out. The first rule whose every match key matches wins; a job with a team
tag (``team_source`` ``tag``) is never touched, and a rule's project is set only on a job with
none. ``team_source`` then names the rule. Applied when a job is collected
(``tracker.collect.service``) and, from the stored tags, by every recost
(:func:`reattribute`), so editing or removing a rule moves the jobs it named.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from fnmatch import fnmatchcase

from tracker.collect.parse import STUDIO_USER_TAG, Attribution, attribute
from tracker.records import TEAM_FROM_TAG, UNALLOCATED, JobRecord

# The tag SageMaker Studio puts on the resources it creates (training jobs included):
# ``arn:aws:sagemaker:<region>:<account>:domain/<domain id>``; beside it
# ``sagemaker:user-profile-arn`` (``...:user-profile/<domain id>/<profile name>``) names the
# profile (AWS SageMaker developer guide, "AWS generated tags").
DOMAIN_TAG = "sagemaker:domain-arn"
TAG_PREFIX = "tag:"
GLOB_CHARACTERS = frozenset("*?[")
#: A rule's match keys: what each reads of the job and how its pattern compares.
MATCH_KEYS = {
    "name_glob": ("name", "glob"),
    "name_regex": ("name", "regex"),
    "role_arn": ("role_arn", "exact or glob"),
    "account": ("account_id", "exact"),
    "domain": ("domain", "exact or glob"),
    "user_profile": ("user_profile", "exact or glob"),
}
#: ``field = ...`` takes one of these with ``value`` (exact), ``glob`` or ``regex``.
FIELD_PATTERN_KEYS = ("value", "glob", "regex")
#: JobRecord fields a ``field`` match cannot name: what a rule sets, and the non-scalar ones.
UNMATCHABLE_FIELDS = frozenset({"team", "team_source", "project", "tags", "instance_groups"})
#: What a rule's ``name`` cannot be: team_source's other values.
RESERVED_NAMES = frozenset({TEAM_FROM_TAG, UNALLOCATED})


def matchable_fields() -> tuple[str, ...]:
    """The JobRecord fields a ``field`` match may name (besides ``tag:<key>``)."""
    return tuple(f.name for f in fields(JobRecord) if f.name not in UNMATCHABLE_FIELDS)


@dataclass(frozen=True)
class Match:
    """One match key of a rule: the job's ``target`` (a JobRecord field, ``domain``,
    ``user_profile`` or ``tag:<key>``) compared with ``pattern`` as ``how`` says (``exact``,
    ``glob``: shell wildcards, case-sensitive, the whole value; ``regex``: Python ``re.search``,
    anchor with ``^...$`` for the whole value)."""

    key: str
    target: str
    pattern: str
    how: str
    regex: re.Pattern[str] | None = None

    def matches(self, job: JobRecord) -> bool:
        value = job_value(job, self.target)
        if value is None:
            return False
        if self.how == "regex":
            assert self.regex is not None
            return self.regex.search(value) is not None
        if self.how == "glob":
            return fnmatchcase(value, self.pattern)
        return value == self.pattern


@dataclass(frozen=True)
class AllocationRule:
    """``[[allocation.rules]]``: jobs without a team tag that match every ``matches`` get
    ``team`` (and ``project`` when they have none); their ``team_source`` is ``name``."""

    name: str
    team: str
    matches: tuple[Match, ...]
    project: str | None = None

    def applies_to(self, job: JobRecord) -> bool:
        return all(match.matches(job) for match in self.matches)


def make_match(key: str, target: str, pattern: str, how: str) -> Match:
    """A Match, its regex compiled (``re.error`` for a bad one); ``exact or glob`` is a glob
    when the pattern has a wildcard (``*``, ``?``, ``[``)."""
    if how == "exact or glob":
        how = "glob" if GLOB_CHARACTERS & set(pattern) else "exact"
    regex = re.compile(pattern) if how == "regex" else None
    return Match(key, target, pattern, how, regex)


def job_value(job: JobRecord, target: str) -> str | None:
    """What ``target`` reads of a job, as text; None when the job has no such value."""
    if target.startswith(TAG_PREFIX):
        value = job.tags.get(target[len(TAG_PREFIX) :])
        return value if isinstance(value, str) else None
    if target == "domain":
        return _arn_tail(job.tags.get(DOMAIN_TAG), "domain/")
    if target == "user_profile":
        profile = _arn_tail(job.tags.get(STUDIO_USER_TAG), "user-profile/")
        return profile.rsplit("/", 1)[-1] if profile else None
    value = getattr(job, target, None)
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _arn_tail(arn: str | None, resource: str) -> str | None:
    """What follows ``:<resource>`` in an ARN (``d-abc`` of ``...:domain/d-abc``), else None."""
    if not isinstance(arn, str) or f":{resource}" not in arn:
        return None
    return arn.strip().split(f":{resource}", 1)[1].strip("/") or None


def allocate(job: JobRecord, rules: Sequence[AllocationRule]) -> JobRecord:
    """The job with the first matching rule's team (and project, if it has none) and
    ``team_source`` the rule's name; a job with a team tag, or that no rule matches, as is."""
    if job.team_source != UNALLOCATED:
        return job
    for rule in rules:
        if rule.applies_to(job):
            return replace(
                job, team=rule.team, project=job.project or rule.project, team_source=rule.name
            )
    return job


def reattribute(
    job: JobRecord, attribution: Attribution, rules: Sequence[AllocationRule]
) -> JobRecord:
    """The job's attribution derived again from its stored tags (the configured tag keys),
    then the current rules: what a recost stores, so a changed or removed rule, or a tag
    key changed in ``[attribution]``, moves the jobs it concerns."""
    team, project, user = attribute(job.tags, attribution)
    source = UNALLOCATED if team == UNALLOCATED else TEAM_FROM_TAG
    tagged = replace(job, team=team, project=project, user=user, team_source=source)
    return allocate(tagged, rules)
