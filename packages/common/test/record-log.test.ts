import { appendFile, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeTempDir } from '@blog/testing';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CorruptLogError, decodeRecords, encodeRecord, RecordLog } from '../src/record-log.js';

describe('RecordLog', () => {
  let dir: Awaited<ReturnType<typeof makeTempDir>>;
  let file: string;
  beforeEach(async () => {
    dir = await makeTempDir();
    file = path.join(dir.path, 'log', 'events.log');
  });
  afterEach(() => dir.remove());

  it('when records are appended concurrently, then all are on disk in append order after reopening', async () => {
    const { log } = await RecordLog.open(file);
    const records = Array.from({ length: 200 }, (_, i) => JSON.stringify({ n: i }));

    await Promise.all(records.map((record) => log.append([record])));
    await log.close();

    const reopened = await RecordLog.open(file);
    expect(reopened.records).toEqual(records);
    expect(reopened.truncatedBytes).toBe(0);
    await reopened.log.close();
  });

  it('when synced lazily (a journal), then an append is readable by the next open at once, before any fsync, and fdatasync runs on its interval', async () => {
    const { log } = await RecordLog.open(file, { syncIntervalMs: 60_000 });
    const datasync = vi.spyOn(Object.getPrototypeOf((log as unknown as { file: object }).file) as { datasync: () => Promise<void> }, 'datasync');

    await log.append(['{"n":1}']);
    // Not closed: like a killed process, whose written bytes the OS still has.
    const reopened = await RecordLog.open(file);

    expect(reopened.records).toEqual(['{"n":1}']);
    expect(datasync).not.toHaveBeenCalled();
    await log.close();
    expect(datasync).toHaveBeenCalledTimes(1);
    datasync.mockRestore();
    await reopened.log.close();
  });

  it('when the last record was torn by a crash, then the log opens with every intact record and drops the torn bytes', async () => {
    const { log } = await RecordLog.open(file);
    await log.append(['{"n":1}', '{"n":2}']);
    await log.close();
    const torn = encodeRecord('{"n":3}').slice(0, 7);
    await appendFile(file, torn);

    const reopened = await RecordLog.open(file);

    expect(reopened.records).toEqual(['{"n":1}', '{"n":2}']);
    expect(reopened.truncatedBytes).toBe(torn.length);
    await reopened.log.append(['{"n":4}']);
    await reopened.log.close();
    const again = await RecordLog.open(file);
    expect(again.records).toEqual(['{"n":1}', '{"n":2}', '{"n":4}']);
    await again.log.close();
  });

  it('when a crash left a zero-filled tail, then it is dropped like a torn record', async () => {
    const { log } = await RecordLog.open(file);
    await log.append(['{"n":1}']);
    await log.close();
    await appendFile(file, Buffer.alloc(4096));

    const reopened = await RecordLog.open(file);

    expect(reopened.records).toEqual(['{"n":1}']);
    expect(reopened.truncatedBytes).toBe(4096);
    await reopened.log.close();
  });

  it('when a complete record fails its checksum far before the end, then opening refuses with a clear error', async () => {
    const lines = Array.from({ length: 30_000 }, (_, i) => encodeRecord(JSON.stringify({ n: i, padding: 'x'.repeat(40) })));
    lines[10] = lines[10]!.replace('"n":10', '"n":99');
    await (await RecordLog.open(file)).log.close();
    await writeFile(file, lines.join(''));

    await expect(RecordLog.open(file)).rejects.toThrow(CorruptLogError);
    await expect(RecordLog.open(file)).rejects.toThrow(/damaged at byte \d+/);
  });

  it('when cleared, then the file is empty and appends start over', async () => {
    const { log } = await RecordLog.open(file);
    await log.append(['{"n":1}']);
    await log.clear();
    await log.append(['{"n":2}']);
    await log.close();

    expect(await readFile(file, 'utf8')).toBe(encodeRecord('{"n":2}'));
  });
});

describe('decodeRecords', () => {
  it('when a line has a wrong checksum, then decoding stops before it', () => {
    const good = encodeRecord('{"a":1}');
    const bad = `00000000 {"a":2}\n`;

    const result = decodeRecords(Buffer.from(good + bad + good));

    expect(result).toEqual({ records: ['{"a":1}'], validBytes: good.length, damagedAt: good.length });
  });
});
