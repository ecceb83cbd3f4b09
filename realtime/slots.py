"""Sockets per user, counted in Redis so that every server process sees one count.

A user's slots are a sorted set: each open socket's channel name, scored with the Redis time at
which it lapses. A socket renews its slot while open and frees it when it closes; the slots of a
process that died without closing lapse by themselves, TTL seconds after their last renewal.
"""

_TAKE = """
local now = tonumber(redis.call('TIME')[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
    return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""
# Renewing re-adds a slot a Redis restart lost: the socket is open, so it counts.
_RENEW = """
local now = tonumber(redis.call('TIME')[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
"""


def _key(user_id) -> str:
    return f"multica:websockets:user:{user_id}"


def _redis(layer, key: str):
    # The channel layer's own connection: the slots live and die with the layer's Redis.
    return layer.connection(layer.consistent_hash(key))


async def take(layer, user_id, channel: str, *, limit: int, ttl: int) -> bool:
    """Takes a slot for `channel` unless the user holds `limit` live ones already."""
    key = _key(user_id)
    return bool(await _redis(layer, key).eval(_TAKE, 1, key, channel, limit, ttl))


async def renew(layer, user_id, channel: str, *, ttl: int) -> None:
    key = _key(user_id)
    await _redis(layer, key).eval(_RENEW, 1, key, channel, ttl)


async def free(layer, user_id, channel: str) -> None:
    key = _key(user_id)
    await _redis(layer, key).zrem(key, channel)
