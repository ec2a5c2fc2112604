// The live socket across a gateway restart, in a real browser (driven by
// tests/e2e/test_dashboard.py): the monitor is open and live; the test kills the gateway, creates
// a session while it is down and names it on stdin; the page must say it is reconnecting, come
// back live, and show that session from the resumed stream, without a reload.
import { createInterface } from "node:readline";
import { launch } from "./browser.mjs";

const BASE = process.env.ORCH_E2E_URL ?? "http://127.0.0.1:8080";
const KEY = process.env.ORCH_E2E_KEY ?? "";

async function main() {
  const browser = await launch();
  try {
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    // The key as `orch up` hands it over: in the fragment, which the page then drops.
    await page.goto(BASE + "/" + (KEY ? `#key=${KEY}` : ""));
    await page.locator("[data-feed=live]").waitFor({ timeout: 30_000 });
    if (KEY && page.url().includes(KEY)) throw new Error(`the key stayed in the address bar: ${page.url()}`);
    const states = new Set();
    const watch = setInterval(async () => {
      const state = await page.locator("[data-feed]").getAttribute("data-feed").catch(() => null);
      if (state) states.add(state);
    }, 50);
    console.log("READY");
    const lines = createInterface({ input: process.stdin });
    const title = await new Promise((resolve) => lines.once("line", (line) => resolve(line.trim())));
    await page.getByRole("link", { name: title }).waitFor({ timeout: 60_000 });
    await page.locator("[data-feed=live]").waitFor({ timeout: 30_000 });
    clearInterval(watch);
    lines.close();
    if (!states.has("reconnecting")) throw new Error(`the page never said it was reconnecting: ${[...states]}`);
    console.log(`OK: states seen ${[...states].join(", ")}; ${title} shown after the restart`);
  } finally {
    await browser.close();
  }
}

main().catch((error) => {
  console.error(`FAILED: ${error.stack ?? error}`);
  process.exit(1);
});
