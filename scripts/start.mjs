// `pnpm start` (and `pnpm dev` with --watch): every service plus the gateway on http://localhost:3000
// in one terminal, logs prefixed by name. Ctrl-C sends SIGINT to all; each shuts down gracefully.
//   DATA_ROOT          where each service keeps its data (default .data); <DATA_ROOT>/<name>.pid holds its pid
//   EVENT_BUS_SECRET   signs internal requests (default: a fresh random one for this run)
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { components, topology, upstreamsValue } from '@blog/topology';
import concurrently from 'concurrently';

const watch = process.argv.includes('--watch');
const dataRoot = process.env.DATA_ROOT ?? '.data';
// Every component but the client, each on its default port: the gateway serves the client's build
// (in watch mode, it proxies to Vite's dev server).
const names = components.map((component) => component.name).filter((name) => name !== 'client');
// Vite's dev server (client/vite.config.ts, server.port).
const viteDevPort = 5173;
// Only this run's processes know it: nothing outside can deliver to or publish on the internal routes.
const busSecret = process.env.EVENT_BUS_SECRET || randomBytes(32).toString('hex');

// In watch mode Vite serves the client (with hot reload) behind the gateway; otherwise the gateway
// serves the production build.
const gatewayEnv = watch
  ? { UPSTREAMS: upstreamsValue((component) => (component.name === 'client' ? `http://127.0.0.1:${viteDevPort}` : `http://localhost:${component.port}`)) }
  : { CLIENT_DIR: 'client/dist' };

const node = (name) => ({
  name,
  // exec: the shell concurrently starts is replaced, so signals reach node and its exit code is ours.
  command: `exec node ${watch ? '--watch ' : ''}services/${name}/dist/index.js`,
  env: { DATA_DIR: path.join(dataRoot, name), ...(name === 'gateway' ? gatewayEnv : { EVENT_BUS_SECRET: busSecret }) },
});

const commands = names.map(node);
if (watch) {
  commands.unshift({ name: 'tsc', command: 'exec tsc --build --watch --preserveWatchOutput' });
  commands.push({ name: 'client', command: 'exec pnpm --filter @blog/client dev' });
}

const { result, commands: started } = concurrently(commands, {
  prefix: '{name}',
  prefixColors: ['blue', 'green', 'magenta', 'cyan', 'yellow', 'white', 'gray', 'red'],
  killOthersOn: ['failure'],
  killSignal: 'SIGTERM',
});

mkdirSync(dataRoot, { recursive: true });
for (const command of started) if (command.pid) writeFileSync(path.join(dataRoot, `${command.name}.pid`), `${command.pid}\n`);
console.log(`\n  The blog: http://localhost:${topology.gateway.port}\n`);

result.then(
  () => process.exit(0),
  () => process.exit(1),
);
