import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliScope, runCli, startCli } from '../helpers/cli.js';

const ZONE = `$ORIGIN t.test.
$TTL 60
@ IN SOA ns hm 1 3600 600 86400 60
  IN NS ns
ns IN A 192.0.2.1
`;

const scope = cliScope('gslb-status-flags-');
const zoneDir = (): Promise<string> => scope.tempDir({ 't.test.zone': ZONE });

describe('gslb-dns --read-token-file and --status-public', () => {
  it('reads with a read token but acts only with the admin token', async () => {
    const d = await zoneDir();
    await writeFile(path.join(d, 'admin.token'), 'admin-token-0123456789\n');
    await writeFile(path.join(d, 'read.token'), '# viewers\nbob:bob-read-token-0123456789\n');
    const cli = await startCli(['--zones', d, '--listen', '127.0.0.1:0', '--api', '127.0.0.1:0',
      '--admin-token-file', path.join(d, 'admin.token'), '--read-token-file', path.join(d, 'read.token')]);
    scope.track(cli);
    const api = `http://127.0.0.1:${cli.apiPort}`;
    const read = { authorization: 'Bearer bob-read-token-0123456789' };
    expect((await fetch(`${api}/api/v1/state`)).status).toBe(401);
    expect((await fetch(`${api}/api/v1/state`, { headers: read })).status).toBe(200);
    expect((await fetch(`${api}/api/v1/admin/drain`, { method: 'POST', headers: { ...read, 'content-type': 'application/json' }, body: '{"site":"x"}' })).status).toBe(401);
    expect(await (await fetch(`${api}/api/v1/status-config`)).json()).toMatchObject({ public: false, admin: true });
    expect(cli.lines.some((l) => String(l['msg']).includes('--status-public'))).toBe(false);
  });

  it('warns when reading is public on a non-loopback address', async () => {
    const d = await zoneDir();
    const cli = await startCli(['--zones', d, '--listen', '127.0.0.1:0', '--api', '0.0.0.0:0', '--status-public']);
    scope.track(cli);
    const warn = await cli.waitLog((l) => String(l['msg']).startsWith('--status-public on a non-loopback address'));
    expect(warn['level']).toBe(40);
    expect((await fetch(`http://127.0.0.1:${cli.apiPort}/api/v1/state`)).status).toBe(200);
  });

  it('refuses a missing or malformed read token file', async () => {
    const d = await zoneDir();
    const missing = await runCli(['--zones', d, '--listen', '127.0.0.1:0', '--read-token-file', path.join(d, 'nope')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--read-token-file: ENOENT');
    await writeFile(path.join(d, 'short.token'), 'short\n');
    const short = await runCli(['--zones', d, '--listen', '127.0.0.1:0', '--read-token-file', path.join(d, 'short.token')]);
    expect(short.code).toBe(2);
    expect(short.stderr).toMatch(/--read-token-file: .*short\.token:1: the token must be at least 16 characters/);
    const help = await runCli(['--help']);
    expect(help.stdout).toContain('[--read-token-file FILE] [--status-public]');
  });
});
