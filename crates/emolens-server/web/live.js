// The live viewing page (/live#t=TOKEN): the viewer reads what is measured, consents, then
// watches the ad while this page sends camera frames, tagged with the ad's playback time, to
// the server (POST /v1/live/sessions/{id}/frames). No camera before consent; no frame while the
// ad is paused, seeking or over; a lost camera is reported and can be turned on again; at most
// two frames are in flight (later ones are dropped and counted, never queued without bound).
// The token stays in the URL fragment, which the browser never sends to a server.
// `window.emolensLive` exposes the state for the browser test (tests/browser/live.test.js).
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const MAX_IN_FLIGHT = 2;
  const state = {
    info: null, cameraStarted: false, session: null, sessionId: null, reference: null,
    seq: 0, sent: 0, withFace: 0, dropped: 0, pauses: 0, seeks: 0, cameraLosses: 0,
    inFlight: 0, ended: false, summary: null, errors: [], times: [],
  };
  window.emolensLive = state;
  const token = new URLSearchParams(location.hash.slice(1)).get("t") || "";
  const canvas = document.createElement("canvas");
  let stream = null, timer = null, clockStart = null, cameraOk = false;
  const pending = new Set();

  function fail(msg) { $("error").textContent = msg; state.errors.push(msg); }
  function status(msg) { $("status").textContent = msg; }
  async function call(method, path, body, headers) {
    const r = await fetch(path, { method, body, headers: headers || {} });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) throw Object.assign(new Error((data.error && data.error.message) || r.statusText), { status: r.status });
    return data;
  }
  const sessionHeaders = () => ({ "X-Emolens-Session": state.session });

  async function load() {
    if (!token) { fail("This page needs the viewing link you were sent (it ends in #t=…)."); return; }
    try {
      state.info = await call("GET", `/v1/live/${encodeURIComponent(token)}`);
    } catch (e) { fail(e.message); return; }
    const i = state.info;
    $("title").textContent = `Watch “${i.ad}”`;
    $("study").textContent = `Study: ${i.campaign}` + (i.duration_s ? ` · the ad lasts ${Math.round(i.duration_s)} s` : "");
    $("notice").textContent = i.notice;
    $("images").textContent = i.keeps_images
      ? `This study KEEPS the camera pictures (about ${i.fps} a second) with the numbers.`
      : `This study does not keep the camera pictures: each one (about ${i.fps} a second) is deleted once analysed.`;
    $("agree").disabled = false;
  }

  $("agree").addEventListener("change", () => { $("start").disabled = !$("agree").checked || state.cameraStarted; });
  $("decline").addEventListener("click", () => {
    $("agree").checked = false; $("agree").disabled = true; $("start").disabled = true; $("decline").disabled = true;
    $("error").textContent = "";
    $("notice").textContent = "Nothing was recorded and no camera was used. You can close this page.";
  });

  async function startCamera() {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
    state.cameraStarted = true; cameraOk = true;
    const cam = $("camera");
    cam.srcObject = stream;
    await cam.play();
    for (const track of stream.getVideoTracks()) {
      track.addEventListener("ended", () => {
        if (state.ended) return;
        cameraOk = false; state.cameraLosses += 1;
        status("The camera was lost: no pictures are taken. Turn it on again to go on.");
        $("retry").hidden = false;
      });
    }
    $("retry").hidden = true;
  }

  $("start").addEventListener("click", async () => {
    if (!$("agree").checked) return;
    $("start").disabled = true; $("agree").disabled = true; $("decline").disabled = true;
    try {
      const s = await call("POST", `/v1/live/${encodeURIComponent(token)}/sessions`,
        JSON.stringify({ consent: true }), { "Content-Type": "application/json" });
      state.session = s.session; state.sessionId = s.session_id; state.reference = s.reference;
    } catch (e) { fail(e.message); return; }
    try {
      await startCamera();
    } catch (e) {
      fail(`The camera could not be started (${e.name || e.message}). Nothing was sent; you can close this page.`);
      await finish("camera_lost");
      return;
    }
    $("viewing").hidden = false;
    const ad = $("ad");
    if (state.info.creative) {
      ad.src = `/v1/live/${encodeURIComponent(token)}/creative`;
      ad.addEventListener("pause", () => { if (!ad.ended && !state.ended) { state.pauses += 1; status("Paused: no pictures are taken while the ad is paused."); } });
      ad.addEventListener("play", () => { if (cameraOk) status("Watching: pictures are being taken."); });
      ad.addEventListener("seeking", () => { state.seeks += 1; });
      ad.addEventListener("ended", () => finish("ended"));
      ad.addEventListener("error", () => fail("The ad's video could not be played in this browser."));
      await ad.play().catch((e) => fail(`Press play to start the ad (${e.message}).`));
    } else {
      ad.hidden = true; $("clock").hidden = false; clockStart = performance.now();
    }
    status("Watching: pictures are being taken.");
    timer = setInterval(tick, 1000 / state.info.fps);
  });

  $("retry").addEventListener("click", async () => {
    try { await startCamera(); status("Watching: pictures are being taken."); }
    catch (e) { fail(`The camera could not be started again (${e.name || e.message}).`); }
  });
  $("stop").addEventListener("click", () => finish("stopped"));

  // The ad's time now, or null when no picture should be taken.
  function adTime() {
    if (!state.info.creative) {
      const t = (performance.now() - clockStart) / 1000;
      if (state.info.duration_s && t > state.info.duration_s) { finish("ended"); return null; }
      return t;
    }
    const ad = $("ad");
    if (ad.paused || ad.seeking || ad.ended || ad.readyState < 2) return null;
    return ad.currentTime;
  }

  function tick() {
    if (state.ended || !cameraOk) return;
    const t = adTime();
    if (t === null) return;
    if (state.inFlight >= MAX_IN_FLIGHT) { state.dropped += 1; return; }
    const cam = $("camera");
    if (!cam.videoWidth) return;
    const scale = Math.min(1, 640 / cam.videoWidth);
    canvas.width = Math.round(cam.videoWidth * scale); canvas.height = Math.round(cam.videoHeight * scale);
    canvas.getContext("2d").drawImage(cam, 0, 0, canvas.width, canvas.height);
    const seq = state.seq++;
    state.inFlight += 1;
    const p = new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.85))
      .then((blob) => call("POST", `/v1/live/sessions/${state.sessionId}/frames?seq=${seq}&t=${t.toFixed(3)}`,
        blob, { ...sessionHeaders(), "Content-Type": "image/jpeg" }))
      .then((r) => {
        state.sent += 1; state.times.push(t);
        if (r.face) state.withFace += 1;
        $("sent").textContent = state.sent; $("withface").textContent = state.withFace;
      })
      .catch((e) => {
        if (e.status === 429) { state.dropped += 1; return; }
        if (e.status === 404) { fail(e.message); finish("stopped"); return; }
        state.dropped += 1; state.errors.push(e.message);
      })
      .finally(() => { state.inFlight -= 1; pending.delete(p); });
    pending.add(p);
  }

  async function finish(reason) {
    if (state.ended) return;
    state.ended = true;
    clearInterval(timer);
    if (stream) for (const track of stream.getTracks()) track.stop();
    cameraOk = false;
    $("ad").pause();
    await Promise.allSettled([...pending]);
    if (state.session) {
      try {
        const r = await call("POST", `/v1/live/sessions/${state.sessionId}/end`, JSON.stringify({
          reason, pauses: state.pauses, seeks: state.seeks, camera_losses: state.cameraLosses, dropped_frames: state.dropped,
        }), { ...sessionHeaders(), "Content-Type": "application/json" });
        state.summary = r.result;
      } catch (e) { state.errors.push(e.message); }
      $("viewing").hidden = true; $("done").hidden = false;
      $("reference").textContent = state.reference;
      $("done-text").textContent = reason === "ended"
        ? "The ad is over and the camera is off."
        : "The session is stopped and the camera is off.";
    }
    status("Camera off.");
  }

  $("erase").addEventListener("click", async () => {
    try {
      await call("DELETE", `/v1/live/sessions/${state.sessionId}`, undefined, sessionHeaders());
      $("erased").textContent = "Everything from this viewing was deleted.";
      $("erase").disabled = true; state.erased = true;
    } catch (e) { fail(e.message); }
  });

  load();
})();
