export interface LoadOlderPostsProps {
  loading: boolean;
  /** Why the last attempt failed; pressing the button again retries. */
  error: string | undefined;
  onLoad: () => void;
}

export function LoadOlderPosts({ loading, error, onLoad }: LoadOlderPostsProps) {
  const message = loading ? 'Loading older posts…' : error ? `Couldn't load older posts. ${error}` : undefined;
  return (
    <div className="load-older">
      <button type="button" onClick={onLoad} disabled={loading}>
        Load older posts
      </button>
      {/* Always rendered so screen readers announce a message the moment it appears. */}
      <div aria-live="polite">{message && <p className={loading ? 'notice' : 'form-error'}>{message}</p>}</div>
    </div>
  );
}
