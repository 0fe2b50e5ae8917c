--[[ fold.lua: outcomes a breakerd process gathered under its own permits, folded in at once.
KEYS, ARGV[1..5]: see common.lua.
  ARGV[6] the generation the outcomes were gathered under
  ARGV[7] calls, ARGV[8] failures, ARGV[9] slow calls (failures and slow calls are among the calls;
          IGNORE outcomes are not calls)
If the breaker is closed, its mode runs the state machine (auto or metrics_only) and the generation
is the current one, the outcomes go into the current bucket as that many reports would, with one
trip check after them (count_outcomes); otherwise they count nothing. With no calls it only reads.
Returns { 'OK', state, effect, gen, retry_after_ms, mode, slow_call_ms, permit_ttl_ms, event... }
  effect: counted | stale (another generation) | not_counted (not closed, a forced mode, or Redis's
  clock stepped back past the window)
  retry_after_ms: what a denied acquire would say now (0 when an acquire would be permitted under auto)
  mode: the operator's mode; slow_call_ms, permit_ttl_ms: the breaker's policy, for the caller's
  own permits
Errors: 'BAD_COUNTS ...' unless 0 <= failures, slow <= calls. ]]

local fg, fc, ff, fw = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
if not (fg and fc and ff and fw) or fg < 0 or fc < 0 or ff < 0 or fw < 0 or ff > fc or fw > fc
  or fg % 1 ~= 0 or fc % 1 ~= 0 or ff % 1 ~= 0 or fw % 1 ~= 0 then
  return redis.error_reply('BAD_COUNTS ' .. ARGV[6] .. ' ' .. ARGV[7] .. ' ' .. ARGV[8] .. ' ' .. ARGV[9])
end

policy()
if S.mode ~= 'auto' then lib().expire_mode() end
local runs = S.mode == 'auto' or S.mode == 'metrics_only'
if runs and S.state == 'half_open' then lib().sweep_trials() end

local effect
if fg ~= S.gen then
  effect = 'stale'
elseif S.state ~= 'closed' or not runs then
  effect = 'not_counted'
elseif fc == 0 or count_outcomes(fc, ff, fw) then
  effect = 'counted'
else
  effect = 'not_counted'
end

local retry = 0
if S.mode == 'forced_open' or S.state == 'open' then
  retry = lib().retry_after()
elseif S.state == 'half_open' then
  policy(true)
  if redis.call('ZCARD', K_TRIALS) >= S.half_open_permits then retry = lib().retry_after() end
end

return finish({ 'OK', S.state, effect, S.gen, retry, S.mode, S.slow_call_ms, S.permit_ttl_ms })
