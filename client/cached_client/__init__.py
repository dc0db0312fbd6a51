"""A Python client for the cached daemon: build apps, move blobs, ask for stats.

Typed results, errors as exceptions that carry the gRPC status, events
delivered as they arrive. Files up to 1 MiB travel inline; larger ones are
uploaded first, and only those the daemon lacks.
"""

from cached_client.client import AsyncClient, Client
from cached_client.files import collect_files
from cached_client.types import BuildResult, CachedError, Decision, OutputFile

__all__ = ["AsyncClient", "BuildResult", "CachedError", "Client", "Decision", "OutputFile", "collect_files"]
