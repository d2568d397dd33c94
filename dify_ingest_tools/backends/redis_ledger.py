"""`RedisLedger`: the pending ledger in Redis, for fleets spread over several machines.

Same entries and states as `SQLiteLedger`. Per scope, one hash holds the entries (JSON), a
sorted set the pending ones (by upload time) and two small hashes the newest entry per
document and per name. Every change is one Lua script, so concurrent writers never
interleave; times come from Redis ``TIME``. Keys expire ``retention_days`` after the last
upload of their scope.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from dify_ingest_tools.backends.ledger import LedgerEntry, LedgerState, Outcome
from dify_ingest_tools.backends.redis_common import (
    KEY_PREFIX,
    LuaScript,
    RedisConnector,
    check_key_part,
)

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

# KEYS: entries, pending, by-name, by-document. ARGV: field, dataset, batch, document, name,
# hash ('' for none), ttl seconds.
_RECORD = LuaScript(
    _NOW
    + """
local by_document = ARGV[2] .. '|' .. ARGV[4]
local old = redis.call('HGET', KEYS[4], by_document)
if old and old ~= ARGV[1] then
  local raw = redis.call('HGET', KEYS[1], old)
  if raw then
    local entry = cjson.decode(raw)
    if entry.state == 'pending' then
      entry.state = 'superseded'
      entry.updated_at = now
      redis.call('HSET', KEYS[1], old, cjson.encode(entry))
    end
  end
  redis.call('ZREM', KEYS[2], old)
end
local digest = cjson.null
if ARGV[6] ~= '' then digest = ARGV[6] end
local entry = {dataset_id = ARGV[2], batch = ARGV[3], document_id = ARGV[4], name = ARGV[5],
  content_hash = digest, uploaded_at = now, state = 'pending', error = cjson.null,
  updated_at = now}
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(entry))
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('HSET', KEYS[3], ARGV[2] .. '|' .. ARGV[5], ARGV[1])
redis.call('HSET', KEYS[4], by_document, ARGV[1])
for i = 1, 4 do redis.call('EXPIRE', KEYS[i], tonumber(ARGV[7])) end
return 1
"""
)

# KEYS: entries, pending. ARGV: triples of field, state, error ('' for none).
_SETTLE = LuaScript(
    _NOW
    + """
local changed = 0
for i = 1, #ARGV, 3 do
  local raw = redis.call('HGET', KEYS[1], ARGV[i])
  if raw then
    local entry = cjson.decode(raw)
    if entry.state == 'pending' then
      entry.state = ARGV[i + 1]
      if ARGV[i + 2] ~= '' then entry.error = ARGV[i + 2] end
      entry.updated_at = now
      redis.call('HSET', KEYS[1], ARGV[i], cjson.encode(entry))
      redis.call('ZREM', KEYS[2], ARGV[i])
      changed = changed + 1
    end
  end
end
return changed
"""
)

# KEYS: entries, pending. ARGV: field prefix (dataset|batch|), state, error.
_MARK_BATCH = LuaScript(
    _NOW
    + """
local changed = 0
for _, field in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if string.sub(field, 1, #ARGV[1]) == ARGV[1] then
    local raw = redis.call('HGET', KEYS[1], field)
    if raw then
      local entry = cjson.decode(raw)
      entry.state = ARGV[2]
      if ARGV[3] ~= '' then entry.error = ARGV[3] end
      entry.updated_at = now
      redis.call('HSET', KEYS[1], field, cjson.encode(entry))
    end
    redis.call('ZREM', KEYS[2], field)
    changed = changed + 1
  end
end
return changed
"""
)

# KEYS: entries, pending, by-document. ARGV: dataset|document.
_FORGET = LuaScript(
    _NOW
    + """
local field = redis.call('HGET', KEYS[3], ARGV[1])
if not field then return 0 end
local raw = redis.call('HGET', KEYS[1], field)
if raw then
  local entry = cjson.decode(raw)
  entry.state = 'deleted'
  entry.updated_at = now
  redis.call('HSET', KEYS[1], field, cjson.encode(entry))
end
redis.call('ZREM', KEYS[2], field)
return 1
"""
)


class RedisLedger:
    """The pending ledger in Redis (``pip install dify-ingest-tools[redis]``).

    Args:
        url: The Redis server (``redis://``, ``rediss://`` or ``unix://``).
        namespace: Separates unrelated fleets sharing one Redis.
        retention_days: Keys of a scope expire this long after its last upload.
        timeout: Seconds for each Redis command.
    """

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "default",
        retention_days: float = 30.0,
        timeout: float = 2.0,
    ) -> None:
        self.namespace = check_key_part("namespace", namespace)
        self.retention_days = float(retention_days)
        self._connector = RedisConnector(url, timeout=timeout)

    def __repr__(self) -> str:
        url = self._connector.public_url
        return f"{type(self).__name__}({url!r}, namespace={self.namespace!r})"

    def _keys(self, scope: str) -> list[str]:
        base = f"{KEY_PREFIX}:ledger:{{{self.namespace}}}:{scope}"
        return [f"{base}:entries", f"{base}:pending", f"{base}:by-name", f"{base}:by-document"]

    async def record(
        self,
        scope: str,
        *,
        dataset_id: str,
        batch: str,
        document_id: str,
        name: str,
        content_hash: str | None,
    ) -> None:
        dataset_id = dataset_id.lower()
        field = _field(dataset_id, batch, document_id)
        ttl = max(1, round(self.retention_days * 86400))
        args = [field, dataset_id, batch, document_id, name, content_hash or "", ttl]
        await _RECORD(self._connector.client(), self._keys(scope), args)

    async def settle(
        self, scope: str, dataset_id: str, batch: str, outcomes: Sequence[Outcome]
    ) -> None:
        if not outcomes:
            return
        args: list[Any] = []
        for outcome in outcomes:
            field = _field(dataset_id.lower(), batch, outcome.document_id)
            args += [field, outcome.state, outcome.error or ""]
        await _SETTLE(self._connector.client(), self._keys(scope)[:2], args)

    async def mark(
        self, scope: str, dataset_id: str, batch: str, state: LedgerState, error: str | None
    ) -> None:
        prefix = f"{dataset_id.lower()}|{batch}|"
        await _MARK_BATCH(
            self._connector.client(), self._keys(scope)[:2], [prefix, state, error or ""]
        )

    async def forget(self, scope: str, dataset_id: str, document_id: str) -> None:
        entries, pending, _, by_document = self._keys(scope)
        await _FORGET(
            self._connector.client(),
            [entries, pending, by_document],
            [f"{dataset_id.lower()}|{document_id}"],
        )

    async def pending(self, scope: str, dataset_id: str | None = None) -> list[LedgerEntry]:
        entries, pending, _, _ = self._keys(scope)
        client = self._connector.client()
        fields = [_bytes(field) for field in await client.zrange(pending, 0, -1)]
        if dataset_id is not None:
            prefix = f"{dataset_id.lower()}|".encode()
            fields = [field for field in fields if field.startswith(prefix)]
        return await self._load(entries, fields)

    async def latest(self, scope: str, dataset_id: str) -> dict[str, LedgerEntry]:
        entries, _, by_name, _ = self._keys(scope)
        client = self._connector.client()
        prefix = f"{dataset_id.lower()}|".encode()
        stored = await client.hgetall(by_name)
        names = {_bytes(key): _bytes(field) for key, field in stored.items()}
        fields = [field for key, field in sorted(names.items()) if key.startswith(prefix)]
        found = await self._load(entries, fields)
        latest = {entry.name: entry for entry in found if entry.state != "superseded"}
        return dict(sorted(latest.items(), key=lambda item: item[1].uploaded_at))

    async def _load(self, entries_key: str, fields: list[bytes]) -> list[LedgerEntry]:
        if not fields:
            return []
        raw = await self._connector.client().hmget(entries_key, fields)
        loaded = [_entry(json.loads(item)) for item in raw if item is not None]
        return sorted(loaded, key=lambda entry: (entry.uploaded_at, entry.batch))

    async def aclose(self) -> None:
        await self._connector.release()


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _field(dataset_id: str, batch: str, document_id: str) -> str:
    return f"{dataset_id}|{batch}|{document_id}"


def _entry(data: dict[str, Any]) -> LedgerEntry:
    return LedgerEntry(
        dataset_id=data["dataset_id"],
        batch=data["batch"],
        document_id=data["document_id"],
        name=data["name"],
        content_hash=data.get("content_hash"),
        uploaded_at=float(data["uploaded_at"]),
        state=data["state"],
        error=data.get("error"),
        updated_at=float(data["updated_at"]),
    )
