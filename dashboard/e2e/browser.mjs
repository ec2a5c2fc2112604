// Shared by the browser test and the benchmark: Debian's chromium through playwright-core, and
// an axe-core scan of the page as it stands.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

export async function launch() {
  return chromium.launch({
    executablePath: process.env.ORCH_CHROMIUM ?? "/usr/bin/chromium",
    // Root in CI: chromium's sandbox needs a user namespace it may not get.
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
}

/** Serious and critical axe violations of the page, as readable lines. */
export async function axeScan(page) {
  if (!(await page.evaluate(() => "axe" in window))) await page.addScriptTag({ content: AXE });
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const run = await window.axe.run(document, { resultTypes: ["violations"] });
    return run.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
    }));
  });
  return result.filter((v) => v.impact === "serious" || v.impact === "critical");
}

/** Text below WCAG AAA contrast (7:1, 4.5:1 for large text), as selectors with their ratio. */
export async function contrastAAA(page) {
  if (!(await page.evaluate(() => "axe" in window))) await page.addScriptTag({ content: AXE });
  return page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const run = await window.axe.run(document, { runOnly: ["color-contrast-enhanced"], resultTypes: ["violations"] });
    return run.violations.flatMap((v) =>
      v.nodes.map((n) => `${n.target.join(" ")} ${n.any[0]?.data?.contrastRatio ?? "?"}:1`),
    );
  });
}
