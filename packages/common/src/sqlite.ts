import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';

export type { DatabaseSync, StatementSync } from 'node:sqlite';

export interface OpenDatabaseOptions {
  /**
   * `full`: a commit returns only once it survives power loss (the bus's log: what it acknowledges
   * must). `normal`: a commit survives a killed process at once, and power loss once the next
   * checkpoint syncs; for state that can be rebuilt from the bus (every consumer).
   */
  durability: 'full' | 'normal';
  /**
   * SQLite's page cache, in KiB: what bounds the database's share of the process's memory. The
   * default is small on purpose: appends and newest-first reads touch few pages, the OS caches the
   * file anyway, and 8 MiB instead added 6-7 MB to every peak in pnpm bench figure 8.
   */
  cacheKiB?: number;
}

/**
 * One SQLite database file per process (under DATA_DIR), in WAL mode: readers never wait for the
 * writer, and a commit is one append to the WAL. The process is the only writer.
 */
export function openDatabase(filePath: string, { durability, cacheKiB = 2 * 1024 }: OpenDatabaseOptions): DatabaseSync {
  if (filePath !== ':memory:') mkdirSync(path.dirname(filePath), { recursive: true });
  const db = new DatabaseSync(filePath, { timeout: 5_000 });
  db.exec(`
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = ${durability === 'full' ? 'FULL' : 'NORMAL'};
    PRAGMA cache_size = -${cacheKiB};
    PRAGMA temp_store = MEMORY;
    PRAGMA foreign_keys = ON;
  `);
  return db;
}

/**
 * Runs `work` in one transaction: all of it is committed, or none of it (the error is rethrown).
 * `work` is synchronous on purpose: nothing else can use the connection in the middle of it.
 */
export function inTransaction<T>(db: DatabaseSync, work: () => T): T {
  db.exec('BEGIN IMMEDIATE');
  try {
    const result = work();
    db.exec('COMMIT');
    return result;
  } catch (error) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw error;
  }
}

/** A small key-value table for what a database says about itself (its log id, its position). */
export class MetaTable {
  private readonly getStatement;
  private readonly setStatement;

  constructor(db: DatabaseSync, table = 'meta') {
    db.exec(`CREATE TABLE IF NOT EXISTS ${table} (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT`);
    this.getStatement = db.prepare(`SELECT value FROM ${table} WHERE key = ?`);
    this.setStatement = db.prepare(`INSERT INTO ${table} (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`);
  }

  get(key: string): string | undefined {
    return (this.getStatement.get(key) as { value: string } | undefined)?.value;
  }

  set(key: string, value: string | number): void {
    this.setStatement.run(key, String(value));
  }
}
