"""The one JobRecord factory every test builds its jobs with (moto's test style: defaults here,
each test overrides only what it is about).

Default job: account 111122223333, us-east-1, ``train-1``, Completed, 1 x ml.m5.xlarge,
2026-03-10 10:00 to 11:00 UTC, billable 3600 s, training 3600 s, no volume, no tags,
team ``unallocated``.

Any JobRecord field can be passed by name and wins. Unless passed, these follow from the rest,
so that a test changing one fact does not leave the job contradicting itself:

    ==================================  =================================================
    field                               default
    ==================================  =================================================
    end_time                            start_time + ``seconds`` (None if either is None)
    billable_seconds, training_seconds  ``seconds`` (None: still running, or never known)
    creation_time                       5 minutes before start_time (before 10:00 if None)
    last_modified_time                  end_time, else start_time, else creation_time
    arn                                 from region, account_id and name
    team, tags["team"]                  ``team``; a ``team`` already in ``tags`` wins
    ==================================  =================================================
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tracker.records import UNALLOCATED, JobRecord

ACCOUNT = "111122223333"
REGION = "us-east-1"
START = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
HOUR = 3600
# SageMaker creates a job a few minutes before its instances start training.
CREATED_BEFORE_START = timedelta(minutes=5)


def make_job(
    name: str = "train-1", team: str | None = None, *, seconds: int | None = HOUR, **fields: Any
) -> JobRecord:
    """The default job above with ``fields`` overridden; it trained ``seconds`` from its start."""
    values: dict[str, Any] = {
        "account_id": ACCOUNT,
        "region": REGION,
        "name": name,
        "status": "Completed",
        "start_time": START,
        "instance_type": "ml.m5.xlarge",
        "instance_count": 1,
        "billable_seconds": seconds,
        "training_seconds": seconds,
        **fields,
    }
    start = values["start_time"]
    if "end_time" not in values:
        ran = seconds is not None and start is not None
        values["end_time"] = start + timedelta(seconds=seconds) if ran else None
    values.setdefault("creation_time", (start or START) - CREATED_BEFORE_START)
    values.setdefault("last_modified_time", values["end_time"] or start or values["creation_time"])
    values.setdefault(
        "arn",
        f"arn:aws:sagemaker:{values['region']}:{values['account_id']}:training-job/{name}",
    )
    tags = dict(values.get("tags") or {})
    if team is not None:
        tags.setdefault("team", team)
    values["tags"] = tags
    values["team"] = team or UNALLOCATED
    return JobRecord(**values)
