import type { PostView } from '@blog/common/contract';
import { useId } from 'react';
import { CommentCreateForm } from './CommentCreateForm';
import { CommentList } from './CommentList';

export interface PostCardProps {
  post: PostView;
  onCreateComment: (postId: string, content: string) => Promise<void>;
}

export function PostCard({ post, onCreateComment }: PostCardProps) {
  const headingId = useId();
  return (
    <article className="card post" aria-labelledby={headingId}>
      <h2 id={headingId}>{post.title}</h2>
      <CommentList comments={post.comments} />
      <CommentCreateForm onCreate={(content) => onCreateComment(post.id, content)} />
    </article>
  );
}
