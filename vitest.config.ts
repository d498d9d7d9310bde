import { existsSync } from 'node:fs';
import { defineConfig } from 'vitest/config';

// The suites that also run with the log on JetStream: CI installs Debian's nats-server and starts one
// (NATS_URL); on a machine without it they are left out (docs/scaling-out.md says how to add it).
const jetstream = process.env.NATS_URL ?? (existsSync(process.env.NATS_SERVER ?? '/usr/sbin/nats-server') ? 'jetstream' : undefined);

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit-and-api',
          include: ['packages/*/test/**/*.test.ts', 'services/*/test/**/*.test.ts', 'test/infra/**/*.test.ts', 'test/fuzz/**/*.test.ts'],
          testTimeout: 20_000,
          hookTimeout: 30_000,
        },
      },
      {
        // Real processes on real ports: one file at a time so two stacks never compete for the CPU.
        test: {
          name: 'system',
          include: ['test/system/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 60_000,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
      ...(jetstream
        ? [
            {
              // The same black-box and fault suites with EVENT_STORE on JetStream, two bus processes
              // and two query processes (see topologyFromEnv in @blog/testing).
              test: {
                name: 'system-jetstream',
                include: ['test/system/blog-stack.test.ts', 'test/system/security.test.ts', 'test/system/shutdown-in-flight.test.ts', 'test/system/chaos.test.ts'],
                env: { BLOG_STACK_EVENT_STORE: jetstream, BLOG_STACK_REPLICAS: '2', CHAOS_SECONDS: '30' },
                testTimeout: 120_000,
                hookTimeout: 90_000,
                fileParallelism: false,
                sequence: { groupOrder: 2 },
              },
            },
          ]
        : []),
      {
        // The real `pnpm start` stack on its fixed ports, in Chromium: after everything else.
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
          sequence: { groupOrder: 3 },
        },
      },
      {
        // The browser app: its own Vite config (React plugin) and a DOM.
        extends: './client/vite.config.ts',
        test: {
          name: 'client',
          root: './client',
          include: ['src/**/*.test.{ts,tsx}'],
          environment: 'jsdom',
          setupFiles: ['./src/test-setup.ts'],
        },
      },
    ],
  },
});
