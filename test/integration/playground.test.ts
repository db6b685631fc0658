import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { waitFor } from '../../src/lab/proc.js';
import { freePort } from '../../src/lab/redis.js';
import { startMain, type MainProcess } from '../support/main-process.js';

/** The processes whose command line or environment names `dir` (what a lab started from it). */
function processesOf(dir: string): number[] {
  const out: number[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    if (Number(pid) === process.pid) continue;
    try {
      const seen = readFileSync(`/proc/${pid}/cmdline`, 'utf8') + readFileSync(`/proc/${pid}/environ`, 'utf8');
      if (seen.includes(`${dir}/`)) out.push(Number(pid));
    } catch {
      /* gone */
    }
  }
  return out;
}

// `npm start` with no Slack workspace: what a newcomer sees first, opened in a real browser.
describe('the playground', () => {
  const root = join(inject('labRoot'), 'playground');
  let port: number;
  let first: MainProcess;
  let browser: Browser;
  const procs: MainProcess[] = [];
  // The playground as `npm start` runs it: no SLACK_BOT_TOKEN, its own lab directory, subnet and page port.
  const playground = (env: Record<string, string>) => {
    const p = startMain('all', { SLACK_BOT_TOKEN: '', LOG_LEVEL: 'warn', ...env });
    procs.push(p);
    return p;
  };

  beforeAll(async () => {
    port = await freePort();
    first = playground({ LAB_ROOT: root, LAB_SUBNET: '119', PORT: String(port) });
    await waitFor('the playground to be ready', async () => first.out.join('').includes('[playground] ready in'), 150_000, 200);
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  });
  afterAll(async () => {
    await browser?.close();
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGTERM');
    await Promise.all(procs.map((p) => p.exit));
  });

  it('a second start on the same lab says one runs and exits, leaving the first untouched', async () => {
    const pids = processesOf(root);
    expect(pids.length).toBeGreaterThan(5);
    const second = playground({ LAB_ROOT: root, LAB_SUBNET: '119', PORT: String(await freePort()) });
    expect((await second.exit).code).toBe(2);
    const said = second.out.join('');
    expect(said).toContain(`a playground is already running from ${root} (process ${first.child.pid}, http://127.0.0.1:${port}/)`);
    expect(said).toContain('Nothing was started or stopped.');
    // Every process of the first is still there, and its page still answers.
    expect(processesOf(root)).toEqual(expect.arrayContaining(pids));
    expect((await fetch(`http://127.0.0.1:${port}/api/lab`)).status).toBe(200);
  });

  it('a start that fails half way stops every process it had started', async () => {
    const other = join(inject('labRoot'), 'playground-failing');
    // The fault: the Kubernetes stand-in's load balancer address is taken, so the start fails after etcd and sshd run.
    const squatter: Server = createServer();
    await new Promise<void>((r) => squatter.listen(6443, '127.0.120.100', () => r()));
    try {
      const p = playground({ LAB_ROOT: other, LAB_SUBNET: '120', PORT: String(await freePort()) });
      expect((await p.exit).code).toBe(1);
      expect(p.out.join('')).toMatch(/could not start: .*Everything it had started is stopped\./s);
      expect(processesOf(other)).toEqual([]);
    } finally {
      squatter.close();
    }
  });

  it('a start whose page port is taken says so and starts nothing', async () => {
    const other = join(inject('labRoot'), 'playground-port');
    const p = playground({ LAB_ROOT: other, LAB_SUBNET: '121', PORT: String(port) });
    expect((await p.exit).code).toBe(2);
    expect(p.out.join('')).toContain(`cannot serve the page on 127.0.0.1:${port}`);
    expect(processesOf(other)).toEqual([]);
  });

  it('in a browser: status, a broken disk, a replace asked by one person and approved by another, healthy again', async () => {
    const page: Page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('dialog', (d) => void d.accept()); // the confirm() of a destructive button
    await page.goto(`http://127.0.0.1:${port}/`);
    const feed = page.locator('#feed');
    const healthyCount = async () => (await feed.innerText()).split('etcd lab: HEALTHY').length - 1;
    const send = async (user: 'UALICE' | 'UBOB', text: string) => {
      await page.selectOption('#user', user);
      await page.fill('#text', text);
      await page.click('#composer button[type=submit]');
    };

    await page.locator('#members', { hasText: 'm3' }).waitFor();
    await send('UALICE', '/etcd status');
    await page.waitForFunction(() => document.getElementById('feed')!.innerText.includes('etcd lab: HEALTHY'), undefined, { timeout: 30_000 });

    // m3's disk breaks (the page's fault button); alice asks for the replace.
    await page.click('button[data-member="m3"][data-op="break"]');
    await send('UALICE', '/etcd replace m3');
    await page.waitForFunction(() => /Replace m3 in lab/.test(document.getElementById('feed')!.innerText), undefined, { timeout: 30_000 });

    // Bob approves each step as its buttons appear, until the plan says DONE.
    await page.selectOption('#user', 'UBOB');
    const deadline = Date.now() + 150_000;
    for (;;) {
      const text = await feed.innerText();
      if (/Replace m3 in lab: DONE/.test(text)) break;
      expect(text).not.toMatch(/Replace m3 in lab: (FAILED|REJECTED|CANCELLED)/);
      if (Date.now() > deadline) throw new Error(`the replace did not end within its bound:\n${text.slice(-3000)}`);
      const approve = page.locator('button[data-action]', { hasText: 'Approve' }).last();
      if (await approve.isVisible()) {
        const before = await feed.innerText();
        await approve.click();
        await page.waitForFunction((b) => document.getElementById('feed')!.innerText !== b, before, { timeout: 20_000 });
      } else {
        await page.waitForTimeout(250); // the page polls the channel twice a second
      }
    }

    const healthyBefore = await healthyCount();
    await send('UALICE', '/etcd status');
    await page.waitForFunction((n) => document.getElementById('feed')!.innerText.split('etcd lab: HEALTHY').length - 1 > n, healthyBefore, { timeout: 30_000 });
    // The page shows emoji, not Slack's shortcodes.
    const shown = await feed.innerText();
    expect(shown).toContain('✅');
    // (A shortcode stands alone: "system:node:m1" is a CSR's user, not one.)
    expect(shown.match(/(?<!\w):[a-z_]+:(?!\w)/g) ?? []).toEqual([]);
    const out = join(process.cwd(), 'test-output');
    mkdirSync(out, { recursive: true });
    await page.screenshot({ path: join(out, 'playground.png'), fullPage: true });
  });
});
