// The web client's figures for BENCHMARKS.md: the first screen's compressed size, how long a live post
// takes to be on another member's screen after its acknowledgement, long tasks while paging back
// through 10,000 posts, and Lighthouse's mobile scores for the timeline. Prints a table and writes
// test-results/web-bench.json.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { expect, test } from '@playwright/test';
import { Api, patientGroup } from '../tests/e2e/api';
import { PASSWORD, Server } from '../tests/e2e/server';

const DIST = resolve(import.meta.dirname, '../dist');
const OUT = resolve(import.meta.dirname, '../test-results');
const figures: Record<string, unknown> = {};

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

test('web client figures', async ({ browser }) => {
  // 1. The first screen: index.html and what it loads, gzip-compressed.
  const html = readFileSync(join(DIST, 'index.html'), 'utf8');
  const assets = readdirSync(join(DIST, 'assets')).filter((f) => html.includes(f));
  const sizes = [html, ...assets.map((f) => readFileSync(join(DIST, 'assets', f)))].map((b) => gzipSync(b, { level: 9 }).length);
  figures.first_screen_kb_gzip = +(sizes.reduce((a, b) => a + b, 0) / 1024).toFixed(1);

  const server = new Server({ RENKEI_LOG_FILTER: 'warn,renkei_server=info,renkei_server::access=warn' });
  await server.start();
  try {
    server.createAdmin();
    const admin = await Api.login(server.url, 'admin');
    const doctor = await admin.member('dr-suzuki', '鈴木 一郎', 'physician', '鈴木内科クリニック', '0422-22-3333');
    const nurseApi = await admin.member('ns-sato', '佐藤 花子', 'nurse', 'むさしの訪問看護ステーション');
    const group = await patientGroup(doctor, '山田 花子 様', [{ login: 'ns-sato', api: nurseApi }]);

    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.url}/#/login`);
    await page.getByLabel('ログインID').fill('ns-sato');
    await page.getByLabel('パスワード').fill(PASSWORD);
    await page.getByRole('button', { name: 'ログイン' }).click();
    await expect(page.getByRole('heading', { name: '担当グループ' })).toBeVisible();
    await page.goto(`${server.url}/#/g/${group}`);
    await expect(page.getByRole('heading', { name: '山田 花子 様' })).toBeVisible();

    // 2. A live post: from the author's acknowledgement to its text on the nurse's screen.
    await page.evaluate(() => {
      const seen: Record<string, number> = {};
      (window as unknown as { __seen: Record<string, number> }).__seen = seen;
      new MutationObserver(() => {
        for (const el of document.querySelectorAll('article .body')) {
          const text = el.textContent ?? '';
          if (text.startsWith('live-') && !(text in seen)) seen[text] = Date.now();
        }
      }).observe(document.body, { childList: true, subtree: true, characterData: true });
    });
    const acked: Record<string, number> = {};
    for (let i = 0; i < 100; i++) {
      const body = `live-${i}`;
      await doctor.call('POST', `/groups/${group}/posts`, { kind: 'update', body, client_msg_id: body });
      acked[body] = Date.now();
      await page.waitForFunction((b) => b in (window as unknown as { __seen: Record<string, number> }).__seen, body, { timeout: 10_000 });
    }
    const seen = await page.evaluate(() => (window as unknown as { __seen: Record<string, number> }).__seen);
    const live = Object.keys(acked).map((b) => Math.max(0, seen[b]! - acked[b]!)).sort((a, b) => a - b);
    figures.live_post_ms = { p50: percentile(live, 50), p95: percentile(live, 95), max: live.at(-1), n: live.length };

    // 3. Paging back through 10,000 posts: long tasks (> 50 ms) while the older pages load.
    const total = 10_000;
    for (let start = 100; start < total; start += 500) {
      await Promise.all(
        Array.from({ length: 8 }, async (_, w) => {
          for (let i = start + w; i < Math.min(start + 500, total); i += 8) {
            await doctor.call('POST', `/groups/${group}/posts`, { kind: 'update', body: `経過記録 ${i}：血圧 120/80、食事 8 割、排便あり。`, client_msg_id: `bulk-${i}` });
          }
        }),
      );
    }
    await page.reload();
    await expect(page.getByRole('heading', { name: '山田 花子 様' })).toBeVisible();
    await expect(page.locator('article').first()).toBeVisible();
    await page.evaluate(() => {
      const tasks: number[] = [];
      (window as unknown as { __long: number[] }).__long = tasks;
      new PerformanceObserver((list) => list.getEntries().forEach((e) => tasks.push(e.duration))).observe({ type: 'longtask', buffered: false });
    });
    const started = Date.now();
    let pages = 0;
    // The measurement itself stays light: one element's attribute, polled every 50 ms (Playwright's
    // locators and querySelectorAll over thousands of nodes would be long tasks of their own).
    const firstShown = () =>
      page.evaluate(() => Number(document.querySelector('[role=feed] article')?.getAttribute('data-seq') ?? 0));
    while (pages < 400 && (await firstShown()) > 1) {
      const before = await firstShown();
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.waitForFunction(
        (n) => Number(document.querySelector('[role=feed] article')?.getAttribute('data-seq') ?? 0) < n,
        before,
        { timeout: 10_000, polling: 50 },
      );
      pages += 1;
    }
    const long = await page.evaluate(() => (window as unknown as { __long: number[] }).__long);
    figures.paging_back = {
      first_post_reached: (await firstShown()) === 1,
      posts_on_screen: await page.evaluate(() => document.getElementsByTagName('article').length),
      pages,
      seconds: (Date.now() - started) / 1000,
      long_tasks_over_50ms: long.length,
      longest_task_ms: long.length ? Math.round(Math.max(...long)) : 0,
    };
    // Paged back to the very first post; what is on screen runs without a gap or a repeat.
    const seqs = await page.locator('article').evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-seq'))));
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));

    // 4. Lighthouse, mobile profile, on the timeline screen (signed in with a cookie session).
    const login = await fetch(`${server.url}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: server.url },
      body: JSON.stringify({ login: 'ns-sato', password: PASSWORD, session: 'cookie' }),
    });
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
    mkdirSync(OUT, { recursive: true });
    const report = join(OUT, 'lighthouse.json');
    // A small group for Lighthouse's page (it scores one load; the 10,000 posts are the paging figure).
    const small = await patientGroup(doctor, '田中 一郎 様', [{ login: 'ns-sato', api: nurseApi }]);
    for (let i = 0; i < 30; i++) await doctor.call('POST', `/groups/${small}/posts`, { kind: 'update', body: `訪問記録 ${i}`, client_msg_id: `lh-${i}` });
    execFileSync(
      'npx',
      [
        '--yes', 'lighthouse@12.2.3', `${server.url}/#/g/${small}`,
        '--only-categories=performance,accessibility,best-practices',
        '--form-factor=mobile', '--output=json', `--output-path=${report}`, '--quiet',
        `--extra-headers=${JSON.stringify({ Cookie: cookie })}`,
        '--chrome-flags=--headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update --disable-sync --no-first-run',
      ],
      { env: { ...process.env, CHROME_PATH: process.env.CHROMIUM ?? '/usr/bin/chromium' }, stdio: 'inherit', timeout: 600_000 },
    );
    const lh = JSON.parse(readFileSync(report, 'utf8')) as { categories: Record<string, { score: number }> };
    figures.lighthouse_mobile = Object.fromEntries(Object.entries(lh.categories).map(([k, v]) => [k, Math.round(v.score * 100)]));
    await context.close();
  } finally {
    await server.cleanup();
  }
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, 'web-bench.json'), JSON.stringify(figures, null, 2));
  console.log(JSON.stringify(figures, null, 2));
});
