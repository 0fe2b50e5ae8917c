--[[ report.lua: the outcome of a call made under a permit.
KEYS, ARGV[1..17]: see common.lua.
  ARGV[18] permit, as acquire issued it ('<gen>.<seq>.<issued ms>')
  ARGV[19] outcome: SUCCESS, FAILURE or IGNORE
  ARGV[20] latency in ms, or '' to measure from the acquire on Redis's clock
A permit from an earlier generation never causes a transition; a permit counts once. In closed
state the outcome goes into the current bucket and may trip the breaker; in half-open a failed or
slow trial re-opens it and success_threshold successful trials close it.
Returns { 'OK', state, effect, gen, event... }
  effect: counted | ignored | stale (earlier generation) | expired (already reported, or its
  lease ran out) | not_counted (a forced mode, or a permit metrics_only let through)
Errors: 'UNKNOWN_PERMIT ...' for a permit this breaker never issued; 'BAD_OUTCOME ...'. ]]

local token, outcome, latency_arg = ARGV[18], ARGV[19], ARGV[20]
if outcome ~= 'SUCCESS' and outcome ~= 'FAILURE' and outcome ~= 'IGNORE' then
  return redis.error_reply('BAD_OUTCOME ' .. outcome)
end
local pg, ps, pt = string.match(token, '^(%d+)%.(%d+)%.(%d+)$')
pg, ps, pt = tonumber(pg), tonumber(ps), tonumber(pt)
if not pg or pg > S.gen or ps < 1 or ps > S.seq then
  return redis.error_reply('UNKNOWN_PERMIT ' .. token)
end
-- The issue time rides in the permit, so a report needs no lookup beyond removing the permit
-- (which is also what makes a second report of it count nothing).
local acquired = math.min(pt, now)

local function latency(acquired)
  if latency_arg ~= '' then return tonumber(latency_arg) end
  return now - acquired
end
local function is_slow(ms)
  return P.slow_call_ms > 0 and ms >= P.slow_call_ms
end

expire_mode()
if machine_runs() then sweep_trials() end

local effect
local trial = false
if pg == S.gen and S.state == 'half_open' then
  trial = redis.call('ZREM', K_TRIALS, ps) == 1
end

if pg ~= S.gen then
  redis.call('ZREM', K_OUT, ps)
  effect = 'stale'
elseif trial then
  local ms = latency(acquired)
  if outcome == 'IGNORE' then
    effect = 'ignored'
  elseif outcome == 'FAILURE' then
    effect = 'counted'
    open_breaker('trial_failed', 'permit=' .. token)
  elseif is_slow(ms) then
    effect = 'counted'
    open_breaker('trial_slow', 'permit=' .. token .. ' latency_ms=' .. ms .. ' slow_call_ms=' .. P.slow_call_ms)
  else
    effect = 'counted'
    S.oks = S.oks + 1
    mark('oks')
    if S.oks >= P.success_threshold then
      close_breaker('trials_succeeded', 'successes=' .. S.oks)
    end
  end
else
  local outstanding = redis.call('ZREM', K_OUT, ps) == 1
  if not outstanding or acquired <= now - P.permit_ttl_ms then
    -- Reported twice, or after its lease: it counts once, and a lapsed permit counts nothing.
    effect = 'expired'
  else
    if outcome == 'IGNORE' then
      effect = 'ignored'
    elseif S.state ~= 'closed' or not machine_runs() then
      effect = 'not_counted'
    else
      advance_window()
      local cur = idx
      if cur < S.head then
        -- Redis's clock stepped back: a bucket still in the window takes it, an older one cannot.
        if S.head - cur >= B then cur = nil end
      end
      if cur == nil then
        effect = 'not_counted'
      else
        local s = cur % B
        local c, f, w = 'c' .. s, 'f' .. s, 'w' .. s
        if s ~= slot then
          local v = redis.call('HMGET', K_STATE, c, f, w)
          S[c], S[f], S[w] = tonumber(v[1] or 0), tonumber(v[2] or 0), tonumber(v[3] or 0)
        else
          S[c], S[f], S[w] = S.sc, S.sf, S.sw
        end
        local ms = latency(acquired)
        S[c] = S[c] + 1
        S.calls = S.calls + 1
        mark(c, 'calls')
        if outcome == 'FAILURE' then
          S[f] = S[f] + 1
          S.fails = S.fails + 1
          mark(f, 'fails')
        end
        if is_slow(ms) then
          S[w] = S[w] + 1
          S.slows = S.slows + 1
          mark(w, 'slows')
        end
        effect = 'counted'
        if S.calls >= P.min_calls then
          local fr = S.fails / S.calls
          local sr = S.slows / S.calls
          if fr >= P.failure_rate then
            open_breaker('failure_rate', string.format('failure_rate=%.4g threshold=%.4g calls=%d failures=%d',
              fr, P.failure_rate, S.calls, S.fails))
          elseif P.slow_call_ms > 0 and sr >= P.slow_call_rate then
            open_breaker('slow_call_rate', string.format('slow_rate=%.4g threshold=%.4g calls=%d slow=%d slow_call_ms=%d',
              sr, P.slow_call_rate, S.calls, S.slows, P.slow_call_ms))
          end
        end
      end
    end
  end
end

finish()
return with_events({ 'OK', S.state, effect, S.gen })
