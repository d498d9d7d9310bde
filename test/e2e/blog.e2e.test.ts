import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { postsPageLimits, type PostsPage } from '@blog/common/contract';
import { makeTempDir, repoRoot, routeCases, waitFor } from '@blog/testing';
import { components, subscribers, topology } from '@blog/topology';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The whole app in a real browser: Debian's Chromium, driven by playwright-core, against the real
 * `pnpm start` stack (built services, gateway and client on http://localhost:3000), with its data in
 * a temporary DATA_ROOT. Screenshots of each step go to artifacts/e2e/ (git-ignored, kept by CI).
 */

const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const baseUrl = `http://localhost:${topology.gateway.port}`;
const screenshots = path.join(repoRoot, 'artifacts', 'e2e');
// CI must run this; on a machine without Chromium it is skipped with a reason (see docs/testing.md).
const runnable = existsSync(chromiumPath) || process.env.CI === 'true';

describe.runIf(runnable)('the blog in a browser', () => {
  let stack: ChildProcess;
  let output = '';
  let data: Awaited<ReturnType<typeof makeTempDir>>;
  let browser: Browser;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    data = await makeTempDir('blog-e2e-');
    await mkdir(screenshots, { recursive: true });
    stack = spawn(process.execPath, ['scripts/start.mjs'], {
      cwd: repoRoot,
      env: { ...process.env, DATA_ROOT: data.path, LOG_LEVEL: 'warn', FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000));
    stack.stdout!.on('data', keep);
    stack.stderr!.on('data', keep);
    // Every process `pnpm start` runs: all components but the client, which the gateway serves.
    for (const port of components.filter((component) => component.name !== 'client').map((component) => component.port)) {
      await waitFor(async () => ((await fetch(`http://127.0.0.1:${port}/readyz`)).ok ? true : undefined), { timeoutMs: 30_000, what: `port ${port} to be ready:\n${output}` });
    }
    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    if (stack && stack.exitCode === null) {
      const exited = new Promise((resolve) => stack.once('exit', resolve));
      stack.kill('SIGINT');
      await exited;
    }
    await data?.remove();
  }, 30_000);

  async function openPage(name: string): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 430, height: 900 } });
    page.on('pageerror', (error) => pageErrors.push(`${name}: ${error.message}`));
    await page.goto(baseUrl);
    return page;
  }

  const shoot = (page: Page, step: string) => page.screenshot({ path: path.join(screenshots, `${step}.png`), fullPage: true });
  const postCard = (page: Page, title: string) => page.getByRole('article').filter({ has: page.getByRole('heading', { name: title }) });

  async function comment(page: Page, title: string, content: string) {
    const card = postCard(page, title);
    await card.getByLabel('Add a comment').fill(content);
    await card.getByLabel('Add a comment').press('Enter');
  }

  // First, while every service is up (the browser test stops query). The public entry of
  // `pnpm start` routes like the Ingress: internal routes land on the client, never on a service.
  it.each(routeCases)('on the public origin, $method $path reaches $service', async ({ method, path: url, service }) => {
    const expected = components.find((component) => component.kubernetesService === service)?.name;
    const controller = new AbortController();
    const response = await fetch(`${baseUrl}${url}`, { method, headers: method === 'POST' ? { 'content-type': 'application/json' } : {}, body: method === 'POST' ? '{}' : undefined, signal: controller.signal });
    controller.abort();

    // The gateway stands in for the client: what the client would not serve (POST /events), it refuses itself.
    expect(service === 'client-srv' ? ['client', 'gateway'] : [expected]).toContain(response.headers.get('x-served-by'));
  });

  it.each([topology['event-bus'], ...subscribers].map((component) => component.port))('the internal POST /events on port %i refuses an unsigned request with 401 (pnpm start signs with a secret of its own)', async (port) => {
    const response = await fetch(`http://127.0.0.1:${port}/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"type":"PostCreated","data":{"id":"x","title":"x"}}' });

    expect(response.status).toBe(401);
  });

  it('creates a post, moderates comments live and shares them across tabs', async () => {
    const title = `A post from the browser ${Date.now().toString(36)}`;
    const first = await openPage('first');
    await expect.poll(() => first.getByText('No posts yet').count()).toBe(1);
    await shoot(first, '01-empty');

    // Create a post: it appears without a reload.
    await first.getByLabel('Post title').fill(title);
    await first.getByRole('button', { name: 'Create post' }).click();
    await postCard(first, title).waitFor();
    await shoot(first, '02-post-created');

    // "hello" shows at once as pending, then approved, with no reload.
    await comment(first, title, 'hello');
    await postCard(first, title).getByRole('listitem').filter({ hasText: /^hello$|awaiting moderation/ }).first().waitFor();
    await postCard(first, title).getByRole('listitem').filter({ hasText: /^hello$/ }).waitFor({ timeout: 10_000 });
    await shoot(first, '03-hello-approved');

    // "Orange juice" is rejected.
    await comment(first, title, 'Orange juice');
    await postCard(first, title).getByText('This comment has been rejected').waitFor({ timeout: 10_000 });
    await expect.poll(() => postCard(first, title).getByText('Orange juice').count()).toBe(0);
    await shoot(first, '04-orange-rejected');

    // A second tab sees what the first one does, live.
    const second = await openPage('second');
    await postCard(second, title).waitFor();
    await comment(first, title, 'from the first tab');
    await postCard(second, title).getByRole('listitem').filter({ hasText: /^from the first tab$/ }).waitFor({ timeout: 10_000 });
    await shoot(second, '05-second-tab-live');

    expect(pageErrors).toEqual([]);
  });

  it('shows the newest page, loads older posts on demand, and keeps an older post live in every tab that loaded it', async () => {
    // The client asks for pages of the contract's default size; one page more than that, oldest first.
    const pageSize = postsPageLimits.defaultLimit;
    const run = Date.now().toString(36);
    const titles = Array.from({ length: pageSize + 5 }, (_, index) => `Paged ${run} #${String(index + 1).padStart(2, '0')}`);
    for (const title of titles) {
      const response = await fetch(`${baseUrl}/posts/create`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title }) });
      expect(response.status).toBe(201);
    }
    const newest = titles.at(-1)!;
    const oldest = titles[0]!;
    // Opened once query has them all, so the snapshot is exactly the newest page of them.
    await waitFor(async () => {
      const page = (await (await fetch(`${baseUrl}/posts?limit=1`)).json()) as PostsPage;
      return page.posts[0]?.title === newest ? true : undefined;
    }, { what: `query to have "${newest}"` });

    const reader = await openPage('reader');
    await postCard(reader, newest).waitFor();
    await expect.poll(() => reader.getByRole('article').count()).toBe(pageSize);
    expect(await postCard(reader, oldest).count()).toBe(0);
    await shoot(reader, '06-newest-page');

    // The older posts come below, in order, and the button goes once the oldest post is shown
    // (every post of this run fits in two pages).
    await reader.getByRole('button', { name: 'Load older posts' }).click();
    await postCard(reader, oldest).waitFor();
    await expect.poll(() => reader.getByRole('button', { name: 'Load older posts' }).count()).toBe(0);
    const shownTitles = await reader.getByRole('heading', { level: 2 }).allTextContents();
    expect(shownTitles.filter((title) => titles.includes(title))).toEqual(titles.toReversed());
    await shoot(reader, '07-older-posts-loaded');

    // A comment on that older post, from another tab that loaded it too, shows live in the reader.
    const writer = await openPage('writer');
    await postCard(writer, newest).waitFor();
    await writer.getByRole('button', { name: 'Load older posts' }).click();
    await postCard(writer, oldest).waitFor();
    await comment(writer, oldest, 'hello from page two');
    await postCard(reader, oldest).getByRole('listitem').filter({ hasText: /^hello from page two$/ }).waitFor({ timeout: 10_000 });
    await shoot(reader, '08-older-post-live');

    expect(pageErrors).toEqual([]);
  });

  // Last: it stops query for good.
  it('when query is down, says so with a way to retry and keeps the posts on screen', async () => {
    const page = await openPage('query-down');
    await page.getByRole('article').first().waitFor();
    const shown = await page.getByRole('article').count();

    const queryPid = Number((await readFile(path.join(data.path, 'query.pid'), 'utf8')).trim());
    process.kill(queryPid, 'SIGTERM');
    await page.getByRole('alert').filter({ hasText: "Can't reach the server" }).waitFor({ timeout: 15_000 });
    await expect.poll(() => page.getByRole('button', { name: 'Retry' }).count()).toBe(1);
    await expect.poll(() => page.getByRole('article').count()).toBe(shown);
    await shoot(page, '09-query-down');

    expect(pageErrors).toEqual([]);
  });
});
