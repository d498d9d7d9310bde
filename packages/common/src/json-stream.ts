import type { Response } from 'express';

/**
 * Sends a JSON object (`{"<key of item>":item,...}`) built page by page, so that an answer of any size
 * needs only one page in memory: after each page it waits until the socket has taken it. The pages
 * come from a generator that reads the next page only when asked (keyset pagination), never from
 * a statement held open across the waits. Returns the body when it stayed under `keepUpToBytes`
 * (for a caller that caches small answers), otherwise undefined.
 */
export async function sendJsonObject<T>(
  res: Response,
  pages: Iterable<readonly T[]>,
  keyOf: (item: T) => string,
  { keepUpToBytes = 0 }: { keepUpToBytes?: number } = {},
): Promise<Buffer | undefined> {
  res.type('application/json');
  let kept: Buffer[] | undefined = keepUpToBytes > 0 ? [] : undefined;
  let keptBytes = 0;
  let separator = '';
  const write = async (text: string) => {
    const chunk = Buffer.from(text);
    if (kept) {
      keptBytes += chunk.length;
      if (keptBytes <= keepUpToBytes) kept.push(chunk);
      else kept = undefined;
    }
    if (!res.write(chunk)) await drained(res);
  };
  await write('{');
  for (const page of pages) {
    if (res.destroyed) return undefined;
    let text = '';
    for (const item of page) {
      text += `${separator}${JSON.stringify(keyOf(item))}:${JSON.stringify(item)}`;
      separator = ',';
    }
    if (text) await write(text);
  }
  if (kept) kept.push(Buffer.from('}'));
  res.end('}');
  return kept && Buffer.concat(kept);
}

/** Resolves once the socket has taken what was written (or the client went away). */
export function drained(res: Response): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** Reads a table page by page in key order: `readPage(after)` returns the rows after that key. */
export function* pagesInOrder<Row>(readPage: (after: number) => Row[], keyOf: (row: Row) => number): Generator<Row[]> {
  for (let after = Number.MIN_SAFE_INTEGER; ; ) {
    const rows = readPage(after);
    if (rows.length === 0) return;
    yield rows;
    after = keyOf(rows.at(-1)!);
  }
}
