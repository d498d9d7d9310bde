import type { BlogApi } from './api';
import { ConnectionStatus } from './ConnectionStatus';
import { LoadOlderPosts } from './LoadOlderPosts';
import { PostCreateForm } from './PostCreateForm';
import { PostList } from './PostList';
import type { SubscribeToPosts } from './posts-stream';
import { ServerUnreachableAlert } from './ServerUnreachableAlert';
import { usePosts } from './use-posts';

export interface AppProps {
  api: BlogApi;
  /** Must keep its identity across renders (create it once, outside React). */
  subscribe: SubscribeToPosts;
}

export function App({ api, subscribe }: AppProps) {
  const live = usePosts(subscribe, api);

  async function createPost(title: string) {
    live.showCreatedPost(await api.createPost(title));
  }

  async function createComment(postId: string, content: string) {
    live.showCreatedComments(postId, await api.createComment(postId, content));
  }

  const listState = live.loaded ? 'ready' : live.connection === 'offline' ? 'unavailable' : 'loading';

  return (
    <div className="page">
      <header className="page-header">
        <h1>Blog</h1>
        <ConnectionStatus state={live.connection} />
      </header>
      <main>
        {live.connection === 'offline' && <ServerUnreachableAlert onRetry={live.retryNow} />}
        <PostCreateForm onCreate={createPost} />
        <PostList posts={live.posts} state={listState} onCreateComment={createComment} />
        {listState === 'ready' && live.older.available && (
          <LoadOlderPosts loading={live.older.loading} error={live.older.error} onLoad={live.loadOlder} />
        )}
      </main>
    </div>
  );
}
