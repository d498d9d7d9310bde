export function ServerUnreachableAlert({ onRetry }: { onRetry: () => void }) {
  return (
    <div className="alert" role="alert">
      <p>Can't reach the server. Trying again automatically…</p>
      <button type="button" onClick={onRetry}>
        Retry
      </button>
    </div>
  );
}
