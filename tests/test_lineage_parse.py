"""What produced a job, read from its DescribeTrainingJob/Search record and tags
(``tracker.collect.parse.lineage``): each source field, and malformed or absent values."""

from __future__ import annotations

from typing import Any

import pytest

from tracker.collect.parse import JUMPSTART_MODEL_TAG, PIPELINE_EXECUTION_TAG, lineage

ACCOUNT = "arn:aws:sagemaker:us-east-1:111122223333"
NOTHING = dict.fromkeys(
    ("tuning_job", "automl_job", "pipeline", "pipeline_execution", "experiment", "trial",
     "base_model")
)  # fmt: skip


@pytest.mark.parametrize(
    ("desc", "tags", "expected"),
    [
        pytest.param({}, {}, {}, id="a plain job"),
        pytest.param(
            {"TuningJobArn": f"{ACCOUNT}:hyper-parameter-tuning-job/xgb-sweep-0412"},
            {},
            {"tuning_job": "xgb-sweep-0412"},
            id="a tuning sweep's job",
        ),
        pytest.param(
            {"AutoMLJobArn": f"{ACCOUNT}:automl-job/churn-autopilot"},
            {},
            {"automl_job": "churn-autopilot"},
            id="an AutoML candidate",
        ),
        pytest.param(
            {},
            {PIPELINE_EXECUTION_TAG: f"{ACCOUNT}:pipeline/train-llm/execution/k2xfdy3dcmla"},
            {"pipeline": "train-llm", "pipeline_execution": "train-llm/k2xfdy3dcmla"},
            id="a pipeline step",
        ),
        pytest.param(
            {
                "ExperimentConfig": {
                    "ExperimentName": "llm-ft",
                    "TrialName": "lr-3e-5",
                    "RunName": "run-1",
                }
            },  # fmt: skip
            {},
            {"experiment": "llm-ft", "trial": "lr-3e-5"},
            id="an experiment run",
        ),
        pytest.param(
            {},
            {JUMPSTART_MODEL_TAG: "meta-textgeneration-llama-3-8b"},
            {"base_model": "meta-textgeneration-llama-3-8b"},
            id="a JumpStart fine-tune",
        ),
        pytest.param(
            {
                "ServerlessJobConfig": {
                    "BaseModelArn": "arn:aws:sagemaker:us-east-1:aws:hub-content/SageMakerPublicHub/Model/meta-llama-3-8b/2.1.0"
                }
            },
            {},
            {"base_model": "meta-llama-3-8b"},
            id="a serverless fine-tune of a hub model",
        ),
        pytest.param(
            {"TuningJobArn": "not an arn", "AutoMLJobArn": 7, "ExperimentConfig": "x"},
            {PIPELINE_EXECUTION_TAG: f"{ACCOUNT}:pipeline/p-only"},
            {},
            id="malformed values read as absent",
        ),
    ],
)
def test_lineage_reads_each_source(
    desc: dict[str, Any], tags: dict[str, str], expected: dict[str, str]
) -> None:
    assert lineage(desc, tags) == NOTHING | expected
