--[[ acquire.lua: may this caller call the dependency now?
KEYS, ARGV[1..5]: see common.lua. No arguments of its own.
Moves an open breaker whose time is up to half-open, fails trials whose lease ran out, hands out at
most half_open_permits live trial permits across all callers, and honours the operator's mode.
Returns { 'PERMIT', state, permit, 0, gen, event... }   (permit: '<gen>.<seq>.<issued ms>')
     or { 'DENY', state, '', retry_after_ms, gen, event... }
(events: the lines of any transitions this call made, as published) ]]

-- Issues the next permit into the outstanding zset or, given how many live trials the trials zset
-- holds, into that. A permit that creates its zset gives it the idle expiry.
local function issue(live_trials)
  local seq = S.seq + 1
  S.seq, S.hot = seq, 'seq'
  -- One format for the permit; its sequence number and time are cut from it for the zset.
  local permit = string.format('%d.%d.%d', S.gen, seq, now)
  local s, t = string.match(permit, '^%d+%.(%d+)%.(%d+)$')
  if live_trials then
    redis.call('ZADD', KEYS[3], t, s)
    if live_trials == 0 then redis.call('PEXPIRE', KEYS[3], string.match(ARGV[3], '^%d+')) end
  else
    local added = redis.call('ZADD', KEYS[2], t, s)
    if S.on <= 0 then redis.call('PEXPIRE', KEYS[2], string.match(ARGV[3], '^%d+')) end
    S.on = S.on + added
    -- Permits not reported within their lease are forgotten (a report checks the lease itself, so
    -- this is only housekeeping, done every 16th permit).
    if seq % 16 == 0 then
      policy()
      S.on = S.on - redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%d', now - S.permit_ttl_ms))
    end
  end
  return permit
end

if S.mode ~= 'auto' then lib().expire_mode() end

local reply
if S.mode == 'forced_open' then
  reply = { 'DENY', S.state, '', lib().retry_after() }
elseif S.mode == 'forced_closed' then
  reply = { 'PERMIT', S.state, issue(), 0 }
else
  if S.state ~= 'closed' then
    if S.state == 'half_open' then lib().sweep_trials() end
    if S.state == 'open' and now >= S.open_until then
      policy(true)
      lib().half_open('open_elapsed', 'permits=' .. S.half_open_permits)
    end
  end
  if S.state == 'closed' then
    reply = { 'PERMIT', S.state, issue(), 0 }
  else
    local live
    if S.state == 'half_open' then
      policy(true)
      live = redis.call('ZCARD', K_TRIALS)
      if live >= S.half_open_permits then live = nil end
    end
    if live then
      reply = { 'PERMIT', S.state, issue(live), 0 }
    elseif S.mode == 'metrics_only' then
      -- Would be denied; metrics_only lets it through as a permit that counts nothing.
      reply = { 'PERMIT', S.state, issue(), 0 }
    elseif S.state == 'open' then
      -- retry_after() for an open breaker, without making the rarely needed functions.
      reply = { 'DENY', S.state, '', math.max(0, S.open_until - now) }
    else
      reply = { 'DENY', S.state, '', lib().retry_after() }
    end
  end
end

reply[5] = S.gen
return finish(reply)
