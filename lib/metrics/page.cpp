// SPDX-License-Identifier: BSD-3-Clause
// The page for a person (GET / of the management server): MRTG-style graphs of the probe's own
// history (GET /history) and a few facts from GET /status, drawn as SVG by a small script. Self
// contained: no fonts, scripts or styles from elsewhere (a probe often has no way out).
#include "metrics/page.h"

namespace weir::metrics {

const std::string& page_html() {
    static const std::string html = R"HTML(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>weir</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
header { background: #0b3d5c; color: #fff; padding: 10px 18px; display: flex; gap: 24px; align-items: baseline; flex-wrap: wrap; }
header h1 { font-size: 20px; margin: 0; }
header span { opacity: .85; }
nav { padding: 8px 18px; }
nav button { margin-right: 6px; padding: 4px 10px; border: 1px solid #0b3d5c; background: #fff; color: #0b3d5c; cursor: pointer; }
nav button.on { background: #0b3d5c; color: #fff; }
main { display: grid; grid-template-columns: repeat(auto-fill, minmax(460px, 1fr)); gap: 14px; padding: 0 18px 18px; }
section { background: #fff; border: 1px solid #ddd; padding: 8px 10px; }
section h2 { font-size: 14px; margin: 0 0 4px; }
.legend span { margin-right: 12px; font-size: 12px; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; vertical-align: middle; }
svg text { font-size: 10px; fill: #555; }
#error { color: #b00; padding: 0 18px; }
table { border-collapse: collapse; font-size: 12px; }
td, th { padding: 2px 8px; text-align: right; border-bottom: 1px solid #eee; }
th:first-child, td:first-child { text-align: left; }
</style>
</head>
<body>
<header><h1>weir</h1><span id="probe"></span><span id="uptime"></span><span id="mode"></span></header>
<nav><button data-s="3600" class="on">last hour</button><button data-s="86400">last day</button></nav>
<div id="error"></div>
<main id="charts"></main>
<main><section><h2>Ports</h2><table id="ports"></table></section>
<section><h2>Exporters</h2><table id="exporters"></table></section></main>
<script>
"use strict";
const charts = [
  {id: "pps", title: "Packets per second", series: [["pps", "received", "#1f77b4"], ["missed_pps", "missed by the NIC", "#d62728"]]},
  {id: "bps", title: "Bits per second", series: [["bps", "received", "#2ca02c"]]},
  {id: "flows", title: "Flows", series: [["flows_active", "active", "#9467bd"], ["new_flows_per_s", "new per second", "#ff7f0e"]]},
  {id: "records", title: "Records exported per second", series: [["records_per_s", "records", "#17becf"], ["export_dropped_per_s", "dropped", "#d62728"]]},
  {id: "drops", title: "Packets not in flows per second", series: [["decode_drops_pps", "malformed, truncated, unsupported", "#8c564b"]]},
  {id: "busy", title: "Busiest worker (share of time busy)", series: [["busy", "busy", "#e377c2"]], max: 1},
  {id: "events", title: "Detection events started per minute", series: [["events_per_min", "events", "#bcbd22"]]},
];
let span = 3600;
const NS = "http://www.w3.org/2000/svg";
function el(name, attrs, parent) {
  const e = document.createElementNS(NS, name);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (parent) parent.appendChild(e);
  return e;
}
function si(v) {
  const a = Math.abs(v);
  for (const [d, s] of [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]]) if (a >= d) return (v / d).toFixed(a >= 10 * d ? 0 : 1) + s;
  return a >= 10 ? v.toFixed(0) : String(Number(v.toPrecision(3)));
}
function ago(s) {
  s = Math.floor(s);
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  return d ? `${d} d ${h} h` : h ? `${h} h ${m} min` : m ? `${m} min ${s % 60} s` : `${s} s`;
}
function hhmm(t) {
  const d = new Date(t * 1000);
  return String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
}
function draw(c, h) {
  let sec = document.getElementById(c.id);
  if (!sec) {
    sec = document.createElement("section");
    sec.id = c.id;
    sec.innerHTML = "<h2></h2><div class=legend></div>";
    sec.querySelector("h2").textContent = c.title;
    document.getElementById("charts").appendChild(sec);
  }
  const old = sec.querySelector("svg");
  if (old) old.remove();
  const W = 440, H = 170, L = 44, B = 18, T = 6, R = 6;
  const svg = el("svg", {viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img"});
  sec.appendChild(svg);
  const t = h.t;
  let max = c.max || 0;
  for (const [k] of c.series) for (const v of h[k]) max = Math.max(max, v);
  if (max === 0) max = 1;
  const t1 = t.length ? t[t.length - 1] : Date.now() / 1000, t0 = t1 - span;
  const x = v => L + (W - L - R) * (v - t0) / (t1 - t0);
  const y = v => H - B - (H - B - T) * v / max;
  for (let i = 0; i <= 4; i++) {
    const v = max * i / 4;
    el("line", {x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#eee"}, svg);
    el("text", {x: L - 4, y: y(v) + 3, "text-anchor": "end"}, svg).textContent = c.max === 1 ? Math.round(v * 100) + "%" : si(v);
  }
  const ticks = span > 7200 ? 6 : 4;
  for (let i = 0; i <= ticks; i++) {
    const v = t0 + (t1 - t0) * i / ticks;
    el("text", {x: x(v), y: H - 4, "text-anchor": i === ticks ? "end" : i === 0 ? "start" : "middle"}, svg).textContent = hhmm(v);
  }
  el("line", {x1: L, x2: L, y1: T, y2: H - B, stroke: "#999"}, svg);
  el("line", {x1: L, x2: W - R, y1: H - B, y2: H - B, stroke: "#999"}, svg);
  const legend = sec.querySelector(".legend");
  legend.innerHTML = "";
  for (const [k, label, color] of c.series) {
    const pts = h[k].map((v, i) => x(t[i]).toFixed(1) + "," + y(v).toFixed(1));
    if (pts.length) el("polyline", {points: pts.join(" "), fill: "none", stroke: color, "stroke-width": 1.5, "data-series": k}, svg);
    const last = h[k].length ? h[k][h[k].length - 1] : 0;
    const s = document.createElement("span");
    s.innerHTML = `<i style="background:${color}"></i>`;
    s.append(`${label}: ${c.max === 1 ? Math.round(last * 100) + "%" : si(last)}`);
    legend.appendChild(s);
  }
}
function table(id, head, rows) {
  const tb = document.getElementById(id);
  tb.innerHTML = "";
  const tr = tb.insertRow();
  for (const hd of head) { const th = document.createElement("th"); th.textContent = hd; tr.appendChild(th); }
  for (const r of rows) { const row = tb.insertRow(); for (const v of r) row.insertCell().textContent = v; }
}
async function refresh() {
  try {
    const [h, s] = await Promise.all([fetch("history?s=" + span).then(r => r.json()), fetch("status").then(r => r.json())]);
    document.getElementById("error").textContent = "";
    for (const c of charts) draw(c, h);
    document.getElementById("probe").textContent = (s.probe || "") + " weir " + (s.version || "");
    document.getElementById("uptime").textContent = "up " + ago(s.uptime_s || 0);
    document.getElementById("mode").textContent = s.mode || "";
    table("ports", ["port", "driver", "packets", "missed"], (s.ports || []).map(p => [p.name, p.driver, si(p.rx_packets || 0), si(p.rx_missed || 0)]));
    table("exporters", ["exporter", "format", "records", "dropped"], (s.exporters || []).map(e => [e.url, e.format, si(e.records || 0), si(e.dropped_records || 0)]));
  } catch (e) {
    document.getElementById("error").textContent = "cannot reach weir: " + e;
  }
}
for (const b of document.querySelectorAll("nav button")) b.onclick = () => {
  for (const o of document.querySelectorAll("nav button")) o.classList.toggle("on", o === b);
  span = Number(b.dataset.s);
  refresh();
};
refresh();
setInterval(refresh, 10000);
</script>
</body>
</html>
)HTML";
    return html;
}

}  // namespace weir::metrics
