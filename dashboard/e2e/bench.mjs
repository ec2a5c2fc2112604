// Browser figures for `orch bench dashboard` (services/common/orchestrator/bench/dashboard.py):
// time to first render of the session monitor and of a large task graph (with when the graph's
// GET was answered), and the latency from a state change to the DOM. Prints one JSON object on
// its last line; asserts nothing.
import { launch } from "./browser.mjs";

const BASE = process.env.ORCH_BENCH_URL ?? "http://127.0.0.1:8080";
const GRAPH_SESSION = process.env.ORCH_BENCH_GRAPH_SESSION ?? "";
const RUNS = Number(process.env.ORCH_BENCH_RUNS ?? 3);
const CHANGES = Number(process.env.ORCH_BENCH_CHANGES ?? 40);

const MONITOR_ROW = "[data-session-id]";
const GRAPH_NODE = "[data-testid=task-graph] [data-task-id]";

// In every page, before its scripts: when the first element matching each selector was drawn
// (the task after the frame that added it), as the page's own clock says. The driver notices
// an element later, by 0.1 to 0.4 s on a loaded machine.
function watchFirstDrawn(selectors) {
  const drawn = {};
  window.__firstDrawn = drawn;
  const observer = new MutationObserver(() => {
    for (const selector of selectors) {
      if (selector in drawn || !document.querySelector(selector)) continue;
      drawn[selector] = null;
      requestAnimationFrame(() => setTimeout(() => (drawn[selector] = performance.now())));
    }
    // A page shows one of them: the watch ends with the first.
    if (Object.keys(drawn).length) observer.disconnect();
  });
  observer.observe(document, { subtree: true, childList: true });
}

/** Milliseconds from the navigation's start until `selector` was drawn, by the page and by the
 * driver. */
async function firstRender(page, url, selector) {
  await page.goto(url, { waitUntil: "commit" });
  await page.waitForSelector(selector, { timeout: 120_000 });
  // performance.now() counts from the navigation's start.
  const driver = await page.evaluate(() => performance.now());
  const drawn = await page.waitForFunction((s) => window.__firstDrawn?.[s], selector, { timeout: 10_000 });
  return { drawn: await drawn.jsonValue(), driver };
}

/** When the graph's GET was answered, and how long after it was sent. */
function graphRequest() {
  const entry = performance.getEntriesByType("resource").find((e) => e.name.endsWith("/graph"));
  return entry ? { answered: entry.responseEnd, took: entry.responseEnd - entry.requestStart } : null;
}

async function main() {
  const browser = await launch();
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  await context.addInitScript(watchFirstDrawn, [MONITOR_ROW, GRAPH_NODE]);
  const page = await context.newPage();
  const figures = {
    monitor_ms: [],
    monitor_driver_ms: [],
    monitor_all_ms: [],
    monitor_rows: 0,
    graph_ms: [],
    graph_driver_ms: [],
    graph_request: [],
    graph_nodes: 0,
    latency: [],
  };
  try {
    for (let i = 0; i < RUNS; i += 1) {
      const monitor = await firstRender(page, BASE + "/", MONITOR_ROW);
      figures.monitor_ms.push(monitor.drawn);
      figures.monitor_driver_ms.push(monitor.driver);
      // The first page shows at once; the count line says when every page is in.
      await page.waitForFunction(() => !document.querySelector("main")?.textContent?.includes("loading more"), null, { timeout: 120_000 });
      figures.monitor_all_ms.push(await page.evaluate(() => performance.now()));
    }
    figures.monitor_rows = await page.evaluate(async () => {
      const reply = await fetch("/api/v1/sessions?page_size=1");
      return (await reply.json()).total_size;
    });
    if (GRAPH_SESSION) {
      for (let i = 0; i < RUNS; i += 1) {
        const graph = await firstRender(page, `${BASE}/sessions/${GRAPH_SESSION}`, GRAPH_NODE);
        figures.graph_ms.push(graph.drawn);
        figures.graph_driver_ms.push(graph.driver);
        figures.graph_request.push(await page.evaluate(graphRequest));
      }
      figures.graph_nodes = await page.evaluate(async (id) => {
        const reply = await fetch(`/api/v1/sessions/${id}/graph`);
        return (await reply.json()).nodes.length;
      }, GRAPH_SESSION);
    }

    // Latency: sessions made for it, shown alone on the monitor; each is queued through the API
    // (pending → queued: a change nothing else acts on) and timed until its row says so. Two
    // clocks: from the request, and from the service's status_updated_at (same machine).
    await page.goto(BASE + "/");
    await page.locator("[data-feed=live]").waitFor();
    await page.waitForSelector("[data-session-id]", { timeout: 120_000 });
    const ids = [];
    for (let i = 0; i < CHANGES; i += 1) {
      const reply = await page.request.post(`${BASE}/api/v1/sessions`, {
        data: { title: `IND-LAT ${i}`, initial_prompt: "latency probe", agent_config: { max_depth: "0" } },
      });
      ids.push((await reply.json()).id);
    }
    for (const id of ids) {
      // The row alone on screen (the list is virtualised: rows out of view are not drawn).
      await page.getByLabel("Title, id, tag or status").fill(id);
      await page.waitForSelector(`[data-session-id="${id}"]`, { timeout: 10_000 });
      const sample = await page.evaluate(async (sid) => {
        const shown = () => document.querySelector(`[data-session-id="${sid}"] [data-status="queued"]`);
        const seen = new Promise((resolve) => {
          const observer = new MutationObserver(() => {
            if (shown()) {
              observer.disconnect();
              resolve(performance.timeOrigin + performance.now());
            }
          });
          observer.observe(document.body, { subtree: true, childList: true, attributes: true });
        });
        const sent = performance.timeOrigin + performance.now();
        const reply = await fetch(`/api/v1/sessions/${sid}/queue`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
        const session = await reply.json();
        // A change never shown counts as a 10 s sample rather than hanging the run.
        const at = await Promise.race([seen, new Promise((resolve) => setTimeout(() => resolve(sent + 10_000), 10_000))]);
        return { fromRequest: at - sent, fromChange: at - Date.parse(session.status_updated_at) };
      }, id);
      figures.latency.push(sample);
      await page.waitForTimeout(50);
    }
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(figures));
}

main().catch((error) => {
  console.error(`FAILED: ${error.stack ?? error}`);
  process.exit(1);
});
