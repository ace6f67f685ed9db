package dialer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
	"github.com/ringback/ringback/services/internal/cache"
)

// AgentStore is the agents' live state, shared by the replicas through Redis.
//
// Every transition is one Lua script, so replicas changing one agent (the
// API, the router claiming it for a call, the events of its session) never
// interleave. Layout, under the client's prefix and "dialer:":
//
//	agent:<id>            hash: state (AgentState number), since (ms), account, campaigns
//	                      (comma-separated), wrap_s, call, campaign, session (call id), login
//	                      (the session's n), room, avail (the agent's score in free:, ms),
//	                      wrap_until (ms), pause, pending (reason), taken (calls since login)
//	free:<campaign>       zset of the agents available, scored by the instant they are:
//	                      READY, when they became ready (the lowest score, the longest idle,
//	                      is taken first); WRAP_UP, the end of the wrap-up. An agent whose
//	                      score is <= now is free: a wrap-up ends without a timer.
//	oncall:<campaign>     zset of the agents ON_CALL, scored by when the call started
//	paused:<campaign>     zset of the agents PAUSED, LOGGING_IN, or in a wrap-up that ends in
//	                      a pause (they are logged in and will not take a call), by since
//	agents-in             set of the agents logged in (for the router's reconciliation)
//	call-agent:<call>     the agent a customer call was given to (from Claim to its release)
//	waiting:<campaign>    zset of answered calls waiting for an agent, scored by their deadline
//	waiting-info:<campaign> hash call -> "account|answered ms|deadline ms", then "|q" for a
//	                      BLAST's queue, "|qe" for one whose callers leave when it is empty
//	leavers:<campaign>    zset of the waiting calls that are "|qe", by deadline (those to turn
//	                      away once the campaign has no agent; a subset of waiting:)
//	waiting-campaigns     set of the campaigns with waiting calls
//	shared:<campaign>     set of the campaign's logged-in agents that have other campaigns too
//	pacing                zset of the campaigns paced by agents, scored by the last instant a
//	                      replica read their agents (Snapshot): those read within pacingLive
//	                      are dialing for agents now
//
// A logged-in agent is in exactly one of free:, oncall: and paused: of each
// of its campaigns; an agent of several campaigns appears in each (on a
// call of one, it is ON_CALL in all of them). Pacing counts such an agent
// in one of them only (see Snapshot). The state stored for a
// WRAP_UP agent stays WRAP_UP after its end; every reader (the scripts and
// Go) sees it as READY since the end (PAUSED with a pending pause), and the
// next transition stores that.
//
// The scripts build their keys from the prefix rather than declaring them,
// which needs a single Redis (or a primary with replicas), as the platform's
// client is: not Redis Cluster. Scores are the callers' clocks in Unix
// milliseconds; replicas' clocks a few milliseconds apart only make a
// just-ready agent look free a few milliseconds later.
type AgentStore struct {
	rdb *redis.Client
	// p is the prefix of every key: the client's, then "dialer:".
	p string
}

// NewAgentStore returns the store over c.
func NewAgentStore(c *cache.Client) *AgentStore {
	return &AgentStore{rdb: c.Redis(), p: c.Key("dialer", "")}
}

// callAgentTTL bounds how long a call -> agent link outlives a lost end of
// the call (the router's reconciliation normally releases it sooner).
const callAgentTTL = 24 * time.Hour

// Errors of the transitions the API asks for.
var (
	errStateLoggedIn = errors.New("agent logged in")
	errStateInvalid  = errors.New("agent state does not allow that")
)

func ms(t time.Time) int64 { return t.UnixMilli() }

// agentLua is the scripts' shared part: the hash's codec, the derived
// state of a finished wrap-up, the placement in the campaigns' sets, and
// which campaign a shared agent counts for. LIVE (pacingLive in ms) comes
// before it.
const agentLua = `
local P = ARGV[1]
local OUT, IN, READY, CALL, WRAP, PAUSED = 1, 2, 3, 4, 5, 6
local NUMS = {'state', 'since', 'wrap_s', 'avail', 'wrap_until', 'taken'}
local STRS = {'account', 'campaigns', 'call', 'campaign', 'session', 'login', 'room', 'pause', 'pending'}

local function split(s)
  local t = {}
  for c in string.gmatch(s, '[^,]+') do t[#t + 1] = c end
  return t
end

local function load(id)
  local a = redis.call('HGETALL', P .. 'agent:' .. id)
  local h = {}
  for i = 1, #a, 2 do h[a[i]] = a[i + 1] end
  for _, f in ipairs(NUMS) do h[f] = tonumber(h[f]) or 0 end
  for _, f in ipairs(STRS) do h[f] = h[f] or '' end
  if h.state == 0 then h.state = OUT end
  return h
end

local function save(id, h)
  local a = {}
  for _, f in ipairs(NUMS) do a[#a + 1] = f; a[#a + 1] = string.format('%.0f', h[f]) end
  for _, f in ipairs(STRS) do a[#a + 1] = f; a[#a + 1] = h[f] end
  redis.call('HSET', P .. 'agent:' .. id, unpack(a))
end

-- A wrap-up whose end passed is READY since its end, or PAUSED with the
-- pause asked during the call.
local function settle(h, now)
  if h.state == WRAP and h.wrap_until <= now then
    h.since = h.wrap_until
    if h.pending ~= '' then
      h.state, h.pause, h.pending = PAUSED, h.pending, ''
    else
      h.state, h.avail = READY, h.wrap_until
    end
    h.wrap_until = 0
  end
end

-- place takes the agent out of the sets of the campaigns it had (old, a
-- comma list) and puts it in the one its state says in each campaign it
-- has now.
local function place(id, h, old)
  for _, c in ipairs(split(old)) do
    redis.call('ZREM', P .. 'free:' .. c, id)
    redis.call('ZREM', P .. 'oncall:' .. c, id)
    redis.call('ZREM', P .. 'paused:' .. c, id)
    redis.call('SREM', P .. 'shared:' .. c, id)
  end
  local set, score
  if h.state == READY then set, score = 'free:', h.avail
  elseif h.state == WRAP and h.pending == '' then set, score = 'free:', h.wrap_until
  elseif h.state == CALL then set, score = 'oncall:', h.since
  elseif h.state ~= OUT then set, score = 'paused:', h.since end
  if set == nil then
    redis.call('SREM', P .. 'agents-in', id)
    return
  end
  local cs = split(h.campaigns)
  for _, c in ipairs(cs) do
    redis.call('ZADD', P .. set .. c, string.format('%.0f', score), id)
    if #cs > 1 then redis.call('SADD', P .. 'shared:' .. c, id) end
  end
  redis.call('SADD', P .. 'agents-in', id)
end

local function logout(id, h)
  local old = h.campaigns
  if h.call ~= '' and redis.call('GET', P .. 'call-agent:' .. h.call) == id then
    redis.call('DEL', P .. 'call-agent:' .. h.call)
  end
  -- session stays: Logout hangs it up again if asked again.
  h.state, h.call, h.campaign, h.avail, h.wrap_until, h.pause, h.pending = OUT, '', '', 0, 0, '', ''
  save(id, h)
  place(id, h, old)
end

-- isDialing: whether a replica read campaign c's agents in the last LIVE ms
-- while it dialed (zset pacing), cached in dialing.
local function isDialing(dialing, c, now)
  if dialing[c] == nil then
    local seen = tonumber(redis.call('ZSCORE', P .. 'pacing', c))
    dialing[c] = seen ~= nil and seen >= now - LIVE
  end
  return dialing[c]
end

-- countsFor: whether the shared agent id (of campaigns, a comma list)
-- counts for camp: among its campaigns dialing now, camp included, camp has
-- the highest hash of agent and campaign (rendezvous hashing).
local function countsFor(id, campaigns, camp, now, dialing)
  local best, mine = nil, false
  for _, c in ipairs(split(campaigns)) do
    if c == camp or isDialing(dialing, c, now) then
      local hash = redis.sha1hex(id .. '|' .. c)
      if best == nil or hash > best then best, mine = hash, c == camp end
    end
  end
  return mine
end

-- claim gives the call the campaign's agent free longest among those that
-- count for it (not shared, or shared and counting for it), else the one
-- free longest: {agent, room, dup} with dup 1 when the call already had
-- that agent, or nil.
local function claim(campaign, call, now, ttl)
  local ck = P .. 'call-agent:' .. call
  local cur = redis.call('GET', ck)
  if cur then
    local h = load(cur)
    if h.state == CALL and h.call == call then return {cur, h.room, '1'} end
  end
  local fk, sk = P .. 'free:' .. campaign, P .. 'shared:' .. campaign
  local function take(id, h)
    h.state, h.since, h.call, h.campaign = CALL, now, call, campaign
    save(id, h)
    place(id, h, h.campaigns)
    redis.call('SET', ck, id, 'PX', ttl)
    return {id, h.room, '0'}
  end
  -- Page through the free agents, longest free first, a few at a time:
  -- the first is nearly always taken. kept counts those passed over (still
  -- in the set), which is where the next page starts.
  local dialing, otherID, other, kept = {}, nil, nil, 0
  for _ = 1, 1000, 16 do
    local page = redis.call('ZRANGEBYSCORE', fk, '-inf', now, 'LIMIT', kept, 16)
    if #page == 0 then break end
    for _, id in ipairs(page) do
      local h = load(id)
      settle(h, now)
      local member = false
      for _, c in ipairs(split(h.campaigns)) do
        if c == campaign then member = true end
      end
      if h.state == READY and member then
        if redis.call('SISMEMBER', sk, id) == 0 or countsFor(id, h.campaigns, campaign, now, dialing) then
          return take(id, h)
        end
        if otherID == nil then otherID, other = id, h end
        kept = kept + 1
      else
        -- Not what its place says (it cannot be, but never loop on it).
        redis.call('ZREM', fk, id)
      end
    end
  end
  if otherID ~= nil then return take(otherID, other) end
  return nil
end

-- release ends the agent's customer call: 1 if it was on it.
local function release(id, call, now, giveBack)
  local ck = P .. 'call-agent:' .. call
  if redis.call('GET', ck) == id then redis.call('DEL', ck) end
  local h = load(id)
  if h.state ~= CALL or h.call ~= call then return 0 end
  h.call, h.campaign = '', ''
  if giveBack then
    if h.pending ~= '' then
      h.state, h.since, h.pause, h.pending = PAUSED, now, h.pending, ''
    else
      -- Its place as it was: the call never reached it.
      h.state, h.since = READY, h.avail
    end
  else
    h.taken = h.taken + 1
    if h.wrap_s > 0 then
      h.state, h.since, h.wrap_until = WRAP, now, now + h.wrap_s * 1000
    elseif h.pending ~= '' then
      h.state, h.since, h.pause, h.pending = PAUSED, now, h.pending, ''
    else
      h.state, h.since, h.avail = READY, now, now
    end
  end
  save(id, h)
  place(id, h, h.campaigns)
  return 1
end

local function addWaiting(campaign, call, info, deadline)
  redis.call('ZADD', P .. 'waiting:' .. campaign, deadline, call)
  redis.call('HSET', P .. 'waiting-info:' .. campaign, call, info)
  if string.sub(info, -3) == '|qe' then
    redis.call('ZADD', P .. 'leavers:' .. campaign, deadline, call)
  end
  redis.call('SADD', P .. 'waiting-campaigns', campaign)
end

local function unwait(campaign, call)
  local n = redis.call('ZREM', P .. 'waiting:' .. campaign, call)
  redis.call('HDEL', P .. 'waiting-info:' .. campaign, call)
  redis.call('ZREM', P .. 'leavers:' .. campaign, call)
  return n
end

local function dropWaiting(campaign, call)
  local n = unwait(campaign, call)
  if redis.call('ZCARD', P .. 'waiting:' .. campaign) == 0 then
    redis.call('SREM', P .. 'waiting-campaigns', campaign)
  end
  return n
end
`

func agentScript(body string) *redis.Script {
	return redis.NewScript(fmt.Sprintf("local LIVE = %d\n", pacingLive.Milliseconds()) + agentLua + body)
}

// Login: ARGV id, account, campaigns, wrap_s, n, now. 1, or 0 when the agent
// is logged in.
var loginScript = agentScript(`
local id = ARGV[2]
local h = load(id)
settle(h, tonumber(ARGV[7]))
if h.state ~= OUT then return 0 end
local old = h.campaigns
h.state, h.since, h.account, h.campaigns, h.wrap_s = IN, tonumber(ARGV[7]), ARGV[3], ARGV[4], tonumber(ARGV[5])
h.login, h.room, h.session, h.call, h.campaign = ARGV[6], 'agent-' .. id, '', '', ''
h.avail, h.wrap_until, h.pause, h.pending, h.taken = 0, 0, '', '', 0
save(id, h)
place(id, h, old)
return 1`)

// The session call of login n was created: ARGV id, n, call, ended (0/1).
// 1 if it is the agent's session now; 0 if the agent logged out meanwhile
// (or the call had ended: logged out now).
var sessionScript = agentScript(`
local id = ARGV[2]
local h = load(id)
if h.state == OUT or h.login ~= ARGV[3] or (h.session ~= '' and h.session ~= ARGV[4]) then return 0 end
if ARGV[5] == '1' then
  h.session = ARGV[4]
  logout(id, h)
  return 0
end
h.session = ARGV[4]
save(id, h)
return 1`)

// Login n failed before its call existed: ARGV id, n.
var abortLoginScript = agentScript(`
local id = ARGV[2]
local h = load(id)
if h.state ~= IN or h.login ~= ARGV[3] or h.session ~= '' then return 0 end
logout(id, h)
return 1`)

// The session call joined the room: ARGV id, call, n, now. 1 if the agent
// became READY.
var joinedScript = agentScript(`
local id = ARGV[2]
local h = load(id)
if h.state ~= IN then return 0 end
if h.session ~= ARGV[3] and not (h.session == '' and h.login == ARGV[4]) then return 0 end
local now = tonumber(ARGV[5])
h.state, h.since, h.avail, h.session = READY, now, now, ARGV[3]
save(id, h)
place(id, h, h.campaigns)
return 1`)

// The session call ended: ARGV id, call, n. 1 if the agent was logged out.
var sessionEndedScript = agentScript(`
local id = ARGV[2]
local h = load(id)
if h.state == OUT then return 0 end
if h.session ~= ARGV[3] and not (h.session == '' and h.login == ARGV[4]) then return 0 end
h.session = ARGV[3]
logout(id, h)
return 1`)

// Logout: ARGV id, now. {was logged in (0/1), session call, account}.
var logoutScript = agentScript(`
local id = ARGV[2]
local h = load(id)
if h.state == OUT then return {0, h.session, h.account} end
logout(id, h)
return {1, h.session, h.account}`)

// Pause: ARGV id, reason, now. 1, or -1 when the state does not allow it.
var pauseScript = agentScript(`
local id = ARGV[2]
local now = tonumber(ARGV[4])
local h = load(id)
settle(h, now)
if h.state == READY or h.state == WRAP then
  h.state, h.since, h.pause, h.pending, h.wrap_until = PAUSED, now, ARGV[3], '', 0
elseif h.state == PAUSED then
  h.pause = ARGV[3]
elseif h.state == CALL then
  h.pending = ARGV[3]
else
  return -1
end
save(id, h)
place(id, h, h.campaigns)
return 1`)

// SetReady: ARGV id, now. 1 (also when READY already), or -1.
var readyScript = agentScript(`
local id = ARGV[2]
local now = tonumber(ARGV[3])
local h = load(id)
settle(h, now)
if h.state == READY then return 1 end
if h.state ~= PAUSED and h.state ~= WRAP then return -1 end
h.state, h.since, h.avail, h.pause, h.pending, h.wrap_until = READY, now, now, '', '', 0
save(id, h)
place(id, h, h.campaigns)
return 1`)

// New campaigns and wrap-up of a logged-in agent: ARGV id, campaigns,
// wrap_s. 1 if it was logged in.
var configureScript = agentScript(`
local id = ARGV[2]
local h = load(id)
if h.state == OUT then return 0 end
local old = h.campaigns
h.campaigns, h.wrap_s = ARGV[3], tonumber(ARGV[4])
save(id, h)
place(id, h, old)
return 1`)

// Claim: ARGV campaign, call, now, ttl. {agent, room, dup} or {}.
var claimScript = agentScript(`
local r = claim(ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5])
if r == nil then return {} end
return r`)

// Release: ARGV agent, call, now, giveBack (0/1).
var releaseScript = agentScript(`
return release(ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5] == '1')`)

// A customer call ended: ARGV campaign, call, now. The agent released, or
// an empty string.
var callEndedScript = agentScript(`
local call = ARGV[3]
dropWaiting(ARGV[2], call)
local id = redis.call('GET', P .. 'call-agent:' .. call)
if not id then return '' end
if release(id, call, tonumber(ARGV[4]), false) == 0 then return '' end
return id`)

// An answered call awaits an agent: ARGV campaign, call, info, deadline,
// now, ttl, max waiting (0: none), turn away when empty (0/1).
// {'claimed', agent, room}, {'dup', agent, room} (the call has its agent
// already), {'waiting'}: queued, behind calls waiting longer when there
// are, {'known'} (queued already), or, with no agent free, {'empty'} (none
// of the campaign's agents is logged in and unpaused, and the queue turns
// callers away then) or {'full'} (max waiting wait already): not queued.
var awaitScript = agentScript(`
local campaign, call, now = ARGV[2], ARGV[3], tonumber(ARGV[6])
local cur = redis.call('GET', P .. 'call-agent:' .. call)
if cur then
  local h = load(cur)
  if h.state == CALL and h.call == call then return {'dup', cur, h.room} end
end
local wk = P .. 'waiting:' .. campaign
if redis.call('ZSCORE', wk, call) then return {'known'} end
local ahead = redis.call('ZCOUNT', wk, '(' .. ARGV[6], '+inf')
if ahead == 0 then
  local r = claim(campaign, call, now, ARGV[7])
  if r ~= nil then return {'claimed', r[1], r[2]} end
end
if ARGV[9] == '1' and redis.call('ZCARD', P .. 'free:' .. campaign) + redis.call('ZCARD', P .. 'oncall:' .. campaign) == 0 then
  return {'empty'}
end
local max = tonumber(ARGV[8])
if max > 0 and ahead >= max then return {'full'} end
addWaiting(campaign, call, ARGV[4], ARGV[5])
return {'waiting'}`)

// Match a campaign's waiting calls with its free agents: ARGV campaign, now,
// max, ttl. {expired, left, call, info, ... (left pairs), call, info, agent,
// room, call, info, agent, room, ...}: the waiting calls whose deadline
// passed are dropped and counted; when none of the campaign's agents is
// logged in and unpaused (free: or oncall:), the queue's callers that leave
// then (leavers:) are dropped and returned, to be turned away; then the oldest
// waiting calls get the agents free longest.
var matchScript = agentScript(`
local campaign, now, max = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local wk, ik = P .. 'waiting:' .. campaign, P .. 'waiting-info:' .. campaign
local out = {0, 0}
local gone = redis.call('ZRANGEBYSCORE', wk, '-inf', now)
for _, call in ipairs(gone) do unwait(campaign, call) end
out[1] = #gone
local lk = P .. 'leavers:' .. campaign
if redis.call('ZCARD', lk) > 0 and
    redis.call('ZCARD', P .. 'free:' .. campaign) + redis.call('ZCARD', P .. 'oncall:' .. campaign) == 0 then
  for _, call in ipairs(redis.call('ZRANGE', lk, 0, -1)) do
    local info = redis.call('HGET', ik, call) or ''
    unwait(campaign, call)
    out[#out + 1] = call
    out[#out + 1] = info
    out[2] = out[2] + 1
  end
end
for _ = 1, max do
  local w = redis.call('ZRANGE', wk, 0, 0)
  if #w == 0 then break end
  local r = claim(campaign, w[1], now, ARGV[5])
  if r == nil then break end
  local info = redis.call('HGET', ik, w[1]) or ''
  unwait(campaign, w[1])
  out[#out + 1] = w[1]
  out[#out + 1] = info
  out[#out + 1] = r[1]
  out[#out + 1] = r[2]
end
if redis.call('ZCARD', wk) == 0 then redis.call('SREM', P .. 'waiting-campaigns', campaign) end
return out`)

// Drop a waiting call: ARGV campaign, call. 1 if it was waiting.
var dropWaitingScript = agentScript(`
return dropWaiting(ARGV[2], ARGV[3])`)

// Queue a call again after a connection that failed: ARGV campaign, call,
// info, deadline, now. 1 if queued (its deadline is ahead).
var requeueScript = agentScript(`
if tonumber(ARGV[5]) <= tonumber(ARGV[6]) then return 0 end
addWaiting(ARGV[2], ARGV[3], ARGV[4], ARGV[5])
return 1`)

// Claim takes the campaign's agent that is free longest (READY, or WRAP_UP
// whose end is <= now) for callID: ON_CALL; returns ok=false when none is
// free. An agent shared with other campaigns that counts for another of
// them (see Snapshot) is taken only when no other is free. Claiming again
// for a call that has its agent returns that agent.
func (s *AgentStore) Claim(ctx context.Context, campaignID, callID string, now time.Time) (agentID, room string, ok bool, err error) {
	r, err := claimScript.Run(ctx, s.rdb, nil, s.p, campaignID, callID, ms(now), callAgentTTL.Milliseconds()).StringSlice()
	if err != nil {
		return "", "", false, fmt.Errorf("claim an agent of campaign %s for call %s: %w", campaignID, callID, err)
	}
	if len(r) < 2 {
		return "", "", false, nil
	}
	return r[0], r[1], true, nil
}

// Release ends the agent's customer call callID: WRAP_UP until
// now+wrap_up_s (READY at once without a wrap-up; PAUSED with a pause asked
// during the call and no wrap-up, else PAUSED when the wrap-up ends); a
// no-op if the agent is no longer on callID. giveBack=true (the call never
// reached the agent, e.g. ConnectCall said CALL_NOT_WAITING) makes the
// agent READY at once keeping its place (its old ready score), no wrap-up,
// and calls_taken not counted.
func (s *AgentStore) Release(ctx context.Context, agentID, callID string, now time.Time, giveBack bool) error {
	_, err := s.release(ctx, agentID, callID, now, giveBack)
	return err
}

func (s *AgentStore) release(ctx context.Context, agentID, callID string, now time.Time, giveBack bool) (bool, error) {
	n, err := releaseScript.Run(ctx, s.rdb, nil, s.p, agentID, callID, ms(now), boolArg(giveBack)).Int()
	if err != nil {
		return false, fmt.Errorf("release agent %s from call %s: %w", agentID, callID, err)
	}
	return n == 1, nil
}

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// AgentSnapshot is what pacing needs of a campaign's agents now.
type AgentSnapshot struct {
	LoggedIn    int         // agents of the campaign not LOGGED_OUT
	Ready       int         // free now (READY, or WRAP_UP ended)
	WrapUpEnds  []time.Time // agents in WRAP_UP, when each is free (all after now)
	OnCallSince []time.Time // agents ON_CALL, since when
	Paused      int         // PAUSED or LOGGING_IN (and in a wrap-up that ends in a pause)
	Elsewhere   int         // agents of the campaign counted for another of theirs (not above)
}

// pacingLive is how long after a replica last read a campaign's agents
// (Snapshot, every tick of a campaign dialing for agents) the campaign
// still counts as dialing: its shared agents count for it.
const pacingLive = 5 * time.Second

// Snapshot is what pacing needs of a campaign's agents now, in one script,
// which also marks the campaign as dialing for agents now when dialing is
// set (it has calls in progress or records due; the engine knows from its
// last tick).
//
// An agent of several campaigns is in the sets of each; counted in each, it
// would be every campaign's free agent at once, and each pacing would dial
// for it. It counts in one: among its campaigns dialing now (this one
// included), the one with the highest hash of agent and campaign
// (rendezvous hashing). The agents of a set of campaigns spread evenly over
// them, each campaign keeps its agents while the others start and stop
// (only the agents the new one wins move), and every replica computes the
// same without a word to the others. Elsewhere is how many of the
// campaign's agents count for another campaign. The cost grows with the
// campaign's agents, and more with the shared ones.
//
// The router gives a waiting call the agent free longest among those that
// count for its campaign, and only when none is free one that counts for
// another (Claim): an answered person is better served by an agent another
// campaign counted on than abandoned.
func (s *AgentStore) Snapshot(ctx context.Context, campaignID string, now time.Time, dialing bool) (AgentSnapshot, error) {
	r, err := snapshotScript.Run(ctx, s.rdb, nil, s.p, campaignID, ms(now), boolArg(dialing)).Slice()
	if err != nil {
		return AgentSnapshot{}, fmt.Errorf("agents of campaign %s: %w", campaignID, err)
	}
	if len(r) != 6 {
		return AgentSnapshot{}, fmt.Errorf("agents of campaign %s: %d values, want 6", campaignID, len(r))
	}
	num := func(v any) int { n, _ := v.(int64); return int(n) }
	instants := func(v any) []time.Time {
		l, _ := v.([]any)
		if len(l) == 0 {
			return nil
		}
		out := make([]time.Time, len(l))
		for i, x := range l {
			str, _ := x.(string)
			f, _ := strconv.ParseFloat(str, 64)
			out[i] = time.UnixMilli(int64(f))
		}
		return out
	}
	snap := AgentSnapshot{Ready: num(r[0]), Paused: num(r[2]), Elsewhere: num(r[3]), WrapUpEnds: instants(r[4]), OnCallSince: instants(r[5])}
	snap.LoggedIn = num(r[1]) + len(snap.OnCallSince) + snap.Paused
	return snap, nil
}

// Snapshot: ARGV campaign, now, dialing (1/0). {ready, in
// free:, paused, elsewhere, wrap-up ends, call starts}, the campaign's
// agents that count for it. A campaign not dialing still counts the agents
// it would win: once it has records due, it dials for them (and is marked).
var snapshotScript = agentScript(`
local camp, now = ARGV[2], tonumber(ARGV[3])
local pk = P .. 'pacing'
if ARGV[4] == '1' then redis.call('ZADD', pk, now, camp) end
redis.call('ZREMRANGEBYSCORE', pk, '-inf', now - 100 * LIVE)
local away, elsewhere, dialing = {}, 0, {}
for _, id in ipairs(redis.call('SMEMBERS', P .. 'shared:' .. camp)) do
  if not countsFor(id, redis.call('HGET', P .. 'agent:' .. id, 'campaigns') or '', camp, now, dialing) then
    away[id], elsewhere = true, elsewhere + 1
  end
end
local ready, nfree, wraps = 0, 0, {}
local f = redis.call('ZRANGE', P .. 'free:' .. camp, 0, -1, 'WITHSCORES')
for i = 1, #f, 2 do
  if not away[f[i]] then
    nfree = nfree + 1
    if tonumber(f[i + 1]) <= now then ready = ready + 1 else wraps[#wraps + 1] = f[i + 1] end
  end
end
local calls = {}
local c = redis.call('ZRANGE', P .. 'oncall:' .. camp, 0, -1, 'WITHSCORES')
for i = 1, #c, 2 do
  if not away[c[i]] then calls[#calls + 1] = c[i + 1] end
end
local np = 0
for _, id in ipairs(redis.call('ZRANGE', P .. 'paused:' .. camp, 0, -1)) do
  if not away[id] then np = np + 1 end
end
return {ready, nfree, np, elsewhere, wraps, calls}`)

// agentLive is an agent's state as stored, read at an instant.
type agentLive struct {
	state                         dialerv1.AgentState
	since, wrapUntil              time.Time
	account, call, campaign, room string
	session, login                string
	campaigns                     []string
	pause, pending                string
	taken                         int64
}

// liveOf decodes an agent's hash as seen at now: a finished wrap-up is
// READY (or PAUSED) since its end, as the scripts see it.
func liveOf(h map[string]string, now time.Time) agentLive {
	num := func(f string) int64 { n, _ := strconv.ParseInt(h[f], 10, 64); return n }
	l := agentLive{
		state: dialerv1.AgentState(num("state")), since: time.UnixMilli(num("since")),
		account: h["account"], call: h["call"], campaign: h["campaign"], room: h["room"], session: h["session"],
		login: h["login"], pause: h["pause"], pending: h["pending"], taken: num("taken"),
	}
	if c := h["campaigns"]; c != "" {
		l.campaigns = strings.Split(c, ",")
	}
	if l.state == dialerv1.AgentState_AGENT_STATE_UNSPECIFIED {
		l.state = dialerv1.AgentState_AGENT_STATE_LOGGED_OUT
	}
	if l.state == dialerv1.AgentState_AGENT_STATE_WRAP_UP {
		l.wrapUntil = time.UnixMilli(num("wrap_until"))
		if !l.wrapUntil.After(now) {
			l.since, l.state = l.wrapUntil, dialerv1.AgentState_AGENT_STATE_READY
			if l.pending != "" {
				l.state, l.pause, l.pending = dialerv1.AgentState_AGENT_STATE_PAUSED, l.pending, ""
			}
			l.wrapUntil = time.Time{}
		}
	}
	return l
}

// states reads agents' states in one round trip.
func (s *AgentStore) states(ctx context.Context, ids []string, now time.Time) ([]agentLive, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, s.p+"agent:"+id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %d agents' states: %w", len(ids), err)
	}
	out := make([]agentLive, len(ids))
	for i, c := range cmds {
		out[i] = liveOf(c.Val(), now)
	}
	return out, nil
}

func (s *AgentStore) state(ctx context.Context, id string, now time.Time) (agentLive, error) {
	l, err := s.states(ctx, []string{id}, now)
	if err != nil {
		return agentLive{}, err
	}
	return l[0], nil
}

// login makes a logged-out agent LOGGING_IN for its session n
// (errStateLoggedIn if it is logged in).
func (s *AgentStore) login(ctx context.Context, id, account string, campaigns []string, wrapS int, n int64, now time.Time) error {
	ok, err := loginScript.Run(ctx, s.rdb, nil, s.p, id, account, strings.Join(campaigns, ","), wrapS, n, ms(now)).Int()
	if err != nil {
		return fmt.Errorf("log agent %s in: %w", id, err)
	}
	if ok == 0 {
		return errStateLoggedIn
	}
	return nil
}

// setSession records login n's session call; false when the agent is no
// longer logging in with it (the caller hangs the call up), or the call had
// ended (the agent is logged out).
func (s *AgentStore) setSession(ctx context.Context, id string, n int64, callID string, ended bool) (bool, error) {
	ok, err := sessionScript.Run(ctx, s.rdb, nil, s.p, id, n, callID, boolArg(ended)).Int()
	if err != nil {
		return false, fmt.Errorf("agent %s session %s: %w", id, callID, err)
	}
	return ok == 1, nil
}

// abortLogin logs out an agent whose login n made no call.
func (s *AgentStore) abortLogin(ctx context.Context, id string, n int64) error {
	if err := abortLoginScript.Run(ctx, s.rdb, nil, s.p, id, n).Err(); err != nil {
		return fmt.Errorf("abort agent %s's login: %w", id, err)
	}
	return nil
}

// joined makes a LOGGING_IN agent READY: its session call (of login n)
// joined its room.
func (s *AgentStore) joined(ctx context.Context, id, callID, n string, now time.Time) (bool, error) {
	ok, err := joinedScript.Run(ctx, s.rdb, nil, s.p, id, callID, n, ms(now)).Int()
	if err != nil {
		return false, fmt.Errorf("agent %s joined its room: %w", id, err)
	}
	return ok == 1, nil
}

// sessionEnded logs out the agent whose session call ended.
func (s *AgentStore) sessionEnded(ctx context.Context, id, callID, n string) (bool, error) {
	ok, err := sessionEndedScript.Run(ctx, s.rdb, nil, s.p, id, callID, n).Int()
	if err != nil {
		return false, fmt.Errorf("agent %s's session ended: %w", id, err)
	}
	return ok == 1, nil
}

// logout logs an agent out and returns its last session call (to hang up,
// also when it was logged out already) and account.
func (s *AgentStore) logout(ctx context.Context, id string, now time.Time) (session, account string, err error) {
	r, err := logoutScript.Run(ctx, s.rdb, nil, s.p, id, ms(now)).Slice()
	if err != nil || len(r) < 3 {
		return "", "", fmt.Errorf("log agent %s out: %w", id, cmpErr(err))
	}
	session, _ = r[1].(string)
	account, _ = r[2].(string)
	return session, account, nil
}

func cmpErr(err error) error {
	if err == nil {
		return errors.New("unexpected reply")
	}
	return err
}

// pause pauses an agent now (READY, WRAP_UP, PAUSED: a new reason) or after
// its call (ON_CALL); errStateInvalid otherwise.
func (s *AgentStore) pause(ctx context.Context, id, reason string, now time.Time) error {
	n, err := pauseScript.Run(ctx, s.rdb, nil, s.p, id, reason, ms(now)).Int()
	if err != nil {
		return fmt.Errorf("pause agent %s: %w", id, err)
	}
	if n < 0 {
		return errStateInvalid
	}
	return nil
}

// setReady makes a PAUSED or WRAP_UP agent READY now; errStateInvalid
// unless it is one of those or READY.
func (s *AgentStore) setReady(ctx context.Context, id string, now time.Time) error {
	n, err := readyScript.Run(ctx, s.rdb, nil, s.p, id, ms(now)).Int()
	if err != nil {
		return fmt.Errorf("make agent %s ready: %w", id, err)
	}
	if n < 0 {
		return errStateInvalid
	}
	return nil
}

// configure gives a logged-in agent new campaigns and wrap-up (from its
// next call); nothing for a logged-out one, which gets them at login.
func (s *AgentStore) configure(ctx context.Context, id string, campaigns []string, wrapS int) error {
	if err := configureScript.Run(ctx, s.rdb, nil, s.p, id, strings.Join(campaigns, ","), wrapS).Err(); err != nil {
		return fmt.Errorf("configure agent %s: %w", id, err)
	}
	return nil
}

// forget deletes a logged-out agent's state.
func (s *AgentStore) forget(ctx context.Context, id string) error {
	if err := s.rdb.Del(ctx, s.p+"agent:"+id).Err(); err != nil {
		return fmt.Errorf("forget agent %s: %w", id, err)
	}
	return nil
}

// loggedIn lists the agents logged in, every campaign's.
func (s *AgentStore) loggedIn(ctx context.Context) ([]string, error) {
	ids, err := s.rdb.SMembers(ctx, s.p+"agents-in").Result()
	if err != nil {
		return nil, fmt.Errorf("agents logged in: %w", err)
	}
	return ids, nil
}

// waitingCall is an answered call waiting for an agent.
type waitingCall struct {
	campaign, call, account string
	// answered: when the call was answered or, in a queue, when the
	// recipient asked for an agent (the wait's start either way).
	answered, deadline time.Time
	// queue: a BLAST's recipient who pressed CONNECT (its wait is not the
	// regulators' 2 s).
	queue bool
	// leaveEmpty: a queue's recipient turned away as soon as none of the
	// campaign's agents is logged in and unpaused
	// (agentQueue.turnAwayWhenEmpty).
	leaveEmpty bool
}

func (w waitingCall) info() string {
	s := w.account + "|" + strconv.FormatInt(ms(w.answered), 10) + "|" + strconv.FormatInt(ms(w.deadline), 10)
	switch {
	case w.queue && w.leaveEmpty:
		s += "|qe"
	case w.queue:
		s += "|q"
	}
	return s
}

func waitingOf(campaign, call, info string) waitingCall {
	w := waitingCall{campaign: campaign, call: call}
	parts := strings.Split(info, "|")
	if len(parts) == 3 || len(parts) == 4 {
		a, _ := strconv.ParseInt(parts[1], 10, 64)
		d, _ := strconv.ParseInt(parts[2], 10, 64)
		w.account, w.answered, w.deadline = parts[0], time.UnixMilli(a), time.UnixMilli(d)
		w.queue = len(parts) == 4 && (parts[3] == "q" || parts[3] == "qe")
		w.leaveEmpty = len(parts) == 4 && parts[3] == "qe"
	}
	return w
}

// awaitResult says what became of a call awaiting an agent.
type awaitResult struct {
	// kind: "claimed", "dup" (it has its agent), "waiting", "known"
	// (waiting already), "empty" or "full" (a queue's limits: not queued).
	kind        string
	agent, room string
}

// queueLimits are a BLAST queue's limits on who may wait (none: zero).
type queueLimits struct {
	maxWaiting        int
	turnAwayWhenEmpty bool
}

// await gives an answered call an agent at once, or queues it until its
// deadline. A call arriving while others of the campaign wait queues
// behind them, so that the longest waiting is served first. With no agent
// free, a queue's limits may turn it away instead ("empty", "full").
func (s *AgentStore) await(ctx context.Context, w waitingCall, now time.Time, lim queueLimits) (awaitResult, error) {
	empty := "0"
	if lim.turnAwayWhenEmpty {
		empty = "1"
	}
	r, err := awaitScript.Run(ctx, s.rdb, nil, s.p, w.campaign, w.call, w.info(), ms(w.deadline), ms(now),
		callAgentTTL.Milliseconds(), max(lim.maxWaiting, 0), empty).StringSlice()
	if err != nil || len(r) == 0 {
		return awaitResult{}, fmt.Errorf("call %s awaits an agent of campaign %s: %w", w.call, w.campaign, cmpErr(err))
	}
	res := awaitResult{kind: r[0]}
	if len(r) == 3 {
		res.agent, res.room = r[1], r[2]
	}
	return res, nil
}

// matched is a waiting call given an agent.
type matched struct {
	w           waitingCall
	agent, room string
}

// matchResult is what one look at a campaign's waiting calls did.
type matchResult struct {
	// expired: how many waited past their deadline (dropped).
	expired int
	// left: the queue's callers to turn away, the campaign having no agent
	// left (dropped from the waiting calls).
	left []waitingCall
	// pairs: the calls given an agent.
	pairs []matched
}

// match drops the campaign's waiting calls whose deadline passed, and those
// that leave an empty queue when the campaign has no agent logged in and
// unpaused, and gives up to max of the others, oldest first, the agents
// free longest.
func (s *AgentStore) match(ctx context.Context, campaign string, now time.Time, max int) (matchResult, error) {
	r, err := matchScript.Run(ctx, s.rdb, nil, s.p, campaign, ms(now), max, callAgentTTL.Milliseconds()).Slice()
	if err != nil || len(r) < 2 {
		return matchResult{}, fmt.Errorf("match the waiting calls of campaign %s: %w", campaign, cmpErr(err))
	}
	n, _ := r[0].(int64)
	nl, _ := r[1].(int64)
	out := matchResult{expired: int(n)}
	i := 2
	for ; i+1 < len(r) && len(out.left) < int(nl); i += 2 {
		call, _ := r[i].(string)
		info, _ := r[i+1].(string)
		out.left = append(out.left, waitingOf(campaign, call, info))
	}
	for ; i+3 < len(r); i += 4 {
		call, _ := r[i].(string)
		info, _ := r[i+1].(string)
		agent, _ := r[i+2].(string)
		room, _ := r[i+3].(string)
		out.pairs = append(out.pairs, matched{w: waitingOf(campaign, call, info), agent: agent, room: room})
	}
	return out, nil
}

// requeue puts a waiting call back (its connection failed) if its deadline
// is ahead.
func (s *AgentStore) requeue(ctx context.Context, w waitingCall, now time.Time) (bool, error) {
	n, err := requeueScript.Run(ctx, s.rdb, nil, s.p, w.campaign, w.call, w.info(), ms(w.deadline), ms(now)).Int()
	if err != nil {
		return false, fmt.Errorf("requeue call %s: %w", w.call, err)
	}
	return n == 1, nil
}

// dropWaiting forgets a waiting call (abandoned: origination played the
// safe-harbour message); true if it was waiting.
func (s *AgentStore) dropWaiting(ctx context.Context, campaign, call string) (bool, error) {
	n, err := dropWaitingScript.Run(ctx, s.rdb, nil, s.p, campaign, call).Int()
	if err != nil {
		return false, fmt.Errorf("drop waiting call %s: %w", call, err)
	}
	return n == 1, nil
}

// callEnded releases the agent of a customer call that ended (WRAP_UP) and
// forgets the call if it was waiting; it returns the agent, if any.
func (s *AgentStore) callEnded(ctx context.Context, campaign, call string, now time.Time) (string, error) {
	id, err := callEndedScript.Run(ctx, s.rdb, nil, s.p, campaign, call, ms(now)).Text()
	if err != nil {
		return "", fmt.Errorf("call %s ended: %w", call, err)
	}
	return id, nil
}

// WaitingCalls is how many of a campaign's answered calls wait for an
// agent (a BLAST's queue, or a paced campaign's answers between the answer
// and ConnectCall).
func (s *AgentStore) WaitingCalls(ctx context.Context, campaign string) (int, error) {
	n, err := s.rdb.ZCard(ctx, s.p+"waiting:"+campaign).Result()
	if err != nil {
		return 0, fmt.Errorf("calls of campaign %s waiting for an agent: %w", campaign, err)
	}
	return int(n), nil
}

// liveCounts is what a campaign's agents and waiting calls look like now.
type liveCounts struct {
	agents  *dialerv1.AgentCounts
	waiting int64
	// longest: how long the call waiting longest has waited (0: none).
	longest time.Duration
}

// live reads a campaign's agents by state and its waiting calls, in one
// transaction (a consistent view), for its progress: O(calls waiting), not
// O(agents).
func (s *AgentStore) live(ctx context.Context, campaign string, now time.Time) (liveCounts, error) {
	t := strconv.FormatInt(ms(now), 10)
	var (
		ready, wrap, onCall, notReady *redis.IntCmd
		infos                         *redis.StringSliceCmd
	)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		ready = p.ZCount(ctx, s.p+"free:"+campaign, "-inf", t)
		wrap = p.ZCount(ctx, s.p+"free:"+campaign, "("+t, "+inf")
		onCall = p.ZCard(ctx, s.p+"oncall:"+campaign)
		notReady = p.ZCard(ctx, s.p+"paused:"+campaign)
		infos = p.HVals(ctx, s.p+"waiting-info:"+campaign)
		return nil
	})
	if err != nil {
		return liveCounts{}, fmt.Errorf("agents and waiting calls of campaign %s: %w", campaign, err)
	}
	a := &dialerv1.AgentCounts{Ready: ready.Val(), WrapUp: wrap.Val(), OnCall: onCall.Val(), NotReady: notReady.Val()}
	a.LoggedIn = a.Ready + a.WrapUp + a.OnCall + a.NotReady
	out := liveCounts{agents: a, waiting: int64(len(infos.Val()))}
	for _, info := range infos.Val() {
		if w := waitingOf(campaign, "", info); w.answered.UnixMilli() > 0 {
			out.longest = max(out.longest, now.Sub(w.answered))
		}
	}
	return out, nil
}

// waitingCampaigns lists the campaigns with calls waiting for an agent.
func (s *AgentStore) waitingCampaigns(ctx context.Context) ([]string, error) {
	c, err := s.rdb.SMembers(ctx, s.p+"waiting-campaigns").Result()
	if err != nil {
		return nil, fmt.Errorf("campaigns with waiting calls: %w", err)
	}
	return c, nil
}

// reconcileTurn says whether this replica reconciles the agents this round:
// the first to ask in ttl does.
func (s *AgentStore) reconcileTurn(ctx context.Context, ttl time.Duration) (bool, error) {
	ok, err := s.rdb.SetNX(ctx, s.p+"reconcile", "1", max(ttl, time.Millisecond)).Result()
	if err != nil {
		return false, fmt.Errorf("agents' reconciliation turn: %w", err)
	}
	return ok, nil
}
