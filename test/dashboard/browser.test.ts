/**
 * The dashboard in a real headless Chromium (Debian's `chromium`, driven by
 * playwright-core through executablePath): the overview of a small real
 * campaign, a click through to a signature, its rendered report, the
 * download of repro.c, and a screenshot of each page kept as test
 * artifacts under test-artifacts/dashboard/ (ignored by git).
 *
 * Needs /usr/bin/chromium (infra/setup.sh installs it). As root Chromium
 * runs only with --no-sandbox. In CI a missing Chromium fails the test; on a
 * developer machine without it the test is skipped and says so.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DashboardServer } from '../../coordinator/dashboard/server.ts';
import { ROOT, killAll, quietLog } from '../farm/helpers/farm.ts';
import { type CampaignFixture, smallCampaign } from './helpers/fixture.ts';

const CHROMIUM = process.env.BLOCKFARM_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = join(ROOT, 'test-artifacts', 'dashboard');
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env.CI) throw new Error(`${CHROMIUM} is missing: infra/setup.sh installs Debian's chromium for this test`);
if (!haveChromium) console.warn(`dashboard browser test skipped: no ${CHROMIUM} (apt-get install chromium)`);

let fixture: CampaignFixture;
let server: DashboardServer;
let browser: Browser;
let base: string;

beforeAll(async () => {
  if (!haveChromium) return;
  fixture = await smallCampaign('dash-browser', { seed: 11 });
  server = new DashboardServer({ redisUrl: fixture.redis.url, dataDir: fixture.dataDir, namespace: fixture.namespace, port: 0, log: quietLog(), sampleEveryMs: 1000 });
  base = await server.start();
  // As root (CI) Chromium refuses to start without --no-sandbox; containers often have a small /dev/shm.
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...(process.getuid?.() === 0 ? ['--no-sandbox'] : []), '--disable-dev-shm-usage'] });
  mkdirSync(ARTIFACTS, { recursive: true });
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await killAll();
  await fixture?.cleanup();
});

describe.skipIf(!haveChromium)('the dashboard in headless Chromium', () => {
  it('shows the overview, follows a signature link, renders its report and downloads repro.c', async () => {
    const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1366, height: 900 } });
    const page = await context.newPage();
    const external: string[] = [];
    const failures: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(base)) external.push(r.url());
    });
    page.on('pageerror', (e) => failures.push(e.message));

    await page.goto(`${base}/`);
    expect(await page.locator('h1').innerText()).toBe('Campaign overview');
    const overview = await page.locator('#live').innerText();
    expect(overview).toContain(fixture.campaign);
    expect(overview).toContain('testonly_corrupt:model');
    expect(overview).toMatch(/cases executed/);
    await page.screenshot({ path: join(ARTIFACTS, 'overview.png'), fullPage: true });

    // The live update swaps the body in without a reload.
    await page.waitForFunction(() => /updated/.test(document.getElementById('live-status')?.textContent ?? ''), undefined, { timeout: 15_000 });

    await page.getByRole('link', { name: 'Signatures', exact: true }).first().click();
    await page.waitForURL(`${base}/signatures`);
    expect(await page.locator('h1').innerText()).toBe('Signatures');
    const link = page.locator(`a[href="/signatures/${fixture.signature}"]`);
    await link.click();
    await page.waitForURL(`${base}/signatures/${fixture.signature}`);
    const body = await page.locator('#live').innerText();
    expect(body).toContain('What the model allowed and what the kernel did');
    expect(body).toContain('bytes no op wrote');
    // The report, rendered: its headings are elements, not markdown text.
    expect(await page.locator('.report h3', { hasText: 'Reproduce' }).count()).toBe(1);
    expect(await page.locator('.report').innerText()).not.toContain('## ');
    await page.screenshot({ path: join(ARTIFACTS, 'signature.png'), fullPage: true });

    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('a', { hasText: /^repro\.c$/ }).click()]);
    expect(download.suggestedFilename()).toBe(`${fixture.signature}-repro.c`);
    const saved = join(ARTIFACTS, download.suggestedFilename());
    await download.saveAs(saved);
    const c = readFileSync(saved, 'utf8');
    expect(c).toContain('#include');
    expect(c).toContain(fixture.signature);

    expect(external, 'the pages load nothing from other sites').toEqual([]);
    expect(failures, 'no script errors').toEqual([]);
    await context.close();
  }, 120_000);
});
