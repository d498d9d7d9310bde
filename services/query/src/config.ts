import { z } from 'zod';

export const queryConfig = z.object({
  // An idle stream costs about 20 kB, a lagging one up to its backlog limit on top: 1,000 keep query
  // well inside its Deployment's 256 MiB with the heap cap it runs with.
  MAX_LIVE_STREAMS: z.coerce.number().int().min(1).max(100_000).default(1_000),
});
export type QueryConfig = z.infer<typeof queryConfig>;
