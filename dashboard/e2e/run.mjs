// The dashboard in a real browser against a running mesh with real workers (started by
// tests/e2e/test_dashboard.py): create, watch, steer and approve a session from the UI, with a
// screenshot and an axe scan of each view. Exits non-zero on the first failed expectation.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { axeScan, contrastAAA, launch } from "./browser.mjs";

const BASE = process.env.ORCH_E2E_URL ?? "http://127.0.0.1:8080";
const OUT = process.env.ORCH_E2E_ARTIFACTS ?? "test-results";
const DRAIN = process.env.ORCH_E2E_DRAIN_AGENT ?? "";
// The gateway checks API keys: an admin key (what `orch up` makes), typed into the key screen.
const KEY = process.env.ORCH_E2E_KEY ?? "";
const TIMEOUT = 30_000;
mkdirSync(OUT, { recursive: true });

const started = Date.now();
const log = (line) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${line}`);
const a11y = [];

async function check(page, view) {
  await page.screenshot({ path: join(OUT, `${view}.png`), fullPage: true });
  const violations = await axeScan(page);
  for (const v of violations) a11y.push(`${view}: ${v.impact} ${v.id} (${v.help}) at ${v.nodes.join(", ")}`);
  const belowAAA = await contrastAAA(page);
  for (const node of belowAAA) a11y.push(`${view}: text below AAA contrast at ${node}`);
  log(`${view}: screenshot saved, ${violations.length} serious/critical axe violations, ${belowAAA.length} below AAA contrast${belowAAA.length ? `: ${belowAAA.slice(0, 4).join("; ")}` : ""}`);
}

async function api(page, method, path, body) {
  const reply = await page.request.fetch(`${BASE}/api/v1${path}`, {
    method,
    headers: { "content-type": "application/json", ...(KEY ? { authorization: `Bearer ${KEY}` } : {}) },
    data: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!reply.ok()) throw new Error(`${method} ${path}: ${reply.status()} ${await reply.text()}`);
  return reply.json();
}

/** Statuses the graph shows, by task id. */
const graphStatuses = (page) =>
  page.$$eval("[data-testid=task-graph] [data-task-id]", (nodes) =>
    Object.fromEntries(nodes.map((n) => [n.getAttribute("data-task-id"), n.getAttribute("data-task-status")])),
  );

async function main() {
  const browser = await launch();
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, reducedMotion: "reduce" });
  try {
    // 1. The monitor, open in its own tab for the rest of the run. Without a key the gateway
    // answers 401 and the page asks for one; the key typed in is kept for the other tabs.
    const monitor = await context.newPage();
    await monitor.goto(BASE + "/");
    if (KEY) {
      await monitor.getByRole("heading", { name: "API key needed", level: 1 }).waitFor({ timeout: TIMEOUT });
      await check(monitor, "00-key-screen");
      await monitor.getByLabel("API key", { exact: true }).fill("orch_0000000000000000_" + "0".repeat(64));
      await monitor.getByRole("button", { name: "Use this key" }).click();
      await monitor.getByText("refused this browser's key").waitFor({ timeout: TIMEOUT });
      log("without a key, then with a wrong one: the key screen");
      await monitor.getByLabel("API key", { exact: true }).fill(KEY);
      await monitor.getByRole("button", { name: "Use this key" }).click();
    }
    await monitor.getByRole("heading", { name: "Sessions", level: 1 }).waitFor();
    await monitor.locator("[data-feed=live]").waitFor({ timeout: TIMEOUT });
    await check(monitor, "01-session-monitor");

    // 2. The create form: the API's validation message, then a real session.
    const page = await context.newPage();
    await page.goto(BASE + "/");
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "New session" }).click();
    await page.getByRole("heading", { name: "New session" }).waitFor();
    await page.getByRole("button", { name: "Create session" }).click();
    const invalid = page.locator("[aria-invalid=true]");
    await invalid.first().waitFor({ timeout: TIMEOUT });
    const message = await page.getByRole("alert").first().innerText();
    log(`empty form refused by the API: ${message}`);
    await check(page, "02-create-session-invalid");

    const title = `IND-E2E ${Date.now()}`;
    await page.getByLabel("Title").fill(title);
    await page.getByLabel("Prompt").fill("1. write the parser\n2. write the tests\n3. document the parser");
    await page.getByLabel("Decomposition depth").fill("1");
    await page.getByLabel("Shell command for each task").fill("sleep 1");
    await page.getByRole("button", { name: "Create session" }).click();
    await page.getByRole("heading", { name: title }).waitFor({ timeout: TIMEOUT });
    const sessionId = page.url().split("/").pop();
    log(`created ${sessionId}`);

    // 3. It appears on the monitor without a reload.
    await monitor.getByRole("link", { name: title }).waitFor({ timeout: 10_000 });
    log("the monitor shows the new session without a reload");

    // 4. Start it and watch the graph's nodes change as the workers complete tasks.
    const status = page.getByTestId("session-status");
    await page.getByRole("button", { name: "start", exact: true }).click();
    await page.locator("[data-testid=session-status][data-status=running]").waitFor({ timeout: TIMEOUT });
    await page.locator("[data-testid=task-graph] [data-task-id]").nth(3).waitFor({ timeout: TIMEOUT });
    const root = (await api(page, "GET", `/tasks?session_id=${sessionId}&roots_only=true`)).tasks[0];
    // A reviewed task under the root keeps the session open until someone approves it.
    const review = (title) =>
      api(page, "POST", "/tasks", { session_id: sessionId, parent_id: root.id, title, requires_approval: true, input: { command: "true" } });
    const reviewed = await review("review the parser");
    const redone = await review("review the docs");
    const seen = new Map();
    const note = async () => {
      for (const [id, s] of Object.entries(await graphStatuses(page))) {
        const states = seen.get(id) ?? new Set();
        states.add(s);
        seen.set(id, states);
      }
    };
    const deadline = Date.now() + TIMEOUT;
    while (![...seen.values()].some((s) => s.has("completed"))) {
      if (Date.now() > deadline) throw new Error(`no graph node reached completed: ${JSON.stringify([...seen].map(([k, v]) => [k, [...v]]))}`);
      await note();
      await page.waitForTimeout(100);
    }
    log(`graph nodes changed live: ${[...seen.values()].map((s) => [...s].join(">")).join(", ")}`);
    await check(page, "03-session-detail-graph");
    // A node chosen from the keyboard shows in the inspector.
    await page.locator(".react-flow__node").first().focus();
    await page.keyboard.press("Enter");
    await page.getByRole("complementary", { name: "Selected task" }).getByText("Attempts").waitFor({ timeout: TIMEOUT });
    log("a graph node chosen with the keyboard shows in the inspector");

    // 5. Pause and resume.
    await page.getByRole("button", { name: "pause", exact: true }).click();
    await page.locator("[data-testid=session-status][data-status=paused]").waitFor({ timeout: TIMEOUT });
    log("paused");
    await page.getByRole("button", { name: "resume", exact: true }).click();
    await page.locator("[data-testid=session-status][data-status=running]").waitFor({ timeout: TIMEOUT });
    log("resumed");

    // 6. Approve the reviewed task from the Tasks tab.
    await page.getByRole("tab", { name: /Tasks/ }).click();
    const approve = page.getByRole("button", { name: "Approve review the parser" });
    await approve.waitFor({ timeout: 45_000 });
    await check(page, "04-session-detail-tasks-awaiting-approval");
    await approve.click();
    await page.locator(`[data-task-id="${reviewed.id}"][data-task-status=completed]`).waitFor({ timeout: TIMEOUT });
    log("approved: the task completed");
    // Rejected with a comment (the dialog), it runs again and waits again; then approved.
    await page.getByRole("button", { name: "Reject review the docs" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByLabel("What to change").fill("cover the error cases");
    await check(page, "04b-reject-dialog");
    await dialog.getByRole("button", { name: "Reject", exact: true }).click();
    await dialog.waitFor({ state: "detached", timeout: TIMEOUT });
    const again = await api(page, "GET", `/tasks/${redone.id}`);
    if (!again.description.includes("cover the error cases")) throw new Error(`the comment is not in the prompt: ${again.description}`);
    log("rejected with a comment: the task went back to work");
    await page.getByRole("button", { name: "Approve review the docs" }).click({ timeout: 45_000 });
    await page.locator(`[data-task-id="${redone.id}"][data-task-status=completed]`).waitFor({ timeout: TIMEOUT });
    const reviews = (await api(page, "GET", `/tasks/${redone.id}`)).reviews.map((r) => r.approved);
    if (JSON.stringify(reviews) !== "[false,true]") throw new Error(`reviews of the redone task: ${reviews}`);
    log("approved on its second review (reviews: rejected, approved)");
    await page.locator("[data-testid=session-status][data-status=completed]").waitFor({ timeout: 60_000 });
    log(`session completed (${await status.innerText()})`);

    // 7. The other panels of the session: graph done, timeline, checkpoints, context versions.
    await page.getByRole("tab", { name: "Task graph" }).click();
    await page.waitForFunction(() => {
      const nodes = [...document.querySelectorAll("[data-testid=task-graph] [data-task-status]")];
      return nodes.length > 0 && nodes.every((n) => n.getAttribute("data-task-status") === "completed");
    }, null, { timeout: TIMEOUT });
    await check(page, "05-session-detail-graph-completed");
    await page.getByRole("tab", { name: "Timeline" }).click();
    await page.locator("[data-event-type='session.completed']").first().waitFor({ timeout: TIMEOUT });
    // The glass box: any event opens to its whole envelope.
    await page.locator("[data-event-type='session.completed'] button").first().click();
    await page.getByLabel(/^Event #\d+, orch\.session\./).first().waitFor({ timeout: TIMEOUT });
    await check(page, "06-session-timeline");
    await page.getByRole("tab", { name: "Checkpoints" }).click();
    await page.getByText(/No checkpoint yet|#1/).first().waitFor({ timeout: TIMEOUT });
    await check(page, "07-session-checkpoints");
    // The session's default context (workers may have made it already): two more versions.
    const listed = await api(page, "GET", `/contexts?scope=session&owner_id=${sessionId}`);
    const found = listed.contexts.find((c) => !c.name);
    let ctx = found ?? (await api(page, "POST", "/contexts", { scope: "session", owner_id: sessionId, data: {} }));
    ctx = await api(page, "PATCH", `/contexts/${ctx.id}`, { expected_version: ctx.version, operations: [{ op: "set", path: "review.model", value: "a/b" }] });
    await api(page, "PATCH", `/contexts/${ctx.id}`, { expected_version: ctx.version, operations: [{ op: "set", path: "review.model", value: "c/d" }, { op: "set", path: "review.notes", value: "draft" }] });
    await page.getByRole("tab", { name: "Context" }).click();
    const diff = page.getByRole("list", { name: /Changes from version/ });
    await diff.waitFor({ timeout: TIMEOUT });
    const lines = await diff.innerText();
    if (!lines.includes("review.model") || !lines.includes("review.notes")) throw new Error(`context diff lacks the changes: ${lines}`);
    log("context versions and diff shown");
    await check(page, "08-session-context");

    // 8. Agents: the workers, and a drain.
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Agents" }).click();
    await page.getByRole("heading", { name: "Agents", level: 1 }).waitFor();
    await page.locator("[data-agent]").first().waitFor({ timeout: TIMEOUT });
    if (DRAIN) {
      await page.getByRole("button", { name: `Drain ${DRAIN}` }).click();
      await page.locator(`[data-agent="${DRAIN}"]`).getByText("draining").waitFor({ timeout: TIMEOUT });
      log(`drained ${DRAIN}`);
    }
    await check(page, "09-agents");

    // 9. The event tail, filtered to task events.
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Event tail" }).click();
    await page.getByRole("heading", { name: "Event tail" }).waitFor();
    await monitor.bringToFront();
    await monitor.getByRole("button", { name: "Health" }).click();
    await monitor.locator("[role=columnheader][aria-sort=ascending]", { hasText: "Health" }).waitFor({ timeout: TIMEOUT });
    await check(monitor, "10-session-monitor-after");
    const tail = await context.newPage();
    await tail.goto(BASE + "/events");
    await tail.locator("[data-tail-feed=live]").waitFor({ timeout: TIMEOUT });
    const other = await api(tail, "POST", "/sessions", { title: "IND-E2E tail", initial_prompt: "one thing" });
    await tail.locator("[data-event-type='session.created']").first().waitFor({ timeout: TIMEOUT });
    await tail.getByRole("button", { name: "agent" }).click();
    await check(tail, "11-event-tail");

    // Cancel, from the session's page.
    await tail.goto(`${BASE}/sessions/${other.id}`);
    await tail.getByRole("button", { name: "cancel", exact: true }).click();
    await tail.locator("[data-testid=session-status][data-status=cancelled]").waitFor({ timeout: TIMEOUT });
    log("cancelled a pending session");

    // Stop a running session (its run is killed), and retry a failed one.
    const stopping = await api(tail, "POST", "/sessions", { title: "IND-E2E stop", initial_prompt: "hold", agent_config: { max_depth: "0", command: "sleep 60" } });
    await tail.goto(`${BASE}/sessions/${stopping.id}`);
    await tail.getByRole("button", { name: "start", exact: true }).click();
    await tail.locator("[data-testid=task-graph] [data-task-status=in_progress]").waitFor({ timeout: TIMEOUT });
    await tail.getByRole("button", { name: "stop", exact: true }).click();
    await tail.locator("[data-testid=session-status][data-status=stopped]").waitFor({ timeout: TIMEOUT });
    await tail.locator("[data-testid=task-graph] [data-task-status=cancelled]").waitFor({ timeout: TIMEOUT });
    log("stopped a running session: its task was cancelled");
    const failing = await api(tail, "POST", "/sessions", { title: "IND-E2E retry", initial_prompt: "fail", agent_config: { max_depth: "0", command: "exit 3", max_attempts: "1" } });
    await api(tail, "POST", `/sessions/${failing.id}/start`, {});
    await tail.goto(`${BASE}/sessions/${failing.id}`);
    await tail.locator("[data-testid=session-status][data-status=failed]").waitFor({ timeout: TIMEOUT });
    await tail.locator("[data-testid=task-graph] [data-task-status=failed]").waitFor({ timeout: TIMEOUT });
    await check(tail, "12-session-failed");
    await tail.getByRole("button", { name: "retry", exact: true }).click();
    await tail.locator("[data-testid=session-status]:not([data-status=failed])").waitFor({ timeout: TIMEOUT });
    log(`retried a failed session: now ${await tail.getByTestId("session-status").getAttribute("data-status")}`);
  } finally {
    await browser.close();
  }
  if (a11y.length) throw new Error(`accessibility violations:\n  ${a11y.join("\n  ")}`);
  log("all views passed");
}

main().catch((error) => {
  console.error(`FAILED: ${error.stack ?? error}`);
  process.exit(1);
});
