"""The store's exceptions. This module must never import the rest of the store."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of the store's own errors."""


class StoreLockedError(StoreError):
    """Another process holds the root's lock: one daemon per root."""


class BlobNotFound(StoreError, FileNotFoundError):
    """A digest the caller named is not in the store."""


class TreeNotFound(StoreError, KeyError):
    """A tree manifest the caller named is not in the store (or is not a tree)."""

    def __str__(self) -> str:  # KeyError quotes its argument; a message reads better
        return str(self.args[0]) if self.args else "tree not found"
