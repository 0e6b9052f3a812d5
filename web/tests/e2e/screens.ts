// What every browser test does with a screen: sign in, check it for accessibility, take its picture.
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import AxeBuilder from '@axe-core/playwright';
import { expect, type Page } from '@playwright/test';
import { PASSWORD } from './server';

// The README's pictures: written to docs/screenshots by `npm run screenshots`, elsewhere by plain test runs
// (their clock times differ at every run).
const SHOTS = process.env.RENKEI_SCREENSHOTS
  ? resolve(import.meta.dirname, '../../../docs/screenshots')
  : resolve(import.meta.dirname, '../../test-results/screenshots');

/** No serious or critical accessibility violation on the screen as it is. */
export async function accessible(page: Page, screen: string) {
  const result = await new AxeBuilder({ page }).analyze();
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(bad.map((v) => `${screen}: ${v.id} ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)).toEqual([]);
}

/** The screen as it is now, as `name`.png. */
export async function shot(page: Page, name: string) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

/** Fills in and sends the sign-in form. */
export async function submitSignIn(page: Page, base: string, login: string, password = PASSWORD) {
  await page.goto(`${base}/#/login`);
  await page.getByLabel('ログインID').fill(login);
  await page.getByLabel('パスワード').fill(password);
  await page.getByRole('button', { name: 'ログイン' }).click();
}

/** Signs a member in and waits for their groups. */
export async function signIn(page: Page, base: string, login: string, password = PASSWORD) {
  await submitSignIn(page, base, login, password);
  await expect(page.getByRole('heading', { name: '担当グループ' })).toBeVisible();
}
