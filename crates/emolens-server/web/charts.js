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
