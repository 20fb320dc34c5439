#!/usr/bin/env node
// The TypeScript is compiled to dist/ by `npm ci` (prepare) and before `npm start`/`npm test`.
import '../dist/slb-agent/main.js';
