"""The exactly-one lease: a Redis key per daemon holding the owning instance's generation.

The lease is short-lived and renewed about every second. It is advisory: correctness rests on
the ``generation`` fencing number in the database, which every write of an instance checks.
The lease answers "is an instance alive?" quickly, without touching the database.
"""

from __future__ import annotations

import hashlib

from redis.exceptions import NoScriptError

from stashhog.events import get_redis, key

# Renew, or take back a lease that vanished (a Redis restart keeps nothing): 1 if ours now.
_RENEW = """
local current = redis.call('GET', KEYS[1])
if current == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

_RENEW_SHA = hashlib.sha1(_RENEW.encode()).hexdigest()

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def lease_key(daemon_id: object) -> str:
    return key("lease", daemon_id)


def acquire_lease(daemon_id: object, generation: int, ttl: float) -> bool:
    """Take the lease if nobody holds it."""
    return bool(get_redis().set(lease_key(daemon_id), generation, nx=True, px=int(ttl * 1000)))


def renew_lease(daemon_id: object, generation: int, ttl: float) -> bool:
    """Extend our lease; False means another generation holds it (we are fenced)."""
    result = get_redis().eval(_RENEW, 1, lease_key(daemon_id), generation, int(ttl * 1000))
    return bool(result)


def renew_leases(leases: list[tuple[object, int]], ttl: float) -> list[bool]:
    """``renew_lease`` for many ``(daemon_id, generation)`` pairs in one pipeline (one round
    trip): a worker process renews all its instances' leases at once. Each answer is that
    lease's alone; the pipeline raises only when Redis itself failed."""
    if not leases:
        return []
    client = get_redis()
    for attempt in range(2):
        # EVALSHA by hand: a registered script in a pipeline asks SCRIPT EXISTS first, a
        # second round trip every renewal (on a 200 ms lossy link, twice the stalls).
        pipe = client.pipeline(transaction=False)
        for daemon_id, generation in leases:
            pipe.evalsha(_RENEW_SHA, 1, lease_key(daemon_id), generation, int(ttl * 1000))
        try:
            return [bool(result) for result in pipe.execute()]
        except NoScriptError:  # Redis restarted, or its script cache was flushed: none ran
            if attempt:
                raise
            client.script_load(_RENEW)
    return []  # not reached


def release_lease(daemon_id: object, generation: int) -> bool:
    return bool(get_redis().eval(_RELEASE, 1, lease_key(daemon_id), generation))


def lease_holder(daemon_id: object) -> int | None:
    """The generation holding the lease, or None when no instance is alive."""
    value = get_redis().get(lease_key(daemon_id))
    return int(value) if value is not None else None


# The lease holders of many daemons: MGET inside Redis, the ids sent as one argument and the
# answer as one string. MGET of 1,000 keys cost ~6 ms of redis-py's Python packing and
# parsing a request; this one, well under 1 ms.
_HOLDERS = """
local values = {}
for id in string.gmatch(ARGV[2], "[^,]+") do
  values[#values + 1] = redis.call('GET', ARGV[1] .. id) or ''
end
return table.concat(values, ',')
"""


def lease_holders(daemon_ids: list) -> dict[str, int | None]:
    """Lease holders of many daemons (ids or their str) in one round trip, by str(id)."""
    if not daemon_ids:
        return {}
    ids = [str(daemon_id) for daemon_id in daemon_ids]
    answer = get_redis().eval(_HOLDERS, 0, lease_key(""), ",".join(ids)).decode().split(",")
    return {
        daemon_id: int(value) if value else None
        for daemon_id, value in zip(ids, answer, strict=True)
    }


def renewal_interval(ttl: float) -> float:
    """How often a live instance renews its lease (the runtime's rule)."""
    return min(1.0, ttl / 3)


def lease_remaining(daemon_ids: list) -> dict[str, float | None]:
    """Seconds each lease has left (None: no lease), in one round trip. A lease that lost
    more than a renewal interval was not renewed in time: its instance may be gone."""
    if not daemon_ids:
        return {}
    pipe = get_redis().pipeline(transaction=False)
    for daemon_id in daemon_ids:
        pipe.pttl(lease_key(daemon_id))
    values = pipe.execute()
    return {
        str(daemon_id): value / 1000 if value >= 0 else None
        for daemon_id, value in zip(daemon_ids, values, strict=True)
    }
