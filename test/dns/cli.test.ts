import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliScope, runCli, startCli } from '../helpers/cli.js';
import { dig } from '../helpers/dig.js';
import { ROOT } from '../helpers/server.js';

const ZONE = `$ORIGIN t.test.
$TTL 60
@ IN SOA ns hm 1 3600 600 86400 60
  IN NS ns
ns IN A 192.0.2.1
www IN A 192.0.2.10
`;

const scope = cliScope('gslb-cli-');
const zoneDir = (text: string): Promise<string> => scope.tempDir({ 't.test.zone': text });

describe('gslb-dns command line', () => {
  it('serves the shipped zones/ alone (`gslb-dns --zones zones`, without the demo\'s agents)', async () => {
    const cli = await startCli(['--zones', path.join(ROOT, 'zones'), '--listen', '127.0.0.1:0']);
    scope.track(cli);
    const st = await dig(cli.port, ['+norec', 'static.gslb.example.test', 'A']);
    expect(st.status).toBe('NOERROR');
    expect(st.answer).toEqual(['static.gslb.example.test. 300 IN A 192.0.2.10']);
    // no agent reports here: the pool answers SERVFAIL for its sites' staleAfter (3 s, startup:
    // servfail), then by allDown: all; poll through the window (bounded), never assume its length
    let r = await dig(cli.port, ['+norec', 'www.gslb.example.test', 'A']);
    for (let i = 0; i < 200 && r.status === 'SERVFAIL'; i++) {
      await new Promise((done) => setTimeout(done, 50));
      r = await dig(cli.port, ['+norec', 'www.gslb.example.test', 'A']);
    }
    expect(r.status).toBe('NOERROR');
    expect(r.flags.has('aa')).toBe(true);
    expect(r.answer.length).toBeGreaterThan(0);
  });

  it('exits 1 at start-up with file:line on a bad zone', async () => {
    const d = await zoneDir(ZONE + 'bad IN A 300.1.2.3\n');
    const r = await runCli(['--zones', d, '--listen', '127.0.0.1:0']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${path.join(d, 't.test.zone')}:7:`);
  });

  it('check validates and exits non-zero on error', async () => {
    const good = await runCli(['check', '--zones', await zoneDir(ZONE)]);
    expect(good.code).toBe(0);
    expect(good.stdout).toContain('t.test.');
    const bad = await runCli(['check', '--zones', await zoneDir(ZONE + 'www IN CNAME elsewhere.test.\n')]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/t\.test\.zone:\d+: .*CNAME/);
  });

  it('rejects bad flags with usage', async () => {
    const r = await runCli(['--zones', 'zones', '--listen', 'nonsense']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('HOST:PORT');
    const tcp = await runCli(['--zones', 'zones', '--listen', '127.0.0.1:0', '--tcp-message-timeout', 'soon']);
    expect(tcp.code).toBe(2);
    expect(tcp.stderr).toContain('--tcp-message-timeout');
    const unitless = await runCli(['--zones', 'zones', '--listen', '127.0.0.1:0', '--tcp-idle-timeout', '10']);
    expect(unitless.code).toBe(2);
    expect(unitless.stderr).toContain('--tcp-idle-timeout: duration needs a unit: 10ms or 10s');
    const per = await runCli(['--zones', 'zones', '--listen', '127.0.0.1:0', '--tcp-max-per-source', '0']);
    expect(per.code).toBe(2);
    expect(per.stderr).toContain('--tcp-max-per-source');
    for (const [flag, value] of [['--cache-entries', '-1'], ['--cache-negative-entries', '1e3'], ['--cache-negative-bytes', 'lots'], ['--cache-negative-entries', '']]) {
      const c = await runCli(['--zones', 'zones', '--listen', '127.0.0.1:0', `${flag!}=${value!}`]);
      expect(c.code).toBe(2);
      expect(c.stderr).toContain(`${flag}: expected an integer from 0 to`);
    }
  });

  it('reloads on SIGHUP, and keeps the old zone when the new one is broken', async () => {
    const d = await zoneDir(ZONE);
    const cli = await startCli(['--zones', d, '--listen', '127.0.0.1:0']);
    scope.track(cli);
    expect((await dig(cli.port, ['+norec', 'www.t.test', 'A'])).answer).toEqual(['www.t.test. 60 IN A 192.0.2.10']);
    const file = path.join(d, 't.test.zone');
    await writeFile(file, (await readFile(file, 'utf8')).replace('192.0.2.10', '192.0.2.11').replace(' 1 3600', ' 2 3600'));
    cli.proc.kill('SIGHUP');
    await cli.waitLog((l) => l['msg'] === 'zone reloaded' && l['serial'] === 2 && l['why'] === 'SIGHUP');
    expect((await dig(cli.port, ['+norec', 'www.t.test', 'A'])).answer).toEqual(['www.t.test. 60 IN A 192.0.2.11']);

    await writeFile(file, ZONE + 'oops IN AAAA not-an-address\n');
    cli.proc.kill('SIGHUP');
    const err = await cli.waitLog((l) => typeof l['msg'] === 'string' && (l['msg'] as string).includes('t.test.zone:7:'));
    expect(err['level']).toBe(50);
    await cli.waitLog((l) => l['msg'] === 'reload failed; the previous zones keep serving');
    expect((await dig(cli.port, ['+norec', 'www.t.test', 'A'])).answer).toEqual(['www.t.test. 60 IN A 192.0.2.11']);
  });

  it('reloads when a zone file changes', async () => {
    const d = await zoneDir(ZONE);
    const cli = await startCli(['--zones', d, '--listen', '127.0.0.1:0']);
    scope.track(cli);
    await writeFile(path.join(d, 't.test.zone'), ZONE.replace(' 1 3600', ' 5 3600') + 'new IN A 192.0.2.99\n');
    await cli.waitLog((l) => l['msg'] === 'zone reloaded' && l['serial'] === 5);
    expect((await dig(cli.port, ['+norec', 'new.t.test', 'A'])).answer).toEqual(['new.t.test. 60 IN A 192.0.2.99']);
  });
});
