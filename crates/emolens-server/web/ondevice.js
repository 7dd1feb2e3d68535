// The on-device page (/ondevice): after consent, webcam frames are analysed in this browser
// only. Faces are found by @vladmandic/face-api's tiny face detector, cropped the way emolens
// crops them (square around the box, margin per side), preprocessed as the model file says
// (/ondevice/model.json: colour mode, luma weights, size, scale and offset, gated flip TTA) and
// classified by emolens' own model exported to ONNX (/ondevice/model.onnx) in onnxruntime-web.
// Nothing is sent anywhere: the page makes GET requests for its code and model only.
// `window.emolensOnDevice` exposes the state for the browser test (tests/browser/ondevice.test.js).
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const FPS = 4;                // frames analysed per second
  const state = {
    cameraStarted: false,
    ready: false,
    frames: 0,                  // frames analysed
    results: [],                // {t, faces: [{box, probabilities, top_emotion}]}
    lastCrop: null,             // the last face crop fed to the model: {width, height, pixels}
    lastFrame: null,            // {width, height} of the last analysed frame
    meta: null,
    timings: [],                // per analysed frame: {detect, classify, total} in ms
    backend: null,              // the face detector's TensorFlow.js backend
  };
  window.emolensOnDevice = state;
  let session = null, stream = null, timer = null, startedAt = 0;
  const frameCanvas = document.createElement("canvas");
  const cropCanvas = document.createElement("canvas");

  function fail(msg) { $("error").textContent = msg; $("status").textContent = "Stopped."; }

  $("agree").addEventListener("change", () => { $("start").disabled = !$("agree").checked || state.cameraStarted; });

  // The model and the detector load before the camera asks for permission.
  async function load() {
    if (state.ready) return;
    $("status").textContent = "Loading the model on this device…";
    const meta = await (await fetch("/ondevice/model.json")).json();
    if (meta.error) throw new Error(meta.error);
    state.meta = meta;
    ort.env.wasm.wasmPaths = "/ondevice/vendor/";
    ort.env.wasm.numThreads = 1;  // no SharedArrayBuffer needed (no cross-origin isolation)
    session = await ort.InferenceSession.create("/ondevice/model.onnx", { executionProviders: ["wasm"] });
    // WebGL where the browser has it; the CPU backend otherwise (e.g. a browser without a GPU).
    if (!(await faceapi.tf.setBackend("webgl").catch(() => false))) await faceapi.tf.setBackend("cpu");
    await faceapi.tf.ready();
    state.backend = faceapi.tf.getBackend();
    await faceapi.nets.tinyFaceDetector.loadFromUri("/ondevice/vendor");
    state.ready = true;
  }

  // A face crop (square box in frame pixels) to the model's input: grayscale or RGB, resized,
  // value = pixel * scale + offset (model.json), NCHW.
  function toInput(source, box, mirror) {
    const p = state.meta.preprocessing, w = p.resize.width, h = p.resize.height;
    cropCanvas.width = w; cropCanvas.height = h;
    const ctx = cropCanvas.getContext("2d", { willReadFrequently: true });
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = "high";
    ctx.save();
    if (mirror) { ctx.translate(w, 0); ctx.scale(-1, 1); }
    ctx.fillStyle = "black";
    ctx.fillRect(0, 0, w, h);
    ctx.drawImage(source, box.x, box.y, box.width, box.height, 0, 0, w, h);
    ctx.restore();
    const rgba = ctx.getImageData(0, 0, w, h).data;
    const gray = p.colour_mode === "grayscale";
    const channels = gray ? 1 : 3;
    const input = new Float32Array(channels * w * h);
    const pixels = new Uint8Array(channels * w * h);
    const [wr, wg, wb] = p.luma_weights, div = p.luma_divisor;
    for (let i = 0; i < w * h; i++) {
      const r = rgba[4 * i], g = rgba[4 * i + 1], b = rgba[4 * i + 2];
      if (gray) {
        const l = Math.floor((wr * r + wg * g + wb * b) / div);
        pixels[i] = l;
        input[i] = l * p.scale[0] + p.offset[0];
      } else {
        [r, g, b].forEach((v, c) => { pixels[c * w * h + i] = v; input[c * w * h + i] = v * p.scale[c] + p.offset[c]; });
      }
    }
    return { input, pixels, dims: [1, channels, h, w] };
  }

  async function classify(input, dims) {
    const out = await session.run({ [session.inputNames[0]]: new ort.Tensor("float32", input, dims) });
    return Array.from(out[session.outputNames[0]].data);
  }

  // The model's gated flip TTA, as emolens applies it: a face whose top probability is below
  // flip_tta_below (every face when null) also runs mirrored, and the answer is the mean.
  async function classifyFace(source, box) {
    const p = state.meta.preprocessing;
    const a = toInput(source, box, false);
    let probs = await classify(a.input, a.dims);
    if (p.flip_tta && (p.flip_tta_below === null || Math.max(...probs) < p.flip_tta_below)) {
      const m = toInput(source, box, true);
      const q = await classify(m.input, m.dims);
      probs = probs.map((v, i) => (v + q[i]) / 2);
    }
    const classes = state.meta.classes;
    state.lastCrop = { width: a.dims[3], height: a.dims[2], pixels: Array.from(a.pixels), box,
      probabilities: Object.fromEntries(classes.map((c, i) => [c, probs[i]])) };
    return probs;
  }

  // emolens_faces::square_crop: side = longer side * (1 + 2 * margin), centred, moved inside.
  function squareCrop(b, margin, w, h) {
    const side = Math.max(b.width, b.height) * (1 + 2 * margin);
    const place = (c, limit) => { const s = c - side / 2; return side >= limit ? s : Math.min(Math.max(s, 0), limit - side); };
    return { x: place(b.x + b.width / 2, w), y: place(b.y + b.height / 2, h), width: side, height: side };
  }

  async function step() {
    const video = $("video");
    if (!stream || video.readyState < 2 || video.videoWidth === 0) return;
    const t0 = performance.now();
    const w = video.videoWidth, h = video.videoHeight;
    frameCanvas.width = w; frameCanvas.height = h;
    frameCanvas.getContext("2d", { willReadFrequently: true }).drawImage(video, 0, 0, w, h);
    // Detector input 224 px: about half the detection time of 320 (docs/ondevice.md); a
    // viewer in front of a webcam fills a large part of the frame.
    const detections = await faceapi.detectAllFaces(frameCanvas,
      new faceapi.TinyFaceDetectorOptions({ inputSize: 224, scoreThreshold: 0.5 }));
    const t1 = performance.now();
    const classes = state.meta.classes, faces = [];
    for (const d of detections) {
      const b = d.box;
      const box = { x: b.x, y: b.y, width: b.width, height: b.height };
      const crop = squareCrop(box, state.meta.margin, w, h);
      const probs = await classifyFace(frameCanvas, crop);
      let top = 0;
      probs.forEach((v, i) => { if (v > probs[top]) top = i; });
      faces.push({ box, crop, detector_score: d.score, top_emotion: classes[top],
        probabilities: Object.fromEntries(classes.map((c, i) => [c, probs[i]])) });
    }
    const t = (performance.now() - startedAt) / 1000;
    state.results.push({ t, faces });
    state.frames += 1;
    state.lastFrame = { width: w, height: h };
    const t2 = performance.now();
    state.timings.push({ detect: t1 - t0, classify: t2 - t1, total: t2 - t0 });
    show(faces, w, h);
  }

  function show(faces, w, h) {
    drawBoxes($("boxes"), w, h, faces, 0, () => {});
    $("facecount").textContent = faces.length === 1 ? "1 face" : `${faces.length} faces`;
    const classes = state.meta.classes;
    if (faces.length) {
      const f = faces[0];
      $("label").textContent = f.top_emotion;
      $("which").textContent = faces.length > 1 ? "(face 1)" : "";
      barChart($("chart"), classes, classes.map((c) => f.probabilities[c]), { title: "class probabilities" });
    } else {
      $("label").textContent = "no face";
    }
    const ms = state.timings.slice(-20), avg = (k) => ms.reduce((a, b) => a + b[k], 0) / ms.length;
    $("speed").textContent = `${state.frames} frames analysed on this device; ${avg("total").toFixed(0)} ms per frame ` +
      `(face detection ${avg("detect").toFixed(0)} ms on ${state.backend}, emotion ${avg("classify").toFixed(0)} ms; ` +
      `${(1000 / avg("total")).toFixed(1)} frames/s possible)`;
    // Per second: the mean probabilities of the first face over the frames of that second.
    const seconds = new Map();
    for (const r of state.results) {
      if (!r.faces.length) continue;
      const s = Math.floor(r.t), acc = seconds.get(s) || classes.map(() => 0).concat([0]);
      classes.forEach((c, i) => { acc[i] += r.faces[0].probabilities[c]; });
      acc[classes.length] += 1;
      seconds.set(s, acc);
    }
    const rows = [...seconds.entries()].slice(-8).map(([s, acc]) => {
      const n = acc[classes.length];
      let top = 0;
      classes.forEach((_, i) => { if (acc[i] > acc[top]) top = i; });
      return `${s} s: ${classes[top]} ${(acc[top] / n * 100).toFixed(0)}% (${n} frames)`;
    });
    $("timeline").textContent = rows.join("\n");
  }

  async function start() {
    if (!$("agree").checked) { fail("Agree first: no consent, no camera."); return; }
    $("error").textContent = "";
    $("start").disabled = true;
    try {
      await load();
      $("status").textContent = "Asking for the camera…";
      stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
      state.cameraStarted = true;
      const video = $("video");
      video.srcObject = stream;
      await video.play();
      stream.getVideoTracks().forEach((tr) => tr.addEventListener("ended", () => { stop(); fail("The camera was lost."); }));
      startedAt = performance.now();
      $("stop").disabled = false;
      $("status").textContent = "Analysing on this device.";
      let busy = false;
      timer = setInterval(async () => {
        if (busy) return;  // a slow device skips frames instead of queueing them
        busy = true;
        try { await step(); } catch (e) { fail("Analysis failed: " + e.message); stop(); } finally { busy = false; }
      }, 1000 / FPS);
    } catch (e) {
      $("start").disabled = !$("agree").checked;
      fail(e.name === "NotAllowedError" ? "The camera was not allowed: nothing is analysed." : "Could not start: " + e.message);
    }
  }

  function stop() {
    if (timer) clearInterval(timer);
    timer = null;
    if (stream) stream.getTracks().forEach((tr) => tr.stop());
    stream = null;
    $("stop").disabled = true;
    $("start").disabled = !$("agree").checked;
    $("status").textContent = "Camera off.";
  }

  $("start").addEventListener("click", start);
  $("stop").addEventListener("click", stop);
  window.addEventListener("pagehide", stop);
  // For the test: the last analysed frame as PNG (read by the test in the page; never sent).
  state.framePng = () => frameCanvas.toDataURL("image/png");
  // For the test: classify a crop given as 0..255 pixels in the model's layout.
  state.classifyPixels = async (pixels) => {
    await load();
    const p = state.meta.preprocessing, input = Float32Array.from(pixels, (v, i) => {
      const c = Math.floor(i / (p.resize.width * p.resize.height));
      return v * p.scale[c] + p.offset[c];
    });
    const channels = p.colour_mode === "grayscale" ? 1 : 3;
    return classify(input, [1, channels, p.resize.height, p.resize.width]);
  };
})();
