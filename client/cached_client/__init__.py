"""A Python client for the cached daemon: build apps, move blobs, ask for stats.

Typed results (dataclasses), errors as ``CachedError`` subclasses that carry
the gRPC status and the daemon's message, events delivered as they arrive,
cancellation that cancels the build. Files up to 1 MiB travel inline; larger
ones are uploaded first, and only those the daemon lacks. Given several
daemons, each app goes to one of them by rendezvous hashing.
"""

from cached_client.client import AsyncClient, BuildCall, Client, digest_of
from cached_client.files import AppFile, collect_files
from cached_client.outputs import UnsafeOutputPath
from cached_client.routing import ROUTE_METADATA, parse_addresses, rendezvous_order, route_key
from cached_client.types import (
    AppStats, BuildFailed, BuildResult, BuildTimeout, CachedError, Cancelled, DataLoss, Decision, DeployOptions, DeployResult,
    Digest, InvalidRequest, Metrics, NotFound, OutputFile, PermissionDenied, ResourceExhausted, Stats, TenantStats,
    Unauthenticated, Unavailable,
)

__all__ = [
    "AppFile", "AppStats", "AsyncClient", "BuildCall", "BuildFailed", "BuildResult", "BuildTimeout", "CachedError",
    "Cancelled", "Client", "DataLoss", "Decision", "DeployOptions", "DeployResult", "Digest", "InvalidRequest", "Metrics", "NotFound",
    "OutputFile", "PermissionDenied", "ROUTE_METADATA", "ResourceExhausted", "Stats", "TenantStats", "Unauthenticated", "Unavailable", "UnsafeOutputPath",
    "collect_files", "digest_of", "parse_addresses", "rendezvous_order", "route_key",
]
