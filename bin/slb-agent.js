#!/usr/bin/env node
// The TypeScript is compiled to dist/ by `npm ci` (prepare) and before `npm start`/`npm test`.
// --version and --help are answered by shared/cli.ts, like every other command line.
await import('../dist/slb-agent/main.js');
