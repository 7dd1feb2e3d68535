// The on-device page (/ondevice) in headless Debian chromium with a fake camera (a .y4m file of
// a FER2013 face): no camera before consent; once started, the page analyses frames in the
// browser and makes no request but GETs of its own page, code and model (no image, no result
// leaves it); its results match the server's analysis of the same pixels:
//   - the same face crop: the browser's ONNX model (onnxruntime-web, float) against the server's
//     plan (/api/predict), max |p_browser - p_server| <= CROP_TOLERANCE;
//   - the same frame, each side finding the face with its own detector (face-api's tiny face
//     detector against SeetaFace, so the crops differ): same top emotion, max |dp| <=
//     FRAME_TOLERANCE, boxes overlapping (IoU >= 0.4).
// Prints the figures as JSON (frames/s in the browser among them). Run by
// crates/emolens-server/tests/server/ondevice.rs, which starts the server and passes
// EMOLENS_URL, EMOLENS_CAMERA (the .y4m file) and EMOLENS_CHROMIUM.
"use strict";
const { chromium, request } = require("playwright-core");

const CROP_TOLERANCE = 0.02;
const FRAME_TOLERANCE = 0.15;
const base = process.env.EMOLENS_URL;
const camera = process.env.EMOLENS_CAMERA;
if (!base || !camera) {
  console.error("set EMOLENS_URL and EMOLENS_CAMERA");
  process.exit(2);
}
function check(cond, msg) { if (!cond) throw new Error("check failed: " + msg); }
const maxDiff = (a, b, classes) => Math.max(...classes.map((c) => Math.abs(a[c] - b[c])));
function iou(a, b) {
  const x1 = Math.max(a.x, b.x), y1 = Math.max(a.y, b.y);
  const x2 = Math.min(a.x + a.width, b.x + b.width), y2 = Math.min(a.y + a.height, b.y + b.height);
  const inter = Math.max(0, x2 - x1) * Math.max(0, y2 - y1);
  return inter / (a.width * a.height + b.width * b.height - inter);
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.EMOLENS_CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
      `--use-file-for-fake-video-capture=${camera}`],
  });
  const page = await browser.newPage();
  const errors = [], requests = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("request", (r) => requests.push({ method: r.method(), url: r.url(), body: r.postData() }));
  page.setDefaultTimeout(120000);
  // The test's own calls to the server (to compare) go through a separate client, never the page.
  const api = await request.newContext({ baseURL: base });
  const figures = {};
  try {
    await page.goto(base + "/ondevice");
    check((await page.textContent("#mode")).includes("No image leaves this device"), "the page says its mode");
    check(await page.isDisabled("#start"), "no start before consent");
    await page.waitForTimeout(500);
    check(!(await page.evaluate(() => window.emolensOnDevice.cameraStarted)), "no camera before consent");
    await page.check("#agree");
    await page.click("#start");
    await page.waitForFunction(() => window.emolensOnDevice.frames >= 6 &&
      window.emolensOnDevice.results.slice(-1)[0].faces.length > 0);
    await page.click("#stop");
    const s = await page.evaluate(() => {
      const st = window.emolensOnDevice;
      // The last step: its frame is still on the page's canvas (the camera is stopped).
      const last = st.results.slice(-1)[0];
      // The last analysed frame and face crop as PNG: read here by the test, never sent by the page.
      const toPng = (w, h, gray) => {
        const c = document.createElement("canvas"); c.width = w; c.height = h;
        const ctx = c.getContext("2d"), img = ctx.createImageData(w, h);
        gray.forEach((v, i) => { img.data.set([v, v, v, 255], 4 * i); });
        ctx.putImageData(img, 0, 0);
        return c.toDataURL("image/png");
      };
      return {
        classes: st.meta.classes, backend: st.backend, frames: st.frames, timings: st.timings,
        frameFaces: last.faces, framePng: st.framePng(),
        crop: st.lastCrop, cropPng: toPng(st.lastCrop.width, st.lastCrop.height, st.lastCrop.pixels),
        label: document.getElementById("label").textContent,
      };
    });
    check(s.label.length > 0, "a label is shown");
    const classes = s.classes;

    // 1. Nothing but GETs of the page's own files: no image, no result left the browser.
    const allowed = /^\/(ondevice(\/(model\.onnx|model\.json|vendor\/[\w.-]+))?|static\/[\w.-]+\.(js|css)|favicon\.ico)$/;
    for (const r of requests) {
      const u = new URL(r.url);
      check(u.origin === new URL(base).origin, `request to another origin: ${r.url}`);
      check(r.method === "GET" && !r.body, `the page sent a ${r.method} with a body to ${u.pathname}`);
      check(allowed.test(u.pathname), `unexpected request ${u.pathname}`);
    }
    figures.requests = requests.length;

    // 2. The same crop: browser (ONNX in onnxruntime-web) against the server's own model.
    const png = (dataUrl) => Buffer.from(dataUrl.split(",")[1], "base64");
    const pred = await (await api.post("/api/predict", {
      multipart: { file: { name: "crop.png", mimeType: "image/png", buffer: png(s.cropPng) } },
    })).json();
    check(pred.class_probabilities, "the server classified the crop: " + JSON.stringify(pred));
    figures.crop_max_abs_diff = maxDiff(s.crop.probabilities, pred.class_probabilities, classes);
    check(figures.crop_max_abs_diff <= CROP_TOLERANCE,
      `same crop: browser and server differ by ${figures.crop_max_abs_diff} > ${CROP_TOLERANCE}`);

    // 3. The same frame, each with its own face detector.
    const analysed = await (await api.post("/v1/analyze", {
      multipart: { file: { name: "frame.png", mimeType: "image/png", buffer: png(s.framePng) } },
    })).json();
    const serverFaces = analysed.items[0].faces || [];
    check(serverFaces.length === 1 && s.frameFaces.length === 1,
      `one face on each side (server ${serverFaces.length}, browser ${s.frameFaces.length})`);
    const sf = serverFaces[0], bf = s.frameFaces[0];
    figures.frame_max_abs_diff = maxDiff(bf.probabilities, sf.probabilities, classes);
    figures.frame_box_iou = iou(bf.box, sf.box);
    figures.top = { browser: bf.top_emotion, server: sf.top_emotion };
    check(bf.top_emotion === sf.top_emotion, `top emotion: browser ${bf.top_emotion}, server ${sf.top_emotion}`);
    check(figures.frame_max_abs_diff <= FRAME_TOLERANCE,
      `same frame: browser and server differ by ${figures.frame_max_abs_diff} > ${FRAME_TOLERANCE}`);
    check(figures.frame_box_iou >= 0.4, `face boxes overlap (IoU ${figures.frame_box_iou})`);

    const mean = (k) => s.timings.reduce((a, t) => a + t[k], 0) / s.timings.length;
    figures.browser = { backend: s.backend, frames: s.frames, detect_ms: mean("detect"),
      classify_ms: mean("classify"), frames_per_s: 1000 / mean("total") };
    check(errors.length === 0, "page errors: " + errors.join("; "));
    console.log(JSON.stringify({ ok: true, tolerances: { crop: CROP_TOLERANCE, frame: FRAME_TOLERANCE }, ...figures }));
  } catch (e) {
    await page.screenshot({ path: "/tmp/emolens-ondevice-failure.png" }).catch(() => {});
    console.log(JSON.stringify({ ok: false, error: e.message, errors, requests: requests.slice(0, 30), ...figures }));
    process.exitCode = 1;
  } finally {
    await api.dispose();
    await browser.close();
  }
})();
