"""Event-driven collection: ``tracker listen`` and the daemon's listener (docs/events.md).

Each configured queue (``[events] queues``) receives EventBridge's "SageMaker Training Job
State Change" events of one (source account, region). A batch (up to 10 messages of one
queue) is handled in this order, so a crash anywhere loses nothing and doubles nothing:

1. receive (long poll, ``[events] wait_seconds``);
2. parse each message's EventBridge envelope; de-duplicate by job ARN;
3. collect exactly those jobs through the collector's path
   (:func:`tracker.collect.service.collect_named`: Search by name or Describe, tags, S3,
   cost) and commit (saves are upserts by ARN);
4. only then delete the messages (DeleteMessageBatch);
5. run the budget alerts (the alerts job's service), so an overrun is announced seconds
   after the job that causes it ends.

A crash before 4 leaves the messages in the queue: they come back after the visibility
timeout and the jobs are saved again, the same rows. A poison message (not JSON, not a
SageMaker training-job event, another region's job, a job that no longer exists) is logged
once, counted in the run record and deleted, never retried. A batch that fails on an AWS
error is not deleted: SQS delivers it again, and after 5 receives the redrive policy moves
it to the dead-letter queue. Each queue's state is a ``job_runs`` row named
``listen:<account>/<region>`` whose detail is JSON (:class:`QueueState`), which
``tracker status`` reads.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tracker.aws import AWS_ERRORS, describe_error
from tracker.aws import events as aws_events
from tracker.aws.session import AwsContext, AwsContextFactory, ContextFactory
from tracker.collect import parse
from tracker.collect.service import collect_named, member_source
from tracker.errors import ConfigError
from tracker.settings import DEFAULT_CONFIG, EventQueue, Settings, Source
from tracker.store.ops import JobRunLog

if TYPE_CHECKING:
    from tracker.cost.prices import PriceBook
    from tracker.store.database import Store

log = logging.getLogger("tracker.listen")
JOB_PREFIX = "listen:"
MAX_REASONS_KEPT = 5
ONCE_WAIT_SECONDS = 1
ERROR_PAUSE_SECONDS = 10.0  # after a failed receive or batch, before the next poll


class PoisonMessage(ValueError):
    """A message that can never be collected; the text says why."""


@dataclass(frozen=True)
class JobEvent:
    """What the listener needs of one state-change event."""

    arn: str
    name: str
    region: str
    status: str
    time: datetime | None
    message_id: str = ""


def parse_event(body: str) -> JobEvent:
    """One SQS message body (EventBridge's envelope) -> JobEvent, or PoisonMessage.

    The envelope's ``source`` and ``detail-type`` must be SageMaker's training-job state
    change; ``detail.TrainingJobArn`` names the job (``TrainingJobName`` too; when absent, the
    ARN's last part). ``time`` is the envelope's event time.
    """
    try:
        event = json.loads(body)
    except (ValueError, TypeError) as exc:
        raise PoisonMessage(f"not JSON ({exc})") from None
    if not isinstance(event, dict):
        raise PoisonMessage("not an EventBridge event (not a JSON object)")
    if (
        event.get("source") != aws_events.SOURCE
        or event.get("detail-type") != aws_events.DETAIL_TYPE
    ):
        shown = f"{event.get('source')!r}/{event.get('detail-type')!r}"
        raise PoisonMessage(f"not a SageMaker training job state change ({shown[:120]})")
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise PoisonMessage("event without a detail object")
    arn = detail.get("TrainingJobArn")
    parts = arn.split(":") if isinstance(arn, str) else []
    if len(parts) != 6 or not parts[5].startswith("training-job/") or parts[2] != "sagemaker":
        raise PoisonMessage(f"detail.TrainingJobArn {str(arn)[:120]!r} is not a training job ARN")
    name = detail.get("TrainingJobName")
    if not isinstance(name, str) or not name:
        name = parts[5].split("/", 1)[1]
    status = detail.get("TrainingJobStatus")
    return JobEvent(
        arn=arn,
        name=name,
        region=parts[3],
        status=status if isinstance(status, str) else "",
        time=_event_time(event.get("time")),
        message_id=str(event.get("id", "")),
    )


def _event_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    return None


@dataclass
class QueueState:
    """One queue's listener state over one listen run; kept as its job_runs row's detail."""

    queue: str
    account_id: str
    region: str
    source: str
    messages: int = 0  # received and deleted (poison included)
    jobs: int = 0  # distinct jobs collected
    duplicates: int = 0  # events of a job already in the same batch
    poison: int = 0
    batches: int = 0
    failed_batches: int = 0
    last_event_at: datetime | None = None  # the newest event time seen
    last_receive_at: datetime | None = None
    # SentTimestamp of the oldest message of the last non-empty receive, None when the last
    # receive was empty; with ``visible`` (ApproximateNumberOfMessages after the last batch)
    # it is the lag tracker status shows.
    oldest_sent_at: datetime | None = None
    visible: int | None = None
    in_flight: int | None = None
    last_error: str | None = None
    reasons: list[str] = field(default_factory=list)  # the first poison reasons

    def to_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "queue": self.queue, "account_id": self.account_id, "region": self.region,
            "source": self.source, "messages": self.messages, "jobs": self.jobs,
            "duplicates": self.duplicates, "poison": self.poison, "batches": self.batches,
            "failed_batches": self.failed_batches, "last_event_at": iso(self.last_event_at),
            "last_receive_at": iso(self.last_receive_at),
            "oldest_sent_at": iso(self.oldest_sent_at), "visible": self.visible,
            "in_flight": self.in_flight, "last_error": self.last_error,
            "poison_reasons": list(self.reasons),
        }  # fmt: skip


@dataclass
class ListenSummary:
    """What one ``listen`` run did, per queue."""

    queues: list[QueueState] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)  # one line per alerts run after a batch

    def total(self, name: str) -> int:
        return sum(getattr(q, name) for q in self.queues)

    def to_dict(self) -> dict[str, Any]:
        return {
            "messages": self.total("messages"),
            "jobs": self.total("jobs"),
            "duplicates": self.total("duplicates"),
            "poison": self.total("poison"),
            "queues": [q.to_dict() for q in self.queues],
            "alerts": list(self.alerts),
        }


AlertsHook = Callable[[], str]


class Listener:
    """Polls the configured queues in turn; each batch: collect, commit, delete, alert."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        price_book: PriceBook,
        *,
        clock: Callable[[], datetime],
        wall: Callable[[], datetime],
        context_factory: ContextFactory | None = None,
        alerts: AlertsHook | None = None,
        trigger: str = "cli",
        owner: str = "",
    ) -> None:
        self.settings = settings
        self.store = store
        self.price_book = price_book
        self.clock = clock
        self.wall = wall
        self.factory = context_factory or AwsContextFactory(settings.collection)
        self.alerts = alerts
        self.trigger = trigger
        self.owner = owner
        self.events = settings.events
        self.summary = ListenSummary()
        self._queues: list[tuple[EventQueue, Source, QueueState]] = []
        self._contexts: dict[int, tuple[AwsContext, str]] = {}
        self._runs: dict[int, int | None] = {}
        for queue in self.events.queues:
            source = queue_source(settings, queue)
            state = QueueState(queue.url, queue.account_id, queue.region, source.name)
            self._queues.append((queue, source, state))
            self.summary.queues.append(state)

    # -- running -------------------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None, *, once: bool = False) -> ListenSummary:
        """Poll until ``stop`` is set; ``once``: until every queue answers empty (or
        ``[events] drain_messages`` were taken), then return."""
        stop = stop or threading.Event()
        runs = JobRunLog(self.store)
        for i, (queue, _, _) in enumerate(self._queues):
            self._runs[i] = runs.start(job_name(queue), self.trigger, self.owner, self.wall())
        taken = 0
        try:
            pending = set(range(len(self._queues)))
            while not stop.is_set() and pending:
                for i in sorted(pending):
                    if stop.is_set():
                        break
                    # --once: a 1 s long poll, not a short one (which samples only some SQS
                    # servers and may answer empty while messages wait).
                    wait = ONCE_WAIT_SECONDS if once else self.events.wait_seconds
                    failures = self._queues[i][2].failed_batches
                    got = self.poll(i, wait_seconds=wait)
                    if not once and self._queues[i][2].failed_batches > failures:
                        stop.wait(ERROR_PAUSE_SECONDS)  # AWS unreachable: do not spin
                    taken += got
                    if once and (got == 0 or taken >= self.events.drain_messages):
                        pending.discard(i)
                if once and taken >= self.events.drain_messages:
                    break
        finally:
            for i, (_, _, state) in enumerate(self._queues):
                self._record(i, state, final=True)
        return self.summary

    def poll(self, index: int, *, wait_seconds: int) -> int:
        """One receive on queue ``index`` and its batch; the messages taken (0: empty or
        failed). Never raises an AWS error: it is recorded and the messages come back."""
        queue, source, state = self._queues[index]
        try:
            ctx, url = self._context(index, queue, source)
            messages = aws_events.receive(ctx.client("sqs"), url, wait_seconds=wait_seconds)
            state.last_receive_at = self.wall()
            if not messages:
                state.oldest_sent_at = None
                state.visible, state.in_flight = aws_events.queue_depth(ctx.client("sqs"), url)
                self._record(index, state)
                return 0
            self._handle(ctx, url, queue, state, messages)
            return len(messages)
        except (*AWS_ERRORS, parse.ResponseError) as exc:
            state.failed_batches += 1
            state.last_error = describe_error(exc)
            log.warning("listen %s: %s (the messages come back after the visibility timeout)",
                        queue.label, state.last_error)  # fmt: skip
            self._record(index, state)
            return 0

    def _handle(
        self,
        ctx: AwsContext,
        url: str,
        queue: EventQueue,
        state: QueueState,
        messages: list[dict[str, Any]],
    ) -> None:
        state.oldest_sent_at = min(_sent(m) for m in messages)
        jobs: dict[str, JobEvent] = {}
        poison: list[str] = []
        for message in messages:
            try:
                event = parse_event(message.get("Body", ""))
                if event.region != queue.region:
                    raise PoisonMessage(f"{event.arn}: a job of {event.region}, not {queue.region}")
            except PoisonMessage as exc:
                poison.append(f"message {message.get('MessageId', '?')}: {exc}")
                continue
            if event.time and (state.last_event_at is None or event.time > state.last_event_at):
                state.last_event_at = event.time
            key = event.arn.lower()
            if key in jobs:
                state.duplicates += 1
            jobs[key] = event
        if jobs:
            pairs = [(e.name, e.arn) for e in jobs.values()]
            result, found = collect_named(
                self.settings, self.store, self.price_book, ctx, pairs, now=self.clock()
            )
            found_keys = {arn.lower() for arn in found}
            for key, event in jobs.items():
                if key not in found_keys:
                    poison.append(f"{event.arn}: the job no longer exists")
            state.jobs += len(found_keys & set(jobs))
            log.info("listen %s: %d message(s), %d job(s): %d new, %d updated, %d unchanged",
                     queue.label, len(messages), len(jobs), result.new, result.updated,
                     result.unchanged)  # fmt: skip
        # Committed: only now may the messages go.
        refused = aws_events.delete(ctx.client("sqs"), url, [m["ReceiptHandle"] for m in messages])
        if refused:
            log.warning("listen %s: SQS refused to delete %d message(s); they come back and "
                        "their jobs are saved again (the same rows)", queue.label, refused)  # fmt: skip
        for reason in poison:
            log.warning("listen %s: poison message deleted: %s", queue.label, reason)
            if len(state.reasons) < MAX_REASONS_KEPT:
                state.reasons.append(reason[:300])
        state.poison += len(poison)
        state.messages += len(messages)
        state.batches += 1
        state.last_error = None
        state.visible, state.in_flight = aws_events.queue_depth(ctx.client("sqs"), url)
        self._record(self._index(state), state)
        if jobs and self.alerts is not None:
            self.summary.alerts.append(self.alerts())

    def _context(self, index: int, queue: EventQueue, source: Source) -> tuple[AwsContext, str]:
        if index not in self._contexts:
            ctx = self.factory(source, queue.region)
            url = aws_events.resolve_queue_url(ctx.client("sqs"), queue.url)
            self._contexts[index] = (ctx, url)
        return self._contexts[index]

    def _index(self, state: QueueState) -> int:
        return next(i for i, (_, _, s) in enumerate(self._queues) if s is state)

    def _record(self, index: int, state: QueueState, *, final: bool = False) -> None:
        run_id = self._runs.get(index)
        if run_id is None:
            return
        status = "running" if not final else ("partial" if state.failed_batches else "ok")
        with contextlib.suppress(Exception):  # the listener goes on; status shows stale data
            JobRunLog(self.store).finish(
                run_id, status, json.dumps(state.to_dict()), self.wall(), 0.0
            )


def job_name(queue: EventQueue) -> str:
    """The job_runs name of a queue's listener state."""
    return f"{JOB_PREFIX}{queue.label}"


def queue_source(settings: Settings, queue: EventQueue) -> Source:
    """The source a queue belongs to (its ``source``, else the only source); for an
    organization source, the member account's source (its role)."""
    where = str(settings.path or DEFAULT_CONFIG)
    if queue.source is None:
        if len(settings.sources) != 1:
            raise ConfigError(where, [f"events.queues: {queue.url}: add source = \"NAME\" "
                                      "(the [[sources]] entry whose account it is)"])  # fmt: skip
        source = settings.sources[0]
    else:
        named = [s for s in settings.sources if s.name == queue.source]
        if not named:
            names = ", ".join(s.name for s in settings.sources) or "none configured"
            raise ConfigError(where, [f"events.queues: source {queue.source!r} is not a "
                                      f"[[sources]] name ({names})"])  # fmt: skip
        source = named[0]
    return member_source(source, queue.account_id) if source.organization else source


def _sent(message: dict[str, Any]) -> datetime:
    millis = message.get("Attributes", {}).get("SentTimestamp")
    try:
        return datetime.fromtimestamp(int(millis) / 1000, UTC)
    except (TypeError, ValueError):
        return datetime.max.replace(tzinfo=UTC)
