/**
 * The status page in a real browser (Debian's chromium driven by playwright-core) against a real
 * gslb-dns process: the page loads and renders the state, a signed report changes it without a
 * reload, the drain button changes what `dig` answers, and the explain box says why. Screenshots
 * at 1366x768 and 390x844 go to test-results/screenshots/ (git-ignored).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { startCli } from '../../helpers/cli.js';
import type { Cli } from '../../helpers/cli.js';
import { dig } from '../../helpers/dig.js';
import { postReport, SECRET_ENV, SECRETS } from '../../helpers/report.js';
import { ROOT } from '../../helpers/server.js';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = path.join(ROOT, 'test-results/screenshots');
const ADMIN = 'browser-admin-token-0123456789';
const READ = 'browser-read-token-0123456789';
const TOKYO = '192.0.2.1';
const OSAKA = '198.51.100.1';
const NAME = 'www.gslb.example.test';
/** A bound on each wait in the page, not a claim about speed. */
const WAIT_MS = 10_000;

const ZONE = `$ORIGIN gslb.example.test.
$TTL 300
@ IN SOA ns1 hostmaster 1 3600 600 604800 60
  IN NS ns1
ns1 IN A 192.0.2.53
`;
const POOLS = `sites:
  tokyo: { secret: env:GSLB_SECRET_TOKYO, subnets: [198.51.100.0/24], staleAfter: 5m }
  osaka: { secret: env:GSLB_SECRET_OSAKA, subnets: [203.0.113.0/24], staleAfter: 5m }
pools:
  web:
    names: [www]
    ttl: 20
    degradedTtl: 5
    policy: weighted
    maxAnswers: 2
    allDown: all
    members:
      - { site: tokyo, address: ${TOKYO}, weight: 3 }
      - { site: osaka, address: ${OSAKA}, weight: 1 }
  api:
    names: [api]
    ttl: 20
    policy: weighted
    guard: { minServing: 1 }
    members:
      - { site: osaka, address: ${OSAKA} }
`;

let dir: string;
let cli: Cli | undefined;
let browser: Browser | undefined;
let page: Page;
let seq = 1_000;
/** console errors and page exceptions (a CSP violation shows as one) */
const pageErrors: string[] = [];

async function answers(): Promise<string[]> {
  const r = await dig(cli!.port, ['+norec', NAME, 'A']);
  return r.answer.map((l) => l.trim().split(/\s+/)[4]!).sort();
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = WAIT_MS): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function reportBoth(): Promise<void> {
  expect((await postReport(cli!.apiPort, 'tokyo', [{ address: TOKYO, state: 'up' }], { seq: ++seq, secret: SECRETS.tokyo, agent: 'lb-tokyo' })).status).toBe(200);
  expect((await postReport(cli!.apiPort, 'osaka', [{ address: OSAKA, state: 'up' }], { seq: ++seq, secret: SECRETS.osaka, agent: 'lb-osaka' })).status).toBe(200);
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'gslb-status-page-'));
  const zones = path.join(dir, 'zones');
  await mkdir(zones);
  await writeFile(path.join(zones, 'gslb.example.test.zone'), ZONE);
  await writeFile(path.join(zones, 'gslb.example.test.gslb.yaml'), POOLS);
  await writeFile(path.join(dir, 'admin.token'), `${ADMIN}\n`);
  await writeFile(path.join(dir, 'read.token'), `viewer:${READ}\n`);
  await mkdir(SCREENSHOTS, { recursive: true });
  cli = await startCli(['--zones', zones, '--listen', '127.0.0.1:0', '--api', '127.0.0.1:0',
    '--admin-token-file', path.join(dir, 'admin.token'), '--read-token-file', path.join(dir, 'read.token'), '--instance', 'ns-browser'], SECRET_ENV);
  await reportBoth();
  expect(await answers()).toEqual([TOKYO, OSAKA].sort());
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], headless: true, timeout: 30_000 });
  page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
  page.setDefaultTimeout(WAIT_MS);
  page.on('pageerror', (e) => { pageErrors.push(`pageerror: ${e.message}`); });
  page.on('console', (m) => {
    // the guard refusal (409) is an expected failed request; anything else is a fault of the page
    if (m.type() === 'error' && !m.text().includes('409')) pageErrors.push(`console: ${m.text()}`);
  });
}, 90_000);

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  await cli?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 30_000);

const member = (site: string, address: string): string => `tr[data-member="${site}|${address}"]`;

describe('status page in chromium', () => {
  it('loads, asks for a read token, then renders sites and pools', async () => {
    await page.goto(`http://127.0.0.1:${cli!.apiPort}/`);
    await page.getByText('Give a read token to see the state.').waitFor();
    expect(await page.locator('[data-site]').count()).toBe(0);
    await page.fill('#read-token', READ);
    await page.press('#read-token', 'Enter');
    await page.locator('tr[data-site="tokyo"]').waitFor();
    expect(await page.locator('[data-instance]').textContent()).toBe('ns-browser');
    expect(await page.locator('tr[data-site="osaka"] [data-col="agent"]').textContent()).toBe('lb-osaka');
    expect(await page.locator(`${member('tokyo', TOKYO)} [data-col="why"]`).textContent()).toBe('up');
    expect(await page.locator('[data-conn]').getAttribute('data-conn')).toBe('live');
    // the token is kept for the tab, never put in the URL
    expect(page.url()).not.toContain(READ);
    // the import map and the modules ran under the page's CSP without a violation
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it('changes on a signed report without a reload', async () => {
    // page functions run in the browser: strings, as this project's TypeScript has no DOM types
    await page.evaluate('window.statusMarker = 42');
    const next = seq + 1;
    const t0 = performance.now();
    expect((await postReport(cli!.apiPort, 'tokyo', [{ address: TOKYO, state: 'up' }], { seq: ++seq, secret: SECRETS.tokyo, agent: 'lb-tokyo' })).status).toBe(200);
    await page.locator('tr[data-site="tokyo"] [data-col="seq"]', { hasText: String(next) }).waitFor();
    const ms = performance.now() - t0;
    process.stdout.write(`status page: report -> page in ${ms.toFixed(0)} ms (report POST included)\n`);
    expect(await page.evaluate('window.statusMarker')).toBe(42);
  }, 60_000);

  it('drains a member from the button, and dig stops answering it', async () => {
    await page.fill('#admin-token', ADMIN);
    await page.press('#admin-token', 'Enter');
    await page.fill('#reason', 'browser test');
    await page.locator(`${member('tokyo', TOKYO)} button[data-action="drain"]`).click();
    await page.locator('[data-action-result="ok"]').waitFor();
    await page.locator(`${member('tokyo', TOKYO)} [data-col="why"]`, { hasText: 'drained by operator' }).waitFor();
    await page.locator('tr[data-override="tokyo|192.0.2.1"]', { hasText: 'browser test' }).waitFor();
    const after = await until('dig without the drained member', async () => {
      const a = await answers();
      return a.includes(TOKYO) ? undefined : a;
    });
    expect(after).toEqual([OSAKA]);
  }, 60_000);

  it('explains why the drained member is not answered', async () => {
    await page.fill('input[name="name"]', NAME);
    await page.fill('input[name="subnet"]', '203.0.113.0/24');
    await page.click('#explain button[type="submit"]');
    const reason = page.locator(`tr[data-candidate="tokyo|${TOKYO}"] [data-col="reason"]`);
    await reason.waitFor();
    expect(await reason.textContent()).toContain('drained by operator');
    expect(await reason.textContent()).toContain('browser test');
    expect(await page.locator(`tr[data-candidate="osaka|${OSAKA}"]`).textContent()).toContain('selected');
    expect(await page.locator('[data-explain-result] [data-col="answer"]').textContent()).toContain(OSAKA);
  }, 60_000);

  it('takes screenshots at desktop and phone sizes, and fits the phone', async () => {
    await page.screenshot({ path: path.join(SCREENSHOTS, 'gslb-dns-status-1366x768.png'), fullPage: false });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: path.join(SCREENSHOTS, 'gslb-dns-status-390x844.png'), fullPage: false });
    await page.screenshot({ path: path.join(SCREENSHOTS, 'gslb-dns-status-390x844-full.png'), fullPage: true });
    // the page fits the phone's width: wide tables scroll inside their card
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    // undrain, then back to both answers
    await page.locator(`${member('tokyo', TOKYO)} button[data-action="undrain"]`).click();
    await until('dig with both members again', async () => ((await answers()).length === 2 ? true : undefined));
  }, 60_000);

  it('shows a pool guard refusal with its breaches, and retries with force and the reason', async () => {
    await page.setViewportSize({ width: 1366, height: 768 });
    await page.fill('#reason', '');
    const row = page.locator(`tr[data-site="osaka"]`);
    await row.locator('button[data-action="drain"]').click();
    const refused = page.locator('[data-action-result="error"]');
    await refused.waitFor();
    expect(await refused.textContent()).toContain('refused by guard');
    expect(await refused.textContent()).toContain('pool api: needs 1 serving, would have 0 (now 1)');
    // force needs a reason: the retry stays disabled until one is typed
    const retry = refused.locator('button', { hasText: 'Retry with force' });
    expect(await retry.isDisabled()).toBe(true);
    await page.fill('#reason', 'failover drill');
    await retry.click();
    await page.locator('[data-action-result="ok"]', { hasText: 'forced past the guard' }).waitFor();
    await page.locator('tr[data-override="osaka|"]', { hasText: 'failover drill' }).waitFor();
    await page.locator('[data-pool="api"] .badge.failopen').waitFor();
    await row.locator('button[data-action="release"]').click();
    await page.locator('tr[data-override="osaka|"]').waitFor({ state: 'detached' });
    expect(pageErrors).toEqual([]);
  }, 60_000);
});
