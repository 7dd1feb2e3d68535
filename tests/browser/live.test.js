// The live viewing page (/live#t=TOKEN) in headless Debian chromium with a fake camera (a .y4m
// file of a FER2013 face) and the ad's creative (a WebM made by the test): the page shows what
// is measured and asks for consent; before consent no camera and no session; after it, the ad
// plays while camera frames go to the server tagged with the ad's playback time; a pause stops
// the frames; the end of the ad ends the session; and the ad's timeline (read by the test with
// an analyst key, never by the page) has the viewer, second by second.
// Run by crates/emolens-server/tests/server/live.rs, which starts the server, makes the ad and
// the link, and passes EMOLENS_URL, EMOLENS_LINK (the link's path), EMOLENS_KEY, EMOLENS_AD,
// EMOLENS_CAMERA and EMOLENS_CHROMIUM. Prints its figures as JSON.
"use strict";
const { chromium, request } = require("playwright-core");

const base = process.env.EMOLENS_URL, link = process.env.EMOLENS_LINK;
const key = process.env.EMOLENS_KEY, ad = process.env.EMOLENS_AD, camera = process.env.EMOLENS_CAMERA;
if (!base || !link || !key || !ad || !camera) {
  console.error("set EMOLENS_URL, EMOLENS_LINK, EMOLENS_KEY, EMOLENS_AD and EMOLENS_CAMERA");
  process.exit(2);
}
function check(cond, msg) { if (!cond) throw new Error("check failed: " + msg); }

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.EMOLENS_CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--autoplay-policy=no-user-gesture-required",
      "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
      `--use-file-for-fake-video-capture=${camera}`],
  });
  const page = await browser.newPage();
  const errors = [], requests = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("request", (r) => requests.push({ method: r.method(), url: r.url() }));
  page.setDefaultTimeout(90000);
  const api = await request.newContext({ baseURL: base, extraHTTPHeaders: { Authorization: `Bearer ${key}` } });
  const figures = {};
  const live = () => page.evaluate(() => {
    const s = window.emolensLive;
    return { sent: s.sent, withFace: s.withFace, dropped: s.dropped, pauses: s.pauses, seeks: s.seeks,
      cameraStarted: s.cameraStarted, ended: s.ended, summary: s.summary, errors: s.errors, times: s.times,
      sessionId: s.sessionId, reference: s.reference };
  });
  try {
    await page.goto(base + link);
    await page.waitForFunction(() => window.emolensLive.info !== null);
    check((await page.textContent("#notice")).includes("Nothing starts before you agree"), "the notice is shown");
    check((await page.textContent("#images")).includes("does not keep"), "the page says images are not kept");
    check(await page.isDisabled("#start"), "no start before consent");
    await page.waitForTimeout(500);
    let s = await live();
    check(!s.cameraStarted && s.sessionId === null, "no camera and no session before consent");
    check(!requests.some((r) => r.method === "POST"), "nothing sent before consent");

    await page.check("#agree");
    await page.click("#start");
    // Frames flow while the ad plays.
    await page.waitForFunction(() => window.emolensLive.sent >= 3);
    s = await live();
    check(s.cameraStarted, "the camera started after consent");
    check(s.withFace >= 1, `the viewer's face was found (${s.withFace} of ${s.sent} frames)`);
    // A pause: no frame while paused.
    await page.evaluate(() => document.getElementById("ad").pause());
    await page.waitForTimeout(400);
    const before = (await live()).sent;
    await page.waitForTimeout(1500);
    const during = (await live()).sent;
    check(during - before <= 1, `no frames while paused (${during - before} arrived)`);
    check((await page.textContent("#status")).includes("Paused"), "the page says it is paused");
    await page.evaluate(() => document.getElementById("ad").play());
    // The ad plays to its end; the session ends by itself.
    await page.waitForFunction(() => window.emolensLive.ended && window.emolensLive.summary !== null);
    s = await live();
    figures.frames_sent = s.sent; figures.frames_with_face = s.withFace; figures.dropped = s.dropped;
    figures.summary = s.summary;
    check(s.summary.complete === true && s.summary.end_reason === "ended", "the session ended with the ad");
    check(s.summary.pauses >= 1, "the pause is in the summary");
    check(s.summary.frames === s.sent, `the server counted every frame sent (${s.summary.frames} vs ${s.sent})`);
    check(s.times.length > 0 && Math.max(...s.times) <= 4.5 && Math.min(...s.times) >= 0, "frames carry the ad time");
    check(!(await page.isHidden("#done")), "the thank-you card is shown");
    check((await page.textContent("#reference")) === s.reference, "the viewer sees their reference");
    // The page sent its frames as its session; it never called a keyed endpoint.
    check(!requests.some((r) => /\/v1\/(ads|campaigns|jobs)/.test(r.url)), "the page used only the viewing endpoints");

    // The ad's timeline, read by the team: the viewer is there, second by second.
    const t = (await (await api.get(`/v1/ads/${ad}/timeline`)).json()).timeline;
    figures.timeline_viewers = t.viewers;
    figures.seconds_with_viewer = t.seconds.filter((x) => x.viewers > 0).length;
    check(t.viewers === 1, `one viewer in the timeline (${t.viewers})`);
    check(figures.seconds_with_viewer >= 2, `seconds with the viewer: ${figures.seconds_with_viewer}`);
    const jobs = (await (await api.get(`/v1/ads/${ad}/videos`)).json()).jobs;
    check(jobs.length === 1 && jobs[0].source === "live" && jobs[0].state === "done", "the session is a done live job");

    // The viewer erases their viewing from the page.
    await page.click("#erase");
    await page.waitForFunction(() => window.emolensLive.erased === true);
    const after = (await (await api.get(`/v1/ads/${ad}/timeline`)).json()).timeline;
    check(after.viewers === 0, "after the viewer's erasure the timeline is empty");
    check(errors.length === 0, "page errors: " + errors.join("; "));
    console.log(JSON.stringify({ ok: true, ...figures }));
  } catch (e) {
    await page.screenshot({ path: "/tmp/emolens-live-failure.png" }).catch(() => {});
    console.log(JSON.stringify({ ok: false, error: e.message, errors, state: await live().catch(() => null),
      requests: requests.slice(0, 40), ...figures }));
    process.exitCode = 1;
  } finally {
    await api.dispose();
    await browser.close();
  }
})();
