--[[ control.lua: an operator's action on one breaker, recorded in its history with who and why.
KEYS, ARGV[1..17]: see common.lua.
  ARGV[18] action: force | reset | config
  ARGV[19] actor: who asked (free text without spaces, e.g. admin@127.0.0.1:50312/ops-console)
  ARGV[20] why: the operator's reason, or ''
  force:  ARGV[21] mode (auto | forced_open | forced_closed | metrics_only), ARGV[22] ttl ms (0: none)
  reset:  nothing more. Back to closed and auto, with an empty window and no backoff.
  config: ARGV[21..] key, value pairs of policy overrides ('' removes an override); the store has
          validated them.
Returns { 'OK', state, mode, gen, event... } ]]

local action, actor, why = ARGV[18], ARGV[19], ARGV[20]
local who = ' by=' .. actor
if why ~= '' then who = who .. ' why=' .. why end

expire_mode()

if action == 'force' then
  local mode, ttl = ARGV[21], tonumber(ARGV[22])
  if mode == 'auto' then
    if M.mode ~= 'auto' then leave_mode('mode_auto', who) end
  else
    local untl = 0
    if ttl > 0 then untl = now + ttl end
    redis.call('HSET', K_CONF, 'mode', mode, 'mode_by', actor, 'mode_why', why, 'mode_at', now, 'mode_until', untl)
    local was = M.mode
    M.mode, M.by, M.why, M.at, M.untl = mode, actor, why, now, untl
    local figures = 'mode=' .. was .. '->' .. mode .. ' ttl_ms=' .. ttl .. who
    if mode == 'forced_open' and S.state ~= 'open' then
      S.open_until = now + (ttl > 0 and ttl or P.open_ms)
      mark('open_until')
      clear_window()
      redis.call('DEL', K_TRIALS)
      transition('open', 'forced_open', figures)
    elseif mode == 'forced_closed' and S.state ~= 'closed' then
      close_breaker('forced_closed', figures)
    else
      note(mode, figures)
    end
  end
elseif action == 'reset' then
  clear_mode()
  close_breaker('reset', string.sub(who, 2))
elseif action == 'config' then
  local set, del, shown = {}, {}, {}
  for i = 21, #ARGV, 2 do
    local k, v = ARGV[i], ARGV[i + 1]
    if v == '' then del[#del + 1] = k else set[#set + 1] = k; set[#set + 1] = v end
    shown[#shown + 1] = k .. '=' .. (v == '' and 'default' or v)
  end
  if #set > 0 then redis.call('HSET', K_CONF, unpack(set)) end
  if #del > 0 then redis.call('HDEL', K_CONF, unpack(del)) end
  settings_changed()
  note('config', 'set=' .. table.concat(shown, ',') .. who)
else
  return redis.error_reply('BAD_ACTION ' .. action)
end

if action == 'force' then settings_changed() end
finish()
return with_events({ 'OK', S.state, M.mode, S.gen })
