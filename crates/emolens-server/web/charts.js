// Small SVG charts (no external library: the binary serves everything itself, offline).
"use strict";
const SVGNS = "http://www.w3.org/2000/svg";
function el(name, attrs, text) {
  const e = document.createElementNS(SVGNS, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
// Horizontal bar chart of values in [0, 1]; intervals (optional) as [lo, hi] pairs.
function barChart(container, labels, values, opts) {
  opts = opts || {};
  const rowH = 24, labelW = 90, width = opts.width || 420, barW = width - labelW - 60;
  const svg = el("svg", { class: "chart", width, height: labels.length * rowH + 6, role: "img",
    "aria-label": opts.title || "probabilities" });
  let top = 0;
  values.forEach((v, i) => { if (v > values[top]) top = i; });
  labels.forEach((label, i) => {
    const y = i * rowH + 3, v = Math.max(0, Math.min(1, values[i] || 0));
    svg.appendChild(el("text", { x: 0, y: y + 15 }, label));
    const bar = el("rect", { class: "bar" + (i === top && opts.highlightTop !== false ? " top" : ""),
      x: labelW, y, width: Math.max(1, v * barW), height: rowH - 6, "data-label": label, "data-value": v.toFixed(4) });
    bar.appendChild(el("title", {}, `${label}: ${(v * 100).toFixed(1)}%`));
    svg.appendChild(bar);
    if (opts.intervals && opts.intervals[i]) {
      const [lo, hi] = opts.intervals[i];
      svg.appendChild(el("line", { class: "ci", x1: labelW + lo * barW, x2: labelW + hi * barW, y1: y + (rowH - 6) / 2, y2: y + (rowH - 6) / 2 }));
    }
    svg.appendChild(el("text", { x: labelW + v * barW + 4, y: y + 15 }, (v * 100).toFixed(1) + "%"));
  });
  container.replaceChildren(svg);
  return svg;
}
// Valence per ad on [-1, 1] with 95% interval whiskers.
function valenceChart(container, names, estimates) {
  const rowH = 28, labelW = 140, width = 520, plotW = width - labelW - 20;
  const svg = el("svg", { class: "chart valence", width, height: names.length * rowH + 30, role: "img", "aria-label": "valence by ad" });
  const x = (v) => labelW + (v + 1) / 2 * plotW;
  svg.appendChild(el("line", { x1: x(0), x2: x(0), y1: 0, y2: names.length * rowH, stroke: "#999", "stroke-dasharray": "3 3" }));
  [-1, -0.5, 0, 0.5, 1].forEach((t) => svg.appendChild(el("text", { x: x(t) - 8, y: names.length * rowH + 18 }, t)));
  names.forEach((n, i) => {
    const y = i * rowH + rowH / 2, e = estimates[i];
    svg.appendChild(el("text", { x: 0, y: y + 4 }, n.length > 18 ? n.slice(0, 17) + "…" : n));
    if (!e) { svg.appendChild(el("text", { x: x(0) + 6, y: y + 4, class: "muted" }, "no faces yet")); return; }
    const hasCi = e.ci_low !== null && e.ci_low !== undefined;
    if (hasCi) svg.appendChild(el("line", { class: "ci", x1: x(e.ci_low), x2: x(e.ci_high), y1: y, y2: y }));
    const dot = el("circle", { class: "bar", cx: x(e.value), cy: y, r: 6, "data-value": e.value.toFixed(4) });
    dot.appendChild(el("title", {}, `${n}: ${e.value.toFixed(3)} ` + (hasCi ? `[${e.ci_low.toFixed(3)}, ${e.ci_high.toFixed(3)}]` : `(${e.interval_note || "no interval"})`)));
    svg.appendChild(dot);
  });
  container.replaceChildren(svg);
  return svg;
}
// Face boxes over an image of natural size w x h.
function drawBoxes(svg, w, h, faces, selected, onSelect) {
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.replaceChildren();
  faces.forEach((f, i) => {
    const b = f.box, stroke = i === selected ? "#e07b00" : "#2fdf6f";
    const r = el("rect", { class: "face-box", x: b.x, y: b.y, width: b.width, height: b.height, fill: "transparent",
      stroke, "stroke-width": Math.max(2, w / 200) });
    r.addEventListener("click", () => onSelect(i));
    svg.appendChild(r);
    svg.appendChild(el("text", { x: b.x + 3, y: Math.max(12, b.y - 4), fill: stroke, "font-size": Math.max(12, w / 40), "font-weight": 700 },
      `${i + 1}: ${f.top_emotion}`));
  });
}
// A timeline over the seconds of an ad: series of {second, value} (null: nobody that second)
// on [-1, 1] (valence) or [0, 1] (shares, drawn on the same axis as 0..100%). Gaps stay gaps.
function linePath(points, x, y) {
  let d = "", pen = false;
  for (const p of points) {
    if (p.value === null || p.value === undefined) { pen = false; continue; }
    d += (pen ? " L " : " M ") + x(p.second + 0.5).toFixed(1) + " " + y(p.value).toFixed(1);
    pen = true;
  }
  return d.trim();
}
function timelineFrame(seconds, title) {
  const width = 760, height = 260, left = 44, right = 16, top = 14, bottom = 34;
  const n = Math.max(1, seconds);
  const x = (s) => left + (s / n) * (width - left - right);
  const y = (v) => top + (1 - (v + 1) / 2) * (height - top - bottom);
  const svg = el("svg", { class: "chart timeline", width, height, role: "img", "aria-label": title });
  svg.appendChild(el("line", { class: "axis", x1: left, x2: width - right, y1: height - bottom, y2: height - bottom }));
  svg.appendChild(el("line", { class: "zero", x1: left, x2: width - right, y1: y(0), y2: y(0) }));
  [-1, -0.5, 0, 0.5, 1].forEach((t) => svg.appendChild(el("text", { x: 4, y: y(t) + 4 }, t)));
  const step = n <= 15 ? 1 : n <= 40 ? 5 : 10;
  for (let s = 0; s <= n; s += step) svg.appendChild(el("text", { x: x(s) - 4, y: height - bottom + 16 }, s));
  svg.appendChild(el("text", { x: width / 2 - 40, y: height - 4 }, "second of the ad"));
  return { svg, x, y, width, height, top, bottom, left, right };
}
// One ad: valence with its 95% band where there is one, smiling share (dashed, 0..1), moments.
function timelineChart(container, timeline) {
  const secs = timeline.seconds;
  const f = timelineFrame(secs.length, "emotion timeline");
  let band = "";
  const hi = [], lo = [];
  for (const s of secs) {
    const v = s.valence;
    if (v && v.ci_low !== null && v.ci_low !== undefined) { hi.push([s.second, v.ci_high]); lo.push([s.second, v.ci_low]); }
  }
  if (hi.length) {
    band = hi.map(([s, v], i) => (i ? "L " : "M ") + f.x(s + 0.5).toFixed(1) + " " + f.y(v).toFixed(1)).join(" ")
      + " " + lo.reverse().map(([s, v]) => "L " + f.x(s + 0.5).toFixed(1) + " " + f.y(v).toFixed(1)).join(" ") + " Z";
    f.svg.appendChild(el("path", { class: "band", d: band }));
  }
  const val = secs.map((s) => ({ second: s.second, value: s.valence ? s.valence.value : null }));
  const smile = secs.map((s) => ({ second: s.second, value: s.smiling_share ? s.smiling_share.value * 2 - 1 : null }));
  f.svg.appendChild(el("path", { class: "smiling", d: linePath(smile, f.x, f.y) }));
  const line = el("path", { class: "valence", d: linePath(val, f.x, f.y), "data-points": val.filter((p) => p.value !== null).length });
  f.svg.appendChild(line);
  for (const s of secs) {
    if (!s.valence) continue;
    const dot = el("circle", { class: "point" + (s.moment ? " " + s.moment : ""), cx: f.x(s.second + 0.5), cy: f.y(s.valence.value), r: s.moment ? 6 : 2.5,
      "data-second": s.second, "data-value": s.valence.value.toFixed(4) });
    const ci = s.valence.ci_low === null ? `(${s.valence.interval_note})` : `[${s.valence.ci_low.toFixed(2)}, ${s.valence.ci_high.toFixed(2)}]`;
    dot.appendChild(el("title", {}, `second ${s.second}: valence ${s.valence.value.toFixed(2)} ${ci}, ${s.viewers} viewer(s)` +
      (s.smiling_share ? `, ${(s.smiling_share.value * 100).toFixed(0)}% smiling` : "") + (s.moment ? ` — ${s.moment}` : "")));
    f.svg.appendChild(dot);
  }
  f.svg.appendChild(el("rect", { class: "legend-a", x: f.width - 250, y: 4, width: 12, height: 4 }));
  f.svg.appendChild(el("text", { x: f.width - 234, y: 10 }, "valence (band: 95%)"));
  f.svg.appendChild(el("rect", { class: "legend-s", x: f.width - 110, y: 4, width: 12, height: 4 }));
  f.svg.appendChild(el("text", { x: f.width - 94, y: 10 }, "% smiling"));
  container.replaceChildren(f.svg);
  return f.svg;
}
// Two ads second by second: A's and B's valence; dots where B differs significantly.
function compareChart(container, cmp) {
  const secs = cmp.seconds;
  const f = timelineFrame(secs.length, "valence of two ads");
  const a = secs.map((s) => ({ second: s.second, value: s.a.valence ? s.a.valence.value : null }));
  const b = secs.map((s) => ({ second: s.second, value: s.b.valence ? s.b.valence.value : null }));
  f.svg.appendChild(el("path", { class: "valence", d: linePath(a, f.x, f.y) }));
  f.svg.appendChild(el("path", { class: "b-valence", d: linePath(b, f.x, f.y) }));
  for (const s of secs) {
    if (s.valence_significance !== "significant") continue;
    const dot = el("circle", { class: "sig", cx: f.x(s.second + 0.5), cy: f.y(s.b.valence.value), r: 4 });
    dot.appendChild(el("title", {}, `second ${s.second}: B − A = ${s.valence_difference.value.toFixed(2)} [${s.valence_difference.ci_low.toFixed(2)}, ${s.valence_difference.ci_high.toFixed(2)}]`));
    f.svg.appendChild(dot);
  }
  f.svg.appendChild(el("rect", { class: "legend-a", x: f.width - 330, y: 4, width: 12, height: 4 }));
  f.svg.appendChild(el("text", { x: f.width - 314, y: 10 }, cmp.a.name.slice(0, 16)));
  f.svg.appendChild(el("rect", { class: "legend-b", x: f.width - 190, y: 4, width: 12, height: 4 }));
  f.svg.appendChild(el("text", { x: f.width - 174, y: 10 }, cmp.b.name.slice(0, 16) + " (• differs)"));
  container.replaceChildren(f.svg);
  return f.svg;
}
