// The upload page of deepfake-serve in Debian's headless Chromium, driven by
// playwright-core: upload a clip, see the verdict, the gauge, the chart and a
// heatmap in the report; the scan in the server's history (open it, delete
// it); then a file that is no video, and see the error.
// Environment (tests/serve/meson.build): DFD_SERVE_BIN, DFD_SERVE_MODEL,
// DFD_MAKE_TEST_MEDIA, DFD_SCREENSHOT_DIR, CHROMIUM, GST_PLUGIN_PATH.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const env = (k, d) => process.env[k] || d;
const work = mkdtempSync(join(tmpdir(), 'dfd-serve-browser-'));
const clip = join(work, 'clip.avi');
execFileSync(env('DFD_MAKE_TEST_MEDIA'), ['clip', clip, '12']);
const notMedia = join(work, 'notes.mp4');
writeFileSync(notMedia, 'just some text, not a video\n');

const serverTmp = join(work, 'tmp');
execFileSync('mkdir', [serverTmp]);
const server = spawn(env('DFD_SERVE_BIN'), ['--port', '0', '--bind', '127.0.0.1', '--window-size', '4',
  '--model', env('DFD_SERVE_MODEL'), '--history', 'sqlite:' + join(work, 'history.db')], { env: { ...process.env, TMPDIR: serverTmp }, stdio: ['ignore', 'pipe', 'inherit'] });
const url = await new Promise((resolve, reject) => {
  const rl = createInterface({ input: server.stdout });
  rl.once('line', (line) => {
    const m = /^listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(line);
    m ? resolve(m[1]) : reject(new Error('unexpected: ' + line));
  });
  server.once('exit', (code) => reject(new Error('deepfake-serve exited with ' + code)));
});
console.log('server at', url);

// Never leave the server behind, whatever happens below.
process.on('exit', () => { try { server.kill('SIGKILL'); } catch (e) { /* gone */ } });

const userData = join(work, 'profile');  // a fresh profile every run
let context = null;
let failed = false;
try {
  context = await chromium.launchPersistentContext(userData, {
    executablePath: env('CHROMIUM', '/usr/bin/chromium'),
    headless: true,
    viewport: { width: 1000, height: 1400 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const page = context.pages()[0] || await context.newPage();
  const external = [];
  page.on('request', (r) => { if (!r.url().startsWith(url) && !r.url().startsWith('data:') && r.url() !== 'about:srcdoc') external.push(r.url()); });
  const consoleErrors = [];
  // The browser logs the deliberate 415 below as a failed resource; anything else counts.
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 415/.test(m.text())) consoleErrors.push(m.text());
  });

  await page.goto(url + '/');
  await page.waitForFunction(() => document.getElementById('model').textContent.includes('UNTRAINED'));
  assert.equal(await page.isVisible('#untrained'), true, 'untrained warning on the page');

  const t0 = Date.now();
  await page.setInputFiles('#file', clip);
  await page.click('#analyse');
  const report = page.frameLocator('#report');
  const verdict = report.locator('#verdict');
  await verdict.waitFor({ timeout: 120000 });
  console.log(`report shown after ${Date.now() - t0} ms`);
  const v = await verdict.getAttribute('data-verdict');
  assert.ok(v === 'FAKE' || v === 'REAL', 'verdict ' + v);
  assert.match(await verdict.textContent(), /^(FAKE|REAL)$/);
  // Gauge, chart (12 frame points, 3 windows, the threshold), heatmaps, warning.
  const gauge = Number(await report.locator('#gauge').getAttribute('data-value'));
  assert.ok(gauge >= 50 && gauge <= 100, 'gauge ' + gauge);
  assert.equal(await report.locator('svg.chart').count(), 1);
  assert.equal(await report.locator('svg.chart circle.frame-point').count(), 12);
  assert.equal(await report.locator('svg.chart line.window').count(), 3);
  assert.equal(await report.locator('svg.chart line.threshold').count(), 1);
  assert.ok(await report.locator('svg.chart').isVisible());
  assert.equal(await report.locator('img.heatmap').count(), 3);
  const loaded = await report.locator('img.heatmap').first().evaluate((img) => img.complete && img.naturalWidth);
  assert.equal(loaded, 224, 'heatmap image decoded');
  assert.ok(await report.locator('#untrained-warning').isVisible());
  // The history keeps the result.
  assert.equal(await page.locator('#history tr').count(), 1);
  assert.match(await page.locator('#history tr').first().textContent(), /clip\.avi/);
  assert.match(await page.locator('#status').textContent(), /^done in/);
  const shot = join(env('DFD_SCREENSHOT_DIR', work), 'serve_browser.png');
  await page.screenshot({ path: shot, fullPage: true });
  console.log('screenshot:', shot);

  // The server's history lists the scan; opening it shows the stored report.
  await page.locator('#scans tr').first().waitFor({ timeout: 30000 });
  assert.equal(await page.isVisible('#scans-card'), true, 'history card shown');
  assert.equal(await page.locator('#scans tr').count(), 1);
  const row = page.locator('#scans tr').first();
  assert.equal(await row.locator('td.source').textContent(), 'clip.avi');
  assert.equal(await row.getAttribute('data-verdict'), v);
  assert.match(await row.locator('td.probability').textContent(), /^\d+\.\d %$/);
  assert.match(await page.locator('#scans-count').textContent(), /1\u20131 of 1/);
  await page.evaluate(() => { document.getElementById('report').srcdoc = ''; });
  await row.locator('button.open').click();
  await report.locator('#verdict').waitFor({ timeout: 30000 });
  assert.equal(await report.locator('#verdict').getAttribute('data-verdict'), v, 'opened report verdict');
  assert.match(await report.locator('head title').textContent(), /clip\.avi \(scan \d+,/);
  // The filter: no NO_FACE scans; back to all.
  await page.selectOption('#scans-verdict', 'NO_FACE');
  await page.waitForFunction(() => document.querySelectorAll('#scans tr').length === 0);
  assert.equal(await page.locator('#scans-count').textContent(), 'no scans yet');
  await page.selectOption('#scans-verdict', '');
  await page.locator('#scans tr').first().waitFor();
  // Delete it (after the confirmation): gone from the page and the server.
  const dialogs = [];
  page.once('dialog', (d) => { dialogs.push(d.message()); d.accept(); });
  await page.locator('#scans tr button.delete').first().click();
  await page.waitForFunction(() => document.querySelectorAll('#scans tr').length === 0);
  assert.match(dialogs[0] || '', /clip\.avi/);
  const left = await (await fetch(url + '/api/v1/scans')).json();
  assert.equal(left.total, 0, 'deleted on the server');

  // Not a video: the page shows the server's error.
  await page.setInputFiles('#file', notMedia);
  await page.click('#analyse');
  await page.locator('#error').waitFor({ state: 'visible', timeout: 60000 });
  assert.match(await page.locator('#error').textContent(), /not an image or a video.*HTTP 415/);

  assert.deepEqual(external, [], 'requests left the server: ' + external.join(', '));
  assert.deepEqual(consoleErrors, [], 'console errors: ' + consoleErrors.join(' | '));
  console.log('PASS');
} catch (e) {
  failed = true;
  console.error('FAIL:', e);
} finally {
  if (context) await context.close();
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  const left = readdirSync(serverTmp);
  if (left.length) { failed = true; console.error('FAIL: server left', left); }
  rmSync(work, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
