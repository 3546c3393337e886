package collab

import "github.com/redis/go-redis/v9"

// The RedisStore's scripts. Every write is one script, so it is atomic
// (Redis runs a script alone) and fenced in the same step: the script
// compares the room's owner epoch with the writer's before it changes
// anything. Errors are replies whose first word the Go side maps to a
// sentinel (redisErr): NODOC, EXISTS, FENCED, CONFLICT, ROOM.
//
// Common argument layout: KEYS[1] is the document's meta hash and the
// last key is the room's owner hash; ARGV[1] is the writer's epoch
// ("" = no fencing) and ARGV[2] the document's room.

// luaFence is the prelude of every write: the document must exist (unless
// creating) and belong to ARGV[2], and the owner epoch must match.
const luaFence = `
local function fenced(owner, epoch)
  if epoch == '' then return nil end
  local e = redis.call('HGET', owner, 'epoch')
  if e == false then return redis.error_reply('FENCED no owner epoch for the room') end
  if e ~= epoch then return redis.error_reply('FENCED owner epoch is ' .. e .. ', writer holds ' .. epoch) end
  return nil
end
local function existing(meta, room)
  local r = redis.call('HGET', meta, 'room')
  if r == false then return redis.error_reply('NODOC') end
  if r ~= room then return redis.error_reply('ROOM document is in another room') end
  return nil
end
`

// KEYS: meta, snaps, snaptext, roomdocs, owner.
// ARGV: epoch, room, metaJSON, snapRev, snapIndex, snapJSON, docID.
var scriptCreate = redis.NewScript(luaFence + `
local f = fenced(KEYS[5], ARGV[1]); if f then return f end
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.error_reply('EXISTS') end
redis.call('HSET', KEYS[1], 'meta', ARGV[3], 'room', ARGV[2], 'head', ARGV[4], 'first', '0')
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
redis.call('HSET', KEYS[3], ARGV[4], ARGV[6])
redis.call('SADD', KEYS[4], ARGV[7])
return 'OK'
`)

// KEYS: meta, owner. ARGV: epoch, room, metaJSON.
var scriptUpdate = redis.NewScript(luaFence + `
local f = fenced(KEYS[2], ARGV[1]); if f then return f end
local e = existing(KEYS[1], ARGV[2]); if e then return e end
redis.call('HSET', KEYS[1], 'meta', ARGV[3])
return 'OK'
`)

// KEYS: meta, ops, snaps, snaptext, versions, comments, roomdocs, owner.
// ARGV: epoch, room, docID.
var scriptDelete = redis.NewScript(luaFence + `
local f = fenced(KEYS[8], ARGV[1]); if f then return f end
local e = existing(KEYS[1], ARGV[2]); if e then return e end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
redis.call('SREM', KEYS[7], ARGV[3])
return 'OK'
`)

// scriptCommit appends ops, saves a snapshot and compacts, all or nothing.
// The revision check is a compare-and-set on the meta hash's head: the
// first op must be head+1. Everything is checked before the first write,
// so a refusal changes nothing.
//
// KEYS: meta, ops, snaps, snaptext, owner.
// ARGV: epoch, room, firstRev, snapRev ("" = none), snapIndex, snapJSON,
// dropBefore, keepSnaps, then one op record JSON per op.
var scriptCommit = redis.NewScript(luaFence + `
local f = fenced(KEYS[5], ARGV[1]); if f then return f end
local e = existing(KEYS[1], ARGV[2]); if e then return e end
local nops = #ARGV - 8
if nops > 0 then
  local head = tonumber(redis.call('HGET', KEYS[1], 'head'))
  local first = tonumber(ARGV[3])
  if first ~= head + 1 then
    return redis.error_reply('CONFLICT first op is revision ' .. ARGV[3] .. ', the stored head is ' .. head)
  end
  if redis.call('LLEN', KEYS[2]) == 0 then redis.call('HSET', KEYS[1], 'first', ARGV[3]) end
  for i = 9, #ARGV, 8000 do
    redis.call('RPUSH', KEYS[2], unpack(ARGV, i, math.min(i + 7999, #ARGV)))
  end
  redis.call('HSET', KEYS[1], 'head', tostring(head + nops))
end
if ARGV[4] ~= '' then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], ARGV[4], ARGV[4])
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[5])
  redis.call('HSET', KEYS[4], ARGV[4], ARGV[6])
end
local drop = tonumber(ARGV[7])
local n = redis.call('LLEN', KEYS[2])
if drop > 0 and n > 0 then
  local first = tonumber(redis.call('HGET', KEYS[1], 'first'))
  local k = drop - first
  if k >= n then
    redis.call('DEL', KEYS[2])
    redis.call('HSET', KEYS[1], 'first', '0')
  elseif k > 0 then
    redis.call('LTRIM', KEYS[2], k, -1)
    redis.call('HSET', KEYS[1], 'first', tostring(first + k))
  end
end
local keep = tonumber(ARGV[8])
local ns = redis.call('ZCARD', KEYS[3])
if keep > 0 and ns > keep then
  local old = redis.call('ZRANGE', KEYS[3], 0, ns - keep - 1, 'WITHSCORES')
  for i = 2, #old, 2 do redis.call('HDEL', KEYS[4], old[i]) end
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, ns - keep - 1)
end
return 'OK'
`)

// KEYS: meta, hash, owner. ARGV: epoch, room, field, value, onlyNew ("1":
// refuse an existing field with EXISTS). Versions and comment threads.
var scriptPutField = redis.NewScript(luaFence + `
local f = fenced(KEYS[3], ARGV[1]); if f then return f end
local e = existing(KEYS[1], ARGV[2]); if e then return e end
if ARGV[5] == '1' then
  if redis.call('HSETNX', KEYS[2], ARGV[3], ARGV[4]) == 0 then return redis.error_reply('EXISTS') end
else
  redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
end
return 'OK'
`)

// KEYS: meta, ops. ARGV: after, upTo. The retained ops after < rev <= upTo.
// The list's element i holds revision first+i (commits are contiguous).
var scriptOps = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NODOC') end
local n = redis.call('LLEN', KEYS[2])
if n == 0 then return {} end
local first = tonumber(redis.call('HGET', KEYS[1], 'first'))
local lo = math.max(tonumber(ARGV[1]) + 1, first) - first
local hi = math.min(tonumber(ARGV[2]), first + n - 1) - first
if lo > hi then return {} end
return redis.call('LRANGE', KEYS[2], lo, hi)
`)

// KEYS: meta, ops. Returns {first, last} or {0, 0}.
var scriptBounds = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NODOC') end
local n = redis.call('LLEN', KEYS[2])
if n == 0 then return {0, 0} end
local first = tonumber(redis.call('HGET', KEYS[1], 'first'))
return {first, first + n - 1}
`)

// KEYS: meta, snaps, snaptext. ARGV: atOrBefore. The snapshot's JSON, or
// false when there is none.
var scriptSnapshot = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NODOC') end
local r = redis.call('ZREVRANGEBYSCORE', KEYS[2], ARGV[1], '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
if #r == 0 then return false end
return redis.call('HGET', KEYS[3], r[2])
`)

// KEYS: meta, a sorted set or hash of the document. ARGV: "z" (sorted set
// members in order), "v" (hash values), or "f" plus a field (one value).
var scriptRead = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NODOC') end
if ARGV[1] == 'z' then return redis.call('ZRANGE', KEYS[2], 0, -1) end
if ARGV[1] == 'v' then return redis.call('HVALS', KEYS[2]) end
return redis.call('HGET', KEYS[2], ARGV[2])
`)
