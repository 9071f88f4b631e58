"""The lineage rule, once: which training jobs a registered model took to produce.

A model (package) was *produced* by the training job whose ``ModelArtifacts.S3ModelArtifacts``
is the model's ``model_data_url``. Its lineage is that job and every job that ran as part of
the same attempt: the other jobs of its hyperparameter tuning job, of its AutoML job and of its
pipeline execution (same account and region), whatever their status, so failed and stopped
attempts count. The models collection links ``jobs.model`` by this rule and ``tracker lineage``
lists it; both call :class:`LineageRepository`.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, false, or_, select
from sqlalchemy.sql.elements import ColumnElement

from tracker.errors import InputError, printable
from tracker.store.database import Repository
from tracker.store.schema import Job, RegisteredModel

#: The job columns that tie a producing job to its siblings, and how a report says so.
ATTEMPT_COLUMNS = {
    "tuning_job": "same tuning job",
    "automl_job": "same AutoML job",
    "pipeline_execution": "same pipeline execution",
}


class LineageRepository(Repository):
    """Registered models and the jobs of their lineage."""

    def find(self, name_or_arn: str) -> RegisteredModel:
        """The model with this ARN, else with this name; an InputError when none or several."""
        with self.store.session() as session:
            by_arn = session.execute(
                select(RegisteredModel).where(RegisteredModel.arn == name_or_arn)
            ).scalar_one_or_none()
            if by_arn is not None:
                return by_arn
            named = list(
                session.execute(
                    select(RegisteredModel)
                    .where(RegisteredModel.name == name_or_arn)
                    .order_by(RegisteredModel.arn)
                    .limit(6)
                ).scalars()
            )
        shown = printable(name_or_arn)
        if not named:
            raise InputError(
                f"model {shown!r}: no collected model or model package has this name or ARN "
                "(run 'tracker collect-models', or see 'tracker report --by model')"
            )
        if len(named) > 1:
            arns = ", ".join(m.arn for m in named[:5])
            raise InputError(
                f"model {shown!r}: several models have this name; pass an ARN ({arns})"
            )
        return named[0]

    def producers(self, model: RegisteredModel) -> list[Job]:
        """The jobs whose model artifact is the model's data (usually one; none when the model
        was not trained by a collected job)."""
        if not model.model_data_url:
            return []
        query = (
            select(Job)
            .where(Job.model_artifact_uri == model.model_data_url)
            .order_by(Job.creation_time, Job.id)
        )
        with self.store.session() as session:
            return list(session.execute(query).scalars())

    def jobs(self, model: RegisteredModel) -> list[Job]:
        """Every job of the model's lineage, oldest first."""
        producers = self.producers(model)
        if not producers:
            return []
        query = select(Job).where(lineage_condition(producers)).order_by(Job.creation_time, Job.id)
        with self.store.session() as session:
            return list(session.execute(query).scalars())


def lineage_condition(producers: Sequence[Job]) -> ColumnElement[bool]:
    """SQL: the job is one of ``producers`` or ran in the same attempt as one of them."""
    terms: list[ColumnElement[bool]] = [Job.id.in_([job.id for job in producers])]
    for job in producers:
        for column in ATTEMPT_COLUMNS:
            value = getattr(job, column)
            if value:
                terms.append(
                    and_(
                        getattr(Job, column) == value,
                        Job.account_id == job.account_id,
                        Job.region == job.region,
                    )
                )
    return or_(*terms) if terms else false()


def reasons(job: Job, producers: Sequence[Job]) -> list[str]:
    """Why ``job`` is in the lineage: ``produced it`` and/or ``same tuning job`` etc."""
    found = ["produced it"] if any(job.id == p.id for p in producers) else []
    for column, reason in ATTEMPT_COLUMNS.items():
        value = getattr(job, column)
        if value and any(
            getattr(p, column) == value
            and (p.account_id, p.region) == (job.account_id, job.region)
            and p.id != job.id
            for p in producers
        ):
            found.append(reason)
    return found
