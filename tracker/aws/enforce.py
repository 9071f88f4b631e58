"""The one SageMaker call that changes a job: StopTrainingJob, for runaway-job enforcement
(``[enforce] mode = "stop"``; docs/enforcement-and-anomalies.md). Apart from the collector's
modules so the read-only Collect* IAM statements never need it: it needs the optional
``OptionalEnforceStopJobs`` statement of config/iam-policy.json.
"""

from __future__ import annotations

from botocore.client import BaseClient


def stop_training_job(client: BaseClient, name: str) -> None:
    """StopTrainingJob for one job: SageMaker moves it to Stopping, then Stopped.

    The call returns nothing; a job that already ended answers ValidationException.
    """
    client.stop_training_job(TrainingJobName=name)
