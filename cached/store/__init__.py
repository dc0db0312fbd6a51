"""The content-addressed store: blobs, trees, the LMDB index, roots and their collection.

Use ``Store.open(root)``; see ``cached/store/store.py``. Never fork a process
that has a store open.
"""

from cached.store.collect import CollectReport
from cached.store.errors import BlobNotFound, StoreError, StoreLockedError, TreeNotFound
from cached.store.leases import keep_leased
from cached.store.records import ActionLookup
from cached.store.roots import ROOT_KINDS, RootEntry
from cached.store.store import Store, StoreStats
from cached.store.tombstones import Removed, Tombstones
from cached.store.verify import VerifyReport

__all__ = [
    "ROOT_KINDS",
    "ActionLookup",
    "BlobNotFound",
    "CollectReport",
    "Removed",
    "RootEntry",
    "Store",
    "StoreError",
    "StoreLockedError",
    "StoreStats",
    "Tombstones",
    "TreeNotFound",
    "VerifyReport",
    "keep_leased",
]
