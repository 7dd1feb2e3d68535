// Drives the emolens web app in a real headless browser (Debian's chromium through
// playwright-core): predict on the single-image page, then create a campaign, two ads, upload
// audience photos with progress, see results and the comparison, then manage the workspace's keys.
// Run by crates/emolens-server/tests/browser.rs, which starts the server and passes:
//   EMOLENS_URL, EMOLENS_KEY, EMOLENS_IMAGES (a folder with happy/ and sad/ face crops) and
//   EMOLENS_VIDEO (a reaction video of one viewer, 3 s; the reaction-video step is skipped without).
"use strict";
const { chromium } = require("playwright-core");
const fs = require("fs");
const path = require("path");

const base = process.env.EMOLENS_URL;
const key = process.env.EMOLENS_KEY;
const images = process.env.EMOLENS_IMAGES;
if (!base || !key || !images) {
  console.error("set EMOLENS_URL, EMOLENS_KEY and EMOLENS_IMAGES");
  process.exit(2);
}
const files = (cls) => fs.readdirSync(path.join(images, cls)).sort().map((f) => path.join(images, cls, f));

function check(cond, msg) { if (!cond) throw new Error("check failed: " + msg); }

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.EMOLENS_CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = await browser.newPage();
  const consoleErrors = [];
  page.on("pageerror", (e) => consoleErrors.push(e.message));
  page.setDefaultTimeout(20000);
  const steps = [];
  try {
    // 1. The single-image page: preview, predict, boxes, bar chart.
    await page.goto(base + "/");
    check((await page.textContent("#consent")).includes("consent"), "consent notice on the predict page");
    await page.setInputFiles("#file", files("happy")[0]);
    await page.waitForSelector("#preview:not([hidden])");
    await page.click("#predict");
    await page.waitForSelector("#chart svg rect.bar");
    const bars = await page.$$eval("#chart rect.bar", (rs) => rs.map((r) => Number(r.dataset.value)));
    const classes = await (await page.request.get(base + "/info")).json();
    check(bars.length === classes.model.classes.length, `one bar per class (${bars.length})`);
    check(Math.abs(bars.reduce((a, b) => a + b, 0) - 1) < 0.01, "bars sum to 1");
    check((await page.textContent("#label")).length > 0, "a label is shown");
    check((await page.$$("#boxes rect.face-box")).length >= 1, "the face is boxed");
    steps.push("predict");

    // 2. Campaigns: key, campaign, ad A with happy audience photos.
    await page.goto(base + "/app");
    await page.fill("#apikey", key);
    await page.click("#savekey");
    await page.waitForSelector("#c-name");
    await page.fill("#c-name", "Browser campaign");
    await page.fill("#c-desc", "made by the browser test");
    await page.click("#c-create");
    await page.waitForSelector("#c-title");
    check((await page.textContent("#c-title")) === "Browser campaign", "campaign page");
    steps.push("campaign");

    async function addAdAndUpload(name, photos) {
      await page.fill("#a-name", name);
      await page.click("#a-create");
      await page.waitForSelector("#ad-title");
      const notice = await page.textContent("#consent");
      check(notice.includes("consent") && notice.includes("not kept"), "upload page notice: consent and images not kept");
      await page.setInputFiles("#photos", photos);
      await page.click("#upload");
      await page.waitForFunction(() => document.getElementById("upload-status").textContent.startsWith("Done"), null, { timeout: 60000 });
      const status = await page.textContent("#upload-status");
      check(status.includes(`${photos.length} analysed`), "every photo analysed: " + status);
      const prog = await page.$eval("#progress", (p) => [p.value, p.max]);
      check(prog[0] === prog[1] && prog[1] === photos.length, "progress bar full: " + prog);
      check((await page.$$(".upload-item.ok")).length === photos.length, "one row per photo");
      await page.waitForSelector("#share-chart svg rect.bar");
      await page.click("#back");
      await page.waitForSelector("#c-title");
    }
    await addAdAndUpload("Cut A", files("happy"));
    steps.push("upload A");
    await addAdAndUpload("Cut B", files("sad"));
    steps.push("upload B");

    // 3. The comparison, side by side.
    await page.waitForSelector("#valence-chart svg circle");
    check((await page.$$("#valence-chart circle")).length === 2, "one valence point per ad");
    const rows = await page.$$eval(".cmp-row", (rs) => rs.map((r) => r.textContent));
    check(rows.length === 2 && rows[0].includes("Cut A") && rows[1].includes("Cut B"), "comparison rows");
    check(rows[0].includes("baseline") && /\[/.test(rows[1]), "difference with interval vs the baseline");
    steps.push("compare");

    // 4. A reaction video on Cut A: the ad's length, the upload (a background job, its progress),
    //    the timeline, and Cut B compared with it second by second.
    const video = process.env.EMOLENS_VIDEO;
    if (video) {
      await page.click("#ad-rows a:has-text('Cut A')");
      await page.waitForSelector("#ad-title");
      await page.fill("#ad-duration", "3");
      await page.click("#set-duration");
      await page.waitForFunction(() => document.getElementById("ad-length").textContent.includes("3.0 s"));
      await page.setInputFiles("#videos", video);
      await page.click("#upload-videos");
      await page.waitForSelector(".job-row.done", { timeout: 90000 });
      const job = await page.textContent(".job-row.done");
      check(job.includes("reaction.mp4") && job.includes("1 viewer(s)"), "the job's row: " + job);
      await page.waitForSelector("#timeline-chart svg path.valence");
      const points = await page.$eval("#timeline-chart path.valence", (p) => Number(p.dataset.points));
      check(points === 3, "a valence point per second of the 3 s ad: " + points);
      const summary = await page.textContent("#tl-summary");
      check(summary.startsWith("1 reaction video(s), 1 viewer(s)"), "timeline summary: " + summary);
      check(summary.includes("no second has 10 viewers"), "says why there are no intervals: " + summary);
      await page.selectOption("#cmp-ad", { label: "Cut B" });
      await page.waitForSelector("#compare-chart svg path.valence");
      const cmp = await page.textContent("#cmp-summary");
      check(cmp.startsWith("Cut B against Cut A: 0 of 3 seconds"), "comparison summary: " + cmp);
      check(!(await page.$eval("#cmp-csv", (b) => b.disabled)), "the comparison can be exported");
      await page.click("#back");
      await page.waitForSelector("#c-title");
      steps.push("video timeline");
    }

    // 5. Keys (the test's key is an admin): create a viewer key, see it once, revoke it.
    await page.goto(base + "/app#/keys");
    await page.waitForSelector(".key-row");
    check((await page.textContent("#k-workspace")) === "default", "workspace shown");
    let keyRows = await page.$$eval(".key-row", (rs) => rs.map((r) => r.textContent));
    check(keyRows.length === 1 && keyRows[0].includes("(this key)") && keyRows[0].includes("admin"), "own key listed: " + keyRows);
    await page.fill("#k-name", "browser viewer");
    await page.selectOption("#k-role", "viewer");
    await page.click("#k-create");
    await page.waitForSelector("#k-new:not([hidden])");
    const newKey = await page.textContent("#k-new-key");
    check(newKey.startsWith("emk_"), "the new key is shown once");
    const asViewer = await page.request.get(base + "/v1/campaigns", { headers: { Authorization: "Bearer " + newKey } });
    check(asViewer.status() === 200, "the new key reads");
    const viewerWrite = await page.request.post(base + "/v1/campaigns", { headers: { Authorization: "Bearer " + newKey }, data: { name: "no" } });
    check(viewerWrite.status() === 403, "a viewer may not write: " + viewerWrite.status());
    keyRows = await page.$$eval(".key-row", (rs) => rs.map((r) => r.textContent));
    check(keyRows.length === 2 && keyRows[1].includes("viewer") && keyRows[1].includes("live"), "new key listed: " + keyRows);
    page.once("dialog", (d) => d.accept());
    await page.click(".key-row:nth-child(2) button");
    await page.waitForFunction(() => {
      const rows = document.querySelectorAll(".key-row");
      return rows.length === 2 && rows[1].textContent.includes("revoked");
    });
    const revoked = await page.request.get(base + "/v1/campaigns", { headers: { Authorization: "Bearer " + newKey } });
    check(revoked.status() === 401, "the revoked key fails at once");
    steps.push("keys");
    check(consoleErrors.length === 0, "no page errors: " + consoleErrors.join("; "));
    console.log(JSON.stringify({ ok: true, steps }));
  } catch (e) {
    const shot = path.join(require("os").tmpdir(), "emolens-browser-failure.png");
    await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
    console.error(`browser test failed after [${steps.join(", ")}]: ${e.message}\nscreenshot: ${shot}\npage errors: ${consoleErrors.join("; ")}`);
    await browser.close();
    process.exit(1);
  }
  await browser.close();
})();
