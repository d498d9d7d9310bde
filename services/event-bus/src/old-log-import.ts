import { closeSync, existsSync, fstatSync, fsyncSync, openSync, readFileSync, readSync, renameSync } from 'node:fs';
import path from 'node:path';
import { inTransaction, MetaTable, type DatabaseSync, type Logger } from '@blog/common';
import { decodeRecords } from './old-log-format.js';

export const oldLogFile = 'events.log';
export const oldCursorsFile = 'cursors.json';
export const importedSuffix = '.imported';

/** The record log's largest single write: damage within this many bytes of the end is a torn last write. */
const tornTailMaxBytes = 1024 * 1024;
const chunkBytes = 1024 * 1024;
/** A line longer than the largest event the bus accepts (a whole request body) means the file is damaged. */
const maxLineBytes = 8 * 1024 * 1024;

export class OldLogImportError extends Error {
  override name = 'OldLogImportError';
}

/**
 * Brings a data dir from before the database (`events.log`, `cursors.json`) into it, once: the
 * records are checked (checksums, seqs 1..n) and inserted in one transaction, then the old files are
 * renamed to `*.imported`. A torn last record (a crash mid-write, never acknowledged) is dropped, as
 * the old log did; damage further back refuses the start, since events would be lost silently.
 * The file is read in chunks, so an old log of any size needs about a chunk of memory.
 */
export function importOldLog(db: DatabaseSync, dataDir: string, logger: Logger): void {
  const logPath = path.join(dataDir, oldLogFile);
  if (!existsSync(logPath)) return;
  const cursorsPath = path.join(dataDir, oldCursorsFile);
  const meta = new MetaTable(db);
  const alreadyImported = meta.get('imported_events') !== undefined;
  if (alreadyImported && !existsSync(`${logPath}${importedSuffix}`)) {
    // Committed by a run that stopped before it could rename the old files.
    renameImported(logPath, cursorsPath);
    logger.info({ from: logPath }, `${oldLogFile} was imported already; renamed it`);
    return;
  }
  if (alreadyImported || db.prepare('SELECT 1 FROM events LIMIT 1').get() !== undefined) {
    logger.warn({ file: logPath }, `${oldLogFile} is left alone: the database already holds events`);
    return;
  }
  const cursors = readOldCursors(cursorsPath);
  const imported = inTransaction(db, () => {
    const copied = copyRecords(db, logPath);
    const insertCursor = db.prepare('INSERT INTO cursors (subscriber, seq) VALUES (?, ?) ON CONFLICT (subscriber) DO UPDATE SET seq = excluded.seq');
    for (const [name, seq] of cursors) insertCursor.run(name, Math.min(seq, copied.events));
    meta.set('imported_events', copied.events);
    return copied;
  });
  renameImported(logPath, cursorsPath);
  // The import went through the WAL; give that space back rather than keep a WAL the size of the log.
  db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
  if (imported.droppedBytes > 0) logger.warn({ droppedBytes: imported.droppedBytes }, `${oldLogFile} ended in a torn record from a crash; dropped it (it was never acknowledged)`);
  logger.info(
    { events: imported.events, cursors: Object.fromEntries(cursors), from: logPath, keptAs: `${oldLogFile}${importedSuffix}` },
    `imported the old ${oldLogFile} and ${oldCursorsFile} into the database`,
  );
}

/** Inserts every intact record of the old log; returns how many, and how many bytes of torn tail were left out. */
function copyRecords(db: DatabaseSync, logPath: string): { events: number; droppedBytes: number } {
  const insert = db.prepare('INSERT INTO events (seq, id, json) VALUES (?, ?, ?)');
  const fd = openSync(logPath, 'r');
  try {
    const size = fstatSync(fd).size;
    const chunk = Buffer.allocUnsafe(chunkBytes);
    let carry = Buffer.alloc(0);
    // Where `carry` starts in the file.
    let offset = 0;
    let events = 0;
    const damaged = (at: number) => {
      if (size - at > tornTailMaxBytes) {
        throw new OldLogImportError(
          `${logPath} is damaged at byte ${at} of ${size}, before its last write: this is not a torn write from a crash, and importing it would lose events. ` +
            `Restore ${oldLogFile} from a backup, or move it (and ${oldCursorsFile}) away to start with an empty log.`,
        );
      }
      return { events, droppedBytes: size - at };
    };
    for (;;) {
      const read = readSync(fd, chunk, 0, chunk.length, null);
      if (read === 0) break;
      const buffer = carry.length > 0 ? Buffer.concat([carry, chunk.subarray(0, read)]) : chunk.subarray(0, read);
      const complete = buffer.lastIndexOf(0x0a) + 1;
      const { records, damagedAt } = decodeRecords(buffer.subarray(0, complete));
      for (const json of records) {
        events += 1;
        const event = checkedEvent(json, events, logPath);
        try {
          // Written out again as the bus sends envelopes (the old bus did the same when it loaded the file).
          insert.run(event.seq, event.id, JSON.stringify(event));
        } catch (error) {
          throw new OldLogImportError(`${logPath} record ${events} (id ${event.id}) cannot be imported: ${(error as Error).message}. Restore ${oldLogFile} from a backup, or move it away to start with an empty log.`, { cause: error });
        }
      }
      if (damagedAt !== undefined) return damaged(offset + damagedAt);
      // Copied: `chunk` is read into again.
      carry = Buffer.from(buffer.subarray(complete));
      offset += complete;
      if (carry.length > maxLineBytes) return damaged(offset);
    }
    return carry.length > 0 ? damaged(offset) : { events, droppedBytes: 0 };
  } finally {
    closeSync(fd);
  }
}

/** The record as the envelope the bus sends, or an error naming the file when it is not the expected event. */
function checkedEvent(json: string, expectedSeq: number, logPath: string): { id: string; seq: number; type: string; data: unknown } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    parsed = undefined;
  }
  const { id, seq, type, data } = (parsed ?? {}) as Record<string, unknown>;
  if (typeof id !== 'string' || id === '' || typeof type !== 'string' || data === undefined || seq !== expectedSeq) {
    throw new OldLogImportError(
      `${logPath} record ${expectedSeq} is not event ${expectedSeq} (the log must hold seqs 1, 2, 3... in order): ${json.slice(0, 200)}. ` +
        `Restore ${oldLogFile} from a backup, or move it away to start with an empty log.`,
    );
  }
  return { id, seq, type, data };
}

/** Each subscriber's saved position, as the old bus wrote it (`{"name": seq}`); none when there is no file. */
function readOldCursors(cursorsPath: string): Map<string, number> {
  let text: string;
  try {
    text = readFileSync(cursorsPath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw error;
  }
  let saved: unknown;
  try {
    saved = JSON.parse(text);
  } catch (error) {
    throw new OldLogImportError(`${cursorsPath} is not valid JSON (${(error as Error).message}). Fix it, or delete it to deliver every event to every subscriber again.`, { cause: error });
  }
  const cursors = new Map<string, number>();
  if (typeof saved !== 'object' || saved === null) return cursors;
  for (const [name, seq] of Object.entries(saved)) if (Number.isInteger(seq) && (seq as number) >= 0) cursors.set(name, seq as number);
  return cursors;
}

/** Keeps the old files beside the database, renamed so that they are never imported again. */
function renameImported(logPath: string, cursorsPath: string): void {
  renameSync(logPath, `${logPath}${importedSuffix}`);
  if (existsSync(cursorsPath)) renameSync(cursorsPath, `${cursorsPath}${importedSuffix}`);
  const dir = openSync(path.dirname(logPath), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
