import { spawn, type ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, repoRoot, startStack, waitFor, type Stack } from '@blog/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDoc } from '../infra/markdown.js';

const run = promisify(execFile);

/**
 * The README's quick start, run as written: each curl of its block against a real stack behind the
 * gateway (as `pnpm start` wires them, but on free ports), its answer held to the one the README
 * shows under it. In the shown answers an id is written as its first characters and `…`, and `…`
 * alone stands for anything.
 */

interface Step {
  command: string;
  shown: string;
}

function quickStartSteps(): Step[] {
  const block = readDoc('README.md').blocks.find((b) => b.lang === 'sh' && b.lines.some((line) => line.startsWith('curl ')));
  if (!block) throw new Error('README.md has no shell block of curl commands');
  const steps: Step[] = [];
  for (const line of block.lines) {
    if (line.startsWith('curl ')) steps.push({ command: line.replace(/\s+#\s.*$/, ''), shown: '' });
    else if (line.startsWith('# ') && steps.length > 0) steps.at(-1)!.shown = line.slice(2);
  }
  return steps;
}

/** The shown answer as a pattern: `0b6c…` is any id, `…` anything. */
function patternOf(shown: string): RegExp {
  const parts = shown.split(/([0-9a-f]{4}…|…)/);
  const source = parts
    .map((part) => (part === '…' ? '.*' : /^[0-9a-f]{4}…$/.test(part) ? '[^"]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`);
}

describe('the README quick start', () => {
  let stack: Stack;
  let gateway: ChildProcess;
  let origin: string;

  beforeAll(async () => {
    stack = await startStack();
    const port = await freePort();
    origin = `127.0.0.1:${port}`;
    gateway = spawn(process.execPath, [path.join(repoRoot, 'services/gateway/dist/index.js')], {
      cwd: repoRoot,
      env: {
        PATH: process.env.PATH ?? '',
        PORT: String(port),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
        CLIENT_DIR: 'client/dist',
        UPSTREAMS: `posts-clusterip-srv=${stack.posts.url},comments-srv=${stack.comments.url},query-srv=${stack.query.url}`,
      },
      stdio: 'ignore',
    });
    await waitFor(async () => ((await fetch(`http://${origin}/readyz`).catch(() => undefined))?.ok ? true : undefined), {
      what: 'the gateway to be ready',
    });
  });

  afterAll(async () => {
    if (gateway.exitCode === null) {
      const exited = new Promise((resolve) => gateway.once('exit', resolve));
      gateway.kill('SIGTERM');
      await exited;
    }
    await stack?.destroy();
  });

  it('when its curl commands run in order against localhost:3000, then each answers what the README shows under it', async () => {
    const steps = quickStartSteps();
    let postId: string | undefined;

    for (const { command, shown } of steps) {
      // Only the one origin is swapped for the test's: a command aimed anywhere else is not run at all.
      expect(command, 'a quick-start command goes through the one origin').toContain('localhost:3000');
      expect(shown, `the README shows no answer under ${command}`).not.toBe('');
      if (command.includes('<post id>')) expect(postId, 'a step uses <post id> before one was created').toBeDefined();
      const runnable = command.replaceAll('localhost:3000', origin).replaceAll('<post id>', postId ?? '');
      const answer = async () => (await run('sh', ['-c', runnable], { cwd: repoRoot })).stdout.trim();
      // A read may run before moderation's verdict reaches query: it is asked again until it shows it.
      const reads = !command.includes('-X POST');
      const seen = reads
        ? await waitFor(async () => ((await answer()).match(patternOf(shown)) ? answer() : undefined), {
            what: `${command} to answer ${shown}`,
          }).catch(async () => answer())
        : await answer();

      expect(seen).toMatch(patternOf(shown));
      if (command.includes('/posts/create')) postId = (JSON.parse(seen) as { id: string }).id;
    }
    expect(steps.map((step) => step.command)).toEqual([
      expect.stringContaining('/posts/create'),
      expect.stringContaining('/posts/<post id>/comments'),
      'curl -s localhost:3000/posts',
      "curl -s 'localhost:3000/posts?limit=20'",
    ]);
  });
});
