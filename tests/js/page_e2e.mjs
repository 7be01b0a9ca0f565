// The page GET / serves, in headless Chromium: load it, send a message, pick an alternative, see the weights panel
// change (read from the DOM), twice, and save a screenshot. Usage: node page_e2e.mjs BASE KEY SCREENSHOT
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const [base, key, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
                                        args: ["--no-sandbox", "--disable-gpu"] });
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 820 } });
  page.setDefaultTimeout(120000);  // a loaded 2-core CI machine: the server shares it with the other tests
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(base + "/");
  assert.equal(await page.title(), "palign");
  // No request leaves the server's origin (the page is self-contained).
  const external = [];
  page.on("request", (r) => { if (!r.url().startsWith(base)) external.push(r.url()); });
  await page.fill("#key", key);
  await page.fill("#user", "page-user");
  await page.dispatchEvent("#user", "change");
  await page.waitForFunction(() => document.getElementById("weights").dataset.version === "0");
  const weights = () => page.$$eval(".weight", (rows) => rows.map((r) => [r.dataset.name, +r.dataset.mean, +r.dataset.sd]));
  let last = [];
  for (const [round, message, pick] of [[1, "Why did the", 1], [2, "A computer is", 0]]) {
    await page.fill("#message", message);
    await page.click("#send");
    const pair = page.locator(".pair").nth(round - 1);
    await Promise.race([
      pair.locator(".choice button").first().waitFor({ timeout: 120000 }),
      page.waitForFunction(() => document.getElementById("error").textContent !== "", null, { timeout: 120000 })
        .then(async () => { throw new Error("the page showed an error: " + await page.textContent("#error")); }),
    ]);
    await pair.locator(`button[data-index="${pick}"]`).click();
    await page.waitForFunction((v) => document.getElementById("weights").dataset.version === String(v), round,
                               { timeout: 60000 });
    const now = await weights();
    assert.equal(now.length, 4, "the panel shows the 4 dimensions");
    assert.ok(now.every(([, , sd]) => sd > 0 && sd < 1), "every weight has an uncertainty below the prior's");
    if (last.length) assert.ok(now.some(([, m], i) => m !== last[i][1]), "the weights changed after the pick");
    assert.equal(await pair.locator(".choice.chosen").count(), 1);
    console.log(`round ${round}: ` + now.map(([n, m, s]) => `${n} ${m.toFixed(3)}±${s.toFixed(3)}`).join(", "));
    last = now;
  }
  assert.match(await page.textContent("#version"), /version 2 after 2 events/);
  assert.deepEqual(external, []);
  assert.deepEqual(errors, []);
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`page: all checks passed; screenshot ${screenshot}`);
} finally {
  await browser.close();
}
