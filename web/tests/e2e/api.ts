// Setting up a care team through the HTTP API with bearer tokens, as the CLI does: the browser tests
// then sign the members in through the web client itself.
import { PASSWORD } from './server';

export class Api {
  constructor(
    readonly base: string,
    private token = '',
  ) {}

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const r = await fetch(`${this.base}/api/v1${path}`, {
      method,
      headers: {
        ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  static async login(base: string, login: string, password = PASSWORD): Promise<Api> {
    const r = await new Api(base).call<{ token: string }>('POST', '/auth/login', { login, password });
    return new Api(base, r.token);
  }

  /** Registers a professional and returns the one-time setup token the administrator hands over. */
  async register(login: string, name: string, profession: string, organisation: string, phone?: string): Promise<{ id: string; token: string }> {
    const r = await this.call<{ user: { id: string }; setup: { token: string } }>('POST', '/admin/users', {
      login, display_name: name, profession, organisation, phone,
    });
    return { id: r.user.id, token: r.setup.token };
  }

  /** Registers a professional who has set their password already (for team members not under test). */
  async member(login: string, name: string, profession: string, organisation: string, phone?: string): Promise<Api> {
    const { token } = await this.register(login, name, profession, organisation, phone);
    await new Api(this.base).call('POST', '/auth/setup', { setup_token: token, new_password: PASSWORD });
    return Api.login(this.base, login);
  }
}

/** A patient group opened by `doctor` with consent for nurses and care managers, the invitees joined. */
export async function patientGroup(doctor: Api, label: string, invitees: { login: string; api?: Api }[]): Promise<string> {
  const g = await doctor.call<{ id: string }>('POST', '/groups', {
    label,
    patient: { full_name: '山田 花子', kana: 'やまだ はなこ', patient_number: 'P-0001' },
    notes: null,
  });
  await doctor.call('POST', `/groups/${g.id}/consents`, {
    consenter: { kind: 'family', name: '山田 一郎', relationship: '長男' },
    method: 'written',
    obtained_on: '2026-11-20',
    scope: [{ organisation: null, profession: 'nurse', user: null }, { organisation: null, profession: 'care_manager', user: null }],
  });
  for (const i of invitees) {
    await doctor.call('POST', `/groups/${g.id}/invitations`, { user: i.login });
    if (i.api) {
      const list = await i.api.call<{ invitations: { id: string; group_id: string }[] }>('GET', '/invitations');
      const inv = list.invitations.find((x) => x.group_id === g.id)!;
      await i.api.call('POST', `/invitations/${inv.id}/accept`);
    }
  }
  return g.id;
}
