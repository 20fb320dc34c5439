#!/usr/bin/env node
// The TypeScript is compiled to dist/ by `npm ci` (prepare) and before `npm start`/`npm test`.
// `drill` is its own program (drill/ uses only the public APIs; dns/ never imports it).
// --version and --help are answered by shared/cli.ts, like every other command line.
if (process.argv[2] === 'drill') await import('../dist/drill/main.js');
else await import('../dist/dns/main.js');
