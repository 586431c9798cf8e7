"""Login throttling: failure counters per account and per client address.

`LoginThrottle` is consulted by ``/login`` before the password is checked:

1. `LoginThrottle.begin` refuses the attempt (`TooManyLoginAttemptsError`,
   answered 429 with ``Retry-After``) while the account or the client address
   is locked, without counting it and without any password hashing, whether
   or not the account exists. Otherwise it counts the attempt as a failure
   for both, atomically, *before* the password is checked: concurrent
   guesses cannot slip past the limit while the first ones are being hashed.
2. A failure leaves the count in place. A success calls
   `LoginThrottle.succeeded`, which clears the account's counter and takes
   the attempt back from the address's counter.
3. An attempt whose password could not be checked (the identity provider
   raised: its database is down, or saving an upgraded hash failed) calls
   `LoginThrottle.abandoned`, which takes the attempt back from both
   counters, so an outage does not lock accounts or addresses. Such an
   attempt told the client nothing about the password beyond what a success
   would have.

Counting: a counter holds ``failures`` since ``first_failure``. When it
reaches its limit (``account_limit`` or ``address_limit``) the key is locked
for ``base_delay`` seconds, and every further failure doubles the lock, up to
``max_delay``. A counter starts again from zero once ``window`` seconds have
passed since its first failure and since the end of its last lock.

Where counters live (`ThrottleStore`): the store given to the throttle;
else `DEFAULT_STORE`, which `macrostrat.auth_system.core` fills with the
``login_throttle`` table of the current auth database (`connect_engine`,
`set_auth_database`, `use_auth_database`), shared by every process on that
database; otherwise a `MemoryThrottleStore`, which is per process (each worker
counts on its own).

About 510 lines: the policy, the store interface and the in-memory store must
agree on the one counting rule (counted before the password check, taken back
on success or failure to decide).
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .._slots import ContextSlot
from ..errors import (
    AuthConfigurationError,
    LoginThrottleStoreError,
    TooManyLoginAttemptsError,
)

__all__ = [
    "ACCOUNT",
    "ADDRESS",
    "DEFAULT_STORE",
    "LoginThrottle",
    "MemoryThrottleStore",
    "ThrottleAttempt",
    "ThrottleKey",
    "ThrottlePolicy",
    "ThrottleStore",
    "account_key",
    "address_key",
]

log = logging.getLogger(__name__)

ACCOUNT = "account"
"""The kind of a per-account counter (the key is the folded user name)."""

ADDRESS = "address"
"""The kind of a per-address counter (the key is the client address)."""

ThrottleKind = Literal["account", "address"]
ThrottleKey = tuple[str, str]


def _positive(name: str, value: Any, *, integer: bool = False) -> None:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not value > 0:
        what = "a positive integer" if integer else "a positive number"
        raise AuthConfigurationError(f"Login throttle {name} must be {what}.")
    if not math.isfinite(value):
        raise AuthConfigurationError(f"Login throttle {name} must be finite.")


@dataclass(frozen=True)
class ThrottlePolicy:
    """How many failures lock a key, and for how long.

    Parameters:
        account_limit: failures of one account (any client) that lock it.
        address_limit: failures from one client address (any account) that
            lock it.
        window: seconds after the first failure (and after the end of the
            last lock) when a counter starts again.
        base_delay: seconds of the first lock; each further failure doubles it.
        max_delay: the longest lock, in seconds.

    Raises:
        AuthConfigurationError: a value is not positive, or ``max_delay`` is
            below ``base_delay``.
    """

    account_limit: int = 5
    address_limit: int = 20
    window: float = 900
    base_delay: float = 60
    max_delay: float = 900

    def __post_init__(self) -> None:
        _positive("account_limit", self.account_limit, integer=True)
        _positive("address_limit", self.address_limit, integer=True)
        for name in ("window", "base_delay", "max_delay"):
            _positive(name, getattr(self, name))
        if self.max_delay < self.base_delay:
            raise AuthConfigurationError(
                "Login throttle max_delay must not be below base_delay."
            )

    def limit_for(self, kind: str) -> int:
        """The failure limit of counters of ``kind``."""
        return self.account_limit if kind == ACCOUNT else self.address_limit

    def lock_seconds(self, failures: int, limit: int) -> float | None:
        """How long ``failures`` failures lock a key with ``limit``, or None.

        ``base_delay * 2 ** (failures - limit)``, at most ``max_delay``; None
        below the limit.
        """
        if failures < limit:
            return None
        return min(self.max_delay, self.base_delay * 2.0 ** min(failures - limit, 60))


@dataclass(frozen=True)
class ThrottleAttempt:
    """A login attempt counted by a `ThrottleStore`, to settle after the check.

    Parameters:
        store: the store that counted it.
        keys: the ``(kind, key)`` counters it was counted in.
        markers: per key, the lock this attempt set (in the store's own
            representation), or None; `ThrottleStore.succeeded` lifts exactly
            that lock when the password turns out to be right.
    """

    store: ThrottleStore
    keys: tuple[ThrottleKey, ...]
    markers: tuple[object, ...]


class ThrottleStore(ABC):
    """Where failure counters are kept. Subclass to keep them elsewhere.

    `begin` must be atomic across every process sharing the store: checking
    the locks and counting the attempt happen as one step.
    """

    @abstractmethod
    def begin(
        self, keys: Sequence[ThrottleKey], policy: ThrottlePolicy
    ) -> ThrottleAttempt:
        """Refuse the attempt if a key is locked, else count it for every key.

        Parameters:
            keys: ``(kind, key)`` pairs, accounts first.
            policy: the limits and delays.

        Raises:
            TooManyLoginAttemptsError: some key is locked; nothing was counted.
        """

    @abstractmethod
    def succeeded(self, attempt: ThrottleAttempt) -> None:
        """Settle a successful login: clear account counters, uncount addresses.

        Parameters:
            attempt: what `begin` returned for the login.
        """

    @abstractmethod
    def abandoned(self, attempt: ThrottleAttempt) -> None:
        """Take back an attempt whose password could not be checked.

        Every counter of the attempt is uncounted (as `succeeded` does for
        addresses), lifting a lock this attempt set.

        Parameters:
            attempt: what `begin` returned for the login.
        """

    @abstractmethod
    def reset(self, kind: str, key: str) -> None:
        """Forget the counter ``(kind, key)`` (an administrator's unlock)."""

    @abstractmethod
    def prune(self, policy: ThrottlePolicy) -> int:
        """Delete counters that would start again anyway; return how many."""


@dataclass
class _Counter:
    failures: int
    first_failure: float
    locked_until: float | None


def _stale(counter: _Counter, now: float, window: float) -> bool:
    """Whether ``counter`` starts again: quiet for ``window`` (and after its lock)."""
    if counter.first_failure > now - window:
        return False
    return counter.locked_until is None or counter.locked_until <= now - window


class MemoryThrottleStore(ThrottleStore):
    """Counters in a dict of this process, guarded by a lock.

    Per process: with several workers each keeps its own counts, so an
    attacker gets the limits once per worker. Use the database store
    (`macrostrat.auth_system.core.connect_engine`) to share them.

    At most ``max_entries`` counters are kept; beyond that, counters that
    would start again are dropped first, then the oldest unlocked ones, then
    the locked ones closest to unlocking.

    Parameters:
        max_entries: the most counters kept (a positive integer).
        clock: seconds from a monotonic clock (for tests).
    """

    def __init__(
        self, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        _positive("max_entries", max_entries, integer=True)
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._counters: dict[ThrottleKey, _Counter] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._counters)

    def begin(
        self, keys: Sequence[ThrottleKey], policy: ThrottlePolicy
    ) -> ThrottleAttempt:
        """See `ThrottleStore.begin`."""
        with self._lock:
            now = self._clock()
            waits: dict[str, float] = {}
            for kind, key in keys:
                counter = self._counters.get((kind, key))
                locked_until = counter.locked_until if counter else None
                if locked_until is not None and locked_until > now:
                    waits[kind] = max(waits.get(kind, 0.0), locked_until - now)
            if waits:
                raise TooManyLoginAttemptsError(
                    math.ceil(max(waits.values())), tuple(waits)
                )
            markers: list[object] = []
            for kind, key in keys:
                counter = self._counters.get((kind, key))
                if counter is None or _stale(counter, now, policy.window):
                    counter = _Counter(0, now, None)
                    self._counters[(kind, key)] = counter
                counter.failures += 1
                delay = policy.lock_seconds(counter.failures, policy.limit_for(kind))
                counter.locked_until = None if delay is None else now + delay
                markers.append(counter.locked_until)
            if len(self._counters) > self.max_entries:
                self._evict(now, policy)
            return ThrottleAttempt(self, tuple(keys), tuple(markers))

    def succeeded(self, attempt: ThrottleAttempt) -> None:
        """See `ThrottleStore.succeeded`."""
        with self._lock:
            now = self._clock()
            for (kind, key), marker in zip(attempt.keys, attempt.markers, strict=True):
                if kind == ACCOUNT:
                    self._counters.pop((kind, key), None)
                else:
                    self._uncount((kind, key), marker, now)

    def abandoned(self, attempt: ThrottleAttempt) -> None:
        """See `ThrottleStore.abandoned`."""
        with self._lock:
            now = self._clock()
            for key, marker in zip(attempt.keys, attempt.markers, strict=True):
                self._uncount(key, marker, now)

    def _uncount(self, key: ThrottleKey, marker: object, now: float) -> None:
        """Take one attempt back from ``key``, lifting the lock it set (``marker``)."""
        counter = self._counters.get(key)
        if counter is None:
            return
        counter.failures = max(counter.failures - 1, 0)
        if marker is not None and counter.locked_until == marker:
            counter.locked_until = None
        if counter.failures == 0 and (
            counter.locked_until is None or counter.locked_until <= now
        ):
            del self._counters[key]

    def reset(self, kind: str, key: str) -> None:
        """See `ThrottleStore.reset`."""
        with self._lock:
            self._counters.pop((kind, key), None)

    def prune(self, policy: ThrottlePolicy) -> int:
        """See `ThrottleStore.prune`."""
        with self._lock:
            return self._prune(self._clock(), policy)

    def _prune(self, now: float, policy: ThrottlePolicy) -> int:
        stale = [k for k, c in self._counters.items() if _stale(c, now, policy.window)]
        for key in stale:
            del self._counters[key]
        return len(stale)

    def _evict(self, now: float, policy: ThrottlePolicy) -> None:
        self._prune(now, policy)
        excess = len(self._counters) - int(self.max_entries * 0.9)
        if excess <= 0:
            return

        def order(item: tuple[ThrottleKey, _Counter]) -> tuple[int, float]:
            counter = item[1]
            if counter.locked_until is None or counter.locked_until <= now:
                return (0, counter.first_failure)
            return (1, counter.locked_until)

        for key, _counter in sorted(self._counters.items(), key=order)[:excess]:
            del self._counters[key]
        log.warning(
            "Login throttle memory store is full (%d counters); dropped %d",
            self.max_entries,
            excess,
        )


def account_key(username: str) -> str:
    """The counter key of ``username``: NFKC-normalised and case-folded.

    Spellings that a case-insensitive identity provider would treat as one
    account share one counter, so varying the case does not multiply guesses.
    """
    return unicodedata.normalize("NFKC", username).casefold()


def address_key(address: str) -> str:
    """The counter key of a client address.

    IPv6 addresses count per ``/64`` network (one subscriber usually holds a
    whole ``/64``); IPv4 addresses and non-IP names count as they are.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


DEFAULT_STORE: ContextSlot[ThrottleStore] = ContextSlot(
    "login_throttle_store",
    "No default login throttle store; connect an auth database (connect_engine)",
)
"""The store of throttles built without one, when set (else their own memory store).

`macrostrat.auth_system.core` sets it to the current auth database's
``throttle_store`` whenever it sets the auth database (process-wide or for a
context), so the throttle layer never imports the database layer.
"""


class LoginThrottle:
    """Refuses logins after repeated failures per account and per client address.

    Give it to the backend: ``create_backend(key, login_throttle=LoginThrottle(
    account_limit=10))``; ``login_throttle=False`` turns throttling off. The
    defaults allow 5 failures per account and 20 per client address within 15
    minutes, then lock for 1 minute, doubling per further failure up to 15
    minutes. See the module docstring for the rules.

    Parameters:
        account_limit: failures of one account that lock it (default 5).
        address_limit: failures from one client address that lock it (20).
        window: seconds before a counter starts again (900).
        base_delay: seconds of the first lock (60).
        max_delay: the longest lock in seconds (900).
        enabled: False turns throttling off (every attempt passes).
        store: where counters live. Default: the ``login_throttle`` table of
            the current `macrostrat.auth_system.core.AuthDatabase` when one
            is configured (shared between processes), else this throttle's
            own `MemoryThrottleStore` (per process).

    Raises:
        AuthConfigurationError: a limit or delay is not positive, or ``store``
            is not a `ThrottleStore`.
    """

    def __init__(
        self,
        *,
        account_limit: int = 5,
        address_limit: int = 20,
        window: float = 900,
        base_delay: float = 60,
        max_delay: float = 900,
        enabled: bool = True,
        store: ThrottleStore | None = None,
    ) -> None:
        self.policy = ThrottlePolicy(
            account_limit=account_limit,
            address_limit=address_limit,
            window=window,
            base_delay=base_delay,
            max_delay=max_delay,
        )
        if not isinstance(enabled, bool):
            raise AuthConfigurationError("Login throttle enabled must be a bool.")
        if store is not None and not isinstance(store, ThrottleStore):
            raise AuthConfigurationError(
                f"Login throttle store must be a ThrottleStore; got {type(store).__name__}"
            )
        self.enabled = enabled
        self._store = store
        self._memory: MemoryThrottleStore | None = None
        self._lock = threading.Lock()
        self._last_prune: dict[int, float] = {}

    def __repr__(self) -> str:
        state = "enabled" if self.enabled else "disabled"
        return f"<LoginThrottle {state} {self.policy}>"

    @property
    def store(self) -> ThrottleStore:
        """The store in use now (explicit, else `DEFAULT_STORE`, else memory)."""
        if self._store is not None:
            return self._store
        default = DEFAULT_STORE.current()
        if default is not None:
            return default
        with self._lock:
            if self._memory is None:
                self._memory = MemoryThrottleStore()
            return self._memory

    def keys(self, username: str, address: str) -> tuple[ThrottleKey, ...]:
        """The ``(kind, key)`` counters a login for ``username`` from ``address`` uses."""
        return ((ACCOUNT, account_key(username)), (ADDRESS, address_key(address)))

    def begin(self, username: str, address: str) -> ThrottleAttempt | None:
        """Refuse a locked login, else count it as a failure until it succeeds.

        Returns None when throttling is off. Stale counters are pruned from
        the store at most once per ``window`` (failures to prune are logged).

        Parameters:
            username: the user name as sent (checked text).
            address: the client address (see `JWTBackend.client_address`).

        Raises:
            TooManyLoginAttemptsError: the account or the address is locked.
            LoginThrottleStoreError: the store's database could not be used.
        """
        if not self.enabled:
            return None
        store = self.store
        self._maybe_prune(store)
        return store.begin(self.keys(username, address), self.policy)

    def succeeded(self, attempt: ThrottleAttempt | None) -> None:
        """Settle a successful login counted by `begin` (None: nothing to do)."""
        if attempt is not None:
            attempt.store.succeeded(attempt)

    def abandoned(self, attempt: ThrottleAttempt | None) -> None:
        """Take back an attempt counted by `begin` whose password could not be checked.

        For a login whose identity provider raised (None: nothing to do); see
        `ThrottleStore.abandoned`.

        Raises:
            LoginThrottleStoreError: the store's database could not be used.
        """
        if attempt is not None:
            attempt.store.abandoned(attempt)

    def _maybe_prune(self, store: ThrottleStore) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last_prune.get(id(store))
            if last is not None and now - last < self.policy.window:
                return
            self._last_prune[id(store)] = now
        try:
            removed = store.prune(self.policy)
        except LoginThrottleStoreError:  # housekeeping: the attempt goes on
            log.warning("Could not prune the login throttle store", exc_info=True)
            return
        if removed:
            log.debug("Pruned %d stale login throttle counters", removed)
