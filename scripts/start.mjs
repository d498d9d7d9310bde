// `pnpm start` (and `pnpm dev` with --watch): every service in one terminal, logs prefixed by name.
// Ctrl-C sends SIGINT to all of them; each shuts down gracefully.
import concurrently from 'concurrently';

const watch = process.argv.includes('--watch');
const services = ['event-bus', 'posts', 'comments', 'query', 'moderation'];

const commands = services.map((name) => ({
  name,
  // exec: the shell concurrently starts is replaced, so signals reach node and its exit code is ours.
  command: `exec node ${watch ? '--watch ' : ''}services/${name}/dist/index.js`,
}));
if (watch) commands.unshift({ name: 'tsc', command: 'tsc --build --watch --preserveWatchOutput' });

const { result } = concurrently(commands, {
  prefix: '{name}',
  prefixColors: ['blue', 'green', 'magenta', 'cyan', 'yellow', 'gray'],
  killOthersOn: ['failure'],
  killSignal: 'SIGTERM',
});

result.then(
  () => process.exit(0),
  () => process.exit(1),
);
