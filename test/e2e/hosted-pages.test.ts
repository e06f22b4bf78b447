// Issue 7: the hosted pages in headless Chromium. A user enrolls through the page (the test
// reads the key from the page and computes the code with oathtool), then meets the 2FA prompt:
// a wrong code shows the error, the right one returns to the app. Screenshots of each page
// land in test-results/e2e/.
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSessionToken } from '@twofold/contracts';
import { launchChromium } from '../support/browser.js';
import { oathtoolTotp, previousStepCode } from '../support/otp.js';
import { apiClient, startServices, type RunningServices } from '../support/services.js';
import { isolated, REPO_ROOT, type Isolated } from '../support/stack.js';

const SHOTS = `${REPO_ROOT}test-results/e2e`;
let world: Isolated;
let services: RunningServices;
let browser: Browser;
let context: BrowserContext;
let jiraServer: Server;
let jiraOrigin: string;
let jiraKey: string;
/** Content-Security-Policy violations the browser reported, per page URL. */
const violations: string[] = [];
const now = () => Math.floor(Date.now() / 1000);
const jira = () => apiClient(services.apiUrl, jiraKey);

/** The id of the element that has the keyboard focus. */
/**
 * The focused element's id once focus settles on `expected` (within 5 s), else the id it
 * has then: the browser applies autofocus at a rendering update after the load event, so
 * a busy machine can read it a moment too early.
 */
async function focusedId(page: Page, expected: string): Promise<string | undefined> {
  await page
    .waitForFunction(`document.activeElement?.id === ${JSON.stringify(expected)}`, undefined, {
      timeout: 5_000,
    })
    .catch(() => undefined);
  return page.evaluate<string | undefined>('document.activeElement?.id');
}

async function shoot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

async function newPage(): Promise<Page> {
  const page = await context.newPage();
  page.on('console', (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text()))
      violations.push(`${page.url()}: ${message.text()}`);
  });
  return page;
}

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  // The app the user returns to: a page that says where the user landed.
  jiraServer = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(
      `<!doctype html><html lang="en"><title>Jira</title><h1>Jira dashboard</h1><p id="path">${req.url}</p></html>`,
    );
  });
  await new Promise<void>((resolve) => jiraServer.listen(0, '127.0.0.1', resolve));
  jiraOrigin = `http://127.0.0.1:${(jiraServer.address() as AddressInfo).port}`;

  world = await isolated('e2e-pages', { database: true });
  services = await startServices(world, ['api', 'verifier']);
  const res = await apiClient(services.apiUrl, world.env['TWOFOLD_ADMIN_KEY'])<{ key: string }>(
    'POST',
    '/v1/admin/apps',
    { appId: 'jira', name: 'Jira', origins: [jiraOrigin] },
  );
  jiraKey = res.body.key;
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 800, height: 1000 }, locale: 'en-US' });
});

afterAll(async () => {
  await context?.close();
  await browser?.close();
  await services?.stop();
  await world?.cleanup();
  await new Promise((resolve) => jiraServer?.close(resolve));
});

describe('in a browser', () => {
  let secret: string;

  it('enrolls through the page: QR code and key shown, a wrong code refused, backup codes once, back to Jira', async () => {
    const started = await jira()<{ enrollmentId: string }>('POST', '/v1/enrollments', { username: 'eve' });
    expect(started.status).toBe(201);
    const page = await newPage();
    const returnTo = `${jiraOrigin}/secure/Dashboard.jspa`;
    await page.goto(
      `${services.apiUrl}/enroll/${started.body.enrollmentId}?returnTo=${encodeURIComponent(returnTo)}`,
    );
    await expect(page.title()).resolves.toBe('Set up your authenticator · twofold');
    // The QR code is a data: image the CSP allows, and it rendered.
    const qr = page.locator('img.qr');
    expect(
      await qr.evaluate(
        (img: { complete: boolean; naturalWidth: number }) => img.complete && img.naturalWidth > 0,
      ),
    ).toBe(true);
    await shoot(page, '1-enroll');

    secret = (await page.locator('#manual-key').innerText()).replace(/\s/g, '');
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    const code = page.getByLabel('Code your app shows now');
    await code.fill(oathtoolTotp(secret, { atSeconds: now() - 3600 }));
    await page.getByRole('button', { name: 'Confirm' }).click();
    await expect(page.locator('#code-error').innerText()).resolves.toMatch(/That code is not right/);
    expect(await focusedId(page, 'code')).toBe('code');
    await shoot(page, '2-enroll-wrong-code');

    await page.getByLabel('Code your app shows now').fill(await previousStepCode(secret));
    await page.getByRole('button', { name: 'Confirm' }).click();
    // The form page has a heading too: wait for the answer's, not the first one found.
    const enrolled = page.getByRole('heading', { level: 1, name: 'Your authenticator is set up' });
    await enrolled.waitFor({ timeout: 15_000 }).catch(async () => {
      throw new Error(`confirming showed "${await page.locator('h1').innerText()}", not the enrolled page`);
    });
    const backupCodes = await page.locator('#backup-codes li').allInnerTexts();
    expect(backupCodes).toHaveLength(10);
    await shoot(page, '3-enroll-backup-codes');

    await page.getByRole('link', { name: /continue to Jira/ }).click();
    await page.waitForURL(returnTo);
    await expect(page.locator('#path').innerText()).resolves.toBe('/secure/Dashboard.jspa');
    await page.close();
  });

  it('asks for the code at sign-in: a wrong one shows the error, the right one returns to returnTo', async () => {
    const decided = await jira()<{ decision: string; challengeId: string }>(
      'POST',
      '/v1/login-events?wait=decision&timeoutMs=15000',
      {
        type: 'twofold.login.succeeded',
        subject: 'eve',
        data: {
          appId: 'jira',
          session: hashSessionToken(randomUUID()),
          method: 'password',
          ip: '198.51.100.9',
        },
      },
    );
    expect(decided.body.decision).toBe('challenge');
    const returnTo = `${jiraOrigin}/browse/TF-7?focus=comments`;
    const page = await newPage();
    await page.goto(
      `${services.apiUrl}/2fa/${decided.body.challengeId}?returnTo=${encodeURIComponent(returnTo)}`,
    );
    await expect(page.title()).resolves.toBe('Confirm it’s you · twofold');
    // Focus starts in the field; it is labelled, numeric, and a one-time-code field.
    expect(await focusedId(page, 'code')).toBe('code');
    const field = page.getByLabel('Code from your authenticator app');
    expect(await field.getAttribute('inputmode')).toBe('numeric');
    expect(await field.getAttribute('autocomplete')).toBe('one-time-code');
    await shoot(page, '4-prompt');

    await field.fill(oathtoolTotp(secret, { atSeconds: now() - 3600 }));
    await page.keyboard.press('Enter');
    const error = page.locator('#code-error');
    await expect(error.innerText()).resolves.toMatch(/That code is not right.*4 attempts left/);
    expect(await page.getByLabel('Code from your authenticator app').getAttribute('aria-invalid')).toBe(
      'true',
    );
    expect(await page.getByLabel('Code from your authenticator app').getAttribute('aria-describedby')).toBe(
      'code-hint code-error',
    );
    await shoot(page, '5-prompt-wrong-code');

    await page.getByLabel('Code from your authenticator app').fill(oathtoolTotp(secret));
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.waitForURL(returnTo);
    await expect(page.locator('#path').innerText()).resolves.toBe('/browse/TF-7?focus=comments');
    await shoot(page, '6-back-in-jira');
    await page.close();
  });

  it('serves the OpenAPI UI at /docs under its CSP', async () => {
    const page = await newPage();
    await page.goto(`${services.apiUrl}/docs`);
    await page.getByText('/v1/login-events').first().waitFor({ timeout: 15_000 });
    await shoot(page, '7-openapi');
    await page.close();
  });

  it('no page broke its Content-Security-Policy', () => {
    expect(violations).toEqual([]);
  });
});
