import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '@blog/testing';
import { describe, expect, it } from 'vitest';
import { docFiles, linksOf, packageReadmes, parseMarkdown, readDoc, shellCommandsOf, slugOf, type MarkdownDoc } from './markdown.js';

/**
 * Every command the README and docs/ show in a shell block is run somewhere: by a test, or by
 * `.ci/run`. This table says where, and the test below holds it to the docs both ways: a command
 * missing from it fails, and so does an entry no page shows any more. `contains` is the part of the
 * command the runner must contain, as it spells it.
 */
const whereEachCommandRuns: Record<string, { runBy: string; contains: string }> = {
  'pnpm install': { runBy: '.ci/run', contains: 'pnpm install --frozen-lockfile' },
  // `pnpm start` is `pnpm build && node scripts/start.mjs`; the browser test starts that script after the suite's build.
  'pnpm start': { runBy: 'test/e2e/blog.e2e.test.ts', contains: "'scripts/start.mjs'" },
  // The quick start's requests, run as written (curl) against a real stack behind the gateway.
  [`curl -s -X POST localhost:3000/posts/create -H 'content-type: application/json' -d '{"title":"Hello"}'`]: {
    runBy: 'test/system/quick-start.test.ts',
    contains: 'curl',
  },
  [`curl -s -X POST localhost:3000/posts/<post id>/comments -H 'content-type: application/json' -d '{"content":"Orange juice"}'`]: {
    runBy: 'test/system/quick-start.test.ts',
    contains: '<post id>',
  },
  'curl -s localhost:3000/posts': { runBy: 'test/system/quick-start.test.ts', contains: 'localhost:3000' },
  "curl -s 'localhost:3000/posts?limit=20'": { runBy: 'test/system/quick-start.test.ts', contains: 'localhost:3000' },
  'docker compose up --build': { runBy: 'test/compose/compose.test.ts', contains: "compose('up', '-d', '--build'" },
  'docker compose down -v': { runBy: 'test/compose/compose.test.ts', contains: "compose('down', '-v'" },
  'pnpm test': { runBy: '.ci/run', contains: 'pnpm test --reporter' },
  'pnpm lint': { runBy: '.ci/run', contains: 'pnpm lint' },
  'pnpm typecheck': { runBy: '.ci/run', contains: 'pnpm typecheck' },
  // Storage's dead-letter commands: their SQL, run on a real service's state.db.
  "sqlite3 state.db 'SELECT position, bus_status, bus_answer, event FROM outbox_dead_letters'": {
    runBy: 'test/infra/dead-letter-commands.test.ts',
    contains: 'docs/storage.md',
  },
  "sqlite3 state.db 'INSERT INTO outbox (event) SELECT event FROM outbox_dead_letters ORDER BY position; DELETE FROM outbox_dead_letters'":
    {
      runBy: 'test/infra/dead-letter-commands.test.ts',
      contains: 'docs/storage.md',
    },
};

const readRepoFile = (file: string) => readFileSync(path.join(repoRoot, file), 'utf8');

/** Problems with one page's relative links: a missing file, or an anchor no heading makes. */
function linkProblems(doc: MarkdownDoc, docOf: (file: string) => MarkdownDoc): string[] {
  const problems: string[] = [];
  for (const { target, line } of linksOf(doc)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
    const [filePart = '', anchor] = target.split('#', 2) as [string, string | undefined];
    const file =
      filePart === '' ? doc.file : path.posix.normalize(path.posix.join(path.posix.dirname(doc.file), decodeURIComponent(filePart)));
    const where = `${doc.file}:${line} → ${target}`;
    if (file.startsWith('..') || !existsSync(path.join(repoRoot, file))) {
      problems.push(`${where}: no such file`);
      continue;
    }
    if (anchor === undefined) continue;
    if (!file.endsWith('.md')) problems.push(`${where}: an anchor into a file that is not Markdown`);
    else if (!docOf(file).anchors.includes(anchor))
      problems.push(`${where}: no heading makes #${anchor} (there are ${docOf(file).anchors.join(', ')})`);
  }
  return problems;
}

describe('markdown reading', () => {
  it('when a heading has punctuation, code or a link, then its anchor is the one GitHub makes', () => {
    expect(slugOf('Routing: one origin')).toBe('routing-one-origin');
    expect(slugOf('What the classic versions get wrong, and this one does not')).toBe(
      'what-the-classic-versions-get-wrong-and-this-one-does-not',
    );
    expect(slugOf('`EVENT_STORE` and [JetStream](x.md)')).toBe('event_store-and-jetstream');
    expect(parseMarkdown('a.md', '# Events\n## Events\n').anchors).toEqual(['events', 'events-1']);
  });

  it('when a shell block has comments, output and continued lines, then only the commands are read', () => {
    const doc = parseMarkdown(
      'a.md',
      [
        '```sh',
        '# a note',
        'pnpm start   # runs it',
        'curl -s \\',
        '  localhost:3000',
        '# {"out":1}',
        '```',
        '```console',
        '$ pnpm lint',
        'output',
        '```',
        '```json',
        '{"not":"a command"}',
        '```',
      ].join('\n'),
    );

    expect(shellCommandsOf(doc).map((c) => c.command)).toEqual(['pnpm start', 'curl -s localhost:3000', 'pnpm lint']);
  });

  it('when a link sits in inline code or a code block, then it is not read as a link', () => {
    const doc = parseMarkdown('a.md', 'see [b](b.md) and `[c](c.md)`\n```md\n[d](d.md)\n```\n');

    expect(linksOf(doc)).toEqual([{ target: 'b.md', line: 1 }]);
  });
});

describe('README.md and docs/', () => {
  const files = [...docFiles(), ...packageReadmes()];
  const parsed = new Map(files.map((file) => [file, readDoc(file)]));
  const docOf = (file: string) => parsed.get(file) ?? parsed.set(file, readDoc(file)).get(file)!;

  it.each(files)('%s: every relative link and anchor resolves', (file) => {
    expect(linkProblems(docOf(file), docOf)).toEqual([]);
  });

  it('the README stays a front door: at most about 200 lines', () => {
    expect(readRepoFile('README.md').split('\n').length).toBeLessThanOrEqual(200);
  });

  const commands = docFiles().flatMap((file) => shellCommandsOf(docOf(file)));

  it('every command in a shell block is in the table of where it runs', () => {
    const unlisted = commands
      .filter(({ command }) => !(command in whereEachCommandRuns))
      .map(({ command, file, line }) => `${file}:${line}: ${command}`);

    expect(unlisted).toEqual([]);
  });

  it.each(Object.entries(whereEachCommandRuns))(
    '%s: is shown in the docs and run by what the table names',
    (command, { runBy, contains }) => {
      expect(commands.map((c) => c.command)).toContain(command);
      expect(existsSync(path.join(repoRoot, runBy)), `${runBy} does not exist`).toBe(true);
      expect(readRepoFile(runBy)).toContain(contains);
    },
  );
});
