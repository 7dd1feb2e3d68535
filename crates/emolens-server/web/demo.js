// The single-image page: preview, predict, faces boxed on the image, probabilities as a chart.
"use strict";
const $ = (id) => document.getElementById(id);
let faces = [], classes = [], chosen = null;

$("file").addEventListener("change", () => {
  chosen = $("file").files[0] || null;
  $("error").textContent = ""; $("label").textContent = ""; $("chart").replaceChildren(); $("boxes").replaceChildren();
  $("facecount").textContent = ""; $("quality").textContent = ""; $("which").textContent = "";
  if (!chosen) { $("preview").hidden = true; $("predict").disabled = true; return; }
  $("preview").src = URL.createObjectURL(chosen);
  $("preview").hidden = false;
  $("predict").disabled = false;
});

function show(i) {
  const f = faces[i];
  if (!f) return;
  $("which").textContent = faces.length > 1 ? `(face ${i + 1} of ${faces.length})` : "";
  $("label").textContent = f.top_emotion + (f.uncertain ? " (uncertain)" : "");
  barChart($("chart"), classes, classes.map((c) => f.probabilities[c]), { title: "class probabilities" });
  $("quality").textContent = `top probability ${(f.top_probability * 100).toFixed(1)}%, quality ${f.quality.toFixed(2)}`;
  const img = $("preview");
  drawBoxes($("boxes"), img.naturalWidth, img.naturalHeight, faces, i, show);
}

// The API key, shared with the campaigns page (this browser's localStorage). A server started
// with `--open-demo false` needs it for predictions too: the key field is shown then.
const key = () => localStorage.getItem("emolens-key") || "";
function askForKey(why) {
  $("keyrow").hidden = false;
  $("apikey").value = key();
  if (why) $("error").textContent = why;
}
$("savekey").addEventListener("click", () => {
  localStorage.setItem("emolens-key", $("apikey").value.trim());
  $("error").textContent = key() ? "Key saved; press Predict." : "";
});
fetch("/info").then((r) => r.json()).then((info) => { if (info.open_demo === false) askForKey(); }).catch(() => {});

async function post(url, form) {
  const headers = key() ? { Authorization: "Bearer " + key() } : {};
  const r = await fetch(url, { method: "POST", body: form, headers });
  const body = await r.json().catch(() => ({ error: `HTTP ${r.status}` }));
  if (r.status === 401) askForKey();
  if (!r.ok) throw new Error(body.error || `HTTP ${r.status}`);
  return body;
}

$("predict").addEventListener("click", async () => {
  if (!chosen) return;
  $("predict").disabled = true; $("error").textContent = "";
  try {
    const form = new FormData(); form.append("file", chosen, chosen.name);
    const res = await post("/v1/analyze", form);
    const item = res.items[0];
    if (item.status !== "ok") throw new Error(item.error.message);
    classes = res.classes; faces = item.faces;
    if (faces.length === 0) {
      // No face found: classify the whole image as one face crop, as the original page did.
      const f2 = new FormData(); f2.append("file", chosen, chosen.name);
      const crop = await post("/v1/analyze?assume_crop=true", f2);
      faces = crop.items[0].faces;
      $("facecount").textContent = "No face found; the whole image was classified as one face crop.";
    } else {
      $("facecount").textContent = `${faces.length} face${faces.length > 1 ? "s" : ""} found` + (faces.length > 1 ? " (click a box to see it)" : "");
    }
    show(0);
  } catch (e) {
    $("error").textContent = e.message;
  } finally {
    $("predict").disabled = false;
  }
});
