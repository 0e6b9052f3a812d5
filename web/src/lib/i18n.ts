// Every user-facing string comes from the message catalogue (locales/*.ftl at the repository root, Fluent; the CLI reads the same catalogue): Japanese
// first, English when the browser prefers it. Error codes map to `error-<code>`.
import { FluentBundle, FluentResource, type FluentVariable } from '@fluent/bundle';
import ja from '../../../locales/ja.ftl?raw';
import en from '../../../locales/en.ftl?raw';

export type Locale = 'ja' | 'en';

/** Japanese unless the browser lists English before any Japanese. */
export function pickLocale(preferred: readonly string[]): Locale {
  for (const tag of preferred) {
    const lang = tag.toLowerCase().split('-')[0];
    if (lang === 'ja') return 'ja';
    if (lang === 'en') return 'en';
  }
  return 'ja';
}

export function bundle(locale: Locale): FluentBundle {
  const b = new FluentBundle(locale, { useIsolating: false });
  const errors = b.addResource(new FluentResource(locale === 'ja' ? ja : en));
  if (errors.length) throw new Error(`catalogue ${locale}: ${errors.map(String).join('; ')}`);
  return b;
}

export const locale: Locale = pickLocale(typeof navigator === 'undefined' ? [] : navigator.languages);
const active = bundle(locale);

/**
 * Adds a part of the catalogue that comes with a lazily loaded chunk (the physician's and the ICT desk's
 * screens bring `desk.*.ftl`), so a nurse's phone never downloads words it does not show.
 */
export function extend(parts: Record<Locale, string>): void {
  const errors = active.addResource(new FluentResource(parts[locale]));
  if (errors.length) throw new Error(`catalogue ${locale}: ${errors.map(String).join('; ')}`);
}

/** The message `key` with its arguments; the key itself when missing (a test keeps that from happening). */
export function t(key: string, args?: Record<string, FluentVariable>): string {
  const message = active.getMessage(key);
  if (!message?.value) return key;
  return active.formatPattern(message.value, args);
}

/** Whether the catalogue has `key`. */
export function has(key: string): boolean {
  return !!active.getMessage(key)?.value;
}

/**
 * Words for a server error code, with what it carries: the seconds to wait, and each field's problem the
 * catalogue knows (`problem-<field>-<problem>`, else `problem-<problem>` naming the field), so a refused
 * form says what to fix.
 */
export function errorText(code: string, fields: Record<string, string> = {}): string {
  const parts = [t(`error-${code}`, { seconds: fields.retry_after_seconds ?? '' })];
  for (const [field, problem] of Object.entries(fields)) {
    const f = field.replace(/\./g, '-');
    const name = has(`field-${f}`) ? t(`field-${f}`) : field;
    if (has(`problem-${f}-${problem}`)) parts.push(t(`problem-${f}-${problem}`));
    else if (has(`problem-${problem}`)) parts.push(t(`problem-${problem}`, { field: name }));
  }
  return parts.join(' ');
}

/** Dates and times as people here read them. */
export function when(iso: string): string {
  return new Intl.DateTimeFormat(locale === 'ja' ? 'ja-JP' : 'en-GB', {
    month: 'numeric',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
  }).format(new Date(iso));
}
