import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '@blog/common';

/**
 * How far each subscriber has acknowledged, saved to `cursors.json` a few times a second rather than
 * on every ack: after a crash a subscriber may be sent a few events again, which it ignores.
 */
export class SubscriberCursors {
  private dirty = false;
  private saving: Promise<void> = Promise.resolve();

  private constructor(
    private readonly filePath: string,
    private readonly cursors: Map<string, number>,
  ) {}

  static async open(dataDir: string, names: readonly string[]): Promise<SubscriberCursors> {
    const filePath = path.join(dataDir, 'cursors.json');
    let saved: Record<string, unknown> = {};
    try {
      saved = JSON.parse(await readFile(filePath, 'utf8')) as Record<string, unknown>;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    const cursors = new Map(names.map((name) => {
      const value = saved[name];
      return [name, typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : 0];
    }));
    return new SubscriberCursors(filePath, cursors);
  }

  get(name: string): number {
    return this.cursors.get(name) ?? 0;
  }

  advance(name: string, seq: number): void {
    if (seq > this.get(name)) {
      this.cursors.set(name, seq);
      this.dirty = true;
    }
  }

  /** Saves if anything moved since the last save; saves never overlap. */
  save(): Promise<void> {
    this.saving = this.saving.then(async () => {
      if (!this.dirty) return;
      this.dirty = false;
      await writeFileAtomic(this.filePath, JSON.stringify(Object.fromEntries(this.cursors)));
    });
    return this.saving;
  }
}
