"""Idle-GPU cost (issue 15), pure: GPU counts, utilisation statistics, idle cost, right-sizing.

SageMaker publishes ``GPUUtilization`` and ``GPUMemoryUtilization`` per host (CloudWatch
namespace ``/aws/sagemaker/TrainingJobs``, dimension ``Host`` = ``<job-name>/algo-N``) as a
percentage *multiplied by the number of GPUs* of the instance (0..400 % on a 4-GPU instance).
The rules, each stated in docs/cost-model.md with a worked example that is a test:

- per-GPU utilisation of a host = the metric's value / the instance type's GPUs (gpus.csv);
- a job's mean = the mean over its hosts of each host's mean of its per-period averages;
  its p95 = the mean over its hosts of each host's nearest-rank 95th percentile of them;
- idle GPU cost = compute cost x (1 - mean / 100), never negative, beside the job's cost
  (not part of any total);
- right-sizing: GPUs needed = ceil(mean / 100 x the job's GPUs); when fewer than the job has
  and one instance of the family with fewer GPUs than the job holds them, the hint names
  the family's smallest such type (fewest GPUs, then table order): run one instance of it.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from importlib import resources

PERCENT = Decimal("0.001")  # stored utilisation precision: a thousandth of a percent


@cache
def gpu_table() -> dict[str, int]:
    """Instance type -> GPUs per instance, from the sourced package table ``data/gpus.csv``."""
    text = resources.files("tracker.cost").joinpath("data/gpus.csv").read_text(encoding="utf-8")
    return {row["instance_type"]: int(row["gpus"]) for row in csv.DictReader(text.splitlines())}


def gpus_of(instance_type: str | None) -> int | None:
    """GPUs per instance of a type, None for a type not in the table (CPU or unknown)."""
    return gpu_table().get(instance_type or "")


def billed_gpus(groups: Sequence[tuple[str, int]]) -> int:
    """GPUs a job is billed for: over its billed (instance type, count) groups, count x GPUs
    per instance; a type not in the table (CPU or unknown) adds none."""
    return sum(count * (gpus_of(instance_type) or 0) for instance_type, count in groups)


@dataclass(frozen=True)
class GpuStats:
    """A job's utilisation, percent per GPU: mean and p95 over its hosts."""

    mean: Decimal
    p95: Decimal
    hosts: int


def p95(values: Sequence[Decimal]) -> Decimal:
    """Nearest-rank 95th percentile: the ceil(0.95 n)-th smallest value."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(Decimal("0.95") * len(ordered))) - 1]


def job_stats(series: Mapping[str, Sequence[float]], gpus: int) -> GpuStats | None:
    """Per host the per-period averages of a metric -> the job's stats per GPU, None if no
    host has a datapoint. Each value is divided by ``gpus`` (the metric is x GPUs)."""
    hosts = [[Decimal(str(v)) / gpus for v in values] for values in series.values() if values]
    if not hosts:
        return None
    mean = sum((sum(h) / len(h) for h in hosts), Decimal(0)) / len(hosts)
    high = sum((p95(h) for h in hosts), Decimal(0)) / len(hosts)
    return GpuStats(_pct(mean), _pct(high), len(hosts))


def _pct(value: Decimal) -> Decimal:
    return value.quantize(PERCENT, rounding=ROUND_HALF_UP)


def idle_micros(compute_micros: Decimal | int, mean_pct: Decimal) -> Decimal:
    """Idle GPU cost in micro-dollars: compute x (1 - mean / 100), 0 at or above 100 %."""
    idle = Decimal(compute_micros) * (1 - min(mean_pct, Decimal(100)) / 100)
    return max(idle, Decimal(0))


def rightsize_hint(instance_type: str, count: int, mean_pct: Decimal) -> str:
    """``8 GPUs, mean 11.0 %: try ml.g5.xlarge`` (or only the first part when no smaller
    type of the family holds the GPUs the job used)."""
    gpus = gpus_of(instance_type) or 0
    total = gpus * count
    head = f"{total} GPU{'s' if total != 1 else ''}, mean {mean_pct.quantize(Decimal('0.1'))} %"
    needed = max(1, math.ceil(mean_pct / 100 * total))
    if needed >= total:
        return head
    family = instance_type.rsplit(".", 1)[0] + "."
    fits = [(n, i, t) for i, (t, n) in enumerate(gpu_table().items())
            if t.startswith(family) and needed <= n < total]  # fmt: skip
    if not fits:
        return head
    return f"{head}: try {min(fits)[2]}"
