/// The status page: one self-contained document (inline CSS and JS, nothing loaded from elsewhere).
/// It reads /api/breakers, listens to /events with EventSource and re-reads /api/breakers when an
/// event arrives, so it follows the fleet without a reload. Cards carry `data-breaker`,
/// `data-state` and `data-mode`, and `<body>` carries `data-live`, `data-events` and
/// `data-refreshes`, for people's tools and the browser test alike.
extension StatusPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>breakerd · breakers</title>
<style>
:root { --bg:#f6f7f9; --card:#fff; --ink:#1b1f24; --dim:#5b6470; --line:#e2e5ea;
  --closed:#1f883d; --open:#cf222e; --half:#bf8700; --forced:#8250df; }
@media (prefers-color-scheme: dark) { :root { --bg:#0d1117; --card:#161b22; --ink:#e6edf3; --dim:#8d96a0; --line:#30363d; } }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background:var(--bg); color:var(--ink); }
header { position:sticky; top:0; z-index:1; display:flex; flex-wrap:wrap; gap:.3rem .9rem; align-items:center;
  padding:.6rem 1rem; background:var(--card); border-bottom:1px solid var(--line); }
header h1 { font-size:1.1rem; margin:0; }
.pill { display:inline-block; padding:.05rem .5rem; border-radius:999px; font-size:.8rem; font-weight:600; border:1px solid var(--line); }
.live::before { content:"●"; margin-right:.3rem; color:var(--dim); }
.live.on::before { color:var(--closed); } .live.off::before { color:var(--open); }
.store-down { background:var(--open); color:#fff; border-color:var(--open); }
main { padding:1rem; display:grid; gap:1rem; grid-template-columns:repeat(auto-fill, minmax(min(100%, 340px), 1fr)); }
.card { background:var(--card); border:1px solid var(--line); border-left:6px solid var(--closed); border-radius:8px; padding:.8rem; min-width:0; }
.card.open { border-left-color:var(--open); } .card.half_open { border-left-color:var(--half); }
.card h2 { font-size:1.05rem; margin:0; overflow-wrap:anywhere; flex:1; }
.top { display:flex; gap:.5rem; align-items:center; }
.state { color:#fff; text-transform:uppercase; letter-spacing:.03em; }
.state.closed { background:var(--closed); border-color:var(--closed); } .state.open { background:var(--open); border-color:var(--open); }
.state.half_open { background:var(--half); border-color:var(--half); }
.mode { margin-top:.5rem; padding:.4rem .5rem; border-radius:6px; background:color-mix(in srgb, var(--forced) 12%, transparent); font-size:.85rem; overflow-wrap:anywhere; }
.mode b { color:var(--forced); }
.figs { display:grid; grid-template-columns:repeat(3, 1fr); gap:.4rem; margin:.6rem 0 .3rem; }
.fig { min-width:0; } .fig .v { font-size:1.15rem; font-weight:650; font-variant-numeric:tabular-nums; } .fig .k { font-size:.75rem; color:var(--dim); }
.bar { position:relative; height:8px; background:var(--line); border-radius:4px; overflow:hidden; }
.bar span { position:absolute; left:0; top:0; bottom:0; background:var(--closed); }
.bar.hot span { background:var(--open); }
.bar i { position:absolute; top:-2px; bottom:-2px; width:2px; background:var(--ink); opacity:.6; }
.sub { font-size:.8rem; color:var(--dim); margin-top:.25rem; }
details { margin-top:.5rem; } summary { cursor:pointer; font-size:.85rem; color:var(--dim); }
ol.hist { list-style:none; margin:.3rem 0 0; padding:0; font-size:.8rem; }
ol.hist li { padding:.25rem 0; border-top:1px solid var(--line); overflow-wrap:anywhere; }
.t { font-variant-numeric:tabular-nums; color:var(--dim); }
.who { color:var(--forced); }
section.wide { grid-column:1 / -1; background:var(--card); border:1px solid var(--line); border-radius:8px; padding:.8rem; }
section.wide h2 { font-size:1rem; margin:0 0 .3rem; }
#events li, #defaults li { font:12px/1.5 ui-monospace, SFMono-Regular, Menlo, monospace; overflow-wrap:anywhere; }
.empty { color:var(--dim); }
</style>
</head>
<body>
<header>
  <h1>breakerd</h1>
  <span id="live" class="pill live off">connecting</span>
  <span id="store" class="pill">store …</span>
  <span id="count" class="pill">…</span>
  <span id="updated" class="t"></span>
</header>
<main id="breakers" aria-live="polite"><p class="empty">Loading breakers…</p></main>
<main>
  <section class="wide"><h2>Live events</h2><ol id="events"><li class="empty">none yet</li></ol></section>
  <section class="wide"><h2>Default policy changes (through this breakerd)</h2><ol id="defaults"><li class="empty">none</li></ol></section>
</main>
<script>
"use strict";
const $ = (s) => document.querySelector(s);
function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; }
let doc = null, fetchedAt = 0, skew = 0, busy = false, again = false, received = 0;

function parseEvent(line) {
  // "<breaker> <from>-><to> gen=.. at=<ms> reason=<code> k=v ... by=<actor> why=<reason with spaces>"
  let why = "", i = line.indexOf(" why=");
  if (i >= 0) { why = line.slice(i + 5); line = line.slice(0, i); }
  const words = line.split(" "), kv = {};
  for (const w of words.slice(2)) { const j = w.indexOf("="); if (j > 0) kv[w.slice(0, j)] = w.slice(j + 1); }
  const [from, to] = (words[1] || "").split("->");
  return { name: words[0], from, to, kv, why };
}
function clock(ms) { return ms ? new Date(ms).toLocaleTimeString([], { hour12: false }) : "—"; }
function ago(ms) {
  const s = Math.round((Date.now() + skew - ms) / 1000);
  if (s < 60) return s + " s ago"; if (s < 3600) return Math.round(s / 60) + " min ago";
  if (s < 86400) return Math.round(s / 3600) + " h ago"; return new Date(ms).toLocaleDateString();
}
function pct(x) { return (Math.round(x * 1000) / 10) + "%"; }
function secs(ms) { return ms >= 10000 ? Math.ceil(ms / 1000) + " s" : (ms / 1000).toFixed(1) + " s"; }

function historyItem(line) {
  const e = parseEvent(line), li = el("li");
  li.append(el("span", "t", clock(+e.kv.at) + " "));
  li.append(el("b", "", e.from === e.to ? (e.kv.reason || "change") : e.from + " → " + e.to));
  const skip = new Set(["gen", "at", "by"]);
  const rest = Object.entries(e.kv).filter(([k]) => !skip.has(k)).map(([k, v]) => k + "=" + v).join(" ");
  if (rest) li.append(" " + rest);
  if (e.kv.by) li.append(el("span", "who", " by " + e.kv.by));
  if (e.why) li.append(el("span", "", " — “" + e.why + "”"));
  return li;
}

function card(b) {
  const c = el("article", "card " + b.state);
  c.dataset.breaker = b.name; c.dataset.state = b.state; c.dataset.mode = b.mode;
  const top = el("div", "top");
  top.append(el("h2", "", b.name), el("span", "pill state " + b.state, b.state.replace("_", "-")));
  c.append(top);
  if (b.mode !== "auto") {
    const m = el("div", "mode");
    m.append(el("b", "", b.mode.replace("_", " ")));
    m.append(" by " + (b.mode_by || "unknown"));
    if (b.mode_why) m.append(" — “" + b.mode_why + "”");
    if (b.mode_at) m.append(", since " + clock(b.mode_at));
    m.append(b.mode_until ? ", until " + clock(b.mode_until) : ", no expiry");
    c.append(m);
  }
  const figs = el("div", "figs");
  const fig = (v, k, cls) => { const f = el("div", "fig " + (cls || "")); f.append(el("div", "v", v), el("div", "k", k)); return f; };
  const win = b.window_ms ? " in " + Math.round(b.window_ms / 1000) + " s" : " in window";
  figs.append(fig(pct(b.failure_rate), "failure rate"), fig(String(b.calls), "calls" + win),
    fig(b.trials + "/" + b.permits, "live trials"));
  c.append(figs);
  const threshold = b.failure_rate_threshold || 0.5;
  const bar = el("div", "bar" + (b.failure_rate >= threshold ? " hot" : ""));
  const fill = el("span"); fill.style.width = Math.min(100, b.failure_rate * 100) + "%";
  const mark = el("i"); mark.style.left = "calc(" + Math.min(100, threshold * 100) + "% - 1px)";
  bar.append(fill, mark); c.append(bar);
  let sub = b.failures + " failed, " + b.slow + " slow (" + pct(b.slow_rate) + ") · trips at " + pct(threshold);
  if (b.min_calls) sub += " after " + b.min_calls + " calls";
  c.append(el("div", "sub", sub));
  const retry = el("div", "sub retry"); retry.dataset.retry = b.retry_after_ms; retry.dataset.state = b.mode === "auto" ? b.state : ""; c.append(retry);
  const d = el("details"); d.open = b.state !== "closed" || b.mode !== "auto";
  d.append(el("summary", "", "recent transitions (" + b.history.length + ")"));
  const ol = el("ol", "hist");
  for (const line of b.history) ol.append(historyItem(line));
  if (!b.history.length) ol.append(el("li", "empty", "none"));
  d.append(ol); c.append(d);
  return c;
}

function tick() {
  const passed = Date.now() - fetchedAt;
  for (const r of document.querySelectorAll(".retry")) {
    const left = +r.dataset.retry - passed;
    const open = r.dataset.state === "open";
    r.textContent = +r.dataset.retry > 0 || open ? (left > 0 ? "trial allowed in " + secs(left) : "trial allowed now: the next call goes half-open") : "";
  }
}

function render() {
  const main = $("#breakers"), open = new Set();
  for (const d of main.querySelectorAll("article")) if (d.querySelector("details")?.open) open.add(d.dataset.breaker);
  // Trouble first: open, then half-open, then forced modes, then the rest, each by name.
  const rank = (b) => (b.state === "open" ? 0 : b.state === "half_open" ? 1 : b.mode !== "auto" ? 2 : 3);
  const sorted = [...doc.breakers].sort((a, b) => rank(a) - rank(b) || (a.name < b.name ? -1 : 1));
  main.replaceChildren(...(sorted.length ? sorted.map(card) : [el("p", "empty", "No breakers in Redis yet.")]));
  for (const a of main.querySelectorAll("article")) if (open.has(a.dataset.breaker)) a.querySelector("details").open = true;
  const bad = doc.breakers.filter((b) => b.state !== "closed").length;
  $("#count").textContent = doc.total + " breakers" + (bad ? " · " + bad + " not closed" : "") + (doc.truncated ? " (first " + doc.breakers.length + ")" : "");
  const list = $("#defaults");
  list.replaceChildren(...(doc.default_policy_changes.length
    ? doc.default_policy_changes.map((l) => el("li", "", l.replace(/ at=(\d+)/, (_, ms) => " at " + clock(+ms))))
    : [el("li", "empty", "none")]));
  document.title = (bad ? "(" + bad + " not closed) " : "") + "breakerd";
  tick();
}

function setStore(up, detail) {
  const s = $("#store"); s.textContent = up ? "store up" : "store down" + (detail ? ": " + detail : "");
  s.className = "pill" + (up ? "" : " store-down"); document.body.dataset.store = up ? "up" : "down";
}

async function refresh() {
  if (busy) { again = true; return; }
  busy = true;
  try {
    const r = await fetch("api/breakers", { cache: "no-store" });
    const j = await r.json();
    if (!r.ok) { setStore(false, j.error || r.status); return; }
    doc = j; fetchedAt = Date.now(); skew = j.now_ms - fetchedAt;
    setStore(true); render();
    $("#updated").textContent = "updated " + clock(j.now_ms);
    document.body.dataset.refreshes = String(1 + (+document.body.dataset.refreshes || 0));
  } catch (e) {
    setStore(false, "breakerd unreachable");
  } finally {
    busy = false;
    if (again) { again = false; refresh(); }
  }
}

function addEvent(line) {
  const list = $("#events");
  if (!received) list.replaceChildren();
  received++; document.body.dataset.events = String(received);
  const li = el("li", "", clock(Date.now()) + "  " + line); li.dataset.event = line;
  list.prepend(li);
  while (list.children.length > 30) list.lastChild.remove();
}

function connect() {
  const live = $("#live"), es = new EventSource("events");
  es.addEventListener("ready", () => { live.textContent = "live"; live.className = "pill live on"; document.body.dataset.live = "1"; refresh(); });
  es.addEventListener("transition", (m) => { addEvent(m.data); refresh(); });
  es.onerror = () => { live.textContent = "reconnecting"; live.className = "pill live off"; document.body.dataset.live = "0"; };
}

refresh();
connect();
setInterval(tick, 1000);
// Rates and volumes move without transitions: a slow refresh keeps them current.
setInterval(refresh, 5000);
</script>
</body>
</html>
"""#
}
