// Notifications in the web client: a care manager turns them on for her phone, a question addressed to her
// reaches her device as a Web Push message that says only how many posts wait, and the service worker shows
// exactly that. The push service is a stand-in on loopback; Chromium cannot reach a real one here, so the
// page's PushManager hands out a subscription whose keys the test holds (it decrypts what the server sent).
import { createDecipheriv, createECDH, hkdfSync, randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect, test, type BrowserContext, type Page } from '@playwright/test';
import { Api, patientGroup } from './api';
import { Server } from './server';
import { accessible, signIn } from './screens';

const LABEL = '山田 花子 様';
/** Whatever names a patient, a group, a person or a post in this test. */
const SECRETS = ['山田', '花子', 'P-0001', '加藤', '佐藤', '褥瘡', 'デイサービス', 'cm-kato', 'ns-sato'];

test.describe.configure({ mode: 'serial' });

let server: Server;
let push: HttpServer;
let pushUrl = '';
const received: { path: string; headers: IncomingHttpHeaders; body: Buffer }[] = [];
let nurseApi: Api;
let group: string;
let context: BrowserContext;
let cm: Page;
// The browser's side of the subscription.
const ecdh = createECDH('prime256v1');
ecdh.generateKeys();
const auth = randomBytes(16);

/** RFC 8291 (aes128gcm) as a browser decrypts it. */
function decrypt(body: Buffer): string {
  const salt = body.subarray(0, 16);
  const idlen = body[20]!;
  const serverKey = body.subarray(21, 21 + idlen);
  const sealed = body.subarray(21 + idlen);
  const shared = ecdh.computeSecret(serverKey);
  const info = Buffer.concat([Buffer.from('WebPush: info\0'), ecdh.getPublicKey(), serverKey]);
  const ikm = Buffer.from(hkdfSync('sha256', shared, auth, info, 32));
  const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16));
  const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12));
  const decipher = createDecipheriv('aes-128-gcm', cek, nonce);
  decipher.setAuthTag(sealed.subarray(sealed.length - 16));
  const plain = Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]);
  let end = plain.length - 1;
  while (end > 0 && plain[end] === 0) end--;
  expect(plain[end], 'the last record ends with the delimiter 2').toBe(2);
  return plain.subarray(0, end).toString('utf8');
}

test.beforeAll(async ({ browser }) => {
  push = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(201).end();
    });
  });
  await new Promise<void>((r) => push.listen(0, '127.0.0.1', r));
  pushUrl = `http://127.0.0.1:${(push.address() as AddressInfo).port}`;
  server = new Server({}, 'push_services = ["127.0.0.1"]\nnotification_seconds = 1\nvapid_subject = "mailto:ict@example.jp"\n');
  await server.start();
  server.createAdmin();
  const admin = await Api.login(server.url, 'admin');
  const doctorApi = await admin.member('dr-suzuki', '鈴木 一郎', 'physician', '鈴木内科クリニック');
  const cmApi = await admin.member('cm-kato', '加藤 美咲', 'care_manager', 'むさしの居宅介護支援');
  nurseApi = await admin.member('ns-sato', '佐藤 花子', 'nurse', 'むさしの訪問看護ステーション');
  group = await patientGroup(doctorApi, LABEL, [{ login: 'cm-kato', api: cmApi }, { login: 'ns-sato', api: nurseApi }]);

  context = await browser.newContext();
  await context.grantPermissions(['notifications'], { origin: server.url });
  cm = await context.newPage();
  const subscription = { endpoint: `${pushUrl}/push/cm-phone`, p256dh: ecdh.getPublicKey().toString('base64url'), auth: auth.toString('base64url') };
  await cm.addInitScript((s) => {
    let subscribed = false;
    const fake = {
      endpoint: s.endpoint,
      expirationTime: null,
      options: {},
      getKey: () => null,
      unsubscribe: async () => { subscribed = false; return true; },
      toJSON: () => ({ endpoint: s.endpoint, expirationTime: null, keys: { p256dh: s.p256dh, auth: s.auth } }),
    };
    PushManager.prototype.subscribe = async function () { subscribed = true; return fake as unknown as PushSubscription; };
    PushManager.prototype.getSubscription = async function () { return subscribed ? (fake as unknown as PushSubscription) : null; };
  }, subscription);
});

test.afterAll(async () => {
  await context?.close();
  await server.cleanup();
  await new Promise((r) => push.close(r));
});

test('a care manager turns notifications on for her phone, told what they will and will not say', async () => {
  await signIn(cm, server.url, 'cm-kato');
  await cm.goto(`${server.url}/#/me`);
  const section = cm.getByRole('region', { name: '通知' });
  await expect(section.getByText('患者名・グループ名・投稿の内容・送信者は含まれません')).toBeVisible();
  await expect(section.getByText('まだ登録された端末はありません。')).toBeVisible();
  await section.getByLabel('この端末の名前（例: 事業所のスマホ）').fill('事業所のスマホ');
  await section.getByRole('button', { name: 'この端末で通知を受け取る' }).click();
  await expect(section.getByText('この端末を登録しました。')).toBeVisible();
  await expect(section.getByRole('list', { name: '通知を受け取る端末' })).toContainText('事業所のスマホ（この端末）');
  await expect(section.getByLabel('プッシュ通知（登録した端末へ）')).toBeChecked();
  // No SMTP server here: e-mail cannot be chosen, and the page says why.
  await expect(section.getByText('このサーバーではメール通知が設定されていません。')).toBeVisible();
  await accessible(cm, 'notifications');
});

test('a question to her arrives as a push naming no one, and her phone shows only the count', async () => {
  await nurseApi.call('POST', `/groups/${group}/posts`, {
    kind: 'care_plan_question',
    body: '山田 花子 様の褥瘡について、デイサービスの入浴を続けてよいか相談させてください。',
    client_msg_id: 'q-1',
  });
  await expect.poll(() => received.length, { timeout: 20_000 }).toBe(1);
  const message = received[0]!;
  expect(message.path).toBe('/push/cm-phone');
  expect(message.headers['content-encoding']).toBe('aes128gcm');
  expect(String(message.headers.authorization)).toMatch(/^vapid t=[\w-]+\.[\w-]+\.[\w-]+, k=[\w-]+$/);
  const text = decrypt(message.body);
  for (const s of SECRETS) expect(text, `the payload carries ${s}`).not.toContain(s);
  const payload = JSON.parse(text) as { posts: number; question: boolean; body_ja: string };
  expect(payload.posts).toBe(1);
  expect(payload.question).toBe(true);

  // The service worker gets the message as the phone's push service would hand it over, and shows it.
  const cdp = await context.newCDPSession(cm);
  const registrations: string[] = [];
  cdp.on('ServiceWorker.workerRegistrationUpdated', (e: { registrations: { registrationId: string; isDeleted: boolean }[] }) => {
    for (const r of e.registrations) if (!r.isDeleted) registrations.push(r.registrationId);
  });
  await cdp.send('ServiceWorker.enable');
  await expect.poll(() => registrations.length, { timeout: 10_000 }).toBeGreaterThan(0);
  await cdp.send('ServiceWorker.deliverPushMessage', { origin: server.url, registrationId: registrations[0]!, data: text });
  const shown = async () =>
    cm.evaluate(async () => (await (await navigator.serviceWorker.ready).getNotifications()).map((n) => `${n.title}: ${n.body}`));
  await expect.poll(shown, { timeout: 10_000 }).toEqual(['renkei: renkei にあなた宛ての質問を含む新しい投稿が 1 件あります']);
  await expect(cm.getByRole('region', { name: '通知' })).toContainText('事業所のスマホ');
});

test('she removes the phone, and nothing more is sent to it', async () => {
  await cm.reload();
  const section = cm.getByRole('region', { name: '通知' });
  await expect(section.getByText('最後の通知')).toBeVisible();
  await section.getByRole('button', { name: '解除' }).click();
  await expect(section.getByText('まだ登録された端末はありません。')).toBeVisible();
  await nurseApi.call('POST', `/groups/${group}/posts`, { kind: 'care_plan_question', body: '追加の相談です', client_msg_id: 'q-2' });
  // Several passes of the planner (one a second) find no device to send to.
  await cm.waitForTimeout(3_000);
  expect(received.length).toBe(1);
});
