import path from 'node:path';
import { z } from 'zod';

/** Settings every service reads; each service extends this with its own. */
export function baseConfigSchema(serviceName: string, defaultPort: number) {
  return z.object({
    PORT: z.coerce.number().int().min(0).max(65_535).default(defaultPort),
    // Loopback by default: internal routes such as /events must not face the network by accident.
    // Containers set HOST=0.0.0.0.
    HOST: z.string().min(1).default('127.0.0.1'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    DATA_DIR: z.string().min(1).default(path.join('.data', serviceName)),
    // Under Kubernetes' default 30 s grace period, and the 10 s the README promises.
    SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(8_000),
  });
}

export const busUrlSchema = z
  .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
  .default('http://localhost:4005')
  .transform((url) => url.replace(/\/+$/, ''));

export const timeoutMsSchema = (defaultMs: number) => z.coerce.number().int().min(1).max(600_000).default(defaultMs);

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Parses the environment once, at start. Every bad variable is named in one message, so a typo
 * fails the rollout instead of a request.
 */
export function parseConfig<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv = process.env): Readonly<z.infer<S>> {
  const result = schema.safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `  ${issue.path.join('.') || '(env)'}: ${issue.message}`).join('\n');
    throw new ConfigError(`Invalid configuration:\n${problems}`);
  }
  return Object.freeze(result.data);
}
