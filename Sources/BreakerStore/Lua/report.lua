--[[ report.lua: the outcome of a call made under a permit.
KEYS, ARGV[1..5]: see common.lua.
  ARGV[6] permit, as acquire issued it ('<gen>.<seq>.<issued ms>')
  ARGV[7] outcome: SUCCESS, FAILURE or IGNORE
  ARGV[8] latency in ms, or '' to measure from the acquire on Redis's clock
A permit from an earlier generation never causes a transition; a permit counts once. In closed
state the outcome goes into the current bucket and may trip the breaker; in half-open a failed or
slow trial re-opens it and success_threshold successful trials close it.
Returns { 'OK', state, effect, gen, event... }
  effect: counted | ignored | stale (earlier generation) | expired (already reported, or its
  lease ran out) | not_counted (a forced mode, or a permit metrics_only let through)
Errors: 'UNKNOWN_PERMIT ...' for a permit this breaker never issued; 'BAD_OUTCOME ...'. ]]

local token, outcome, latency_arg = ARGV[6], ARGV[7], ARGV[8]
if outcome ~= 'SUCCESS' and outcome ~= 'FAILURE' and outcome ~= 'IGNORE' then
  return redis.error_reply('BAD_OUTCOME ' .. outcome)
end
local pg, member, pt = string.match(token, '^(%d+)%.(%d+)%.(%d+)$')
local ps
if not pg then return redis.error_reply('UNKNOWN_PERMIT ' .. token) end
pg, ps, pt = pg + 0, member + 0, pt + 0
if pg > S.gen or ps < 1 or ps > S.seq then
  return redis.error_reply('UNKNOWN_PERMIT ' .. token)
end
-- The zsets' members are sequence numbers as issued, without leading zeros.
if string.byte(member) == 48 then member = string.format('%d', ps) end
-- The issue time rides in the permit, so a report needs no lookup beyond removing the permit
-- (which is also what makes a second report of it count nothing).
local acquired = pt
if now < pt then acquired = now end
local ms
if latency_arg ~= '' then ms = latency_arg + 0 else ms = now - acquired end

if S.mode ~= 'auto' then lib().expire_mode() end
local runs = S.mode == 'auto' or S.mode == 'metrics_only'
if runs and S.state == 'half_open' then lib().sweep_trials() end

local effect
local trial = false
if pg == S.gen and S.state == 'half_open' then
  trial = redis.call('ZREM', K_TRIALS, member) == 1
end

if pg ~= S.gen then
  local removed = redis.call('ZREM', K_OUT, member)
  if removed > 0 then S.on, S.hot = S.on - removed, true end
  effect = 'stale'
elseif trial then
  policy()
  if outcome == 'IGNORE' then
    effect = 'ignored'
  elseif outcome == 'FAILURE' then
    effect = 'counted'
    lib().open_breaker('trial_failed', 'permit=' .. token)
  elseif S.slow_call_ms > 0 and ms >= S.slow_call_ms then
    effect = 'counted'
    lib().open_breaker('trial_slow', 'permit=' .. token .. ' latency_ms=' .. ms .. ' slow_call_ms=' .. S.slow_call_ms)
  else
    effect = 'counted'
    S.oks, S.changed = S.oks + 1, true
    policy(true)
    if S.oks >= S.success_threshold then
      lib().close_breaker('trials_succeeded', 'successes=' .. S.oks)
    end
  end
else
  local outstanding = redis.call('ZREM', K_OUT, member) == 1
  if outstanding then
    S.on, S.hot = S.on - 1, true
    policy()
  end
  if not outstanding or acquired <= now - S.permit_ttl_ms then
    -- Reported twice, or after its lease: it counts once, and a lapsed permit counts nothing.
    effect = 'expired'
  elseif outcome == 'IGNORE' then
    effect = 'ignored'
  elseif S.state ~= 'closed' or not runs then
    effect = 'not_counted'
  else
    local slow = 0
    if S.slow_call_ms > 0 and ms >= S.slow_call_ms then slow = 1 end
    if count_outcomes(1, outcome == 'FAILURE' and 1 or 0, slow) then
      effect = 'counted'
    else
      effect = 'not_counted'
    end
  end
end

return finish({ 'OK', S.state, effect, S.gen })
