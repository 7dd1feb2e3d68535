"use strict";
// Renders the OpenAPI document served by this binary (generated from the handlers; no external
// docs UI: everything works offline).
const METHODS = ["get", "post", "put", "patch", "delete"];

// Who may call an operation, from its security requirements.
function access(op) {
  const reqs = op.security || [];
  if (!reqs.length) return "";
  const names = reqs.map((r) => Object.keys(r));
  if (names.some((n) => n.length === 0)) return "  [API key unless the demo is closed]";
  if (names.some((n) => n.includes("live_session"))) return "  [live session credential]";
  return "  [API key]";
}

fetch("/openapi.json").then((r) => r.json()).then((doc) => {
  document.getElementById("title").textContent = `${doc.info.title} ${doc.info.version}`;
  const desc = document.getElementById("desc");
  doc.info.description.split("\n\n").forEach((p) => { const e = document.createElement("p"); e.textContent = p.replace(/\*\*/g, ""); desc.appendChild(e); });
  const responses = (doc.components && doc.components.responses) || {};
  const out = document.getElementById("paths");
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const card = document.createElement("div"); card.className = "card endpoint";
      const h = document.createElement("h3"); h.textContent = `${method.toUpperCase()} ${path}`; card.appendChild(h);
      const s = document.createElement("p"); s.textContent = (op.summary || "") + access(op); card.appendChild(s);
      if (op.description) { const d = document.createElement("p"); d.className = "muted"; d.textContent = op.description; card.appendChild(d); }
      const params = (op.parameters || []).map((p) => `${p.name} (${p.in})${p.description ? ": " + p.description : ""}`);
      if (params.length) { const p = document.createElement("p"); p.className = "muted"; p.textContent = "Parameters: " + params.join("; "); card.appendChild(p); }
      const codes = document.createElement("p"); codes.className = "muted";
      codes.textContent = "Responses: " + Object.entries(op.responses || {}).map(([c, r]) => {
        const ref = r.$ref ? responses[r.$ref.split("/").pop()] : r;
        return `${c} ${ref ? ref.description : ""}`;
      }).join("; ");
      card.appendChild(codes); out.appendChild(card);
    }
  }
});
