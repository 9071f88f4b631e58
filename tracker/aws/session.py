"""The only place AWS sessions and clients are made.

One boto3 Session per configured source (assuming its role through STS when a
``role_arn`` is given, with credentials that refresh themselves), one
:class:`AwsContext` per (source, region) holding that region's clients. Every client,
the collector's and the one-off ones (alerts, bills, prices, report uploads), comes from
:func:`make_client`: our user agent, botocore's standard or adaptive retry mode, and a
:class:`CallCounter` when the caller keeps one. Clients honour ``AWS_ENDPOINT_URL`` and
``AWS_ENDPOINT_URL_<SERVICE>`` as boto3 always does: no endpoint is set here.

Threads: the collector works on several (source, account, region) pairs at once. boto3
sessions are not thread-safe, clients are: every use of a shared session (looking up a
source's account, making a client, making the STS client that refreshes an assumed role's
credentials) holds the factory's lock, and each pair gets clients of its own.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import boto3
import botocore.session
from botocore.client import BaseClient
from botocore.config import Config
from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials
from botocore.exceptions import NoCredentialsError

if TYPE_CHECKING:
    from botocore.awsrequest import AWSResponse

    from tracker.settings import CollectionSettings, Source

#: The type of every client :func:`make_client` returns, for annotations outside tracker/aws
#: (which may not import botocore): ``if TYPE_CHECKING: from tracker.aws.session import AwsClient``.
AwsClient = BaseClient

ROLE_SESSION_NAME = "sagemaker-spend-tracker"
_STARTED = "sagemaker_spend_tracker_started"  # our key in botocore's per-call context
USER_AGENT = "sagemaker-spend-tracker"
# Without collection settings (alerts, price refresh): standard mode, a few attempts, so a
# one-off command fails within seconds rather than backing off for minutes.
DEFAULT_RETRY_MODE = "standard"
DEFAULT_MAX_ATTEMPTS = 4
PRICING_REGION = "us-east-1"


class CallCounter:
    """Counts API calls, HTTP attempts and errors per (service, operation).

    ``calls`` counts each client method call once (botocore's ``before-call`` event),
    ``attempts`` every HTTP request including retries (``before-send``), ``errors``
    calls that ended with an AWS error response (``after-call`` with status >= 300),
    ``seconds`` the wall time spent inside the calls, retries and back-off included.
    The service name is botocore's hyphenated service id (``sagemaker``, ``s3``,
    ``resource-groups-tagging-api``, ``sts``).
    """

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self.attempts: Counter[tuple[str, str]] = Counter()
        self.errors: Counter[tuple[str, str]] = Counter()
        self.seconds: Counter[tuple[str, str]] = Counter()

    def register(self, client: BaseClient) -> BaseClient:
        """Attach this counter to a client's event system; returns the client."""
        events = client.meta.events
        events.register("before-call", self._on_call)
        events.register("before-send", self._on_send)
        events.register("after-call", self._on_after_call)
        events.register("after-call-error", self._on_after_error)
        return client

    def _on_call(self, event_name: str, context: dict | None = None, **_: Any) -> None:
        self.calls[_operation(event_name)] += 1
        if context is not None:
            context[_STARTED] = time.perf_counter()

    def _on_send(self, event_name: str, **_: Any) -> None:
        self.attempts[_operation(event_name)] += 1

    def _on_after_call(
        self,
        event_name: str,
        http_response: AWSResponse | None = None,
        context: dict | None = None,
        **_: Any,
    ) -> None:
        if http_response is not None and http_response.status_code >= 300:
            self.errors[_operation(event_name)] += 1
        self._stop(event_name, context)

    def _on_after_error(self, event_name: str, context: dict | None = None, **_: Any) -> None:
        self.errors[_operation(event_name)] += 1
        self._stop(event_name, context)

    def _stop(self, event_name: str, context: dict | None) -> None:
        started = (context or {}).pop(_STARTED, None)
        if started is not None:
            self.seconds[_operation(event_name)] += time.perf_counter() - started

    def total(self, service: str | None = None) -> int:
        """Calls made, for one service or for all."""
        return sum(n for (svc, _), n in self.calls.items() if service in (None, svc))

    def retries(self) -> int:
        """HTTP attempts beyond the first of each call (throttling, transient errors)."""
        return max(0, sum(self.attempts.values()) - sum(self.calls.values()))

    def seconds_by_service(self) -> dict[str, float]:
        """Wall seconds spent inside calls, per service."""
        out: dict[str, float] = {}
        for (svc, _), seconds in sorted(self.seconds.items()):
            out[svc] = out.get(svc, 0.0) + seconds
        return out

    def by_service(self) -> dict[str, dict[str, int]]:
        """``{service: {operation: calls}}``, sorted, for summaries and JSON."""
        out: dict[str, dict[str, int]] = {}
        for (svc, op), n in sorted(self.calls.items()):
            out.setdefault(svc, {})[op] = n
        return out


def _operation(event_name: str) -> tuple[str, str]:
    # "before-call.sagemaker.DescribeTrainingJob" -> ("sagemaker", "DescribeTrainingJob")
    parts = event_name.split(".")
    return (parts[1] if len(parts) > 1 else "?", parts[2] if len(parts) > 2 else "?")


@dataclass
class AwsContext:
    """The clients of one (source, region), the account they reach, and their call counter."""

    source_name: str
    region: str
    account_id: str
    session: boto3.Session
    config: Config
    counter: CallCounter = field(default_factory=CallCounter)
    # Held while the (shared, not thread-safe) session makes a client; None: not shared.
    session_lock: threading.RLock | None = field(default=None, repr=False)
    _clients: dict[str, BaseClient] = field(default_factory=dict, repr=False)

    def client(self, service: str) -> BaseClient:
        """A counted client for ``service`` in this context's region (one per service)."""
        if service not in self._clients:
            with self.session_lock or nullcontext():
                self._clients[service] = make_client(
                    service,
                    self.region,
                    session=self.session,
                    config=self.config,
                    counter=self.counter,
                )
        return self._clients[service]


class ContextFactory(Protocol):
    """Builds the AwsContext of one (source, region); collect() accepts any such callable."""

    def __call__(self, source: Source, region: str) -> AwsContext: ...


def client_config(collection: CollectionSettings | None = None) -> Config:
    """The botocore Config every client uses: retry mode and attempts from the settings.

    ``max_attempts`` counts every attempt, the first included, as AWS_MAX_ATTEMPTS does;
    botocore's own ``retries.max_attempts`` would count retries only.
    """
    mode = collection.retry_mode if collection is not None else DEFAULT_RETRY_MODE
    attempts = collection.max_attempts if collection is not None else DEFAULT_MAX_ATTEMPTS
    return Config(
        retries={"mode": mode, "total_max_attempts": attempts}, user_agent_extra=USER_AGENT
    )


def make_client(
    service: str,
    region: str | None = None,
    *,
    collection: CollectionSettings | None = None,
    session: boto3.Session | None = None,
    config: Config | None = None,
    counter: CallCounter | None = None,
    **credentials: str | None,
) -> BaseClient:
    """A client for ``service``: the one place every AWS client of the tracker is made.

    Its Config is :func:`client_config` of ``collection`` (user agent, retries) with
    ``config`` merged over it (a caller's timeouts, or a context's ready-made Config).
    ``region`` None takes boto3's own chain (``AWS_DEFAULT_REGION``,
    the profile). The counter, when given, counts every call and page the client makes.
    ``credentials`` (``aws_access_key_id``...) override the session's, for botocore's
    assume-role fetcher.
    """
    base = client_config(collection)
    merged = base.merge(config) if config is not None else base
    made = (session or boto3.Session()).client(
        service, region_name=region, config=merged, **credentials
    )
    return counter.register(made) if counter is not None else made


class AwsContextFactory:
    """Default :class:`ContextFactory`: one Session and one account lookup per source.

    ``base_session`` is the session whose standard credential chain is used
    directly or to assume each source's role (a fresh ``boto3.Session()`` if omitted).
    """

    def __init__(
        self, collection: CollectionSettings, base_session: boto3.Session | None = None
    ) -> None:
        self.config = client_config(collection)
        self._base = base_session
        self._sources: dict[str, tuple[boto3.Session, str]] = {}
        self._lock = threading.RLock()
        self._source_locks: dict[str, threading.Lock] = {}

    def __call__(self, source: Source, region: str) -> AwsContext:
        counter = CallCounter()
        with self._lock:
            source_lock = self._source_locks.setdefault(source.name, threading.Lock())
        # One lookup per source; other sources' lookups (network calls) go on meanwhile.
        with source_lock:
            if source.name not in self._sources:
                # The STS calls (assume role, caller identity) are counted in the first region.
                with self._lock:
                    session = self._session_for(source, region, counter)
                    sts = make_client(
                        "sts", region, session=session, config=self.config, counter=counter
                    )
                account_id = sts.get_caller_identity()["Account"]
                self._sources[source.name] = (session, account_id)
            session, account_id = self._sources[source.name]
        return AwsContext(
            source.name, region, account_id, session, self.config, counter, self._lock
        )

    def base_client(
        self, service: str, region: str, counter: CallCounter | None = None
    ) -> BaseClient:
        """A client on the base credentials (not a source's role): Organizations listing."""
        with self._lock:
            return make_client(
                service, region, session=self._base_session(), config=self.config, counter=counter
            )

    def _base_session(self) -> boto3.Session:
        if self._base is None:
            self._base = boto3.Session()
        return self._base

    def _session_for(self, source: Source, region: str, counter: CallCounter) -> boto3.Session:
        base = self._base_session()
        if not source.role_arn:
            return base
        source_credentials = base.get_credentials()
        if source_credentials is None:
            raise NoCredentialsError()
        extra_args: dict[str, Any] = {"RoleSessionName": ROLE_SESSION_NAME}
        if source.external_id:
            extra_args["ExternalId"] = source.external_id
        fetcher = AssumeRoleCredentialFetcher(
            client_creator=partial(self._sts_client, base, region, counter),
            source_credentials=source_credentials,
            role_arn=source.role_arn,
            extra_args=extra_args,
        )
        credentials = DeferredRefreshableCredentials(
            refresh_using=fetcher.fetch_credentials, method="assume-role"
        )
        botocore_session = botocore.session.get_session()
        # botocore has no public setter for refreshable credentials; this is the common idiom.
        botocore_session._credentials = credentials
        # Share the parsed service models: loading SageMaker's again costs ~0.2 s per source.
        botocore_session.register_component(
            "data_loader", base._session.get_component("data_loader")
        )
        return boto3.Session(botocore_session=botocore_session)

    def _sts_client(
        self,
        base: boto3.Session,
        region: str,
        counter: CallCounter,
        service: str,
        **credentials: str | None,
    ) -> BaseClient:
        # Called by the credential fetcher, also when a worker thread refreshes credentials.
        with self._lock:
            return make_client(
                service, region, session=base, config=self.config, counter=counter, **credentials
            )


def pricing_client(
    region: str = PRICING_REGION, collection: CollectionSettings | None = None
) -> BaseClient:
    """A client for the AWS Price List API (served from us-east-1, eu-central-1, ap-south-1)."""
    return make_client("pricing", region, collection=collection)
