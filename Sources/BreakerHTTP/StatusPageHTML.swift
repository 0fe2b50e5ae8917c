/// The status page: one self-contained document (inline CSS and JS, nothing loaded from elsewhere).
/// It reads /api/breakers, listens to /events with EventSource and re-reads /api/breakers when an
/// event arrives, so it follows the fleet without a reload. Each card has small charts of the
/// breaker's trend (kept by the HTTP layer, `trend` in the JSON) and, while it is not closed, the
/// figures that opened it. While Redis (or breakerd) cannot be read it keeps showing the last known
/// state under a banner that says so. Cards carry `data-breaker`, `data-state` and `data-mode`, and
/// `<body>` carries `data-live`, `data-events`, `data-refreshes` and `data-stale`, for people's tools
/// and the browser test alike.
///
/// Requests are relative and same-origin, so a browser that was let in by basic auth sends the same
/// credentials with the page's fetch and EventSource calls.
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
.charts { display:grid; grid-template-columns:repeat(3, 1fr); gap:.5rem; margin-top:.6rem; }
.chart { min-width:0; } .chart .k { display:flex; justify-content:space-between; gap:.3rem; font-size:.7rem; color:var(--dim); white-space:nowrap; }
.chart .k span { overflow:hidden; text-overflow:ellipsis; }
.chart .k b { color:var(--ink); font-weight:600; font-variant-numeric:tabular-nums; }
svg.spark { display:block; width:100%; height:30px; border-radius:3px; background:color-mix(in srgb, var(--line) 40%, transparent); }
svg.spark polyline { fill:none; stroke-width:1.6; vector-effect:non-scaling-stroke; stroke-linejoin:round; }
svg.spark polygon { stroke:none; opacity:.15; }
svg.spark line { stroke:var(--ink); stroke-width:1; stroke-dasharray:2 2; opacity:.5; vector-effect:non-scaling-stroke; }
.calls polyline { stroke:#0969da; } .calls polygon { fill:#0969da; }
.denies polyline { stroke:var(--open); } .denies polygon { fill:var(--open); }
.rate polyline { stroke:var(--half); } .rate polygon { fill:var(--half); }
.span { font-size:.7rem; color:var(--dim); margin-top:.15rem; text-align:right; }
.trip { margin-top:.5rem; padding:.4rem .5rem; border-radius:6px; font-size:.85rem; background:color-mix(in srgb, var(--open) 11%, transparent); overflow-wrap:anywhere; }
.trip b { color:var(--open); }
#banner { display:none; padding:.55rem 1rem; background:var(--open); color:#fff; font-weight:600; font-size:.9rem; }
body[data-stale="1"] #banner { display:block; }
body[data-stale="1"] #breakers .card { opacity:.8; }
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
<div id="banner" role="status"></div>
<main id="breakers" aria-live="polite"><p class="empty">Loading breakers…</p></main>
<main>
  <section class="wide"><h2>Live events</h2><ol id="events"><li class="empty">none yet</li></ol></section>
  <section class="wide"><h2>Default policy changes (through this breakerd)</h2><ol id="defaults"><li class="empty">none</li></ol></section>
</main>
<script>
"use strict";
const $ = (s) => document.querySelector(s);
function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; }
// Same-origin URLs without the user:password@ a page opened with credentials has in its own
// address (fetch refuses such URLs); the browser's auth cache supplies the credentials.
function here(path) { return new URL(path, location.origin + location.pathname).href; }
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

const SVG = "http://www.w3.org/2000/svg";
// A sparkline of `values` (oldest first) scaled to `top`, with an optional dashed line at `mark`.
function spark(values, top, cls, mark) {
  const w = 100, h = 30, svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 " + w + " " + h); svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("class", "spark " + cls); svg.dataset.points = String(values.length);
  const hi = Math.max(top || 0, ...values, 1e-9), n = values.length;
  const xy = values.map((v, i) => [(n > 1 ? i * w / (n - 1) : w).toFixed(2), (h - 2 - (v / hi) * (h - 4)).toFixed(2)]);
  if (n) {
    const area = document.createElementNS(SVG, "polygon");
    area.setAttribute("points", xy[0][0] + "," + h + " " + xy.map((p) => p.join(",")).join(" ") + " " + xy[n - 1][0] + "," + h);
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", xy.map((p) => p.join(",")).join(" "));
    svg.append(area, line);
  }
  if (mark !== undefined) {
    const y = (h - 2 - (mark / hi) * (h - 4)).toFixed(2), m = document.createElementNS(SVG, "line");
    m.setAttribute("x1", "0"); m.setAttribute("x2", String(w)); m.setAttribute("y1", y); m.setAttribute("y2", y); svg.append(m);
  }
  return svg;
}

function charts(b, threshold) {
  const t = b.trend || { at: [], calls: [], denies: [], failure_rate: [] };
  const box = el("div", "charts");
  const chart = (name, cls, values, now, top, mark) => {
    const f = el("div", "chart " + cls); const k = el("div", "k");
    k.append(el("span", "", name), el("b", "", now)); f.append(k, spark(values, top, cls, mark)); return f;
  };
  const last = (a) => (a.length ? a[a.length - 1] : 0);
  box.append(chart("calls in window", "calls", t.calls, String(last(t.calls)), 0),
    chart("denies", "denies", t.denies, String(t.denies.reduce((x, y) => x + y, 0)), 0),
    chart("failure rate", "rate", t.failure_rate, pct(last(t.failure_rate)), 1, threshold));
  const wrap = el("div"); wrap.dataset.samples = String(t.at.length); wrap.append(box);
  const span = t.at.length > 1 ? t.at[t.at.length - 1] - t.at[0] : 0;
  wrap.append(el("div", "span", t.at.length ? "last " + (span >= 60000 ? Math.round(span / 60000) + " min" : Math.round(span / 1000) + " s") + " · denies through this breakerd" : "no samples yet"));
  return wrap;
}

function tripBox(o, threshold) {
  const d = el("div", "trip");
  d.append(el("b", "", "Opened " + clock(o.at)), " (" + ago(o.at) + ")");
  let why = "";
  if (o.failure_rate !== undefined) why = "failure rate " + pct(o.failure_rate) + " ≥ " + pct(o.threshold ?? threshold) + " over " + o.calls + " calls (" + o.failures + " failed)";
  else if (o.slow_rate !== undefined) why = "slow-call rate " + pct(o.slow_rate) + " ≥ " + pct(o.threshold ?? 0) + " over " + o.calls + " calls (" + o.slow + " slow)";
  else why = (o.reason || "").replace("_", " ");
  d.append(": " + why);
  if (o.by) d.append(el("span", "who", " by " + o.by));
  if (o.why) d.append(" — “" + o.why + "”");
  return d;
}

function card(b) {
  const st = b.effective_state || b.state;
  const c = el("article", "card " + st);
  c.dataset.breaker = b.name; c.dataset.state = st; c.dataset.mode = b.mode;
  const top = el("div", "top");
  top.append(el("h2", "", b.name), el("span", "pill state " + st, st.replace("_", "-")));
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
  const threshold = b.failure_rate_threshold || 0.5;
  // The window is cleared at a trip: while not closed, the figures shown are the ones that opened it.
  const o = st !== "closed" ? b.opened_by : null;
  const rate = o && o.failure_rate !== undefined ? o.failure_rate : b.failure_rate;
  if (o) figs.append(fig(pct(rate), "failure rate at trip"), fig(String(o.calls ?? 0), "calls at trip"), fig(b.trials + "/" + b.permits, "live trials"));
  else figs.append(fig(pct(b.failure_rate), "failure rate"), fig(String(b.calls), "calls" + win), fig(b.trials + "/" + b.permits, "live trials"));
  c.append(figs);
  const bar = el("div", "bar" + (rate >= threshold ? " hot" : ""));
  const fill = el("span"); fill.style.width = Math.min(100, rate * 100) + "%";
  const mark = el("i"); mark.style.left = "calc(" + Math.min(100, threshold * 100) + "% - 1px)";
  bar.append(fill, mark); c.append(bar);
  let sub = (o ? (o.failures ?? o.slow ?? 0) + (o.failures !== undefined ? " failed" : " slow") + " at trip" : b.failures + " failed, " + b.slow + " slow (" + pct(b.slow_rate) + ")") + " · trips at " + pct(threshold);
  if (b.min_calls) sub += " after " + b.min_calls + " calls";
  c.append(el("div", "sub", sub));
  if (o) c.append(tripBox(o, threshold));
  c.append(charts(b, threshold));
  const retry = el("div", "sub retry"); retry.dataset.retry = b.retry_after_ms; retry.dataset.state = b.mode === "auto" ? b.state : ""; c.append(retry);
  const d = el("details"); d.open = st !== "closed" || b.mode !== "auto";
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
  const rank = (b) => { const s = b.effective_state || b.state; return s === "open" ? 0 : s === "half_open" ? 1 : b.mode !== "auto" ? 2 : 3; };
  const sorted = [...doc.breakers].sort((a, b) => rank(a) - rank(b) || (a.name < b.name ? -1 : 1));
  main.replaceChildren(...(sorted.length ? sorted.map(card) : [el("p", "empty", "No breakers in Redis yet.")]));
  for (const a of main.querySelectorAll("article")) if (open.has(a.dataset.breaker)) a.querySelector("details").open = true;
  const bad = doc.breakers.filter((b) => (b.effective_state || b.state) !== "closed").length;
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

// The breakers can't be read now: keep showing the last known ones (ours, or breakerd's if newer)
// under a banner that says since when, or say plainly that none were ever read.
function stale(why, last) {
  if (last && last.as_of_ms && (!doc || last.as_of_ms >= (doc.as_of_ms || doc.now_ms))) {
    doc = last; fetchedAt = Date.now() - (last.now_ms - last.as_of_ms); skew = last.now_ms - Date.now();
  }
  document.body.dataset.stale = "1";
  const banner = $("#banner");
  if (doc && doc.breakers) {
    const at = doc.as_of_ms || doc.now_ms;
    banner.textContent = why + ": showing the last known state, read at " + clock(at) + " (" + ago(at) + ")";
    banner.dataset.asOf = String(at);
    render();
  } else {
    banner.textContent = why + ": no breakers read since this breakerd started";
    $("#breakers").replaceChildren(el("p", "empty", why + ". breakerd has not read the breakers since it started; this page fills in once it can."));
  }
}

async function refresh() {
  if (busy) { again = true; return; }
  busy = true;
  try {
    const r = await fetch(here("api/breakers"), { cache: "no-store" });
    const j = await r.json();
    if (!r.ok) { setStore(false, j.error || r.status); stale("Redis is unreachable", j); return; }
    doc = j; fetchedAt = Date.now(); skew = j.now_ms - fetchedAt;
    document.body.dataset.stale = "0";
    setStore(true); render();
    $("#updated").textContent = "updated " + clock(j.now_ms);
    document.body.dataset.refreshes = String(1 + (+document.body.dataset.refreshes || 0));
  } catch (e) {
    setStore(false, "breakerd unreachable");
    stale("breakerd is unreachable", null);
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
  const live = $("#live"), es = new EventSource(here("events"));
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
