// Campaigns, ads, uploads, results and comparison. Talks to the /v1 API with the key kept in
// this browser's localStorage.
"use strict";
const $ = (id) => document.getElementById(id);
const key = () => localStorage.getItem("emolens-key") || "";
const BATCH = 8; // photos per upload request, so the progress bar moves and no request is huge

$("apikey").value = key();
$("savekey").addEventListener("click", () => { localStorage.setItem("emolens-key", $("apikey").value.trim()); route(); });

async function api(method, url, body) {
  const opts = { method, headers: { Authorization: "Bearer " + key() } };
  if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
  const r = await fetch(url, opts);
  const data = await r.json().catch(() => ({ error: `HTTP ${r.status}` }));
  if (!r.ok) throw new Error(data.error || `HTTP ${r.status}`);
  return data;
}
function td(text) { const e = document.createElement("td"); e.textContent = text; return e; }
function link(text, href) { const a = document.createElement("a"); a.textContent = text; a.href = href; return a; }
// A value with its 95% interval, or with the reason there is none (too few faces, no variation).
function est(e) { return e.ci_low === null || e.ci_low === undefined ? `${num(e.value)} (${e.interval_note || "no interval"})` : `${num(e.value)} [${num(e.ci_low)}, ${num(e.ci_high)}]`; }
function pct(v) { return v === undefined || v === null ? "–" : (v * 100).toFixed(1) + "%"; }
function num(v) { return v === undefined || v === null ? "–" : v.toFixed(3); }
function view(tpl) { $("view").replaceChildren($(tpl).content.cloneNode(true)); }
async function download(url, name) {
  const r = await fetch(url, { headers: { Authorization: "Bearer " + key() } });
  if (!r.ok) { $("error").textContent = (await r.json()).error; return; }
  const a = document.createElement("a");
  a.href = URL.createObjectURL(await r.blob()); a.download = name; a.click();
}

async function showCampaigns() {
  view("t-campaigns");
  const { campaigns } = await api("GET", "/v1/campaigns");
  const rows = $("campaign-rows");
  for (const c of campaigns) {
    const tr = document.createElement("tr");
    const name = document.createElement("td"); name.appendChild(link(c.name, `#/campaign/${c.id}`));
    tr.append(name, td(c.description), td(c.keep_images ? "kept" : "not kept"));
    rows.appendChild(tr);
  }
  $("c-create").addEventListener("click", async () => {
    try {
      const c = await api("POST", "/v1/campaigns", { name: $("c-name").value, description: $("c-desc").value, keep_images: $("c-keep").checked });
      location.hash = `#/campaign/${c.id}`;
    } catch (e) { $("error").textContent = e.message; }
  });
}

async function showCampaign(id) {
  view("t-campaign");
  const { campaign, ads } = await api("GET", `/v1/campaigns/${id}`);
  $("c-title").textContent = campaign.name;
  $("c-info").textContent = `${campaign.description || ""} Images ${campaign.keep_images ? "are kept" : "are not kept (only the numbers)"}.`;
  for (const a of ads) {
    const tr = document.createElement("tr");
    const name = document.createElement("td"); name.appendChild(link(a.name, `#/ad/${a.id}`));
    tr.append(name, td(a.photos), td(a.failed_photos), td(a.faces));
    $("ad-rows").appendChild(tr);
  }
  $("a-create").addEventListener("click", async () => {
    try { const ad = await api("POST", `/v1/campaigns/${id}/ads`, { name: $("a-name").value }); location.hash = `#/ad/${ad.id}`; }
    catch (e) { $("error").textContent = e.message; }
  });
  $("exp-csv").addEventListener("click", () => download(`/v1/campaigns/${id}/export?format=csv`, `campaign-${id}.csv`));
  $("exp-json").addEventListener("click", () => download(`/v1/campaigns/${id}/export?format=json`, `campaign-${id}.json`));
  const cmp = await api("GET", `/v1/campaigns/${id}/compare`);
  $("cmp-method").textContent = cmp.method;
  valenceChart($("valence-chart"), cmp.ads.map((r) => r.ad.name), cmp.ads.map((r) => r.results.valence));
  const t = $("cmp-table");
  const head = document.createElement("tr");
  ["Ad", "Faces", "Uncertain", "Valence [95% CI]", "Δ valence vs " + (cmp.ads[0] ? cmp.ads[0].ad.name : "baseline"), ...cmp.classes.map((c) => c + " share")]
    .forEach((h) => { const th = document.createElement("th"); th.textContent = h; head.appendChild(th); });
  t.appendChild(head);
  for (const r of cmp.ads) {
    const tr = document.createElement("tr"); tr.className = "cmp-row";
    const v = r.results.valence, d = r.difference_vs_baseline;
    const dv = !d ? "baseline" : !d.valence ? "no faces"
      : d.valence_significance === "too_few_faces" ? `${num(d.valence.value)} (too few faces)`
      : `${est(d.valence)}${d.valence_differs ? " *" : ""}`;
    tr.append(td(r.ad.name), td(r.results.faces), td(r.results.uncertain_faces),
      td(v ? est(v) : "–"), td(dv),
      ...cmp.classes.map((c) => td(pct(r.results.top_share[c] && r.results.top_share[c].value))));
    t.appendChild(tr);
  }
}

async function showAd(id) {
  view("t-ad");
  const { ad, campaign } = await api("GET", `/v1/ads/${id}`);
  $("back").href = `#/campaign/${campaign.id}`;
  $("ad-title").textContent = `${campaign.name} / ${ad.name}`;
  $("keep-note").textContent = campaign.keep_images
    ? "This campaign keeps the uploaded images."
    : "Uploaded images are analysed and not kept; only the numbers are stored.";
  $("photos").addEventListener("change", () => { $("upload").disabled = $("photos").files.length === 0; });
  $("upload").addEventListener("click", () => upload(id));
  $("ad-csv").addEventListener("click", () => download(`/v1/ads/${id}/export?format=csv`, `ad-${id}.csv`));
  $("ad-json").addEventListener("click", () => download(`/v1/ads/${id}/export?format=json`, `ad-${id}.json`));
  await showResults(id);
  await setupVideos(id, ad, campaign);
}

// Reaction videos: the ad's length, uploads (one job each), the jobs' progress, the timeline.
function showLength(ad) {
  $("ad-duration").value = ad.duration_s || "";
  $("ad-length").textContent = ad.duration_s ? `The ad lasts ${ad.duration_s.toFixed(1)} s` +
    (ad.creative ? ` (from its creative ${ad.creative.file_name})` : "") + "." : "Length not set: timelines run to the longest video.";
}

async function setupVideos(id, ad, campaign) {
  showLength(ad);
  $("set-duration").addEventListener("click", async () => {
    try {
      const v = $("ad-duration").value;
      showLength(await api("PATCH", `/v1/ads/${id}`, { duration_s: v === "" ? null : Number(v) }));
      await showTimeline(id);
    } catch (e) { $("error").textContent = e.message; }
  });
  $("videos").addEventListener("change", () => { $("upload-videos").disabled = $("videos").files.length === 0; });
  $("upload-videos").addEventListener("click", () => uploadVideos(id));
  $("tl-csv").addEventListener("click", () => download(`/v1/ads/${id}/timeline/export?format=csv`, `ad-${id}-timeline.csv`));
  $("tl-viewers-csv").addEventListener("click", () => download(`/v1/ads/${id}/timeline/export?format=csv&level=viewer`, `ad-${id}-viewer-seconds.csv`));
  $("tl-json").addEventListener("click", () => download(`/v1/ads/${id}/timeline/export?format=json`, `ad-${id}-timeline.json`));
  const { ads } = await api("GET", `/v1/campaigns/${campaign.id}`);
  for (const other of ads.filter((a) => String(a.id) !== String(id))) {
    const o = document.createElement("option"); o.value = other.id; o.textContent = other.name; $("cmp-ad").appendChild(o);
  }
  $("cmp-ad").addEventListener("change", () => showCompare(id));
  $("cmp-csv").addEventListener("click", () => {
    const b = $("cmp-ad").value;
    if (b) download(`/v1/ads/${id}/timeline/compare/export?with=${b}&format=csv`, `ads-${id}-vs-${b}-timeline.csv`);
  });
  $("ll-create").addEventListener("click", async () => {
    try {
      const l = await api("POST", `/v1/ads/${id}/live-links`, {
        label: $("ll-label").value, max_viewers: Number($("ll-max").value), expires_in_hours: Number($("ll-hours").value),
      });
      $("ll-url").textContent = location.origin + l.url; $("ll-new").hidden = false;
      await refreshLinks(id);
    } catch (e) { $("error").textContent = e.message; }
  });
  await refreshLinks(id);
  await refreshJobs(id);
  await showTimeline(id);
}

// Live viewing links of an ad: viewers so far, expiry, withdraw.
async function refreshLinks(id) {
  const { links } = await api("GET", `/v1/ads/${id}/live-links`);
  if (!$("ll-rows")) return;
  $("ll-rows").replaceChildren(...links.map((l) => {
    const tr = document.createElement("tr");
    const st = l.revoked_at ? "withdrawn" : l.active ? "active" : (l.viewers >= l.max_viewers ? "used up" : "expired");
    const act = document.createElement("td");
    if (!l.revoked_at) {
      const b = document.createElement("button"); b.className = "secondary"; b.textContent = "Withdraw";
      b.addEventListener("click", async () => {
        try { await api("DELETE", `/v1/live-links/${l.id}`); await refreshLinks(id); } catch (e) { $("error").textContent = e.message; }
      });
      act.appendChild(b);
    }
    tr.append(td(l.label || `link ${l.id}`), td(`${l.viewers} / ${l.max_viewers}`), td(new Date(l.expires_at * 1000).toLocaleString()), td(st), act);
    return tr;
  }));
}

function jobRow(j) {
  const tr = document.createElement("tr"); tr.className = "job-row " + j.state; tr.dataset.state = j.state;
  const pill = document.createElement("span");
  pill.className = "pill " + (j.state === "done" ? "good" : j.state === "failed" ? "bad" : "");
  pill.textContent = j.state + (j.state === "queued" && j.queued_ahead ? ` (${j.queued_ahead} ahead)` : "");
  const st = document.createElement("td"); st.appendChild(pill);
  const pr = document.createElement("td");
  if (j.state === "running" || j.state === "queued") {
    const bar = document.createElement("progress"); bar.max = 1; bar.value = j.progress.fraction || 0; pr.appendChild(bar);
    pr.appendChild(document.createTextNode(` ${j.progress.frames_done}/${j.progress.frames_total ?? "?"} frames`));
  } else pr.textContent = `${j.progress.frames_done} frames`;
  let what = "";
  if (j.state === "done") {
    const r = j.result;
    const why = r.end_reason ? `viewer ${r.end_reason === "stopped" ? "stopped" : "lost the camera"}` : (r.stopped ? r.stopped.reason : "");
    what = `${r.viewers} viewer(s), ${r.seconds} s of the ad` + (r.complete ? "" : ` — partial: ${why}`) +
      (r.notes && r.notes.length ? ` (${r.notes.join("; ")})` : "");
  } else if (j.state === "failed") what = j.error.message;
  else if (j.state === "live") what = `watching now: ${j.progress.frames_done} frames, up to ${num(j.progress.seconds_done)} s of the ad`;
  tr.append(td(j.source === "live" ? `live session ${j.id}` : j.file_name), st, pr, td(what));
  return tr;
}

let jobTimer = null;
async function refreshJobs(id) {
  if (jobTimer) { clearTimeout(jobTimer); jobTimer = null; }
  if (!$("job-rows")) return;
  const { jobs, counts } = await api("GET", `/v1/ads/${id}/videos`);
  if (!$("job-rows")) return; // the page changed meanwhile
  const before = $("job-rows").querySelectorAll(".job-row.done").length;
  $("job-rows").replaceChildren(...jobs.map(jobRow));
  if (counts.done !== before || counts.live > 0) await showTimeline(id);
  if (counts.queued + counts.running + counts.live > 0) jobTimer = setTimeout(() => refreshJobs(id).catch((e) => { $("error").textContent = e.message; }), 1000);
}

function sendVideo(id, file, start, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData(); form.append("file", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/v1/ads/${id}/videos?ad_start_s=${encodeURIComponent(start || 0)}`);
    xhr.setRequestHeader("Authorization", "Bearer " + key());
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onload = () => {
      let body; try { body = JSON.parse(xhr.responseText); } catch { body = { error: `HTTP ${xhr.status}` }; }
      xhr.status === 202 ? resolve(body) : reject(new Error(`${file.name}: ${body.error || "HTTP " + xhr.status}`));
    };
    xhr.onerror = () => reject(new Error("network error during upload"));
    xhr.send(form);
  });
}

async function uploadVideos(id) {
  const files = Array.from($("videos").files), bar = $("video-progress");
  bar.hidden = false; bar.max = files.length; bar.value = 0; $("upload-videos").disabled = true;
  const errors = [];
  for (let i = 0; i < files.length; i++) {
    try { await sendVideo(id, files[i], $("ad-start").value, (p) => { bar.value = i + p; }); }
    catch (e) { errors.push(e.message); }
    bar.value = i + 1;
  }
  $("error").textContent = errors.join("\n");
  $("upload-videos").disabled = false;
  await refreshJobs(id);
}

async function showTimeline(id) {
  if (!$("timeline-chart")) return;
  const res = await api("GET", `/v1/ads/${id}/timeline`);
  const t = res.timeline;
  $("tl-method").textContent = res.method;
  $("tl-summary").textContent = `${t.videos} reaction video(s), ${t.viewers} viewer(s)` +
    (t.mean_valence === null ? "." : `; mean valence over the seconds ${num(t.mean_valence)}.`) + (t.notes.length ? " " + t.notes.join(" ") : "");
  if (t.videos === 0) { $("timeline-chart").replaceChildren(); $("tl-moments").textContent = "No reaction video analysed yet."; return; }
  timelineChart($("timeline-chart"), t);
  $("tl-moments").textContent = t.moments.length === 0 ? "No peak or dip stands out." : "Moments: " + t.moments.map((m) =>
    `${m.kind} at ${m.second} s (valence ${num(m.valence.value)}, ${m.difference_from_mean >= 0 ? "+" : ""}${num(m.difference_from_mean)} vs the mean` +
    (m.stands_out ? ", its interval clear of the mean)" : m.valence.ci_low === null ? `, ${m.valence.interval_note})` : ")")).join("; ");
  if ($("cmp-ad").value) await showCompare(id);
}

async function showCompare(id) {
  const b = $("cmp-ad").value;
  $("cmp-csv").disabled = !b;
  if (!b) { $("compare-chart").replaceChildren(); $("cmp-summary").textContent = ""; return; }
  try {
    const cmp = await api("GET", `/v1/ads/${id}/timeline/compare?with=${b}`);
    compareChart($("compare-chart"), cmp);
    const s = cmp.summary;
    $("cmp-summary").textContent = `${cmp.b.name} against ${cmp.a.name}: ${s.seconds_with_both} of ${s.seconds} seconds have viewers of both; ` +
      `significantly higher valence at ${s.b_higher_valence_significant.length ? s.b_higher_valence_significant.join(", ") + " s" : "no second"}, ` +
      `lower at ${s.b_lower_valence_significant.length ? s.b_lower_valence_significant.join(", ") + " s" : "no second"} (10 viewers per second are needed for a verdict).`;
  } catch (e) { $("error").textContent = e.message; }
}

async function showResults(id) {
  const res = await api("GET", `/v1/ads/${id}/results`);
  const r = res.results;
  $("ad-summary").textContent = `${res.ad.photos} photos, ${r.faces} faces counted, ${r.uncertain_faces} uncertain (counted apart), ` +
    `${res.ad.failed_photos} failed uploads. Valence: ` + (r.valence ? est(r.valence) : "–");
  if (r.faces > 0) {
    barChart($("mean-chart"), res.classes, res.classes.map((c) => r.mean_probabilities[c]), { title: "mean probability" });
    barChart($("share-chart"), res.classes, res.classes.map((c) => r.top_share[c].value),
      { title: "share of faces", intervals: res.classes.map((c) => r.top_share[c].ci_low === null ? null : [r.top_share[c].ci_low, r.top_share[c].ci_high]) });
  }
}

// Sends one batch with XHR so upload progress can be shown.
function sendBatch(id, files, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    files.forEach((f) => form.append("files", f, f.name));
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/v1/ads/${id}/photos`);
    xhr.setRequestHeader("Authorization", "Bearer " + key());
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onload = () => {
      let body; try { body = JSON.parse(xhr.responseText); } catch { body = { error: `HTTP ${xhr.status}` }; }
      xhr.status === 200 ? resolve(body) : reject(new Error(body.error || `HTTP ${xhr.status}`));
    };
    xhr.onerror = () => reject(new Error("network error during upload"));
    xhr.send(form);
  });
}

async function upload(id) {
  const files = Array.from($("photos").files);
  const bar = $("progress"), items = $("upload-items");
  bar.hidden = false; bar.max = files.length; bar.value = 0; $("upload").disabled = true; items.replaceChildren();
  let ok = 0, failed = 0, faces = 0, dup = 0;
  for (let i = 0; i < files.length; i += BATCH) {
    const batch = files.slice(i, i + BATCH);
    try {
      const res = await sendBatch(id, batch, (p) => { bar.value = i + p * batch.length * 0.9; });
      for (const it of res.items) {
        const tr = document.createElement("tr"); tr.className = "upload-item " + it.status;
        const status = document.createElement("span"); status.className = "pill " + (it.status === "ok" ? "good" : "bad"); status.textContent = it.status;
        const s = document.createElement("td"); s.appendChild(status);
        const what = it.status === "ok" ? `${it.faces.length} face(s)`
          : it.status === "duplicate" ? `same file as photo ${it.duplicate_of}; not counted again` : it.error.message;
        tr.append(td(it.name), s, td(what));
        items.appendChild(tr);
        if (it.status === "ok") { ok++; faces += it.faces.length; } else if (it.status === "duplicate") dup++; else failed++;
      }
    } catch (e) {
      failed += batch.length;
      $("error").textContent = e.message;
    }
    bar.value = Math.min(files.length, i + batch.length);
    $("upload-status").textContent = `${Math.min(files.length, i + batch.length)} of ${files.length} sent: ${ok} analysed, ${failed} failed, ${dup} duplicates, ${faces} faces`;
  }
  $("upload-status").textContent = `Done: ${ok} analysed, ${failed} failed, ${dup} duplicates, ${faces} faces.`;
  $("upload").disabled = false;
  await showResults(id);
}

async function showKeys() {
  view("t-keys");
  const { workspace, current_key_id, keys } = await api("GET", "/v1/keys");
  $("k-workspace").textContent = workspace;
  for (const k of keys) {
    const tr = document.createElement("tr"); tr.className = "key-row";
    const act = document.createElement("td");
    if (!k.revoked) {
      const b = document.createElement("button"); b.className = "secondary"; b.textContent = "Revoke";
      b.addEventListener("click", async () => {
        if (!confirm(`Revoke key ${k.name} (${k.prefix}…)? Clients using it stop working at once.`)) return;
        try { await api("DELETE", `/v1/keys/${k.id}`); await showKeys(); } catch (e) { $("error").textContent = e.message; }
      });
      act.appendChild(b);
    }
    tr.append(td(k.id), td(k.name + (k.id === current_key_id ? " (this key)" : "")), td(k.role), td(k.prefix + "…"),
      td(k.revoked ? "revoked" : "live"), act);
    $("key-rows").appendChild(tr);
  }
  $("k-create").addEventListener("click", async () => {
    try {
      const k = await api("POST", "/v1/keys", { name: $("k-name").value, role: $("k-role").value });
      await showKeys();
      $("k-new-key").textContent = k.key; $("k-new").hidden = false;
    } catch (e) { $("error").textContent = e.message; }
  });
}

async function route() {
  $("error").textContent = "";
  $("keystatus").textContent = key() ? "key set" : "no key: campaign data needs an API key";
  const h = location.hash || "#/";
  try {
    let m;
    if ((m = h.match(/^#\/campaign\/(\d+)/))) await showCampaign(m[1]);
    else if ((m = h.match(/^#\/ad\/(\d+)/))) await showAd(m[1]);
    else if (h.startsWith("#/keys")) await showKeys();
    else await showCampaigns();
  } catch (e) { $("error").textContent = e.message; }
}
window.addEventListener("hashchange", route);
route();
