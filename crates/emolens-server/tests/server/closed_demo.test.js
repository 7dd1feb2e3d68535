// Run by trust.rs: with the demo closed (`--open-demo false`), the predict page asks for a key
// and predicts with it; no page breaks the Content-Security-Policy.
//   EMOLENS_URL, EMOLENS_KEY, EMOLENS_IMAGE (a face crop), NODE_PATH (playwright-core).
"use strict";
const { chromium } = require("playwright-core");

const base = process.env.EMOLENS_URL, key = process.env.EMOLENS_KEY, image = process.env.EMOLENS_IMAGE;
function check(cond, msg) { if (!cond) throw new Error("check failed: " + msg); }

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.EMOLENS_CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
  const page = await browser.newPage();
  page.setDefaultTimeout(20000);
  const violations = [];
  page.on("console", (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text()); });
  page.on("pageerror", (e) => violations.push("page error: " + e.message));
  try {
    for (const p of ["/app", "/docs"]) {
      await page.goto(base + p);
      await page.waitForLoadState("networkidle");
    }
    check((await page.$$("#paths .endpoint")).length > 5, "the docs page renders (its script runs)");

    await page.goto(base + "/");
    await page.waitForSelector("#keyrow:not([hidden])");
    await page.setInputFiles("#file", image);
    await page.click("#predict");
    await page.waitForFunction(() => document.getElementById("error").textContent.length > 0);
    check((await page.textContent("#error")).includes("API key"), "without a key the page says a key is needed");
    await page.fill("#apikey", key);
    await page.click("#savekey");
    await page.click("#predict");
    await page.waitForSelector("#chart svg rect.bar");
    check((await page.textContent("#label")).length > 0, "a label is shown with the key");
    check((await page.$$("#boxes rect.face-box")).length >= 1, "the face is boxed");
    check(violations.length === 0, "no CSP violations or page errors: " + violations.join("; "));
    console.log(JSON.stringify({ ok: true }));
  } catch (e) {
    console.error(e.message + "\nviolations: " + violations.join("; "));
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
})();
