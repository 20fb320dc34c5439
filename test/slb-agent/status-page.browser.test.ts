/**
 * The agent's status page in a real browser (Debian's chromium driven by playwright-core) against
 * a real agent: its API listening on a port from the OS, a proxy-forwarded VIP over real TCP
 * backends with real tcp checks, a report sink that accepts and a DNS URL that refuses, and a udp
 * pinger on lo. The page shows the VIP, its real servers and the rest; a drain and a stopped
 * backend reach the page without a reload; a stopped API shows the error banner. Screenshots at
 * 1366x768 and 390x844 go to test-results/screenshots/ (git-ignored).
 * Waits are bounds on how long to wait, never assertions of speed.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { chromium } from 'playwright-core';
import type { Browser, Page, Request } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAgent } from '../../slb-agent/agent.js';
import type { Agent, AgentStatus } from '../../slb-agent/agent.js';
import { createAgentApi } from '../../slb-agent/api/app.js';
import { parseAgentConfig } from '../../slb-agent/config.js';
import { echoBackend, freePort, sleep } from '../helpers/agent-site.js';
import type { EchoBackend } from '../helpers/agent-site.js';
import { startReportSink } from '../helpers/report-sink.js';
import type { ReportSink } from '../helpers/report-sink.js';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = path.resolve(import.meta.dirname, '../../test-results/screenshots');
/** bounds: how long a step may take on a shared, loaded machine before the test gives up */
const LAUNCH_MS = 30_000;
const SHOW_MS = 20_000;

/** state changes through the agent API need an admin token */
const ADMIN_TOKEN = 'status-page-admin-0123456789';
const READ_TOKEN = 'status-page-read-0123456789';
let backends: EchoBackend[];
let sink: ReportSink;
let agent: Agent;
let app: FastifyInstance;
let appClosed = false;
let base: string;
let browser: Browser | undefined;
let page: Page;
const problems: string[] = [];
// page scripts are strings: the tests compile without the DOM library

async function status(): Promise<AgentStatus> {
  return (await fetch(`${base}/status`)).json() as Promise<AgentStatus>;
}

/** Polls `cond` (bounded); the assertion after it says what was expected. */
async function until(cond: () => Promise<boolean>, ms = SHOW_MS): Promise<void> {
  const end = performance.now() + ms;
  while (!(await cond()) && performance.now() < end) await sleep(20);
}

const rsRow = (b: EchoBackend): string => `tr[data-rs="127.0.0.1:${b.port}"]`;

beforeAll(async () => {
  backends = await Promise.all(['b1', 'b2'].map(echoBackend));
  sink = await startReportSink();
  const vipPort = await freePort();
  const config = parseAgentConfig(`
site: tokyo
agent: lb1
secret: env:S
dns: [ "${sink.url}", "http://127.0.0.1:1" ]
api: 127.0.0.1:0
vips:
  - name: web
    address: 127.0.0.1
    port: ${vipPort}
    forwarder: { mode: proxy, scheduler: rr }
    check: { type: tcp, interval: 200ms, timeout: 100ms, rise: 1, fall: 1, jitter: 0 }
    realServers:
${backends.map((b) => `      - { address: 127.0.0.1, port: ${b.port} }`).join('\n')}
pinger:
  interfaces:
    - name: lo
      peers: [127.0.0.1]
      interval: 200ms
      timeout: 100ms
      method: udp
`, 'site.yaml', { S: 'tokyo-secret-0123456789abcdef-0123456789' });
  agent = createAgent({ config, logger: pino({ level: 'silent' }) });
  app = await createAgentApi({ agent, adminToken: ADMIN_TOKEN });
  agent.start();
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  await until(async () => {
    const s = await status();
    return s.vips[0]?.healthy === 2 && s.vips[0].forwarder?.lastApply?.ok === true
      && (s.pinger?.interfaces[0]?.peers[0]?.answered ?? 0) >= 1;
  });
  await mkdir(SHOTS, { recursive: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], headless: true, timeout: LAUNCH_MS });
  page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
  page.setDefaultTimeout(SHOW_MS);
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused/i.test(m.text())) problems.push(`console: ${m.text()}`);
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  if (!appClosed) await app?.close();
  await agent?.stop();
  await sink?.close();
  await Promise.all((backends ?? []).map((b) => b.stop()));
}, 60_000);

describe('agent status page in chromium', () => {
  it('loads and shows the VIP, its real servers, report delivery and pinger peers', async () => {
    await page.goto(base);
    const vip = page.locator('tr[data-vip="web"]');
    await vip.locator('.state[data-state="up"]').waitFor();
    expect(await vip.textContent()).toContain('proxy · rr');
    await vip.locator('.ok', { hasText: 'ok' }).waitFor();
    for (const b of backends) await page.locator(`${rsRow(b)} .state[data-state="up"]`).waitFor();
    expect(await page.locator(rsRow(backends[0]!)).textContent()).toMatch(/pass/);
    // one DNS instance accepts, the other refuses (its failures count up)
    await page.locator(`tr[data-dns^="${sink.url}/"] .ok`).waitFor();
    await page.locator('tr[data-dns^="http://127.0.0.1:1/"] .bad').waitFor();
    await page.locator('tr[data-peer="lo 127.0.0.1"] .state[data-state="up"]').waitFor();
    await page.locator('#updated').waitFor();
    expect(problems).toEqual([]);
    await page.screenshot({ path: path.join(SHOTS, 'agent-1366x768.png'), fullPage: true });
  });

  it('a drain and a stopped backend appear without a reload', async () => {
    // a reload would lose this marker
    await page.evaluate("window.marker = 'still here'");
    const [b1, b2] = backends as [EchoBackend, EchoBackend];
    const r = await fetch(`${base}/realservers/drain`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_TOKEN}` }, body: JSON.stringify({ vip: 'web', address: '127.0.0.1', port: b1.port }),
    });
    expect(r.status).toBe(200);
    await page.locator(`${rsRow(b1)} .state[data-state="drain"]`).waitFor();
    await b2.stop();
    await until(async () => (await status()).vips[0]?.realServers.find((x) => x.port === b2.port)?.health.state === 'down');
    await page.locator(`${rsRow(b2)} .state[data-state="down"]`).waitFor();
    expect(await page.locator(rsRow(b2)).textContent()).toMatch(/fail/);
    // neither serves now: the VIP's healthy count follows
    await page.locator('tr[data-vip="web"] td', { hasText: /^0\/2$/ }).waitFor();
    expect(await page.evaluate('window.marker')).toBe('still here');
    expect(problems).toEqual([]);
  });

  it('stops asking while the tab is hidden and asks at once when it is shown again', async () => {
    let asked = 0;
    const count = (r: Request): void => { if (r.url() === `${base}/status`) asked++; };
    page.on('request', count);
    try {
      // headless chromium never hides a tab: the page is told as a browser would tell it
      const setHidden = (hidden: boolean): Promise<unknown> => page.evaluate(
        `Object.defineProperty(document, 'hidden', { configurable: true, get: () => ${hidden} }); document.dispatchEvent(new Event('visibilitychange'))`);
      await setHidden(true);
      // a request started just before may still be reported; none may start after it
      await sleep(500);
      const before = asked;
      await sleep(5000); // two and a half poll intervals: an absence, not a speed, is checked
      expect(asked).toBe(before);
      const shown = page.waitForRequest(`${base}/status`);
      await setHidden(false);
      await shown;
      expect(asked).toBeGreaterThan(before);
      expect(await page.evaluate('window.marker')).toBe('still here');
    } finally {
      page.off('request', count);
    }
  });

  it('fits a phone: the page does not scroll sideways, its tables do', async () => {
    const phone = await browser!.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    try {
      phone.setDefaultTimeout(SHOW_MS);
      await phone.goto(base);
      await phone.locator('tr[data-vip="web"]').waitFor();
      await phone.locator('tr[data-peer="lo 127.0.0.1"]').waitFor();
      const widths = await phone.evaluate<{ page: number; view: number }>('({ page: document.documentElement.scrollWidth, view: window.innerWidth })');
      expect(widths.page).toBeLessThanOrEqual(widths.view);
      await phone.screenshot({ path: path.join(SHOTS, 'agent-390x844.png'), fullPage: true });
    } finally {
      await phone.close();
    }
  });

  it('asks for a read token when the agent has one, and shows the status once given it', async () => {
    const guarded = await createAgentApi({ agent, adminToken: ADMIN_TOKEN, readToken: READ_TOKEN });
    const other = await browser!.newPage();
    try {
      other.setDefaultTimeout(SHOW_MS);
      await guarded.listen({ host: '127.0.0.1', port: 0 });
      await other.goto(`http://127.0.0.1:${(guarded.server.address() as AddressInfo).port}`);
      await other.locator('#needs-token').waitFor();
      expect(await other.locator('tr[data-vip="web"]').count()).toBe(0);
      await other.fill('#read-token', 'not-the-read-token-0123');
      await other.click('#needs-token button');
      await other.locator('#needs-token', { hasText: 'The read token was refused.' }).waitFor();
      await other.fill('#read-token', READ_TOKEN);
      await other.click('#needs-token button');
      await other.locator('tr[data-vip="web"]').waitFor();
      expect(await other.locator('#needs-token').count()).toBe(0);
      expect(problems).toEqual([]);
    } finally {
      await other.close();
      await guarded.close();
    }
  });

  it("reads the agent's times on the agent's clock (from the Date header)", async () => {
    const other = await browser!.newPage();
    try {
      other.setDefaultTimeout(SHOW_MS);
      // an agent whose clock is an hour ahead of the browser's: it started an hour ago by the browser's clock
      await other.route(`${base}/status`, async (route) => {
        const res = await route.fetch();
        await route.fulfill({ response: res, headers: { ...res.headers(), date: new Date(Date.now() + 3_600_000).toUTCString() } });
      });
      await other.goto(base);
      await other.locator('#started', { hasText: /^(59|60|61)m ago$/ }).waitFor();
      expect(await other.locator('#updated').textContent()).toMatch(/^updated \d+s ago$/);
    } finally {
      await other.close();
    }
  });

  it('says so when the agent cannot be reached, keeping the last data', async () => {
    appClosed = true;
    await app.close();
    await page.locator('#error[role="alert"]').waitFor();
    expect(await page.locator('#error').textContent()).toContain('Cannot reach the agent');
    expect(await page.locator('tr[data-vip="web"]').count()).toBe(1);
    expect(await page.evaluate('window.marker')).toBe('still here');
  });
});
