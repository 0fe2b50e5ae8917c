--[[ state.lua: what a breaker looks like now, without changing it.
KEYS, ARGV[1..5]: see common.lua. No arguments of its own. Writes nothing: a pending move (open
time up, a lapsed trial lease, an expired mode) shows in the figures and happens at the next
acquire or report.
Returns a flat array of field, value pairs (all strings):
  exists, state, mode, gen, calls, failures, slow, failure_rate, slow_rate, trials, permits,
  retry_after_ms, opens, open_until, mode_by, mode_why, mode_at, mode_until ]]

policy(true)
local exists = S.fresh and 0 or 1
if S.mode ~= 'auto' and S.mode_until > 0 and now >= S.mode_until then
  if S.mode == 'forced_open' then S.open_until = now end
  S.mode = 'auto'
end

-- The window's figures as of now: buckets that have fallen out since the last report don't count.
local calls, fails, slows = S.calls, S.fails, S.slows
if S.nb ~= S.buckets or S.bms ~= S.bucket_ms or S.idx - S.head >= S.buckets then
  calls, fails, slows = 0, 0, 0
elseif S.idx > S.head and calls > 0 then
  local c, f, w = lib().fallen_buckets()
  calls, fails, slows = calls - c, fails - f, slows - w
end
if S.state ~= 'closed' then calls, fails, slows = 0, 0, 0 end

local trials = 0
if S.state == 'half_open' then
  trials = redis.call('ZCOUNT', K_TRIALS, '(' .. string.format('%d', now - S.permit_ttl_ms), '+inf')
end

local retry = 0
if S.mode == 'forced_open' or S.state ~= 'closed' then
  if S.state == 'half_open' and trials < S.half_open_permits then retry = 0 else retry = lib().retry_after() end
end

local function rate(n, d)
  if d == 0 then return '0' end
  return string.format('%.4g', n / d)
end

return {
  'exists', tostring(exists), 'state', S.state, 'mode', S.mode, 'gen', tostring(S.gen),
  'calls', tostring(calls), 'failures', tostring(fails), 'slow', tostring(slows),
  'failure_rate', rate(fails, calls), 'slow_rate', rate(slows, calls),
  'trials', tostring(trials), 'permits', tostring(S.half_open_permits),
  'retry_after_ms', tostring(retry), 'opens', tostring(S.opens), 'open_until', tostring(S.open_until),
  'mode_by', S.mode_by or '', 'mode_why', S.mode_why or '', 'mode_at', tostring(S.mode_at or 0),
  'mode_until', tostring(S.mode_until or 0),
}
