/**
 * vitest setup file: every test file gets its own slb-agent run dir (SLB_AGENT_RUN_DIR, inherited
 * by the agents it starts), so agents of different test files, or of other checkouts on the
 * same machine, never find each other's control socket and hand over across tests.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';

const dir = mkdtempSync(path.join(os.tmpdir(), 'slb-agent-run-'));
process.env['SLB_AGENT_RUN_DIR'] = dir;
afterAll(() => rmSync(dir, { recursive: true, force: true }));
