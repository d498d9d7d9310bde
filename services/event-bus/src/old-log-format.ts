import { crc32 } from 'node:zlib';

/**
 * The format of `events.log` before the log moved to SQLite, kept only to import such a file once
 * (see old-log-import.ts): one record per line, `<crc32 hex> <json>\n`, so that a record torn by a
 * crash is recognised.
 */

export function encodeRecord(json: string): string {
  return `${crc32(json).toString(16).padStart(8, '0')} ${json}\n`;
}

/** Splits file contents into intact records; stops at the first damaged or unterminated one. */
export function decodeRecords(contents: Buffer): { records: string[]; validBytes: number; damagedAt?: number } {
  const records: string[] = [];
  let offset = 0;
  while (offset < contents.length) {
    const end = contents.indexOf(0x0a, offset);
    if (end === -1) return { records, validBytes: offset, damagedAt: offset };
    const line = contents.toString('utf8', offset, end);
    const json = line.slice(9);
    if (line[8] !== ' ' || !/^[0-9a-f]{8}$/.test(line.slice(0, 8)) || Number.parseInt(line.slice(0, 8), 16) !== crc32(json)) {
      return { records, validBytes: offset, damagedAt: offset };
    }
    records.push(json);
    offset = end + 1;
  }
  return { records, validBytes: offset };
}
