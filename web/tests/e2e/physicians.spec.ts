// The attending physician's screens, as a physician between home visits uses them (phone size): open a
// patient's group, record consent, invite from the directory, narrow the consent after seeing whom it
// removes, hand over, export, archive — and every refusal the server can give these screens, shown in
// words where it happened. Against a real renkei-server on SQLite.
import { readFileSync } from 'node:fs';
import { expect, test, type BrowserContext, type Page } from '@playwright/test';
import { Api, patientGroup } from './api';
import { Server } from './server';
import { accessible, shot, signIn } from './screens';


const candidate = (page: Page, login: string) => page.getByTestId('candidates').locator(`[data-login="${login}"]`);

async function search(page: Page, words = '') {
  await page.getByRole('searchbox', { name: '検索' }).fill(words);
  await page.getByRole('button', { name: '検索', exact: true }).click();
  await expect(page.getByTestId('candidates')).toBeVisible();
}

type Member = { id: string; login: string };

test.describe.configure({ mode: 'serial' });

let server: Server;
let admin: Api;
let suzuki: Api;
let ota: Api;
const people: Record<string, Member & { api: Api }> = {};
const contexts: BrowserContext[] = [];
let doctor: Page;
let group = '';

test.beforeAll(async ({ browser }) => {
  server = new Server();
  await server.start();
  server.createAdmin();
  admin = await Api.login(server.url, 'admin');
  suzuki = await admin.member('dr-suzuki', '鈴木 一郎', 'physician', '鈴木内科クリニック', '0422-22-3333');
  ota = await admin.member('dr-ota', '太田 誠', 'physician', '太田医院');
  for (const [login, name, profession, organisation] of [
    ['ns-sato', '佐藤 花子', 'nurse', 'むさしの訪問看護'],
    ['ns-ito', '伊藤 恵', 'nurse', 'よその訪問看護'],
    ['ns-kimura', '木村 愛', 'nurse', 'きむら訪問看護'],
    ['cm-kato', '加藤 健', 'care_manager', 'むさしの居宅介護支援'],
    ['ph-mori', '森 薬子', 'pharmacist', 'もり薬局'],
  ] as const) {
    const api = await admin.member(login, name, profession, organisation);
    const me = await api.call<{ id: string }>('GET', '/me');
    people[login] = { id: me.id, login, api };
  }
  const context = await browser.newContext();
  contexts.push(context);
  doctor = await context.newPage();
});

test.afterAll(async () => {
  for (const c of contexts) await c.close();
  await server?.cleanup();
});

async function accept(login: string) {
  const api = login === 'dr-ota' ? ota : people[login]!.api;
  const list = await api.call<{ invitations: { id: string; group_id: string }[] }>('GET', '/invitations');
  const inv = list.invitations.find((i) => i.group_id === group)!;
  await api.call('POST', `/invitations/${inv.id}/accept`);
}

test('a nurse is told that only a physician opens a patient group', async ({ browser }) => {
  const context = await browser.newContext();
  contexts.push(context);
  const nurse = await context.newPage();
  await signIn(nurse, server.url, 'ns-sato');
  await expect(nurse.getByRole('link', { name: '新しい患者グループ' })).toHaveCount(0);
  await nurse.goto(`${server.url}/#/new`);
  await nurse.getByLabel('患者氏名').fill('山田 花子');
  await nurse.getByLabel('グループ名（メンバーに表示されます）').fill('山田 花子 様');
  await nurse.getByRole('button', { name: '作成する' }).click();
  await expect(nurse.getByRole('alert')).toContainText('患者グループを作成できるのは医師');
  await context.close();
});

test('the physician opens a group; before consent nobody can be invited, and the page says so', async () => {
  await signIn(doctor, server.url, 'dr-suzuki');
  await doctor.getByRole('link', { name: '新しい患者グループ' }).click();
  await doctor.getByLabel('患者氏名').fill('山田 花子');
  await doctor.getByLabel('ふりがな').fill('やまだ はなこ');
  await doctor.getByLabel('患者番号（任意）').fill('0001');
  await doctor.getByLabel('グループ名（メンバーに表示されます）').fill('山田 花子 様');
  await accessible(doctor, 'new group');
  await doctor.getByRole('button', { name: '作成する' }).click();
  await expect(doctor.getByRole('heading', { name: '山田 花子 様' })).toBeVisible();
  group = /#\/team\/([0-9a-f-]+)/.exec(doctor.url())![1]!;
  await expect(doctor.getByText('同意はまだ記録されていません。')).toBeVisible();
  await expect(doctor.getByText('招待の前に、患者・家族の同意を記録してください')).toBeVisible();
  await search(doctor);
  await expect(candidate(doctor, 'ns-sato')).toContainText('先に患者・家族の同意を記録してください。');
  await expect(candidate(doctor, 'ns-sato').getByRole('button', { name: '招待' })).toHaveCount(0);
  await accessible(doctor, 'team before consent');
});

test('records the consent of the family, and invites inside it; outside it the page explains why', async () => {
  await doctor.getByRole('button', { name: '同意を記録する' }).click();
  await doctor.getByRole('combobox', { name: /^同意した方/ }).selectOption('family');
  await doctor.getByLabel('同意した方の氏名').fill('山田 一郎');
  await doctor.getByLabel('続柄').fill('長男');
  await doctor.getByLabel('看護師').check();
  await doctor.getByLabel('ケアマネジャー').check();
  await doctor.getByRole('button', { name: '確認する' }).click();
  await expect(doctor.getByTestId('preview')).toContainText('この変更で外れる方はいません。');
  await doctor.getByRole('button', { name: 'この内容で記録する' }).click();
  await expect(doctor.getByTestId('notice')).toContainText('同意（第1版）を記録しました');
  await expect(doctor.getByTestId('consent-current')).toContainText('家族　山田 一郎 長男（書面');

  await search(doctor);
  await expect(candidate(doctor, 'ph-mori')).toContainText('同意の範囲外');
  await expect(candidate(doctor, 'ph-mori').getByRole('button', { name: '招待' })).toHaveCount(0);
  await expect(candidate(doctor, 'dr-ota')).toContainText('同意の範囲外');
  for (const login of ['ns-sato', 'cm-kato']) {
    await candidate(doctor, login).getByRole('button', { name: '招待' }).click();
    await expect(candidate(doctor, login)).toContainText('招待中です');
  }
  await expect(doctor.getByTestId('pending')).toContainText('佐藤 花子');
  await expect(doctor.getByTestId('pending')).toContainText('期限');
  await accept('ns-sato');
  await accept('cm-kato');

  // Search by kana-less name, organisation and profession.
  await search(doctor, 'よその');
  await expect(doctor.getByTestId('candidates').locator('li')).toHaveCount(1);
  await doctor.getByRole('combobox', { name: /^職種/ }).selectOption('pharmacist');
  await search(doctor, '');
  await expect(doctor.getByTestId('candidates').locator('li')).toHaveCount(1);
  await expect(candidate(doctor, 'ph-mori')).toBeVisible();
  await doctor.getByRole('combobox', { name: /^職種/ }).selectOption('');
  await accessible(doctor, 'team with consent');
  await search(doctor);
  await doctor.getByRole('heading', { name: '招待する' }).scrollIntoViewIfNeeded();
  await shot(doctor, 'physician-invite');
});

test('refusals that come from a change made elsewhere are shown where they happened', async () => {
  await doctor.reload();
  await search(doctor);
  // Already invited meanwhile (another device of the physician).
  await suzuki.call('POST', `/groups/${group}/invitations`, { user: 'ns-ito' });
  await candidate(doctor, 'ns-ito').getByRole('button', { name: '招待' }).click();
  await expect(doctor.getByRole('alert')).toContainText('すでにメンバーです');
  // The consent narrowed meanwhile: Kimura is no longer covered.
  await suzuki.call('POST', `/groups/${group}/consents`, {
    consenter: { kind: 'family', name: '山田 一郎', relationship: '長男' },
    method: 'written',
    obtained_on: '2026-11-20',
    scope: [{ organisation: 'むさしの訪問看護' }, { profession: 'care_manager' }, { user: people['ns-ito']!.id }],
  });
  await candidate(doctor, 'ns-kimura').getByRole('button', { name: '招待' }).click();
  await expect(doctor.getByRole('alert')).toContainText('同意の範囲外です');
  await search(doctor);
  await expect(candidate(doctor, 'ns-kimura')).toContainText('同意の範囲外');
});

test('narrowing the consent shows whom it removes, and removes exactly them', async () => {
  await doctor.reload();
  await expect(doctor.getByTestId('consent-current')).toContainText('第2版');
  await doctor.getByRole('button', { name: '同意を変更する' }).click();
  const scope = doctor.getByTestId('scope');
  await expect(scope.locator('li')).toHaveCount(3);
  await expect(scope).toContainText('伊藤 恵');
  // Keep only むさしの訪問看護: Kato (a member) and Ito (invited) fall outside.
  await scope.locator('li', { hasText: 'ケアマネジャー' }).getByRole('button', { name: '削除' }).click();
  await scope.locator('li', { hasText: '伊藤 恵' }).getByRole('button', { name: '削除' }).click();
  await doctor.getByRole('button', { name: '確認する' }).click();
  await expect(doctor.getByTestId('preview-removed')).toHaveText('加藤 健（むさしの居宅介護支援）');
  await expect(doctor.getByTestId('preview-cancelled')).toHaveText('伊藤 恵（よその訪問看護）');
  await accessible(doctor, 'consent preview');
  await doctor.getByTestId('preview').scrollIntoViewIfNeeded();
  await shot(doctor, 'physician-consent-preview');
  await doctor.getByRole('button', { name: 'この内容で記録する' }).click();
  await expect(doctor.getByTestId('notice')).toContainText('外れた方：2人');
  // What the server did is what the preview said.
  const members = await suzuki.call<{ members: { person: { id: string } }[] }>('GET', `/groups/${group}/members`);
  expect(members.members.map((m) => m.person.id).sort()).toEqual(
    [people['ns-sato']!.id, (await suzuki.call<{ id: string }>('GET', '/me')).id].sort(),
  );
  const pending = await suzuki.call<{ invitations: unknown[] }>('GET', `/groups/${group}/invitations`);
  expect(pending.invitations).toEqual([]);
  await expect(doctor.getByTestId('members').locator('li')).toHaveCount(2);
  await expect(doctor.getByText('招待中の方はいません。')).toBeVisible();
  await doctor.getByText('同意の履歴（すべての版）').click();
  await expect(doctor.getByTestId('consent-history').locator('li')).toHaveCount(3);
});

test('names a physician in the consent from the directory, invites and hands over', async ({ browser }) => {
  await search(doctor, '太田');
  await doctor.getByRole('button', { name: '同意を変更する' }).click();
  await doctor.getByRole('button', { name: '範囲に追加' }).click();
  await expect(doctor.getByTestId('scope')).toContainText('太田 誠');
  await doctor.getByRole('button', { name: '確認する' }).click();
  await doctor.getByRole('button', { name: 'この内容で記録する' }).click();
  await expect(doctor.getByTestId('notice')).toContainText('第4版');
  await search(doctor, '太田');
  await candidate(doctor, 'dr-ota').getByRole('button', { name: '招待' }).click();
  await expect(candidate(doctor, 'dr-ota')).toContainText('招待中です');
  await accept('dr-ota');
  await doctor.reload();

  // Handover rules: Ota left in between; the refusal says what to do.
  await expect(doctor.getByRole('combobox', { name: /^引き継ぎ先の医師/ })).toBeVisible();
  await ota.call('POST', `/groups/${group}/leave`);
  await doctor.getByRole('combobox', { name: /^引き継ぎ先の医師/ }).selectOption({ label: '太田 誠（太田医院）' });
  await doctor.getByRole('button', { name: '引き継ぎを依頼' }).click();
  await expect(doctor.getByRole('alert')).toContainText('このグループのメンバーで同意の範囲内の医師に限られます');
  await suzuki.call('POST', `/groups/${group}/invitations`, { user: 'dr-ota' });
  await accept('dr-ota');
  await doctor.reload();
  await doctor.getByRole('combobox', { name: /^引き継ぎ先の医師/ }).selectOption({ label: '太田 誠（太田医院）' });
  await doctor.getByRole('button', { name: '引き継ぎを依頼' }).click();
  await expect(doctor.getByTestId('notice')).toContainText('太田 誠先生に引き継ぎを依頼しました');

  // Exports before handing over: the timeline downloads, the access report prints.
  const download = doctor.waitForEvent('download');
  await doctor.getByRole('button', { name: 'タイムラインを保存（Markdown）' }).click();
  const file = await download;
  expect(file.suggestedFilename()).toMatch(/^renkei-\d{4}-\d{2}-\d{2}\.md$/);
  expect(readFileSync((await file.path())!, 'utf8')).toContain('山田 花子 様');
  await doctor.getByRole('link', { name: 'アクセス記録（患者・家族向け）' }).click();
  await expect(doctor.getByRole('heading', { name: '山田 花子 様 — 参加とアクセスの記録' })).toBeVisible();
  await expect(doctor.getByTestId('report-memberships')).toContainText('加藤 健');
  await expect(doctor.getByTestId('report-memberships')).toContainText('除外');
  await expect(doctor.getByTestId('report-events')).toContainText('招待');
  await expect(doctor.getByRole('button', { name: '印刷' })).toBeVisible();
  await accessible(doctor, 'access report');
  await shot(doctor, 'physician-access-report');

  // Ota accepts on his own phone and becomes the attending physician.
  const context = await browser.newContext();
  contexts.push(context);
  const otaPage = await context.newPage();
  await signIn(otaPage, server.url, 'dr-ota');
  await otaPage.goto(`${server.url}/#/team/${group}`);
  await expect(otaPage.getByText('鈴木 一郎先生から主治医の引き継ぎを依頼されています。')).toBeVisible();
  await otaPage.getByRole('button', { name: '引き継ぐ' }).click();
  await expect(otaPage.getByTestId('members').locator('li', { hasText: '太田 誠' })).toContainText('主治医');
  await expect(otaPage.getByRole('button', { name: '療養終了としてグループを終了する' })).toBeVisible();
  await doctor.goto(`${server.url}/#/team/${group}`);
  await expect(doctor.getByRole('button', { name: '同意を変更する' })).toHaveCount(0);

  // The new attending physician sees the directory as Suzuki did, and ends care when it ends.
  await search(otaPage, 'もり');
  await expect(candidate(otaPage, 'ph-mori')).toContainText('同意の範囲外');
  otaPage.once('dialog', (d) => void d.accept());
  await otaPage.getByRole('button', { name: '療養終了としてグループを終了する' }).click();
  await expect(otaPage.getByText('このグループは終了（アーカイブ）しています。')).toBeVisible();
  await expect(otaPage.getByRole('button', { name: '招待' })).toHaveCount(0);
});

test('a change to a group archived meanwhile is refused in words', async () => {
  // A second group, its page open; archived from another device; then the physician acts on the page.
  const g = await suzuki.call<{ id: string }>('POST', '/groups', {
    label: '田中 次郎 様',
    patient: { full_name: '田中 次郎', kana: null, patient_number: null },
    notes: null,
  });
  await suzuki.call('POST', `/groups/${g.id}/consents`, {
    consenter: { kind: 'patient', name: '田中 次郎', relationship: null },
    method: 'verbal',
    obtained_on: '2026-11-20',
    scope: [{ profession: 'nurse' }],
  });
  await doctor.goto(`${server.url}/#/team/${g.id}`);
  await search(doctor, '佐藤');
  await suzuki.call('POST', `/groups/${g.id}/archive`);
  await candidate(doctor, 'ns-sato').getByRole('button', { name: '招待' }).click();
  await expect(doctor.getByRole('alert')).toContainText('このグループは終了しているか、読み取り専用です。');
});

test('removes a member, then records a withdrawal after seeing that everyone leaves', async () => {
  const g = await suzuki.call<{ id: string }>('POST', '/groups', {
    label: '佐々木 三郎 様',
    patient: { full_name: '佐々木 三郎', kana: null, patient_number: null },
    notes: null,
  });
  group = g.id;
  await suzuki.call('POST', `/groups/${g.id}/consents`, {
    consenter: { kind: 'patient', name: '佐々木 三郎', relationship: null },
    method: 'written',
    obtained_on: '2026-11-20',
    scope: [{ profession: 'nurse' }, { profession: 'care_manager' }],
  });
  for (const login of ['ns-sato', 'cm-kato']) {
    await suzuki.call('POST', `/groups/${g.id}/invitations`, { user: login });
    await accept(login);
  }
  await doctor.goto(`${server.url}/#/team/${g.id}`);
  const members = doctor.getByTestId('members');
  await expect(members.locator('li')).toHaveCount(3);
  doctor.once('dialog', (d) => void d.accept());
  await members.locator('li', { hasText: '加藤 健' }).getByRole('button', { name: '外す' }).click();
  await expect(members.locator('li')).toHaveCount(2);

  await doctor.getByRole('button', { name: '同意の撤回を記録する' }).click();
  await doctor.getByRole('combobox', { name: /^方法/ }).selectOption('verbal');
  await doctor.getByRole('button', { name: '確認する' }).click();
  await expect(doctor.getByTestId('preview-removed')).toHaveText('佐藤 花子（むさしの訪問看護）');
  await expect(doctor.getByTestId('preview')).toContainText('グループは読み取り専用になります');
  await doctor.getByRole('button', { name: 'この内容で記録する' }).click();
  await expect(doctor.getByTestId('notice')).toContainText('外れた方：1人');
  await expect(doctor.getByText('同意が撤回されたため、このグループは読み取り専用です。')).toBeVisible();
  await expect(members.locator('li')).toHaveCount(1);
  const left = await people['ns-sato']!.api.call<{ groups: { id: string }[] }>('GET', '/groups');
  expect(left.groups.map((x) => x.id)).not.toContain(g.id);
});

test('records the care policy from the composer, and the month\'s record says what it lacks until it is complete', async () => {
  const nurse = people['ns-sato']!.api;
  const g = await patientGroup(suzuki, '高橋 四郎 様', [{ login: 'ns-sato', api: nurse }]);
  await nurse.call('POST', `/groups/${g}/posts`, { kind: 'update', body: '血圧 128/74、食欲あり', client_msg_id: 'cp-n1' });
  const month = new Date().toLocaleDateString('sv-SE', { timeZone: 'Asia/Tokyo' }).slice(0, 7);

  // Before the care policy: the record says what is missing, in words.
  await doctor.goto(`${server.url}/#/team/${g}`);
  await doctor.getByLabel('対象月').fill(month);
  await doctor.getByRole('button', { name: 'この月の記録を確認' }).click();
  const status = doctor.getByTestId('care-record');
  await expect(status).toContainText('の記録は揃っていません');
  await expect(status).toContainText('この月の診療方針の投稿がありません');
  await expect(status).toContainText('確認（見ました・既読）した他職種の記録がありません');

  // The physician reads the nurse's post, marks it, and writes the care policy from the composer.
  await doctor.goto(`${server.url}/#/g/${g}`);
  const nursePost = doctor.locator('article.post', { hasText: '血圧 128/74' });
  await nursePost.getByRole('button', { name: '見ました', exact: true }).click();
  await expect(nursePost.getByText('見ました済み')).toBeVisible();
  await doctor.getByRole('combobox', { name: '投稿の種類' }).selectOption('care_policy');
  await expect(doctor.getByRole('button', { name: '送信' })).toBeDisabled();
  await doctor.getByLabel('次回訪問日').fill('2026-12-21');
  await doctor.getByLabel('治療方針を変更した').check();
  await doctor.getByPlaceholder('留意事項').fill('ふらつき・転倒に注意');
  // A change needs its summary before it can be sent.
  await expect(doctor.getByRole('button', { name: '送信' })).toBeDisabled();
  await doctor.getByLabel('変更の概要').fill('降圧薬を減量');
  await doctor.getByRole('button', { name: '送信' }).click();
  const policy = doctor.locator('article.post', { hasText: 'ふらつき・転倒に注意' });
  await expect(policy.locator('.kind-care_policy')).toHaveText('診療方針');
  await expect(policy.locator('dl.care-policy')).toContainText('2026-12-21');
  await expect(policy.locator('dl.care-policy')).toContainText('降圧薬を減量');
  await accessible(doctor, 'timeline with a care policy');

  // The nurse's client shows it as the physician's care policy too.
  const posts = await nurse.call<{ posts: { kind: string; care_policy: { next_visit_on: string } | null }[] }>('GET', `/groups/${g}/posts`);
  expect(posts.posts.find((p) => p.kind === 'care_policy')?.care_policy?.next_visit_on).toBe('2026-12-21');

  // Now the month is complete, and the page to print is saved.
  await doctor.goto(`${server.url}/#/team/${g}`);
  await doctor.getByLabel('対象月').fill(month);
  await doctor.getByRole('button', { name: 'この月の記録を確認' }).click();
  await expect(doctor.getByTestId('care-record')).toContainText('の記録は揃っています');
  await expect(doctor.getByTestId('care-record')).toContainText('診療方針 1 件');
  const [download] = await Promise.all([
    doctor.waitForEvent('download', { timeout: 10_000 }),
    doctor.getByRole('button', { name: '印刷用ページを保存（HTML）' }).click(),
  ]);
  expect(download.suggestedFilename()).toBe(`renkei-record-${month}.html`);
  const page = readFileSync((await download.path())!, 'utf8');
  expect(page).toContain('ふらつき・転倒に注意');
  expect(page).toContain('この月の記録は揃っています');

  // The month over all the groups the physician attends, from the groups screen: the others lack their
  // care policy and are listed with a way to their team screen.
  await doctor.goto(`${server.url}/#/`);
  await doctor.getByRole('button', { name: '主治医のグループをまとめて確認' }).click();
  const summary = doctor.getByTestId('month-summary');
  await expect(summary).toContainText(`${month}:`);
  const attended = await suzuki.call<{ groups: { my_role: string; kind: string }[] }>('GET', '/groups');
  const count = attended.groups.filter((x) => x.kind === 'patient' && x.my_role === 'attending_physician').length;
  await expect(summary).toContainText(`${count} グループ中 1 件そろっています`);
  const monthSection = doctor.locator('section', { has: summary });
  await expect(monthSection.getByRole('link', { name: '高橋 四郎 様' })).toHaveCount(0);
  await expect(monthSection.getByRole('link')).toHaveCount(count - 1);
});
