#!/usr/bin/env node
// Compiles the TypeScript (tsc -p tsconfig.json) only when dist/ is out of date; run by `npm start`
// (prestart), so a start after `npm ci` (whose `prepare` builds dist/) does not wait for tsc.
//
// Out of date: a .ts file under tsconfig.json's include folders has no dist/ .js, or one older
// than itself, or tsconfig.json is newer than the oldest output. tsc rewrites every output on each
// run (it is not incremental here), so after any `tsc -p tsconfig.json` (prepare, build, pretest)
// every output is newer than its source. A deleted source leaves its old output behind, unused.
// tsc writes its outputs even when it reports type errors (and fails the start): the next start
// runs them without type-checking again; `npm run build` or `npm test` shows the errors.
//
//   node scripts/build-if-stale.js    build if needed; prints why it builds, nothing otherwise
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The first reason to build, or undefined when dist/ is up to date. */
function staleReason() {
  const config = JSON.parse(readFileSync(join(ROOT, 'tsconfig.json'), 'utf8'));
  // include entries are "<folder>/**/*.ts"
  const folders = config.include.map((p) => p.split('/')[0]);
  const configMtime = statSync(join(ROOT, 'tsconfig.json')).mtimeMs;
  for (const folder of folders) {
    for (const src of walk(join(ROOT, folder))) {
      const out = join(ROOT, 'dist', relative(ROOT, src)).replace(/\.ts$/, '.js');
      let outMtime;
      try {
        outMtime = statSync(out).mtimeMs;
      } catch {
        return `${relative(ROOT, out)} is missing`;
      }
      if (outMtime < statSync(src).mtimeMs) return `${relative(ROOT, src)} changed`;
      if (outMtime < configMtime) return 'tsconfig.json changed';
    }
  }
  return undefined;
}

function* walk(dir) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory() && e.name !== 'node_modules') yield* walk(p);
    else if (e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) yield p;
  }
}

const why = staleReason();
if (why !== undefined) {
  process.stdout.write(`dist/ is out of date (${why}): compiling with tsc...\n`);
  const r = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.json')], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
