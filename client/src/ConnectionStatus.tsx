import type { ConnectionState } from './use-posts';

const labelByState = {
  connecting: 'Connecting…',
  live: 'Live',
  offline: 'Reconnecting…',
} as const;

/** A discreet indicator of whether changes made elsewhere will show up without a reload. */
export function ConnectionStatus({ state }: { state: ConnectionState }) {
  return (
    <p className={`connection connection-${state}`} role="status">
      <span className="connection-dot" aria-hidden="true" />
      {labelByState[state]}
    </p>
  );
}
