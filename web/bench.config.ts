import { defineConfig } from '@playwright/test';
import base from './playwright.config';

// `npm run bench`: the web client's performance figures (BENCHMARKS.md), measured in Chromium against a
// real server. Not part of the test run: figures are measured, never asserted by timed tests.
export default defineConfig({ ...base, testDir: 'bench', testMatch: '**/*.bench.ts', timeout: 900_000 });
