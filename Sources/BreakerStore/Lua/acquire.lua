--[[ acquire.lua: may this caller call the dependency now?
KEYS, ARGV[1..5]: see common.lua. No arguments of its own.
Moves an open breaker whose time is up to half-open, fails trials whose lease ran out, hands out at
most half_open_permits live trial permits across all callers, and honours the operator's mode.
Returns { 'PERMIT', state, permit, 0, gen, event... }   (permit: '<gen>.<seq>.<issued ms>')
     or { 'DENY', state, '', retry_after_ms, gen, event... }
(events: the lines of any transitions this call made, as published) ]]

if S.mode ~= 'auto' then lib().expire_mode() end

-- Decide: a permit into the outstanding zset ('out'), a trial permit ('trial', with the number of
-- live trials), or a deny (retry: milliseconds to wait).
local grant, live, retry
if S.mode == 'forced_open' then
  retry = lib().retry_after()
elseif S.mode == 'forced_closed' then
  grant = 'out'
else
  if S.state ~= 'closed' then
    if S.state == 'half_open' then lib().sweep_trials() end
    if S.state == 'open' and now >= S.open_until then
      policy(true)
      lib().half_open('open_elapsed', 'permits=' .. S.half_open_permits)
    end
  end
  if S.state == 'closed' then
    grant = 'out'
  else
    if S.state == 'half_open' then
      policy(true)
      live = redis.call('ZCARD', K_TRIALS)
      if live < S.half_open_permits then grant = 'trial' end
    end
    if not grant then
      if S.mode == 'metrics_only' then
        -- Would be denied; metrics_only lets it through as a permit that counts nothing.
        grant = 'out'
      elseif S.state == 'open' then
        -- retry_after() for an open breaker, without making the rarely needed functions.
        retry = math.max(0, S.open_until - now)
      else
        retry = lib().retry_after()
      end
    end
  end
end

local reply
if grant then
  -- The next permit. One format makes it; its sequence number and time are cut from it for the
  -- zset. A permit that creates its zset gives it the idle expiry.
  local seq = S.seq + 1
  S.seq, S.hot = seq, 'seq'
  local permit = string.format('%d.%d.%d', S.gen, seq, now)
  local s, t = string.match(permit, '^%d+%.(%d+)%.(%d+)$')
  if grant == 'trial' then
    redis.call('ZADD', K_TRIALS, t, s)
    if live == 0 then redis.call('PEXPIRE', K_TRIALS, string.match(ARGV[3], '^%d+')) end
  else
    local added = redis.call('ZADD', K_OUT, t, s)
    if S.on <= 0 then redis.call('PEXPIRE', K_OUT, string.match(ARGV[3], '^%d+')) end
    S.on = S.on + added
    -- Permits not reported within their lease are forgotten (a report checks the lease itself, so
    -- this is only housekeeping, done every 16th permit).
    if seq % 16 == 0 then
      policy()
      S.on = S.on - redis.call('ZREMRANGEBYSCORE', K_OUT, '-inf', string.format('%d', now - S.permit_ttl_ms))
    end
  end
  reply = { 'PERMIT', S.state, permit, 0, S.gen }
else
  reply = { 'DENY', S.state, '', retry, S.gen }
end
return finish(reply)
