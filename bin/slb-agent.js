#!/usr/bin/env node
// The TypeScript is compiled to dist/ by `npm ci` (prepare) and before `npm start`/`npm test`.
import { readFileSync } from 'node:fs';

// answered here so that it works without loading the agent (and before dist/ is built)
if (process.argv[2] === '--version') process.stdout.write(`${JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version}\n`);
else await import('../dist/slb-agent/main.js');
