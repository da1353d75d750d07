"""Storage engines behind one interface (LogStore)."""

from .base import DuplicateKeyError, ExistingEvent, LogStore, StoreError
from .sqlite import SqliteStore

__all__ = ["DuplicateKeyError", "ExistingEvent", "LogStore", "SqliteStore", "StoreError"]
