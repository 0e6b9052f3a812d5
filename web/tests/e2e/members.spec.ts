// The members' web client, as a care team uses it: a physician, a visiting nurse and a care manager,
// each in a browser of their own (phone size), against a real renkei-server on SQLite.
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test, type Browser, type BrowserContext, type Page } from '@playwright/test';
import { Api, patientGroup } from './api';
import { PASSWORD, Server } from './server';
import { accessible, shot, signIn } from './screens';

const LABEL = '山田 花子 様';

/** The code an authenticator app shows for a base32 secret (RFC 6238, SHA-1, 30 s, 6 digits). */
function totp(secret: string, at = Date.now()): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secret.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g)!.map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 30_000)));
  const h = createHmac('sha1', key).update(counter).digest();
  const o = h[h.length - 1]! & 0xf;
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

async function openGroup(page: Page, label: string) {
  await page.getByRole('link', { name: new RegExp(label) }).first().click();
  await expect(page.getByRole('heading', { name: label })).toBeVisible();
}

async function write(page: Page, text: string) {
  await page.getByPlaceholder('経過や気づいたことを書いてください（緊急の連絡は電話で）').fill(text);
  await page.getByRole('button', { name: '送信' }).click();
}

const feed = (page: Page) => page.getByTestId('timeline');

test.describe.configure({ mode: 'serial' });

let server: Server;
let admin: Api;
let doctorApi: Api;
let cmApi: Api;
let group: string;
let browser: Browser;
let nurse: Page, doctor: Page, cm: Page;
const contexts: BrowserContext[] = [];

test.beforeAll(async ({ browser: b }) => {
  browser = b;
  server = new Server({ RENKEI_HOUSEKEEPING_SECONDS: '1' });
  await server.start();
  server.createAdmin();
  admin = await Api.login(server.url, 'admin');
  doctorApi = await admin.member('dr-suzuki', '鈴木 一郎', 'physician', '鈴木内科クリニック', '0422-22-3333');
  cmApi = await admin.member('cm-kato', '加藤 美咲', 'care_manager', 'むさしの居宅介護支援');
  for (const _ of [0, 1, 2]) {
    const c = await browser.newContext();
    contexts.push(c);
  }
  const pages = await Promise.all(contexts.map((c) => c.newPage()));
  [nurse, doctor, cm] = [pages[0]!, pages[1]!, pages[2]!];
  if (process.env.RENKEI_E2E_DEBUG) nurse.on('console', (m) => console.log('nurse:', m.text()));
});

test.afterAll(async () => {
  for (const c of contexts) await c.close();
  await server.cleanup();
});

test('a nurse sets her password from the setup link, signs in and joins the patient group', async () => {
  const { token } = await admin.register('ns-sato', '佐藤 花子', 'nurse', 'むさしの訪問看護ステーション');
  group = await patientGroup(doctorApi, LABEL, [{ login: 'ns-sato' }, { login: 'cm-kato', api: cmApi }]);

  await nurse.goto(`${server.url}/#/setup/${token}`);
  await expect(nurse.getByLabel('セットアップトークン')).toHaveValue(token);
  await expect(nurse.getByText('13文字以上')).toBeVisible();
  await accessible(nurse, 'setup');
  await shot(nurse, 'setup');
  await nurse.getByLabel('新しいパスワード', { exact: true }).fill(PASSWORD);
  await nurse.getByLabel('新しいパスワード（確認）').fill(PASSWORD);
  await nurse.getByRole('button', { name: 'パスワードを設定する' }).click();
  await expect(nurse.getByText('パスワードを設定しました')).toBeVisible();

  await signIn(nurse, server.url, 'ns-sato');
  await accessible(nurse, 'login');
  await expect(nurse.getByText(LABEL)).toBeVisible();
  await nurse.getByRole('button', { name: '承諾する' }).click();
  await expect(nurse.getByRole('link', { name: new RegExp(LABEL) })).toBeVisible();
  // The session is a cookie no script can read.
  expect(await nurse.evaluate(() => document.cookie)).toBe('');
  const cookies = await contexts[0]!.cookies();
  const session = cookies.find((c) => c.name === 'renkei_session');
  expect(session?.httpOnly && session.secure && session.sameSite === 'Strict').toBe(true);
});

test('a post appears live in the timelines of the others, with its author and profession', async () => {
  await signIn(doctor, server.url, 'dr-suzuki');
  await signIn(cm, server.url, 'cm-kato');
  for (const p of [nurse, doctor, cm]) await openGroup(p, LABEL);
  await write(nurse, '訪問しました。血圧 124/72、食事は8割');
  for (const p of [doctor, cm]) {
    const post = feed(p).getByRole('article').filter({ hasText: '血圧 124/72' });
    await expect(post).toContainText('佐藤 花子');
    await expect(post).toContainText('看護師');
    await expect(post).toContainText('むさしの訪問看護ステーション');
  }
  await accessible(nurse, 'timeline');
  await shot(nurse, 'timeline');
});

test('a treatment question reaches the attending physician only', async () => {
  await nurse.getByLabel('投稿の種類').selectOption('treatment_question');
  await write(nurse, '夜間の頓用薬を増やしてよいですか');
  await expect(feed(doctor).getByText('夜間の頓用薬を増やしてよいですか')).toBeVisible();
  await doctor.getByRole('link', { name: '一覧へ' }).click();
  await expect(doctor.getByRole('region', { name: 'あなた宛ての質問' })).toContainText('夜間の頓用薬');
  await accessible(doctor, 'groups');
  await shot(doctor, 'groups');
  await cm.getByRole('link', { name: '一覧へ' }).click();
  await expect(cm.getByText('あなた宛ての未回答の質問はありません。')).toBeVisible();
  await openGroup(doctor, LABEL);
  await openGroup(cm, LABEL);
});

test('an emergency is refused with the physician’s phone, and a false alarm is sent on confirmation', async () => {
  await write(nurse, '昨夜の急変はその後落ち着いています');
  const refusal = nurse.getByRole('alert').filter({ hasText: '緊急の連絡は電話でお願いします' });
  await expect(refusal).toBeVisible();
  await expect(refusal.getByRole('link', { name: /0422-22-3333/ })).toHaveAttribute('href', 'tel:0422-22-3333');
  await shot(nurse, 'emergency-refusal');
  await accessible(nurse, 'emergency refusal');
  // The text is still in the box; confirming sends it, once.
  await expect(nurse.getByPlaceholder(/経過や気づいたこと/)).toHaveValue('昨夜の急変はその後落ち着いています');
  await refusal.getByRole('button', { name: '緊急ではありません。このまま送信する' }).click();
  await expect(feed(doctor).getByText('昨夜の急変はその後落ち着いています')).toHaveCount(1);
});

test('見ました and an edit with its history reach the others live', async () => {
  const post = feed(doctor).getByRole('article').filter({ hasText: '血圧 124/72' });
  await post.getByRole('button', { name: '見ました', exact: true }).click();
  await expect(feed(nurse).getByRole('article').filter({ hasText: '血圧 124/72' }).getByRole('button', { name: '見ました 1人' })).toBeVisible();

  const seq = await feed(nurse).getByRole('article').filter({ hasText: '血圧 124/72' }).getAttribute('data-seq');
  const mine = feed(nurse).locator(`article[data-seq="${seq}"]`);
  await mine.getByRole('button', { name: '編集' }).click();
  await mine.getByRole('textbox').fill('訪問しました。血圧 132/80（訂正）、食事は8割');
  await mine.getByRole('button', { name: '保存' }).click();
  const edited = feed(doctor).getByRole('article').filter({ hasText: '132/80（訂正）' });
  await expect(edited.getByRole('button', { name: '編集済み' })).toBeVisible();
  await edited.getByRole('button', { name: '編集済み' }).click();
  await expect(edited.getByRole('list', { name: '編集履歴' }).getByRole('listitem')).toHaveCount(2);
});

test('two posts written offline wait in the outbox and each arrives once when the signal returns', async () => {
  await contexts[0]!.setOffline(true);
  await write(nurse, 'オフライン投稿その1');
  await write(nurse, 'オフライン投稿その2');
  await expect(nurse.getByTestId('pending')).toHaveCount(2);
  await expect(nurse.getByText('送信待ち（電波が戻ると送信されます）').first()).toBeVisible();
  await shot(nurse, 'offline-outbox');
  await contexts[0]!.setOffline(false);
  await nurse.evaluate(() => window.dispatchEvent(new Event('online')));
  await expect(nurse.getByTestId('pending')).toHaveCount(0, { timeout: 20_000 });
  for (const p of [doctor, nurse]) {
    await expect(feed(p).getByText('オフライン投稿その1')).toHaveCount(1);
    await expect(feed(p).getByText('オフライン投稿その2')).toHaveCount(1);
  }
  const page = await doctorApi.call<{ posts: { body: string }[] }>('GET', `/groups/${group}/posts?after=0&limit=500`);
  expect(page.posts.filter((p) => p.body.startsWith('オフライン投稿')).map((p) => p.body)).toEqual(['オフライン投稿その1', 'オフライン投稿その2']);
});

test('a wound photo taken offline waits with its post, then reaches the team upright and without its GPS data', async () => {
  const photo = join(import.meta.dirname, 'fixtures', 'wound-gps.jpg');
  expect(readFileSync(photo).includes('SERIAL-7F3A')).toBe(true);
  await contexts[0]!.setOffline(true);
  await nurse.getByTestId('attach-camera').setInputFiles(photo);
  await expect(nurse.getByRole('list', { name: '添付するファイル' })).toContainText('wound-gps.jpg');
  await write(nurse, '仙骨部の発赤、写真を共有します');
  await expect(nurse.getByTestId('pending')).toHaveCount(1);
  await expect(nurse.getByTestId('upload-progress')).toContainText('0 / 1');
  await contexts[0]!.setOffline(false);
  await nurse.evaluate(() => window.dispatchEvent(new Event('online')));
  await expect(nurse.getByTestId('pending')).toHaveCount(0, { timeout: 20_000 });

  const post = feed(doctor).getByRole('article').filter({ hasText: '仙骨部の発赤' });
  const thumb = post.getByRole('button', { name: 'wound-gps.jpg を拡大して見る' });
  await expect(thumb).toBeVisible();
  await expect.poll(() => thumb.locator('img').evaluate((i: HTMLImageElement) => i.naturalWidth)).toBeGreaterThan(0);
  await thumb.click();
  const viewer = doctor.getByRole('dialog', { name: 'wound-gps.jpg' });
  await expect(viewer).toBeVisible();
  // Orientation applied: the 96×64 picture tagged "rotate 90°" is stored 64 wide and 96 high.
  const size = () => viewer.locator('img').evaluate((i: HTMLImageElement) => [i.naturalWidth, i.naturalHeight]);
  await expect.poll(size).toEqual([64, 96]);
  await accessible(doctor, 'attachment-viewer');
  await shot(doctor, 'attachment-viewer');
  const src = await viewer.locator('img').getAttribute('src');
  const stored = await (await doctor.request.get(`${server.url}${src}`)).body();
  expect(stored.includes('SERIAL-7F3A')).toBe(false);
  expect(stored.includes('Exif')).toBe(false);
  await viewer.getByRole('button', { name: '閉じる' }).click();
  await expect(viewer).toBeHidden();
});

test('a half-written draft survives a reload', async () => {
  await nurse.getByPlaceholder(/経過や気づいたこと/).fill('書きかけの記録');
  await nurse.waitForTimeout(600);
  await nurse.reload();
  await expect(nurse.getByPlaceholder(/経過や気づいたこと/)).toHaveValue('書きかけの記録');
  await nurse.getByPlaceholder(/経過や気づいたこと/).fill('');
});

test('after the server restarts under an open page the timeline resumes without a gap', async () => {
  await server.stop();
  await expect(nurse.getByRole('status').filter({ hasText: /オフライン|再接続/ })).toBeVisible();
  await server.start();
  for (const i of [1, 2, 3]) {
    await doctorApi.call('POST', `/groups/${group}/posts`, { kind: 'update', body: `再起動後の指示 ${i}`, client_msg_id: `restart-${i}` });
  }
  for (const i of [1, 2, 3]) await expect(feed(nurse).getByText(`再起動後の指示 ${i}`)).toHaveCount(1, { timeout: 30_000 });
  const seqs = await feed(nurse).getByRole('article').evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-seq'))));
  expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => seqs[0]! + i));
});

test('text from a post is shown as text, never run', async () => {
  await write(nurse, '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">');
  await expect(feed(doctor).getByText('<script>window.__pwned = 1</script>', { exact: false })).toBeVisible();
  expect(await doctor.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  expect(await nurse.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
});

test('paging back through hundreds of earlier posts keeps the post being read in place', async () => {
  for (let start = 0; start < 300; start += 50) {
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        doctorApi.call('POST', `/groups/${group}/posts`, { kind: 'update', body: `過去の記録 ${start + i}`, client_msg_id: `page-${start + i}` }),
      ),
    );
  }
  await doctor.goto(`${server.url}/#/`);
  await openGroup(doctor, LABEL);
  const first = () => feed(doctor).getByRole('article').first();
  await expect(first()).toBeVisible();
  for (let round = 0; round < 20; round++) {
    const seq = Number(await first().getAttribute('data-seq'));
    if (seq === 1) break;
    const anchor = feed(doctor).locator(`article[data-seq="${seq}"]`);
    // Scrolling to the top is what loads the earlier posts; where the first post stood then is where it
    // must still stand once they are in.
    const before = await doctor.evaluate((s) => {
      window.scrollTo(0, 0);
      return document.querySelector(`[role=feed] article[data-seq="${s}"]`)!.getBoundingClientRect().top;
    }, seq);
    await expect.poll(async () => Number(await first().getAttribute('data-seq'))).toBeLessThan(seq);
    // The post that was first is exactly where it was: the earlier ones came in above it.
    await expect.poll(async () => Math.abs((await anchor.evaluate((e) => e.getBoundingClientRect().top)) - before)).toBeLessThan(2);
  }
  await expect(doctor.getByText('ここがこのグループの最初です')).toBeVisible();
  // What is on screen runs without a gap or a repeat from the very first post.
  const seqs = await feed(doctor).getByRole('article').evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-seq'))));
  expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
});

test('a community group refuses a post naming a patient, without naming anyone', async () => {
  const c = await admin.call<{ id: string }>('POST', '/admin/community-groups', { label: '武蔵野市 全体' });
  await admin.call('POST', `/admin/community-groups/${c.id}/members`, { user: 'ns-sato' });
  await nurse.goto(`${server.url}/#/`);
  await openGroup(nurse, '武蔵野市 全体');
  await write(nurse, '山田 花子さんの件で相談です');
  await expect(nurse.getByRole('alert')).toHaveText('地域グループには個別の患者さんの情報を書けません。患者さんのグループに投稿してください。');
  await expect(nurse.getByPlaceholder(/経過や気づいたこと/)).toHaveValue('山田 花子さんの件で相談です');
  await nurse.getByPlaceholder(/経過や気づいたこと/).fill('');
});

test('availability hours are kept, and a sender is told who is off hours', async () => {
  await cm.goto(`${server.url}/#/me`);
  await cm.getByRole('button', { name: '時間帯を追加' }).click();
  // Never: a window of one minute on no day at all leaves the care manager always off hours.
  for (const d of ['月', '火', '水', '木', '金']) await cm.getByLabel(d).uncheck();
  await cm.getByLabel('土').check();
  await cm.getByLabel('開始').fill('03:00');
  await cm.getByLabel('終了').fill('03:01');
  await cm.getByLabel('希望する連絡方法').fill('急ぎは事業所へ電話');
  await cm.getByRole('button', { name: '保存', exact: true }).click();
  await expect(cm.getByText('保存しました。', { exact: true })).toBeVisible();
  await accessible(cm, 'account');
  await shot(cm, 'account');
  await cm.reload();
  await expect(cm.getByLabel('希望する連絡方法')).toHaveValue('急ぎは事業所へ電話');

  await nurse.goto(`${server.url}/#/g/${group}`);
  await nurse.getByLabel('投稿の種類').selectOption('care_plan_question');
  await write(nurse, 'デイサービスの回数を増やせますか');
  const notice = nurse.getByRole('status').filter({ hasText: '対応時間外' });
  await expect(notice).toContainText('加藤 美咲');
  await expect(notice).toContainText('急ぎは事業所へ電話');
});

test('TOTP: enrolment with a QR code, then the 6-digit step at sign-in', async () => {
  await nurse.goto(`${server.url}/#/me`);
  await nurse.getByRole('button', { name: '設定を始める' }).click();
  await expect(nurse.getByRole('img', { name: 'QR' })).toBeVisible();
  const secret = (await nurse.getByTestId('totp-secret').textContent())!.trim();
  await nurse.getByLabel('確認コード（6桁）').fill(totp(secret));
  await nurse.getByRole('button', { name: '確認する' }).click();
  await expect(nurse.getByText('二要素認証を設定しました')).toBeVisible();
  // The recovery codes, shown this once.
  await expect(nurse.getByTestId('recovery-codes').getByRole('listitem')).toHaveCount(10);
  const recoveryCode = (await nurse.getByTestId('recovery-codes').getByRole('listitem').first().textContent())!.trim();
  await accessible(nurse, 'recovery codes');

  await nurse.getByRole('button', { name: 'ログアウト' }).click();
  await expect(nurse.getByRole('heading', { name: 'ログイン' })).toBeVisible();
  await nurse.getByLabel('ログインID').fill('ns-sato');
  await nurse.getByLabel('パスワード').fill(PASSWORD);
  await nurse.getByRole('button', { name: 'ログイン' }).click();
  await expect(nurse.getByLabel('確認コード（6桁）')).toBeVisible();
  // The step just used at enrolment is spent; the next one is accepted.
  await nurse.getByLabel('確認コード（6桁）').fill(totp(secret, Date.now() + 30_000));
  await nurse.getByRole('button', { name: 'ログイン' }).click();
  await expect(nurse.getByRole('heading', { name: '担当グループ' })).toBeVisible();

  // The phone is lost: a recovery code signs her in once in its place.
  const spare = await browser.newContext();
  contexts.push(spare);
  const borrowed = await spare.newPage();
  await borrowed.goto(`${server.url}/#/login`);
  await borrowed.getByLabel('ログインID').fill('ns-sato');
  await borrowed.getByLabel('パスワード').fill(PASSWORD);
  await borrowed.getByRole('button', { name: 'ログイン' }).click();
  await borrowed.getByRole('button', { name: /回復コードを使う/ }).click();
  await borrowed.getByLabel('回復コード').fill(recoveryCode);
  await borrowed.getByRole('button', { name: 'ログイン' }).click();
  await expect(borrowed.getByRole('heading', { name: '担当グループ' })).toBeVisible();
});

test('the app opens without signal from the service worker, which never keeps an API answer', async () => {
  // The shell is kept by the service worker once it controls the page.
  await expect.poll(() => nurse.evaluate(async () => !!(await navigator.serviceWorker.ready).active && !!navigator.serviceWorker.controller), { timeout: 15_000 }).toBe(true);
  await nurse.reload();
  await expect(nurse.getByRole('heading', { name: '担当グループ' })).toBeVisible();
  const cached = await nurse.evaluate(async () => {
    const urls: string[] = [];
    for (const name of await caches.keys()) for (const r of await (await caches.open(name)).keys()) urls.push(new URL(r.url).pathname);
    return urls;
  });
  expect(cached).toContain('/');
  expect(cached.some((u) => u.startsWith('/assets/'))).toBe(true);
  expect(cached.filter((u) => u.startsWith('/api/'))).toEqual([]);

  await contexts[0]!.setOffline(true);
  await nurse.reload();
  // No signal: the page still opens and says why nothing new can be fetched.
  await expect(nurse.getByRole('heading', { name: 'renkei 連携' })).toBeVisible();
  await expect(nurse.getByText('サーバーに接続できません')).toBeVisible();
  await contexts[0]!.setOffline(false);
  await nurse.reload();
  await expect(nurse.getByRole('heading', { name: '担当グループ' })).toBeVisible();
});

test('a session revoked from another device sends that page to sign-in with a message', async () => {
  const phone = await browser.newContext();
  contexts.push(phone);
  const lost = await phone.newPage();
  await signIn(lost, server.url, 'dr-suzuki');
  await openGroup(lost, LABEL);
  await doctor.goto(`${server.url}/#/me`);
  await doctor.getByRole('button', { name: 'ログアウトさせる' }).first().click();
  await expect(lost.getByText('セッションが終了しました。もう一度ログインしてください。')).toBeVisible();
  await expect(lost.getByRole('heading', { name: 'ログイン' })).toBeVisible();
});

test('a removed member’s page loses the group at once, and a disabled account is signed out', async () => {
  await cm.goto(`${server.url}/#/g/${group}`);
  await expect(feed(cm).getByRole('article').first()).toBeVisible();
  await doctorApi.call('DELETE', `/groups/${group}/members/cm-kato`);
  await expect(cm.getByText('このグループのメンバーではなくなりました。')).toBeVisible();
  await expect(cm.getByPlaceholder(/経過や気づいたこと/)).toHaveCount(0);
  await admin.call('POST', '/admin/users/cm-kato/disable');
  await expect(cm.getByText('セッションが終了しました。もう一度ログインしてください。')).toBeVisible();
});
