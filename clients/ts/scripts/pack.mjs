// @ts-check
// The package's prepack step: dist/ gets the declarations a TypeScript
// consumer resolves, so that the tarball needs nothing outside itself.
//
//   dist/schema.d.ts  a copy of gen/ts/schema.d.ts (generated from
//                     api/openapi.yaml, outside the package)
//   dist/index.d.ts   tsc's declarations of src/index.js, whose
//                     `import("./schema.js")` finds the copy next to it
//
// `node scripts/pack.mjs --clean` (postpack) removes dist/ again: it is
// git-ignored and only ever made for a tarball.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const dist = fileURLToPath(new URL("../dist/", import.meta.url));
rmSync(dist, { recursive: true, force: true });
if (process.argv.includes("--clean")) {
  process.exit(0);
}

mkdirSync(dist);
copyFileSync(new URL("../../../gen/ts/schema.d.ts", import.meta.url), join(dist, "schema.d.ts"));

const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
const r = spawnSync(process.execPath, [tsc, "-p", "tsconfig.pack.json"], { cwd: root, stdio: "inherit" });
if (r.status !== 0) {
  console.error("scripts/pack.mjs: tsc -p tsconfig.pack.json failed");
  process.exit(1);
}

// Everything the declarations import must ship too: openapi-fetch (a
// dependency) and ./schema.js, nothing by a path out of dist/.
const index = readFileSync(join(dist, "index.d.ts"), "utf8");
const specifiers = [...index.matchAll(/(?:from\s+|import\()\s*["']([^"']+)["']/g)].map((m) => m[1]);
const stray = specifiers.filter((s) => s !== "openapi-fetch" && s !== "./schema.js");
if (!specifiers.includes("./schema.js") || stray.length > 0) {
  console.error(`scripts/pack.mjs: dist/index.d.ts imports ${JSON.stringify(specifiers)}; want only "openapi-fetch" and "./schema.js"`);
  process.exit(1);
}
