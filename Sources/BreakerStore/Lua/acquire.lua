--[[ acquire.lua: may this caller call the dependency now?
KEYS, ARGV[1..17]: see common.lua. No arguments of its own.
Moves an open breaker whose time is up to half-open, fails trials whose lease ran out, hands out at
most half_open_permits live trial permits across all callers, and honours the operator's mode.
Returns { 'PERMIT', state, permit, 0, gen, event... }   (permit: '<gen>.<seq>.<issued ms>')
     or { 'DENY', state, '', retry_after_ms, gen, event... }
(events: the lines of any transitions this call made, as published) ]]

local function issue(zset)
  S.seq = S.seq + 1
  dirty.seq = true
  redis.call('ZADD', zset, now, S.seq)
  redis.call('PEXPIRE', zset, idle_ttl)
  return S.gen .. '.' .. S.seq .. '.' .. now
end

expire_mode()

local reply
if M.mode == 'forced_open' then
  reply = { 'DENY', S.state, '', retry_after() }
elseif M.mode == 'forced_closed' then
  reply = { 'PERMIT', S.state, issue(K_OUT), 0 }
else
  sweep_trials()
  if S.state == 'open' and now >= S.open_until then
    half_open('open_elapsed', 'permits=' .. P.half_open_permits)
  end
  if S.state == 'closed' then
    reply = { 'PERMIT', S.state, issue(K_OUT), 0 }
  elseif S.state == 'half_open' and redis.call('ZCARD', K_TRIALS) < P.half_open_permits then
    reply = { 'PERMIT', S.state, issue(K_TRIALS), 0 }
  elseif M.mode == 'metrics_only' then
    -- Would be denied; metrics_only lets it through as a permit that counts nothing.
    reply = { 'PERMIT', S.state, issue(K_OUT), 0 }
  else
    reply = { 'DENY', S.state, '', retry_after() }
  end
end

-- Permits not reported within their lease are forgotten (a report checks the lease itself, so
-- this is only housekeeping, done every 16th permit).
if S.seq % 16 == 0 then
  redis.call('ZREMRANGEBYSCORE', K_OUT, '-inf', now - P.permit_ttl_ms)
end

finish()
reply[5] = S.gen
return with_events(reply)
