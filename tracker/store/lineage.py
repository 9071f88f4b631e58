"""The lineage rule, once: which training jobs a registered model took to produce.

A model (package) was *produced* by the training job whose ``ModelArtifacts.S3ModelArtifacts``
is the model's ``model_data_url``. Its lineage is that job and every job that ran as part of
the same attempt: the other jobs of its hyperparameter tuning job, of its AutoML job and of its
pipeline execution (same account and region), whatever their status, so failed and stopped
attempts count. The models collection links ``jobs.model`` by this rule and ``tracker lineage``
lists it; both call :class:`LineageRepository`.

``jobs.model`` holds ONE model per job, so that ``report --by model`` counts each job once and
its rows add up to the total: models are linked oldest first (``created_at``, then id), and a
job already in an earlier model's lineage keeps that model. A tuning sweep two models came out
of is counted under the first in ``report --by model``, while ``tracker lineage`` shows the
whole sweep under each (it reads the rule, not the link).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import and_, delete, false, func, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from tracker.errors import InputError, printable
from tracker.store.database import Repository
from tracker.store.engine import naive_utc
from tracker.store.schema import Job, RegisteredModel

LINK_CHUNK = 500  # job ids per UPDATE ... WHERE id IN (...)

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

    def by_id(self, model_id: int) -> RegisteredModel | None:
        """The collected model with this row id (the dashboard's links), None when there is none."""
        with self.store.session() as session:
            return session.get(RegisteredModel, model_id)

    def unique_id(self, reference: str) -> int | None:
        """The row id of the one model with this ARN or name (as ``jobs.model`` holds it),
        else None."""
        query = (
            select(RegisteredModel.id)
            .where((RegisteredModel.arn == reference) | (RegisteredModel.name == reference))
            .limit(2)
        )
        with self.store.session() as session:
            found = list(session.execute(query).scalars())
        return found[0] if len(found) == 1 else None

    def count(self) -> int:
        """How many models and model packages are collected."""
        with self.store.session() as session:
            return int(
                session.execute(select(func.count()).select_from(RegisteredModel)).scalar_one()
            )

    def page(self, limit: int, offset: int = 0) -> list[RegisteredModel]:
        """One page of the collected models, by name then ARN."""
        query = (
            select(RegisteredModel)
            .order_by(RegisteredModel.name, RegisteredModel.arn)
            .limit(limit)
            .offset(offset)
        )
        with self.store.session() as session:
            return list(session.execute(query).scalars())

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

    # -- writes: the models collection ---------------------------------------------------------
    def stored_arns(self, account_id: str, region: str) -> set[str]:
        """ARNs of the models and model packages stored for one account and region."""
        query = select(RegisteredModel.arn).where(
            RegisteredModel.account_id == account_id, RegisteredModel.region == region
        )
        with self.store.session() as session:
            return set(session.execute(query).scalars())

    def save_models(self, rows: Sequence[RegisteredModel], now: datetime) -> int:
        """Insert the models whose ARN is not stored yet (what is read of a model never
        changes); returns how many were inserted."""
        if not rows:
            return 0
        arns = [row.arn for row in rows]
        with self.store.session() as session:
            known = set(
                session.execute(
                    select(RegisteredModel.arn).where(RegisteredModel.arn.in_(arns))
                ).scalars()
            )
            added = 0
            for row in rows:
                if row.arn in known:
                    continue
                known.add(row.arn)
                row.created_at = naive_utc(row.created_at)
                row.collected_at = naive_utc(now)
                session.add(row)
                added += 1
            session.commit()
        return added

    def remove_missing(self, account_id: str, region: str, listed: Collection[str]) -> int:
        """Delete the stored models of one account and region that a complete listing no
        longer returned (deleted in AWS); returns how many."""
        gone = sorted(self.stored_arns(account_id, region) - set(listed))
        if not gone:
            return 0
        with self.store.session() as session:
            for start in range(0, len(gone), LINK_CHUNK):
                session.execute(
                    delete(RegisteredModel).where(
                        RegisteredModel.arn.in_(gone[start : start + LINK_CHUNK])
                    )
                )
            session.commit()
        return len(gone)

    def link(self) -> tuple[int, int]:
        """Set ``jobs.model`` from scratch: every link cleared, then each model's name set on
        the jobs of its lineage not linked to an earlier model (see the module's docstring).
        One transaction, so a reader never sees the links half made. Returns (models that
        got a job, jobs linked)."""
        order = (
            RegisteredModel.created_at.is_(None),  # undated last, on every database
            RegisteredModel.created_at,
            RegisteredModel.id,
        )
        with self.store.session() as session:
            models = list(session.execute(select(RegisteredModel).order_by(*order)).scalars())
        linked: set[int] = set()
        by_model: dict[str, list[int]] = {}
        models_linked = 0
        for model in models:
            ids = [job.id for job in self.jobs(model) if job.id not in linked]
            linked.update(ids)
            if ids:
                models_linked += 1
                by_model.setdefault(model.name, []).extend(ids)
        with self.store.session() as session:
            session.execute(update(Job).where(Job.model.is_not(None)).values(model=None))
            for name, ids in by_model.items():
                for start in range(0, len(ids), LINK_CHUNK):
                    session.execute(
                        update(Job)
                        .where(Job.id.in_(ids[start : start + LINK_CHUNK]))
                        .values(model=name)
                    )
            session.commit()
        return models_linked, len(linked)


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
