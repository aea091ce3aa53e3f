"""The spec's limit of one request per second per API key, across all processes.

Every request to PixVerse first reserves a slot: the earliest moment at or
after now that is at least PIXVERSE_MIN_INTERVAL after the previous slot of
the same key. The reservation is one atomic step in shared storage (a row
locked in a transaction on SQLite or PostgreSQL, or a Lua script in Redis),
so the web process, every worker and every CLI command share one schedule.
Then the caller sleeps until its slot. Keys are stored only as a SHA-256 hash.
"""

import hashlib
import time
from functools import cache

from django.conf import settings
from django.db import transaction
from django.views.decorators.debug import sensitive_variables

# Seconds a request may start after its slot; PIXVERSE_MIN_INTERVAL's margin over
# one second (50 ms by default) covers this and the send itself.
LATE_TOLERANCE = 0.02
MAX_LATE_SLOTS = 3


class SlotTooFar(Exception):
    """The next free slot is further away than the caller is willing to wait."""

    def __init__(self, wait: float):
        super().__init__(f"the next request slot for this key is {wait:.1f} s away")
        self.wait = wait


@sensitive_variables("api_key")
def key_fingerprint(api_key: str) -> str:
    """A stable, one-way name for a key: what the limiter stores instead of the key."""
    return hashlib.sha256(b"pixverse-api-key:" + api_key.encode()).hexdigest()


def _reserve_in_database(fingerprint: str, interval: float, max_wait: float | None) -> float:
    from generations.models import RateLimitSlot

    with transaction.atomic():
        # Creating the row first (ignored when it exists) lets select_for_update
        # lock it on PostgreSQL; on SQLite the IMMEDIATE transaction itself is
        # the lock. Either way two processes cannot read the same next_at.
        RateLimitSlot.objects.bulk_create(
            [RateLimitSlot(key_hash=fingerprint, next_at=0.0)], ignore_conflicts=True
        )
        slot = RateLimitSlot.objects.select_for_update().get(key_hash=fingerprint)
        now = time.time()
        at = max(now, slot.next_at)
        if max_wait is not None and at - now > max_wait:
            raise SlotTooFar(at - now)
        RateLimitSlot.objects.filter(key_hash=fingerprint).update(next_at=at + interval)
    return at - now


# KEYS[1]: the key's slot; ARGV[1]: interval; ARGV[2]: max wait, or -1 for none.
# Redis' own clock is the one clock that every process on every host shares.
_RESERVE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local at = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
local interval = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])
if max_wait >= 0 and at - now > max_wait then
  return {0, tostring(at - now)}
end
redis.call('SET', KEYS[1], tostring(at + interval), 'PX',
           math.ceil((at - now + interval) * 1000) + 60000)
return {1, tostring(at - now)}
"""


def _reserve_in_redis(fingerprint: str, interval: float, max_wait: float | None) -> float:
    reserved, wait = _redis_scripts(settings.REDIS_URL)[0](
        keys=[f"pixverse:ratelimit:{fingerprint}"],
        args=[interval, -1 if max_wait is None else max_wait],
    )
    if not reserved:
        raise SlotTooFar(float(wait))
    return float(wait)


_PEEK_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
return tostring(math.max(0, tonumber(redis.call('GET', KEYS[1]) or '0') - now))
"""


@cache
def _redis_scripts(url: str):
    """The reserve and peek scripts on one client per Redis URL (a URL changed by a test's
    settings gets its own, so reserving and looking always use the same database)."""
    import redis

    client = redis.Redis.from_url(url)
    return client.register_script(_RESERVE_SCRIPT), client.register_script(_PEEK_SCRIPT)


def seconds_until_free(fingerprint: str) -> float:
    """How long until the key's next slot is free (0: now), reserving nothing."""
    if settings.PIXVERSE_MIN_INTERVAL <= 0:
        return 0.0
    if settings.PIXVERSE_RATE_LIMIT_BACKEND == "redis":
        return float(_redis_scripts(settings.REDIS_URL)[1](keys=[f"pixverse:ratelimit:{fingerprint}"]))
    from generations.models import RateLimitSlot

    next_at = RateLimitSlot.objects.filter(key_hash=fingerprint).values_list("next_at", flat=True).first()
    return max(0.0, (next_at or 0.0) - time.time())


@sensitive_variables("api_key")
def wait_for_slot(api_key: str, *, max_wait: float | None = None) -> float:
    """Block until this key may send its next request; return the seconds waited.

    Raises SlotTooFar, reserving nothing, when the slot is more than max_wait away.
    """
    interval = settings.PIXVERSE_MIN_INTERVAL
    if interval <= 0:
        return 0.0
    fingerprint = key_fingerprint(api_key)
    reserve = _reserve_in_redis if settings.PIXVERSE_RATE_LIMIT_BACKEND == "redis" else _reserve_in_database
    waited = 0.0
    for _try in range(MAX_LATE_SLOTS):
        wait = reserve(fingerprint, interval, max_wait)
        reserved = time.monotonic()
        if wait > 0:
            time.sleep(wait)
        waited += wait
        # A thread that wakes late (a busy machine) would send closer to the next
        # slot's request than the interval allows: it leaves its slot empty and
        # takes a later one instead.
        if time.monotonic() - reserved - wait <= LATE_TOLERANCE:
            break
    return waited
