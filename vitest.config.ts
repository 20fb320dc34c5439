import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // lab and dig tests bind fixed resources; files run in parallel workers but each picks free ports
    pool: 'forks',
    // one slb-agent run dir (handover control sockets) per test file
    setupFiles: ['test/helpers/run-dir-setup.ts'],
    reporters: ['default', './test/reporters/summary-line.ts'],
  },
});
