// @ts-check
// The SDK (JavaScript with JSDoc types) and these tests type-check against
// gen/ts/schema.d.ts: a spec change that breaks them fails the suite.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

test("tsc --noEmit: the SDK and the tests type-check against gen/ts/schema.d.ts", () => {
  const root = dirname(dirname(fileURLToPath(import.meta.url)));
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  const r = spawnSync(process.execPath, [tsc, "--noEmit", "-p", root], { cwd: root, encoding: "utf8" });
  assert.equal(r.status, 0, `tsc failed:\n${r.stdout}${r.stderr}`);
});
