import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { promisify } from 'node:util';
import { limits, type CommentView, type PostsView } from '@blog/common/contract';
import { http, pathTrickCases, repoRoot, routeCases, waitFor } from '@blog/testing';
import { components, topology } from '@blog/topology';
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

async function entry(method: 'GET' | 'POST', path: string, body?: unknown) {
  const answer = await http(method, `${base}${path}`, body, { timeoutMs: 10_000 });
  return { status: answer.status, servedBy: answer.headers.get('x-served-by'), json: answer.body };
}

/** A request whose path is sent exactly as written (fetch would resolve its dot segments first). */
function rawHttp(method: 'GET' | 'POST', path: string, body?: Buffer) {
  return new Promise<{ status: number; servedBy: string | undefined; json: unknown }>((resolve, reject) => {
    const headers = body === undefined ? {} : { 'content-type': 'application/json', 'content-length': body.length };
    const req = request({ host: 'localhost', port, method, path, headers, timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode!, servedBy: res.headers['x-served-by'] as string | undefined, json });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in 10 s`)));
    req.on('error', reject);
    // The answer may come before the whole body is sent.
    if (body !== undefined) req.write(body, () => {});
    req.end();
  });
}

const view = async () => (await entry('GET', '/posts')).json as PostsView;
const unique = (label: string) => `${label} ${randomUUID().slice(0, 8)}`;

async function createPost(title: string) {
  const { status, json } = await entry('POST', '/posts/create', { title });
  expect(status).toBe(201);
  return json as { id: string; title: string };
}

async function createComment(postId: string, content: string) {
  const { status, json } = await entry('POST', `/posts/${postId}/comments`, { content });
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
    const expected = components.find((component) => component.kubernetesService === service)?.name;
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

  it.each(pathTrickCases)('refuses $method $path ($trick) at the entry with 400 JSON', async ({ method, path }) => {
    const response = await rawHttp(method, path, method === 'POST' ? Buffer.from('{}') : undefined);

    expect(response).toMatchObject({ status: 400, servedBy: 'gateway', json: { error: { code: 'invalid_path' } } });
  });

  it('when the client container is asked for the same paths directly, then its nginx refuses every one with 400 JSON', async () => {
    // From inside the gateway container: the client's port is not published.
    const askClient = [
      `const cases = ${JSON.stringify(pathTrickCases.map(({ method, path }) => ({ method, path })))};`,
      "const http = require('node:http');",
      'const ask = ({ method, path }) => new Promise((resolve, reject) => {',
      `  const req = http.request({ host: 'client', port: ${topology.client.port}, method, path }, (res) => {`,
      "    let text = ''; res.on('data', (c) => (text += c));",
      "    res.on('end', () => { let code; try { code = JSON.parse(text).error.code; } catch {} resolve({ method, path, status: res.statusCode, code }); });",
      "  }); req.on('error', reject); req.end();",
      '});',
      '(async () => { const answers = []; for (const c of cases) answers.push(await ask(c)); process.stdout.write(JSON.stringify(answers)); })();',
    ].join('\n');

    const { stdout } = await run('docker', ['compose', '-p', project, 'exec', '-T', 'gateway', 'node', '-e', askClient], { cwd: repoRoot, env: { ...process.env, BLOG_PORT: String(port) }, maxBuffer: 64 * 1024 * 1024 });
    const answers = JSON.parse(stdout) as Array<{ method: string; path: string; status: number; code: string | undefined }>;

    // invalid_path: the client's own check; bad_request: nginx itself refused a path above the root.
    expect(answers.filter((answer) => answer.status !== 400 || !['invalid_path', 'bad_request'].includes(answer.code ?? ''))).toEqual([]);
    expect(answers).toHaveLength(pathTrickCases.length);
  });

  it('when a body is over the services\' limit, then the entry refuses it with 413 JSON before any service', async () => {
    const response = await rawHttp('POST', '/posts/create', Buffer.alloc(limits.bodyMaxBytes + 1, 'a'));

    expect(response).toMatchObject({ status: 413, servedBy: 'gateway', json: { error: { code: 'payload_too_large' } } });
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
    expect(await entry('POST', '/posts/create', { title: '' })).toMatchObject({ status: 400, servedBy: 'posts', json: { error: { code: 'invalid_request' } } });
    expect(await entry('POST', '/posts/unknown-post/comments', { content: 'hi' })).toMatchObject({ status: 404, servedBy: 'comments', json: { error: { code: 'post_not_found' } } });
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
      `  process.stdout.write(await (await fetch('http://127.0.0.1:${topology['event-bus'].port}/events', { headers })).text());`,
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
