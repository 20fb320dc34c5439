/**
 * The drill's HTML report in a real browser (Debian's chromium driven by playwright-core), opened
 * from disk: it loads without errors, asks the network for nothing, and shows the lanes and the
 * outcome. Screenshots at 1366x768 (viewport and full page) and 390x844 go to
 * test-results/screenshots/ (git-ignored).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { renderDrillHtml } from '../../drill/report-html.js';
import { ROOT } from '../helpers/server.js';
import { drainDrill } from './fixture.js';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = path.join(ROOT, 'test-results/screenshots');
/** A bound on each wait in the page, not a claim about speed. */
const WAIT_MS = 10_000;

let dir: string;
let fileUrl: string;
let browser: Browser | undefined;
let page: Page;
const pageErrors: string[] = [];
const requests: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'gslb-drill-report-'));
  const file = path.join(dir, 'drill report.html');
  await writeFile(file, renderDrillHtml(drainDrill()));
  fileUrl = pathToFileURL(file).href;
  await mkdir(SCREENSHOTS, { recursive: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], headless: true, timeout: 30_000 });
  page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
  page.setDefaultTimeout(WAIT_MS);
  page.on('pageerror', (e) => { pageErrors.push(`pageerror: ${e.message}`); });
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') pageErrors.push(`console ${m.type()}: ${m.text()}`); });
  page.on('request', (req) => { requests.push(req.url()); });
}, 60_000);

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  if (dir) await rm(dir, { recursive: true, force: true });
}, 30_000);

describe('drill HTML report in chromium', () => {
  it('opens from disk with no console errors and no request but the file itself', async () => {
    const response = await page.goto(fileUrl, { waitUntil: 'load' });
    expect(response?.ok() ?? true).toBe(true);
    expect(pageErrors).toEqual([]);
    expect(requests).toEqual([fileUrl]);
  });

  it('shows the outcome badge, the lanes of each instance × vantage, the client lanes and the marks', async () => {
    const badge = page.locator('.badge.outcome');
    await expect.poll(() => badge.isVisible()).toBe(true);
    expect(await badge.textContent()).toBe('SUCCEEDED');
    const svg = page.locator('svg.timeline');
    expect(await svg.isVisible()).toBe(true);
    const box = await svg.boundingBox();
    expect(box?.width).toBeGreaterThan(1200);
    for (const lane of ['ns1 @ east', 'ns2 @ east', 'ns1 @ west', 'ns2 @ west']) {
      expect(await page.locator(`g.answers[data-lane="${lane}"]`).isVisible()).toBe(true);
    }
    expect(await page.locator('g.clients').count()).toBe(2);
    expect(await page.locator('g.mark-fault').count()).toBe(2);
    expect(await page.locator('g.mark-rollback').isVisible()).toBe(true);
    expect(await page.locator('g.segment[data-answer="osaka"]').count()).toBe(4);
    // the page fits the window: nothing scrolls sideways at 1366 px
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(1366);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'drill-report-1366x768.png') });
    await page.screenshot({ path: path.join(SCREENSHOTS, 'drill-report-1366x768-full.png'), fullPage: true });
  });

  it('stays usable on a phone: the timeline scrolls inside its card, not the page', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    expect(await page.locator('.badge.outcome').isVisible()).toBe(true);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'drill-report-390x844.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
    expect(requests).toEqual([fileUrl]);
  });
});
