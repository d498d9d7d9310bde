import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '@blog/testing';

/**
 * Just enough Markdown for checking our own docs: fenced code blocks, headings and their anchors
 * (as GitHub makes them), links outside code, and the commands of shell blocks.
 */

export interface CodeBlock {
  lang: string;
  /** 1-based line of the opening fence. */
  line: number;
  lines: string[];
}

export interface MarkdownDoc {
  /** Repository-relative path. */
  file: string;
  blocks: CodeBlock[];
  /** Every heading's anchor, in order, with GitHub's -1, -2 suffixes for repeats. */
  anchors: string[];
  /** The text outside code blocks, line for line (code lines are blank). */
  prose: string;
}

const fence = /^\s*(`{3,}|~{3,})\s*([\w-]*)/;

export function parseMarkdown(file: string, text: string): MarkdownDoc {
  const blocks: CodeBlock[] = [];
  const prose: string[] = [];
  const anchors: string[] = [];
  const seen = new Map<string, number>();
  let open: (CodeBlock & { marker: string }) | undefined;
  text.split('\n').forEach((line, index) => {
    const match = fence.exec(line);
    if (open) {
      if (match && match[1]!.startsWith(open.marker) && match[2] === '') {
        blocks.push({ lang: open.lang, line: open.line, lines: open.lines });
        open = undefined;
      } else {
        open.lines.push(line);
      }
      prose.push('');
      return;
    }
    if (match) {
      open = { marker: match[1]!, lang: match[2]!.toLowerCase(), line: index + 1, lines: [] };
      prose.push('');
      return;
    }
    prose.push(line);
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading) {
      const slug = slugOf(heading[1]!);
      const count = seen.get(slug) ?? 0;
      seen.set(slug, count + 1);
      anchors.push(count === 0 ? slug : `${slug}-${count}`);
    }
  });
  return { file, blocks, anchors, prose: prose.join('\n') };
}

/** GitHub's heading anchor: the text without markup, lowercased, punctuation dropped, spaces as dashes. */
export function slugOf(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

export interface Link {
  target: string;
  line: number;
}

/** Links and images outside code (code blocks and inline code spans). */
export function linksOf(doc: MarkdownDoc): Link[] {
  // Inline code goes, newlines stay: line numbers still point at the link.
  const text = doc.prose.replace(/`[^`]*`/g, (code) => code.replace(/[^\n]/g, ' '));
  const links: Link[] = [];
  for (const match of text.matchAll(/\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
    links.push({ target: match[1]!, line: text.slice(0, match.index).split('\n').length });
  }
  return links;
}

const shellLangs = new Set(['sh', 'bash', 'console', 'shell']);

export interface ShellCommand {
  command: string;
  file: string;
  line: number;
}

/**
 * The commands of the ```sh / ```bash / ```console blocks: one per line, continuation lines joined,
 * comments dropped; in console blocks only the `$ ` lines (the rest is output).
 */
export function shellCommandsOf(doc: MarkdownDoc): ShellCommand[] {
  const commands: ShellCommand[] = [];
  for (const block of doc.blocks.filter((b) => shellLangs.has(b.lang))) {
    let pending = '';
    block.lines.forEach((raw, index) => {
      let line = raw.trim();
      if (block.lang === 'console' && pending === '') {
        if (!line.startsWith('$ ')) return;
        line = line.slice(2).trim();
      }
      if (pending === '' && (line === '' || line.startsWith('#'))) return;
      line = line.replace(/\s+#(\s.*)?$/, '');
      if (line.endsWith('\\')) {
        pending += `${line.slice(0, -1).trim()} `;
        return;
      }
      commands.push({ command: `${pending}${line}`.trim(), file: doc.file, line: block.line + 1 + index });
      pending = '';
    });
  }
  return commands;
}

/** README.md and every page under docs/, which the docs tests hold to their rules. */
export function docFiles(): string[] {
  const docs = readdirSync(path.join(repoRoot, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`);
  return ['README.md', ...docs];
}

/** The READMEs of the services and packages, whose links are checked too. */
export function packageReadmes(): string[] {
  return ['services', 'packages'].flatMap((dir) =>
    readdirSync(path.join(repoRoot, dir))
      .sort()
      .map((name) => `${dir}/${name}/README.md`)
      .filter((file) => existsSync(path.join(repoRoot, file))),
  );
}

export function readDoc(file: string): MarkdownDoc {
  return parseMarkdown(file, readFileSync(path.join(repoRoot, file), 'utf8'));
}
