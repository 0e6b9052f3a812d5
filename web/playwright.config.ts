import { defineConfig, devices } from '@playwright/test';

// Browser tests drive Debian's Chromium (Playwright's own download cannot work on these machines)
// against a real renkei-server on SQLite that each test file starts itself (tests/e2e/server.ts).
export default defineConfig({
  testDir: 'tests/e2e',
  timeout: 90_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [['list']],
  use: {
    ...devices['Pixel 7'],
    // Phone size (412×915 CSS px); a phone's browser, Japanese first.
    locale: 'ja-JP',
    timezoneId: 'Asia/Tokyo',
    actionTimeout: 10_000,
    navigationTimeout: 15_000,
    launchOptions: {
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
});
