// The monitor dashboard: search points, show their curves, show alerts.
// State lives in the URL hash (#series=a,b&range=3600&machines=1), so a
// view can be linked. Data comes from the center's JSON API (api/...).
"use strict";

const state = { series: [], range: "3600", from: null, to: null, machines: false };
const charts = new Map(); // name -> {el, plot}

function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  state.series = (p.get("series") || "").split(",").filter(Boolean);
  state.range = p.get("range") || "3600";
  state.from = p.get("from") ? Number(p.get("from")) : null;
  state.to = p.get("to") ? Number(p.get("to")) : null;
  state.machines = p.get("machines") === "1";
}

function writeHash() {
  const p = new URLSearchParams();
  if (state.series.length) p.set("series", state.series.join(","));
  p.set("range", state.range);
  if (state.range === "custom" && state.from && state.to) { p.set("from", state.from); p.set("to", state.to); }
  if (state.machines) p.set("machines", "1");
  history.replaceState(null, "", "#" + p.toString());
}

async function getJSON(url) {
  const res = await fetch(url);
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || res.statusText);
  return body;
}

function timeRange() {
  if (state.range === "custom" && state.from && state.to) return [state.from, state.to];
  const to = Date.now();
  return [to - Number(state.range) * 1000, to];
}

async function search() {
  const q = document.getElementById("search").value;
  const list = document.getElementById("series-list");
  try {
    const r = await getJSON("api/series?q=" + encodeURIComponent(q));
    list.replaceChildren(...(r.series || []).map(s => {
      const li = document.createElement("li");
      li.textContent = s.name;
      li.title = `${s.kind === 2 ? "gauge" : "counter"}, ${s.unit || "count"}` + (s.id ? `, ID ${s.id}` : "") + (s.alert ? `\nalert: ${s.alert}` : "") + (s.problem ? `\nproblem: ${s.problem}` : "");
      li.dataset.series = s.name;
      if (state.series.includes(s.name)) li.className = "shown";
      li.onclick = () => toggle(s.name);
      return li;
    }));
    if (r.more) { const li = document.createElement("li"); li.textContent = "… refine the search"; list.append(li); }
  } catch (e) { setStatus("search: " + e.message); }
}

function toggle(name) {
  if (state.series.includes(name)) {
    state.series = state.series.filter(s => s !== name);
    const c = charts.get(name);
    if (c) { c.plot && c.plot.destroy(); c.el.remove(); charts.delete(name); }
  } else {
    state.series.push(name);
  }
  writeHash();
  refresh();
  search();
}

function setStatus(s) { document.getElementById("status").textContent = s; }

function chartFor(name) {
  let c = charts.get(name);
  if (c) return c;
  const el = document.createElement("div");
  el.className = "chart";
  el.dataset.series = name;
  const h = document.createElement("h2");
  const t = document.createElement("span"); t.textContent = name;
  const x = document.createElement("button"); x.className = "close"; x.textContent = "✕"; x.title = "remove"; x.onclick = () => toggle(name);
  h.append(t, x);
  const meta = document.createElement("div"); meta.className = "meta";
  const plotEl = document.createElement("div");
  el.append(h, meta, plotEl);
  document.getElementById("charts").append(el);
  c = { el, meta, plotEl, plot: null, key: "" };
  charts.set(name, c);
  return c;
}

async function draw(name) {
  const [from, to] = timeRange();
  const q = `api/query?name=${encodeURIComponent(name)}&from=${Math.floor(from)}&to=${Math.floor(to)}&per_machine=${state.machines ? 1 : 0}&max_points=600`;
  const c = chartFor(name);
  let r;
  try { r = await getJSON(q); } catch (e) { c.meta.textContent = "error: " + e.message; c.el.dataset.error = e.message; return; }
  delete c.el.dataset.error;
  const s = r.series;
  const per = s.kind === 2 ? "average level" : `count per ${r.step_ms / 1000}s`;
  const present = r.sum.filter(v => v !== null);
  const total = present.reduce((a, b) => a + b, 0);
  c.meta.textContent = `${s.kind === 2 ? "gauge" : "counter"} · ${s.unit || "count"} · ${per} · ${r.resolution} data` +
    (r.clipped ? " · range clipped to retention" : "") + (s.alert ? ` · alert: ${s.alert}` : "") + (s.problem ? ` · PROBLEM: ${s.problem}` : "");
  // What tests (and curious people) read: the points behind the curve.
  c.el.dataset.points = String(present.length);
  c.el.dataset.total = String(total);
  c.el.dataset.last = present.length ? String(present[present.length - 1]) : "";
  window.monitorData = window.monitorData || {};
  window.monitorData[name] = r;
  const data = [r.times, r.sum];
  const series = [{}, { label: "sum", stroke: "#1565c0", width: 2, spanGaps: false, points: { show: false } }];
  const colors = ["#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#ad1457", "#5d4037"];
  (r.machines || []).forEach((m, i) => {
    data.push(m.values);
    series.push({ label: m.machine, stroke: colors[i % colors.length], width: 1, spanGaps: false, points: { show: false } });
  });
  const key = series.map(x => x.label).join("|");
  const width = Math.max(400, c.el.clientWidth - 20);
  if (c.plot && c.key === key) {
    c.plot.setData(data);
    return;
  }
  if (c.plot) c.plot.destroy();
  c.plot = new uPlot({ width, height: 220, series, axes: [{}, { size: 60 }], scales: { x: { time: true } } }, data, c.plotEl);
  c.key = key;
}

async function alerts() {
  const ul = document.getElementById("alerts");
  try {
    const r = await getJSON("api/alerts");
    const items = (r.alerts || []).map(a => {
      const li = document.createElement("li");
      li.className = a.state;
      li.dataset.series = a.series;
      const since = new Date(Number(a.since_unix_ms)).toLocaleTimeString();
      li.textContent = a.state === "firing" ? `FIRING since ${since}: ${a.message}` : `resolved at ${since}: ${a.series} (${a.rule})`;
      return li;
    });
    for (const p of (r.problems || []).slice(0, 5)) {
      const li = document.createElement("li"); li.className = "problem"; li.textContent = p; items.push(li);
    }
    ul.replaceChildren(...items);
  } catch (e) { setStatus("alerts: " + e.message); }
}

let refreshing = false;
async function refresh() {
  if (refreshing) return;
  refreshing = true;
  try {
    document.getElementById("hint").hidden = state.series.length > 0;
    await Promise.all([alerts(), ...state.series.map(draw)]);
    document.body.dataset.loaded = String(Date.now());
    setStatus("updated " + new Date().toLocaleTimeString());
  } finally { refreshing = false; }
}

function toLocalInput(ms) {
  const d = new Date(ms - new Date().getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 19);
}

function init() {
  readHash();
  const range = document.getElementById("range");
  range.value = state.range;
  document.getElementById("custom").hidden = state.range !== "custom";
  document.getElementById("per-machine").checked = state.machines;
  const [f, t] = timeRange();
  document.getElementById("from").value = toLocalInput(f);
  document.getElementById("to").value = toLocalInput(t);
  range.onchange = () => {
    state.range = range.value;
    document.getElementById("custom").hidden = state.range !== "custom";
    writeHash(); refresh();
  };
  document.getElementById("apply").onclick = () => {
    state.from = new Date(document.getElementById("from").value).getTime();
    state.to = new Date(document.getElementById("to").value).getTime();
    writeHash(); refresh();
  };
  document.getElementById("per-machine").onchange = e => { state.machines = e.target.checked; writeHash(); refresh(); };
  let t0;
  document.getElementById("search").oninput = () => { clearTimeout(t0); t0 = setTimeout(search, 150); };
  search();
  refresh();
  setInterval(() => { if (state.range !== "custom") refresh(); }, 2000);
}

init();
