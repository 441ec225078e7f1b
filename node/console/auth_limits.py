"""Login rate limiting: so many failures per account and per client address in a window.

Both keys count, so neither guessing many passwords for one name (from many addresses) nor
one address trying many names gets far. Only failures count; a success clears the account's
count (not the address's: an attacker who knows one password must not reset their budget
for guessing others). Time comes from the console's injected clock, so tests never sleep.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Final

__all__ = ["LoginLimiter"]

MAX_TRACKED: Final[int] = 100_000
"""Keys remembered at most (least recently failed dropped first): bounded memory under a
spray of failures from many addresses."""


class LoginLimiter:
    def __init__(self, failures: int, window: timedelta, clock: Callable[[], datetime]) -> None:
        self.failures, self.window, self.clock = failures, window, clock
        self._seen: OrderedDict[str, deque[datetime]] = OrderedDict()

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        times = self._seen.get(key)
        if times is None:
            return deque()
        while times and now - times[0] >= self.window:
            times.popleft()
        if not times:
            del self._seen[key]
        return times

    def retry_after(self, keys: Iterable[str]) -> int | None:
        """Seconds until a login may be tried again for these keys, or None if it may now."""
        now = self.clock()
        wait = 0.0
        for key in keys:
            times = self._recent(key, now)
            if len(times) >= self.failures:
                # Free again once the oldest failure that keeps the count at the limit expires.
                oldest = times[len(times) - self.failures]
                wait = max(wait, (oldest + self.window - now).total_seconds())
        return max(1, math.ceil(wait)) if wait > 0 else None

    def failed(self, keys: Iterable[str]) -> None:
        now = self.clock()
        for key in keys:
            times = self._recent(key, now)
            times.append(now)
            self._seen[key] = times
            self._seen.move_to_end(key)
        while len(self._seen) > MAX_TRACKED:
            self._seen.popitem(last=False)

    def clear(self, key: str) -> None:
        self._seen.pop(key, None)

    def forgive(self, key: str) -> None:
        """Take back the latest failure counted for ``key``: an attempt is counted before it
        is checked (so concurrent attempts cannot all pass the limit while the slow check
        runs) and forgiven when it succeeds."""
        times = self._seen.get(key)
        if times:
            times.pop()
            if not times:
                del self._seen[key]
