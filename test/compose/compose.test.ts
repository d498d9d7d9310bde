import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import type { CommentView, PostsView } from '@blog/common/contract';
import { repoRoot, routeCases, waitFor } from '@blog/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * `docker compose up` for real: the images are built from this checkout, started hardened as the
 * compose file says, and tested only through the one published entry, http://localhost:3000
 * (BLOG_PORT moves it). The project gets its own name and is removed with its volumes at the end,
 * whatever happened.
 */

const run = promisify(execFile);
const project = `blogtest${randomUUID().slice(0, 8)}`;
let port: number;
let base: string;

async function compose(...args: string[]): Promise<string> {
  const { stdout } = await run('docker', ['compose', '-p', project, ...args], {
    cwd: repoRoot,
    env: { ...process.env, BLOG_PORT: String(port) },
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

async function http(method: 'GET' | 'POST', path: string, body?: unknown) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, servedBy: response.headers.get('x-served-by'), json, text };
}

const view = async () => (await http('GET', '/posts')).json as PostsView;
const unique = (label: string) => `${label} ${randomUUID().slice(0, 8)}`;

async function createPost(title: string) {
  const { status, json } = await http('POST', '/posts/create', { title });
  expect(status).toBe(201);
  return json as { id: string; title: string };
}

async function createComment(postId: string, content: string) {
  const { status, json } = await http('POST', `/posts/${postId}/comments`, { content });
  expect(status).toBe(201);
  return (json as CommentView[]).find((comment) => comment.content === content)!;
}

beforeAll(async () => {
  port = Number(process.env.BLOG_PORT ?? 3000);
  base = `http://localhost:${port}`;
  try {
    await compose('up', '-d', '--build', '--wait', '--wait-timeout', '240');
  } catch (error) {
    console.error(await compose('logs', '--no-color', '--tail', '50').catch(() => ''));
    throw error;
  }
  const images = await run('docker', ['images', '--format', '{{.Repository}}\t{{.Size}}', '--filter', 'reference=blog/*']);
  console.log(`Image sizes:\n${images.stdout}`);
});

afterAll(async () => {
  // Leaves nothing behind, even when a test failed: containers, network and volumes.
  await compose('down', '-v', '--remove-orphans', '--timeout', '15');
});

describe('docker compose up', () => {
  it.each(routeCases)('routes $method $path to $service, like the Ingress', async ({ method, path, service }) => {
    const expected = { 'posts-clusterip-srv': 'posts', 'comments-srv': 'comments', 'query-srv': 'query', 'client-srv': 'client' }[service];
    const controller = new AbortController();
    const response = await fetch(`${base}${path}`, {
      method,
      headers: method === 'POST' ? { 'content-type': 'application/json' } : {},
      body: method === 'POST' ? '{}' : undefined,
      signal: controller.signal,
    });
    controller.abort();

    expect(response.headers.get('x-served-by')).toBe(expected);
  });

  it('when a post gets "hello" and "Orange juice", then query shows them approved and rejected', async () => {
    const post = await createPost(unique('compose'));
    const hello = await createComment(post.id, 'hello');
    const orange = await createComment(post.id, 'Orange juice');

    const final = await waitFor(async () => {
      const comments = (await view())[post.id]?.comments ?? [];
      return comments.length === 2 && comments.every((c) => c.status !== 'pending') ? comments : undefined;
    }, { timeoutMs: 20_000, what: 'both verdicts' });

    expect(final).toEqual([
      { id: hello.id, content: 'hello', status: 'approved' },
      { id: orange.id, content: 'Orange juice', status: 'rejected' },
    ]);
  });

  it('when input is bad, then the answer is a JSON 4xx from the right service', async () => {
    expect(await http('POST', '/posts/create', { title: '' })).toMatchObject({ status: 400, servedBy: 'posts', json: { error: { code: 'invalid_request' } } });
    expect(await http('POST', '/posts/unknown-post/comments', { content: 'hi' })).toMatchObject({ status: 404, servedBy: 'comments', json: { error: { code: 'post_not_found' } } });
  });

  it('when the event-bus container restarts, then every post is still there', async () => {
    const titles = [unique('kept'), unique('kept'), unique('kept')];
    for (const title of titles) await createPost(title);
    await waitFor(async () => {
      const shown = Object.values(await view());
      return titles.every((t) => shown.some((p) => p.title === t)) ? true : undefined;
    }, { what: 'the posts in query' });

    await compose('restart', 'event-bus');
    await compose('up', '-d', '--wait', '--wait-timeout', '120');

    // Reading the log is an internal, signed request: made inside the bus container, with its secret.
    const readLog = [
      "import('@blog/common').then(async ({ signRequest }) => {",
      "  const headers = signRequest(process.env.EVENT_BUS_SECRET, { method: 'GET', target: '/events', audience: 'event-bus', body: '' });",
      "  process.stdout.write(await (await fetch('http://127.0.0.1:4005/events', { headers })).text());",
      '});',
    ].join('\n');
    const events = (await run('docker', ['compose', '-p', project, 'exec', '-T', 'event-bus', 'node', '-e', readLog], { cwd: repoRoot, env: { ...process.env, BLOG_PORT: String(port) }, maxBuffer: 64 * 1024 * 1024 })).stdout;
    const storedTitles = (JSON.parse(events) as Array<{ type: string; data: { title?: string } }>).filter((e) => e.type === 'PostCreated').map((e) => e.data.title);
    expect(storedTitles).toEqual(expect.arrayContaining(titles));
    const after = await createPost(unique('after the restart'));
    await waitFor(async () => ((await view())[after.id] ? true : undefined), { what: 'a post made after the restart' });
    expect(Object.values(await view()).map((p) => p.title)).toEqual(expect.arrayContaining(titles));
  });

  it('when moderation is stopped while comments are added, then query shows them all pending, and all get moderated once it starts', async () => {
    const post = await createPost(unique('moderation down'));
    await compose('stop', 'moderation');
    const contents = Array.from({ length: 5 }, (_, i) => `while moderation was away #${i}`);
    const created: CommentView[] = [];
    for (const content of contents) created.push(await createComment(post.id, content));

    // Only once query shows all five does "all pending" say anything: an empty list is all pending too.
    const whileStopped = await waitFor(async () => {
      const list = (await view())[post.id]?.comments ?? [];
      return list.length === contents.length ? list : undefined;
    }, { timeoutMs: 20_000, what: 'query to show the five comments' });
    expect(whileStopped).toEqual(created.map(({ id, content }) => ({ id, content, status: 'pending' })));

    await compose('start', 'moderation');

    const comments = await waitFor(async () => {
      const list = (await view())[post.id]?.comments ?? [];
      return list.length === 5 && list.every((c) => c.status === 'approved') ? list : undefined;
    }, { timeoutMs: 60_000, what: 'all five approved' });
    expect(comments.map((c) => c.content)).toEqual(contents);
  });
});
