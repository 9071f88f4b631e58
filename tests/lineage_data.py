"""A small hand-made lineage, for ``tracker lineage`` and the dashboard's model pages.

Jobs are tests/factories.py's (start 2026-03-10 10:00 UTC, account 111122223333, us-east-1,
each job's team from its ``team`` tag), costed by the real engine and saved through
the store's save path; models are ``RegisteredModel`` rows inserted directly (the models
collection is not needed). Rates: ml.g5.2xlarge 1.50 and ml.m5.xlarge 0.25 USD per
instance-hour; ml.trn1.32xlarge has none (unpriced). No volumes, no discount.

| job            | tuning job  | where     | status    | instances     | billable s  | compute                    | warm pool              | total (exact)  | shown |
|----------------|-------------|-----------|-----------|---------------|-------------|----------------------------|------------------------|----------------|-------|
| churn-sweep-1  | churn-sweep | us-east-1 | Failed    | 2 x g5.2xl    | 1000        | 1.50*2*1000/3600 = 0.833333 | -                      | 0.833333       | 0.83  |
| churn-sweep-2  | churn-sweep | us-east-1 | Stopped   | 1 x g5.2xl    | 1000        | 1.50*1*1000/3600 = 0.416667 | -                      | 0.416667       | 0.42  |
| churn-sweep-3  | churn-sweep | us-east-1 | Completed | 1 x g5.2xl    | 3600        | 1.50                        | 1.50*1000/3600 = 0.416667 | 1.916667    | 1.92 (1.50 + 0.42) |
| churn-sweep-1  | churn-sweep | eu-west-1 | Completed | 1 x m5.xl     | 3600        | 0.25                        | -                      | 0.25           | 0.25  |
| unrelated      | -           | us-east-1 | Completed | 1 x m5.xl     | 3600        | 0.25                        | -                      | 0.25           | 0.25  |
| llm-ft-1       | -           | us-east-1 | Completed | 1 x trn1.32xl | 3600        | unpriced (0)                | -                      | 0              | 0.00  |

Models:

| model (name)      | kind          | model data                           | lineage                                     |
|-------------------|---------------|--------------------------------------|---------------------------------------------|
| churn-xgb/3       | model_package | churn-sweep-3's artifact              | the three us-east-1 sweep jobs (not eu-west-1's, not unrelated) |
| llm-ft            | model         | llm-ft-1's artifact                   | llm-ft-1 alone, unpriced                     |
| orphan            | model         | s3://ml-models/orphan/model.tar.gz    | none: no collected job has that artifact    |
| dup (two regions) | model         | none                                  | the name is ambiguous                       |

churn-xgb/3: total to produce 0.833333 + 0.416667 + 1.916667 = 3.166667 -> 3.17 USD (compute
0.833333 + 0.416667 + 1.50 = 2.75, warm pool 0.42); failed attempts (Failed + Stopped)
0.833333 + 0.416667 = 1.25 USD.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path

from tests.factories import ACCOUNT, REGION, make_job
from tracker.cost.engine import CostPolicy, cost_job
from tracker.records import TEAM_FROM_TAG, JobRecord, Rates
from tracker.store.database import Store
from tracker.store.schema import RegisteredModel

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
RATES = Rates(hourly={"ml.g5.2xlarge": Decimal("1.50"), "ml.m5.xlarge": Decimal("0.25")})
SWEEP = "churn-sweep"
ARTIFACT = "s3://ml-models/churn/churn-sweep-3/output/model.tar.gz"
LLM_ARTIFACT = "s3://ml-models/llm/llm-ft-1/output/model.tar.gz"
PACKAGE_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/churn-xgb/3"
LLM_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/llm-ft"
ORPHAN_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/orphan"
DUP_ARNS = (
    f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/dup",
    f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:model/dup",
)

_tagged = partial(make_job, team_source=TEAM_FROM_TAG)  # each job's team from its team tag
JOBS: list[JobRecord] = [
    _tagged("churn-sweep-1", "ds", instance_type="ml.g5.2xlarge", instance_count=2,
            seconds=1000, status="Failed", tuning_job=SWEEP,
            failure_reason="AlgorithmError: diverged"),
    _tagged("churn-sweep-2", "ds", instance_type="ml.g5.2xlarge", seconds=1000,
            status="Stopped", tuning_job=SWEEP),
    _tagged("churn-sweep-3", "ds", instance_type="ml.g5.2xlarge", tuning_job=SWEEP,
            warm_pool_status="Terminated", warm_pool_retained_seconds=1000,
            model_artifact_uri=ARTIFACT),
    _tagged("churn-sweep-1", "ds", region="eu-west-1", tuning_job=SWEEP),
    _tagged("unrelated", "ds"),
    _tagged("llm-ft-1", "nlp", instance_type="ml.trn1.32xlarge", model_artifact_uri=LLM_ARTIFACT),
]  # fmt: skip


def model(arn: str, name: str, kind: str, data: str | None) -> RegisteredModel:
    region = arn.split(":")[3]
    return RegisteredModel(
        arn=arn, kind=kind, name=name, account_id=ACCOUNT, region=region, model_data_url=data,
        created_at=datetime(2026, 3, 10, 12, 0), collected_at=datetime(2026, 3, 20, 12, 0),
    )  # fmt: skip


def models() -> list[RegisteredModel]:
    """The models above, as new rows (one list per store)."""
    return [
        model(PACKAGE_ARN, "churn-xgb/3", "model_package", ARTIFACT),
        model(LLM_ARN, "llm-ft", "model", LLM_ARTIFACT),
        model(ORPHAN_ARN, "orphan", "model", "s3://ml-models/orphan/model.tar.gz"),
        *(model(arn, "dup", "model", None) for arn in DUP_ARNS),
    ]


def make_store(folder: Path) -> Store:
    """A fresh SQLite store in ``folder`` with the jobs and models above."""
    store = Store.open(f"sqlite:///{folder / 'lineage.db'}")
    items = [(job, cost_job(job, RATES, NOW, CostPolicy()), {"TrainingJobName": job.name})
             for job in JOBS]  # fmt: skip
    store.save_jobs(items, NOW)
    with store.session() as session:
        session.add_all(models())
        session.commit()
    return store
