import type { CommentView } from '@blog/common/contract';

const placeholderByStatus = {
  pending: 'This comment is awaiting moderation',
  rejected: 'This comment has been rejected',
} as const;

export function CommentList({ comments }: { comments: readonly CommentView[] }) {
  if (comments.length === 0) return <p className="no-comments">No comments yet.</p>;
  return (
    <ul className="comments">
      {comments.map((comment) => (
        <li key={comment.id} className={`comment comment-${comment.status}`}>
          {comment.status === 'approved' ? comment.content : placeholderByStatus[comment.status]}
        </li>
      ))}
    </ul>
  );
}
