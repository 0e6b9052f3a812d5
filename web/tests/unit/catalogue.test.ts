import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FluentBundle, FluentResource } from '@fluent/bundle';
import { pickLocale } from '../../src/lib/i18n';

const dir = join(__dirname, '../../../locales');
// One catalogue (locales/ at the repository root) in four parts: the members' words, the physician's and
// ICT desk's (desk.*.ftl, loaded with their screens), the terminal's (cli.*.ftl, read by `renkei`) and the
// server's error messages (server.*.ftl).
// Together: no key twice, every key in both languages.
const parts = (lang: string) => [`${lang}.ftl`, `desk.${lang}.ftl`, `cli.${lang}.ftl`, `server.${lang}.ftl`];
const keys = (lang: string) =>
  parts(lang)
    .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n'))
    .map((l) => /^([a-z][a-z0-9_-]*)\s*=/.exec(l)?.[1])
    .filter((k): k is string => !!k);

describe('the message catalogue', () => {
  it('has every key in Japanese and in English, and nothing twice', () => {
    const ja = keys('ja');
    const en = keys('en');
    expect(new Set(ja).size).toBe(ja.length);
    expect([...ja].sort()).toEqual([...en].sort());
  });

  it('parses without errors in both languages', () => {
    for (const lang of ['ja', 'en']) {
      for (const f of parts(lang)) {
        const errors = new FluentBundle(lang).addResource(new FluentResource(readFileSync(join(dir, f), 'utf8')));
        expect(errors, f).toEqual([]);
      }
    }
  });

  it('has words for every error code the server can send', () => {
    const types = readFileSync(join(__dirname, '../../src/lib/api-types.ts'), 'utf8');
    const codes = /export type ErrorCode = ([^;]+);/.exec(types)?.[1]?.match(/"([a-z_]+)"/g)?.map((c) => c.slice(1, -1)) ?? [];
    expect(codes.length).toBeGreaterThan(20);
    const ja = new Set(keys('ja'));
    expect(codes.filter((c) => !ja.has(`error-${c}`))).toEqual([]);
  });

  it('every key the screens use exists', () => {
    const ja = new Set(keys('ja'));
    const used = new Set<string>();
    const walk = (d: string) => {
      for (const f of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, f.name);
        if (f.isDirectory()) walk(p);
        else if (/\.(svelte|ts)$/.test(f.name)) for (const m of readFileSync(p, 'utf8').matchAll(/\bt\('([a-z0-9-]+)'/g)) used.add(m[1]!);
      }
    };
    walk(join(__dirname, '../../src'));
    expect(used.size).toBeGreaterThan(50);
    expect([...used].filter((k) => !ja.has(k))).toEqual([]);
  });

  it('has words for every value the screens look up by prefix (enums, audit actions)', () => {
    const types = readFileSync(join(__dirname, '../../src/lib/api-types.ts'), 'utf8');
    const values = (name: string) =>
      new RegExp(`export type ${name} = ([^;]+);`).exec(types)?.[1]?.match(/"([a-z_]+)"/g)?.map((c) => c.slice(1, -1)) ?? [];
    const ja = new Set(keys('ja'));
    const needed: string[] = [];
    for (const [type, prefix] of [
      ['CandidateStatus', 'candidate'],
      ['MembershipState', 'membership'],
      ['ConsentKind', 'consent-kind'],
      ['ConsenterKind', 'consenter'],
      ['ConsentMethod', 'method'],
      ['Profession', 'profession'],
      ['AccountStatus', 'status'],
      ['GroupKind', 'admin-kind'],
      ['GroupStatus', 'admin-group-status'],
      ['AuditBreak', 'audit-break'],
    ] as const) {
      const vs = values(type);
      expect(vs.length, type).toBeGreaterThan(1);
      needed.push(...vs.map((v) => `${prefix}-${v}`));
    }
    // Every action the server audits (renkei_protocol::audit_action) has words in the console and the access report.
    const audit = readFileSync(join(__dirname, '../../../protocol/src/account.rs'), 'utf8');
    const actions = [...audit.matchAll(/pub const [A-Z_]+: &str = "([a-z_]+)";/g)].map((m) => m[1]!);
    expect(actions.length).toBeGreaterThan(30);
    needed.push(...actions.map((a) => `action-${a}`));
    expect(needed.filter((k) => !ja.has(k))).toEqual([]);
  });

  it('is Japanese unless the browser prefers English', () => {
    expect(pickLocale(['ja-JP', 'en-US'])).toBe('ja');
    expect(pickLocale(['en-GB', 'ja'])).toBe('en');
    expect(pickLocale(['fr-FR'])).toBe('ja');
    expect(pickLocale([])).toBe('ja');
  });
});
