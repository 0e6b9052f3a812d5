// A real renkei-server for the browser tests: the binary cargo built, SQLite in a temporary directory,
// a free port chosen by the system. Stopped (by its PID) when the test file ends.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../../..');
export const PASSWORD = 'correct horse battery staple';

function binary(): string {
  const path = process.env.RENKEI_SERVER_BIN ?? join(ROOT, 'target', 'debug', 'renkei-server');
  if (!existsSync(path)) throw new Error(`${path} is missing: run \`cargo build -p renkei-server\` first`);
  return path;
}

export class Server {
  private child: ChildProcess | null = null;
  readonly dir = mkdtempSync(join(tmpdir(), 'renkei-web-'));
  url = '';
  private port = 0;

  /** `extraEnv` adds RENKEI_* settings; `configToml`, settings only a file can give (lists). */
  constructor(
    private readonly extraEnv: Record<string, string> = {},
    private readonly configToml = '',
  ) {
    writeFileSync(this.configFile, configToml);
  }

  private get configFile(): string {
    return join(this.dir, 'renkei.toml');
  }

  private env(): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH,
      RENKEI_DATA_DIR: this.dir,
      RENKEI_LISTEN: `127.0.0.1:${this.port}`,
      RENKEI_LOG_FILTER: 'info',
      ...this.extraEnv,
    };
  }

  /** Starts the server (again on the same port after a stop) and waits until it listens. */
  async start(): Promise<void> {
    const child = spawn(binary(), ['--config', this.configFile], { env: this.env(), stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    // However the test process ends, the server it started ends with it.
    const orphan = () => child.kill('SIGKILL');
    process.once('exit', orphan);
    child.once('exit', () => process.removeListener('exit', orphan));
    this.url = await new Promise<string>((resolveUrl, reject) => {
      const timer = setTimeout(() => reject(new Error('renkei-server did not start within 30 s')), 30_000);
      let log = '';
      const onData = (chunk: Buffer) => {
        log += chunk.toString();
        const m = /url=(http:\/\/127\.0\.0\.1:(\d+))/.exec(log);
        if (m) {
          clearTimeout(timer);
          this.port = Number(m[2]);
          resolveUrl(m[1]!);
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`renkei-server exited with ${code}: ${log}`));
      });
    });
    // Keep reading its output so the pipe never fills.
    child.stdout!.resume();
    child.stderr!.resume();
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  }

  /** `renkei-server create-admin`, with the password on stdin, as the README does it. */
  createAdmin(): void {
    const r = spawnSync(binary(), ['--config', this.configFile, 'create-admin', '--login', 'admin', '--display-name', '医師会 ICT 窓口'], {
      env: this.env(),
      input: `${PASSWORD}\n`,
      timeout: 30_000,
    });
    if (r.status !== 0) throw new Error(`create-admin failed: ${r.stderr}`);
  }

  async cleanup(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
