"""botocore's parsed data files (service models, endpoints, paginators), shared by every
session of a test process instead of parsed again for each one.

botocore caches what its ``Loader`` reads per loader, and a loader lives in one session;
the tracker makes a session per account and region (as it should), moto and the tests make
more, so a moto test spent about a quarter of its CPU decoding the same JSON files
(``endpoints.json``, ``sagemaker/.../service-2.json``) again. :func:`install` gives every
loader one process-wide cache, keyed by the loader's search paths as well as by what it
was asked, so a loader with other paths (boto3 adds its own) never sees another's answer.
A session already shares each parsed document between all its clients; this shares it
between sessions too. Nothing of what is sent, received or checked changes.
"""

from __future__ import annotations

from typing import Any

from botocore import loaders

_SHARED: dict[tuple, Any] = {}


class _SharedCache:
    """The ``_cache`` dictionary ``botocore.loaders.instance_cache`` reads and writes."""

    def __init__(self, loader: loaders.Loader) -> None:
        self._loader = loader

    def _key(self, key: tuple) -> tuple:
        return (tuple(self._loader.search_paths), key)

    def __contains__(self, key: tuple) -> bool:
        return self._key(key) in _SHARED

    def __getitem__(self, key: tuple) -> Any:
        return _SHARED[self._key(key)]

    def __setitem__(self, key: tuple, value: Any) -> None:
        _SHARED[self._key(key)] = value


def install() -> None:
    """From now on every new botocore ``Loader`` uses the shared cache (idempotent)."""
    if getattr(loaders.Loader, "_shared_cache_installed", False):
        return
    original = loaders.Loader.__init__

    def __init__(self: loaders.Loader, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self._cache = _SharedCache(self)

    loaders.Loader.__init__ = __init__  # type: ignore[method-assign]
    loaders.Loader._shared_cache_installed = True  # type: ignore[attr-defined]


#: The services the tracker calls (tracker/aws/).
SERVICES = ("sagemaker", "s3", "sts", "resourcegroupstaggingapi", "cloudwatch", "organizations",
            "ce", "pricing", "sns", "sesv2", "sqs", "events")  # fmt: skip


def warm() -> None:
    """Parse what a client of each service needs, once, before the zygote forks."""
    import boto3

    install()
    session = boto3.Session(region_name="us-east-1", aws_access_key_id="warm",
                            aws_secret_access_key="warm")  # fmt: skip
    for service in SERVICES:
        session.client(service)
