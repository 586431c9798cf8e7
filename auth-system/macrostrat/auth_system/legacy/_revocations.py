"""Revoked token ids: the store interface, the in-process store and the default.

`JWTBackend` refuses a token whose ``jti`` its revocation store holds. Ids
are revoked by logout (the request's tokens), by ``/refresh`` (the presented
refresh token, rotated) and by the ORCID callback (its spent ``state``).

Where revocations live (`JWTBackend.revocation_store`): the store given to
the backend (``revocation_store=``); else `DEFAULT_REVOCATION_STORE`, which
`macrostrat.auth_system.core` fills with the ``revoked_token`` table of the
current auth database (`connect_engine`, `set_auth_database`,
`use_auth_database`), shared by every process on that database; otherwise the
backend's own `RevocationStore`, in this process only (with several workers,
a token revoked in one stays usable in the others until it expires).
"""

from __future__ import annotations

import heapq
import threading
import time
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from .._slots import ContextSlot
from ..errors import AuthConfigurationError

__all__ = ["DEFAULT_REVOCATION_STORE", "BaseRevocationStore", "RevocationStore"]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class BaseRevocationStore(ABC):
    """Where revoked token ids (``jti``) are kept. Subclass to keep them elsewhere.

    A store shared by several processes makes a logout or a refresh in one of
    them count in all. When the store cannot be used, `revoke` and
    `is_revoked` raise `macrostrat.auth_system.errors.RevocationStoreError`
    (with the cause kept): the backend then refuses the token (it fails
    closed) and the routes answer 401 or 503, never 500.

    ``blocking`` says whether calls may wait on I/O (a database, Redis): the
    backend then makes them from a worker thread in async code, off the event
    loop.
    """

    blocking: ClassVar[bool] = True

    @abstractmethod
    def revoke(self, jti: str, expires_at: int) -> bool | None:
        """Mark ``jti`` as revoked until ``expires_at`` (a Unix time).

        An id revoked again keeps the later expiry; an ``expires_at`` already
        past needs nothing kept. Returns True when this call revoked it
        first, False when it was already revoked (a refresh token presented
        twice: only the first rotation may issue new tokens); None from a
        store that cannot tell.
        """

    @abstractmethod
    def is_revoked(self, jti: str) -> bool:
        """Whether ``jti`` has been revoked (and that revocation has not expired)."""

    def prune(self) -> int:
        """Drop expired revocations; return how many (0 here: nothing to drop)."""
        return 0


class RevocationStore(BaseRevocationStore):
    """An in-process store of revoked token ids (``jti``), pruned on expiry.

    Entries are kept in a dict and in a heap ordered by expiry, so pruning
    expired entries costs O(log n) per entry removed. The store holds at most
    ``max_entries`` ids: beyond that the entries closest to expiry are evicted
    first (a token evicted that way becomes usable again for the little time it
    has left, so size the cap well above the number of logouts and refreshes
    expected in a refresh lifetime).

    Revocations are per process. With an auth database (`connect_engine`) the
    backend uses its ``revoked_token`` table instead, shared by every process;
    for another shared store (Redis, ...) subclass `BaseRevocationStore` (or
    this class) and override `revoke` and `is_revoked`.

    Parameters:
        max_entries: the most revoked ids kept (a positive integer).
    """

    blocking: ClassVar[bool] = False

    def __init__(self, max_entries: int = 100_000) -> None:
        if not _is_int(max_entries) or max_entries <= 0:
            raise AuthConfigurationError("max_entries must be a positive integer.")
        self.max_entries = max_entries
        self._revoked: dict[str, int] = {}
        self._heap: list[tuple[int, str]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._revoked)

    def _pop_soonest(self) -> None:
        expires_at, jti = heapq.heappop(self._heap)
        if self._revoked.get(jti) == expires_at:
            del self._revoked[jti]

    def _prune(self, now: int) -> None:
        while self._heap and self._heap[0][0] <= now:
            self._pop_soonest()
        while len(self._revoked) > self.max_entries:
            self._pop_soonest()

    def revoke(self, jti: str, expires_at: int) -> bool:
        """Mark ``jti`` as revoked until ``expires_at`` (a Unix time).

        Expired entries are dropped first; then, if the store is over
        ``max_entries``, the entries expiring soonest. Returns True when this
        call revoked it first (see `BaseRevocationStore.revoke`).
        """
        now = int(time.time())
        expires_at = int(expires_at)
        with self._lock:
            first = self._revoked.get(jti, -1) <= now and expires_at > now
            if expires_at > now and self._revoked.get(jti, -1) < expires_at:
                self._revoked[jti] = expires_at
                heapq.heappush(self._heap, (expires_at, jti))
            self._prune(now)
            # Stale heap items (re-revoked ids) are dropped when the heap has
            # grown well beyond the live entries.
            if len(self._heap) > 2 * len(self._revoked) + 64:
                self._heap = [(v, k) for k, v in self._revoked.items()]
                heapq.heapify(self._heap)
        return first

    def is_revoked(self, jti: str) -> bool:
        """Whether ``jti`` has been revoked (and has not expired)."""
        with self._lock:
            expires_at = self._revoked.get(jti)
        return expires_at is not None and expires_at > time.time()

    def prune(self) -> int:
        """Drop expired entries now; return how many."""
        with self._lock:
            before = len(self._revoked)
            self._prune(int(time.time()))
            return before - len(self._revoked)


DEFAULT_REVOCATION_STORE: ContextSlot[BaseRevocationStore] = ContextSlot(
    "revocation_store",
    "No default revocation store; connect an auth database (connect_engine)",
)
"""The store of backends built without one, when set (else their own in-process store).

`macrostrat.auth_system.core` sets it to the current auth database's
``revocation_store`` whenever it sets the auth database (process-wide or for
a context), so the backend never imports the database layer.
"""
