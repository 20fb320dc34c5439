#!/usr/bin/env node
// The TypeScript is compiled to dist/ by `npm ci` (prepare) and before `npm start`/`npm test`.
// `drill` is its own program (drill/ uses only the public APIs; dns/ never imports it).
import { readFileSync } from 'node:fs';

if (process.argv[2] === '--version') {
  // answered here so that it works without loading the server (and before dist/ is built)
  process.stdout.write(`${JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version}\n`);
} else if (process.argv[2] === 'drill') await import('../dist/drill/main.js');
else await import('../dist/dns/main.js');
