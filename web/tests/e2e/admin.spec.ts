// The ICT desk's console, desktop first: register a nurse and hand over her setup sheet, which she uses
// on her own phone; disable her while her page is open (it signs out at once); community groups;
// groups' metadata without patient names; the audit log filtered, exported and verified; and the
// re-entered password the server asks for once the administrator's sign-in is old.
import { readFileSync } from 'node:fs';
import { expect, test, type BrowserContext, type Page } from '@playwright/test';
import { Api, patientGroup } from './api';
import { PASSWORD, Server } from './server';
import { accessible, shot, submitSignIn } from './screens';

const DESKTOP = {
  viewport: { width: 1280, height: 900 },
  isMobile: false,
  hasTouch: false,
  deviceScaleFactor: 1,
  locale: 'ja-JP',
  timezoneId: 'Asia/Tokyo',
};

const row = (page: Page, login: string) => page.getByTestId('users').locator(`tr[data-login="${login}"]`);

test.describe.configure({ mode: 'serial' });

const contexts: BrowserContext[] = [];
let server: Server;
let desk: Page;
let nursePage: Page;
let setupLink = '';

test.beforeAll(async ({ browser }) => {
  server = new Server();
  await server.start();
  server.createAdmin();
  // A patient group exists, so the console has one to show (by reference only).
  const admin = await Api.login(server.url, 'admin');
  const doctor = await admin.member('dr-suzuki', '鈴木 一郎', 'physician', '鈴木内科クリニック');
  await patientGroup(doctor, '山田 花子 様', []);
  const context = await browser.newContext(DESKTOP);
  contexts.push(context);
  desk = await context.newPage();
});

test.afterAll(async () => {
  for (const c of contexts) await c.close();
  await server?.cleanup();
});

test('the desk registers a nurse and prints her setup sheet', async () => {
  await submitSignIn(desk, server.url, 'admin');
  await expect(desk.getByRole('heading', { name: '管理コンソール' })).toBeVisible();
  await accessible(desk, 'admin users');
  await desk.getByLabel('氏名', { exact: true }).fill('佐藤 花子');
  await desk.getByLabel('ふりがな').fill('さとう はなこ');
  await desk.getByLabel('ログインID', { exact: true }).fill('x');
  await desk.getByRole('combobox', { name: '職種' }).selectOption('nurse');
  await desk.getByLabel('所属').fill('むさしの訪問看護');
  await desk.getByRole('button', { name: '登録してセットアップ用紙を作る' }).click();
  // A refused form says which field and why.
  await expect(desk.getByRole('alert')).toContainText('ログインIDは3文字以上');
  await desk.getByLabel('ログインID', { exact: true }).fill('ns-sato');
  await desk.getByRole('button', { name: '登録してセットアップ用紙を作る' }).click();
  const sheet = desk.getByTestId('setup-sheet');
  await expect(sheet).toContainText('佐藤 花子さんのセットアップ用紙');
  await expect(sheet.getByRole('img', { name: 'セットアップ用リンクのQRコード' })).toBeVisible();
  await expect(sheet).toContainText('ログインID：ns-sato');
  setupLink = (await sheet.getByTestId('setup-link').getAttribute('href'))!;
  expect(setupLink).toMatch(/#\/setup\/rku_/);
  await accessible(desk, 'setup sheet');
  await shot(desk, 'admin-setup-sheet');
  await desk.getByRole('button', { name: '閉じる' }).click();
  await expect(row(desk, 'ns-sato')).toContainText('初回設定前');
});

test('the nurse sets her password from the sheet on her phone; disabling her signs her out at once', async ({ browser }) => {
  const context = await browser.newContext();
  contexts.push(context);
  nursePage = await context.newPage();
  await nursePage.goto(setupLink);
  await nursePage.getByLabel('新しいパスワード', { exact: true }).fill(PASSWORD);
  await nursePage.getByLabel('新しいパスワード（確認）').fill(PASSWORD);
  await nursePage.getByRole('button', { name: 'パスワードを設定する' }).click();
  await nursePage.getByRole('link', { name: 'ログイン' }).click();
  await nursePage.getByLabel('ログインID').fill('ns-sato');
  await nursePage.getByLabel('パスワード').fill(PASSWORD);
  await nursePage.getByRole('button', { name: 'ログイン' }).click();
  await expect(nursePage.getByRole('heading', { name: '担当グループ' })).toBeVisible();

  await desk.reload();
  await row(desk, 'ns-sato').getByRole('button', { name: '佐藤 花子' }).click();
  const detail = desk.getByTestId('user-detail');
  await expect(detail.getByTestId('user-sessions')).toContainText('利用中');
  await expect(detail).toContainText('開いている画面を含む');
  desk.once('dialog', (d) => void d.accept());
  await detail.getByRole('button', { name: '停止する' }).click();
  await expect(desk.getByRole('status')).toContainText('すべてのセッションが終了しました');
  // Her open page is signed out without her doing anything.
  await expect(nursePage.getByRole('button', { name: 'ログイン' })).toBeVisible();
  await expect(detail.getByTestId('user-sessions')).not.toContainText('利用中');
  await detail.getByRole('button', { name: '再開する' }).click();
  await expect(desk.getByRole('status')).toContainText('再開しました');
  await expect(row(desk, 'ns-sato')).toContainText('有効');
  // A forgotten password: a new setup sheet, whose link works once more.
  desk.once('dialog', (d) => void d.accept());
  await detail.getByRole('button', { name: '新しいセットアップ用紙（パスワード忘れ）' }).click();
  await expect(desk.getByTestId('setup-sheet')).toContainText('佐藤 花子さんのセットアップ用紙');
  const again = (await desk.getByTestId('setup-link').getAttribute('href'))!;
  expect(again).not.toBe(setupLink);
  await desk.getByRole('button', { name: '閉じる' }).click();
});

test('community groups are staffed here; patient groups show by reference, never by name', async () => {
  await desk.getByRole('link', { name: 'グループ' }).click();
  await desk.getByLabel('グループ名').fill('武蔵野市 全体');
  await desk.getByRole('button', { name: '作成', exact: true }).click();
  const card = desk.getByTestId('admin-groups').locator('li', { hasText: '武蔵野市 全体' });
  await card.getByLabel('追加する方のログインID').fill('ns-sato');
  await card.getByRole('button', { name: '追加' }).click();
  await expect(card).toContainText('佐藤 花子');
  await card.getByRole('row', { name: /佐藤 花子/ }).getByRole('button', { name: '外す' }).click();
  await expect(card.getByRole('row', { name: /佐藤 花子/ })).toContainText('除外');
  const patient = desk.getByTestId('admin-groups').locator('li', { hasText: 'P-' });
  await patient.getByRole('button').first().click();
  await expect(patient).toContainText('鈴木 一郎');
  await expect(patient).toContainText('第1版');
  await expect(desk.locator('main')).not.toContainText('山田');
  await accessible(desk, 'admin groups');
});

test('an office\'s own rules are kept from the console, checked by the server, and audited', async () => {
  await desk.goto(`${server.url}/#/admin/offices`);
  await expect(desk.getByRole('heading', { name: '事業所ごとのルール（規程7）' })).toBeVisible();
  const form = desk.getByTestId('office-form');
  await form.getByLabel('事業所（利用者の所属と同じ表記）').fill('むさしの訪問看護');
  await form.getByLabel('看護師').check();
  // A network the server cannot read is refused in words, and nothing is saved.
  await form.getByLabel('ファイルを取得できるネットワーク（CIDR、1行に1つ）').fill('10.1.0.0/33');
  await form.getByRole('button', { name: 'この内容で保存' }).click();
  await expect(desk.getByRole('alert')).toBeVisible();
  await expect(desk.getByTestId('offices').locator('tbody tr')).toHaveCount(0);
  await form.getByLabel('ファイルを取得できるネットワーク（CIDR、1行に1つ）').fill('10.1.0.0/16');
  await form.getByLabel('終了後の保存日数（空欄：サーバーの設定）').fill('1826');
  await form.getByRole('button', { name: 'この内容で保存' }).click();
  await expect(desk.getByRole('status')).toContainText('むさしの訪問看護 のルールを保存しました');
  const saved = desk.getByTestId('offices').locator('tbody tr');
  await expect(saved).toHaveCount(1);
  await expect(saved).toContainText('看護師');
  await expect(saved).toContainText('10.1.0.0/16');
  await expect(saved).toContainText('1826');
  await accessible(desk, 'admin office rules');
  const admin = await Api.login(server.url, 'admin');
  const offices = await admin.call<{ offices: { organisation: string; timeline_export: string[] }[] }>('GET', '/admin/offices');
  expect(offices.offices).toEqual([expect.objectContaining({ organisation: 'むさしの訪問看護', timeline_export: ['nurse'] })]);
  const audit = await admin.call<{ entries: { action: string }[] }>('GET', '/admin/audit?action=office_rules_changed');
  expect(audit.entries).toHaveLength(1);
});

test('the audit log is filtered, downloaded and its chain verified', async () => {
  await desk.getByRole('link', { name: '監査ログ' }).click();
  await desk.getByRole('combobox', { name: '操作' }).selectOption('account_disabled');
  await desk.getByRole('button', { name: '検索' }).click();
  const table = desk.getByTestId('audit');
  await expect(table.locator('tbody tr')).toHaveCount(1);
  await expect(table).toContainText('佐藤 花子（ns-sato）');
  const download = desk.waitForEvent('download');
  await desk.getByRole('button', { name: 'CSVで保存' }).click();
  const file = await download;
  expect(file.suggestedFilename()).toMatch(/^renkei-audit-\d{4}-\d{2}-\d{2}\.csv$/);
  const csv = readFileSync((await file.path())!, 'utf8').trim().split('\r\n');
  expect(csv[0]).toBe('seq,at,action,actor_id,group_id,target_user_id,client_addr,session_id,details,hash');
  expect(csv.slice(1).every((l) => l.includes(',account_disabled,'))).toBe(true);
  expect(csv).toHaveLength(2);

  await desk.getByRole('button', { name: '検証する' }).click();
  await expect(desk.getByTestId('verification')).toContainText('改ざんはありません');
  const anchor = (await desk.getByTestId('verification').locator('code').textContent())!;
  expect(anchor).toMatch(/^\d+ [0-9a-f]{64}$/);
  await desk.getByLabel('以前に控えたアンカー（任意）').fill(anchor.replace(/[0-9a-f]{64}$/, '0'.repeat(64)));
  await desk.getByRole('button', { name: '検証する' }).click();
  await expect(desk.getByTestId('verification')).toContainText('監査ログに不整合があります');
  await expect(desk.getByTestId('verification')).toContainText(`第${anchor.split(' ')[0]}号の記録が、控えたアンカーまたは記録時の内容と一致しません`);
  await accessible(desk, 'audit');
  await shot(desk, 'admin-audit');
});

test('after the re-authentication window, an action asks for the password again', async ({ browser }) => {
  const short = new Server({ RENKEI_ADMIN_REAUTH_SECONDS: '2' });
  await short.start();
  short.createAdmin();
  try {
    const context = await browser.newContext(DESKTOP);
    contexts.push(context);
    const page = await context.newPage();
    await submitSignIn(page, short.url, 'admin');
    await expect(page.getByRole('heading', { name: '管理コンソール' })).toBeVisible();
    await page.waitForTimeout(2_500);
    await page.getByLabel('氏名', { exact: true }).fill('加藤 健');
    await page.getByLabel('ログインID', { exact: true }).fill('cm-kato');
    await page.getByRole('combobox', { name: '職種' }).selectOption('care_manager');
    await page.getByLabel('所属').fill('むさしの居宅介護支援');
    await page.getByRole('button', { name: '登録してセットアップ用紙を作る' }).click();
    const dialog = page.getByRole('dialog', { name: 'パスワードの再入力' });
    await expect(dialog).toBeVisible();
    await accessible(page, 'reauthentication');
    await dialog.getByLabel('パスワード').fill('not the password');
    await dialog.getByRole('button', { name: '確認して続ける' }).click();
    await expect(dialog.getByRole('alert')).toContainText('ログインIDまたはパスワードが違います');
    await dialog.getByLabel('パスワード').fill(PASSWORD);
    await dialog.getByRole('button', { name: '確認して続ける' }).click();
    // The action that was refused runs again once, and its result shows.
    await expect(page.getByTestId('setup-sheet')).toContainText('加藤 健さんのセットアップ用紙');
    await expect(dialog).toHaveCount(0);
    // Cancelling leaves the action undone, with the reason shown.
    await page.getByRole('button', { name: '閉じる' }).click();
    await page.waitForTimeout(2_500);
    await page.getByLabel('氏名', { exact: true }).fill('森 薬子');
    await page.getByLabel('ログインID', { exact: true }).fill('ph-mori');
    await page.getByLabel('所属').fill('もり薬局');
    await page.getByRole('button', { name: '登録してセットアップ用紙を作る' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'キャンセル' }).click();
    await expect(page.getByRole('alert')).toContainText('パスワードをもう一度入力してください');
    await expect(page.getByTestId('users')).not.toContainText('ph-mori');
  } finally {
    await short.cleanup();
  }
});
