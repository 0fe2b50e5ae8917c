--[[ control.lua: an operator's action on one breaker, recorded in its history with who and why.
KEYS, ARGV[1..5]: see common.lua.
  ARGV[6] action: force | reset | config
  ARGV[7] actor: who asked (free text without spaces, e.g. admin@127.0.0.1:50312/ops-console)
  ARGV[8] why: the operator's reason, or ''
  force:  ARGV[9] mode (auto | forced_open | forced_closed | metrics_only), ARGV[10] ttl ms (0: none)
  reset:  nothing more. Back to closed and auto, with an empty window and no backoff.
  config: ARGV[9..] key, value pairs of policy overrides ('' removes an override); the store has
          validated them.
Returns { 'OK', state, mode, gen, event... } ]]

local action, actor, why = ARGV[6], ARGV[7], ARGV[8]
local who = ' by=' .. actor
if why ~= '' then who = who .. ' why=' .. why end

local X = lib()
X.expire_mode()

if action == 'force' then
  local new_mode, ttl = ARGV[9], tonumber(ARGV[10])
  if new_mode == 'auto' then
    if S.mode ~= 'auto' then X.leave_mode('mode_auto', who) end
  else
    local untl = 0
    if ttl > 0 then untl = now + ttl end
    redis.call('HSET', K_CONF, 'mode', new_mode, 'mode_by', actor, 'mode_why', why, 'mode_at', now, 'mode_until', untl)
    local was = S.mode
    S.mode, S.mode_by, S.mode_why, S.mode_at, S.mode_until = new_mode, actor, why, now, untl
    local figures = 'mode=' .. was .. '->' .. new_mode .. ' ttl_ms=' .. ttl .. who
    if new_mode == 'forced_open' and S.state ~= 'open' then
      policy(true)
      S.open_until = now + (ttl > 0 and ttl or S.open_ms)
      X.clear_window()
      redis.call('DEL', K_TRIALS)
      X.transition('open', 'forced_open', figures)
    elseif new_mode == 'forced_closed' and S.state ~= 'closed' then
      X.close_breaker('forced_closed', figures)
    else
      X.note(new_mode, figures)
    end
  end
elseif action == 'reset' then
  X.clear_mode()
  X.close_breaker('reset', string.sub(who, 2))
elseif action == 'config' then
  local set, del, shown = {}, {}, {}
  for i = 9, #ARGV, 2 do
    local k, v = ARGV[i], ARGV[i + 1]
    if v == '' then del[#del + 1] = k else set[#set + 1] = k; set[#set + 1] = v end
    shown[#shown + 1] = k .. '=' .. (v == '' and 'default' or v)
  end
  if #set > 0 then redis.call('HSET', K_CONF, unpack(set)) end
  if #del > 0 then redis.call('HDEL', K_CONF, unpack(del)) end
  X.settings_changed()
  X.note('config', 'set=' .. table.concat(shown, ',') .. who)
else
  return redis.error_reply('BAD_ACTION ' .. action)
end

if action == 'force' then X.settings_changed() end
return finish({ 'OK', S.state, S.mode, S.gen })
