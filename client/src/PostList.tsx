import type { PostView } from '@blog/common/contract';
import { PostCard } from './PostCard';

export interface PostListProps {
  /** Newest first. */
  posts: readonly PostView[];
  /** `unavailable`: no snapshot yet and the stream is down (the page's alert says so). */
  state: 'loading' | 'unavailable' | 'ready';
  onCreateComment: (postId: string, content: string) => Promise<void>;
}

export function PostList({ posts, state, onCreateComment }: PostListProps) {
  if (state === 'loading') {
    return (
      <p className="notice" role="status">
        Loading posts…
      </p>
    );
  }
  if (state === 'unavailable') return null;
  if (posts.length === 0) return <p className="notice">No posts yet. Write the first one above.</p>;
  return (
    <div className="post-list">
      {posts.map((post) => (
        <PostCard key={post.id} post={post} onCreateComment={onCreateComment} />
      ))}
    </div>
  );
}
