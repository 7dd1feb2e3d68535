"use strict";
// Renders the OpenAPI document served by this binary (no external docs UI: everything works offline).
fetch("/openapi.json").then((r) => r.json()).then((doc) => {
  document.getElementById("title").textContent = `${doc.info.title} ${doc.info.version}`;
  const desc = document.getElementById("desc");
  doc.info.description.split("\n\n").forEach((p) => { const e = document.createElement("p"); e.textContent = p.replace(/\*\*/g, ""); desc.appendChild(e); });
  const out = document.getElementById("paths");
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const card = document.createElement("div"); card.className = "card endpoint";
      const h = document.createElement("h3"); h.textContent = `${method.toUpperCase()} ${path}`; card.appendChild(h);
      const s = document.createElement("p"); s.textContent = (op.summary || "") + (op.security && op.security.length ? "  [API key]" : ""); card.appendChild(s);
      if (op.description) { const d = document.createElement("p"); d.className = "muted"; d.textContent = op.description; card.appendChild(d); }
      const codes = document.createElement("p"); codes.className = "muted";
      codes.textContent = "Responses: " + Object.entries(op.responses || {}).map(([c, r]) => `${c} ${r.description}`).join("; ");
      card.appendChild(codes); out.appendChild(card);
    }
  }
});
