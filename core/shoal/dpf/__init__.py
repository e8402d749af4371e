"""Distributed partition functions (DPF): run a function once per partition, on many nodes.

Follows the reference product's DPF API; see docs/dpf.md. Runs on the driver.
"""

from shoal.dpf.context import PartitionContext, StageArtifactsManager
from shoal.dpf.dpf import DPF
from shoal.dpf.entities import ExecutionOptions, PartitionStatus, RunStatus
from shoal.dpf.partitioners import DerivedKey, FixedSizeChunks, HashBuckets, Partitioner, partitioner
from shoal.dpf.run import DPFRun, SinglePartitionDetails

__all__ = [
    "DPF",
    "DPFRun",
    "DerivedKey",
    "ExecutionOptions",
    "FixedSizeChunks",
    "HashBuckets",
    "PartitionContext",
    "PartitionStatus",
    "Partitioner",
    "RunStatus",
    "SinglePartitionDetails",
    "StageArtifactsManager",
    "partitioner",
]
