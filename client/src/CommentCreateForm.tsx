import { limits } from '@blog/common/contract';
import { SingleFieldForm } from './SingleFieldForm';

export function CommentCreateForm({ onCreate }: { onCreate: (content: string) => Promise<void> }) {
  return (
    <SingleFieldForm
      className="comment-form"
      label="Add a comment"
      submitLabel="Comment"
      fieldName="content"
      maxLength={limits.contentMaxLength}
      blankMessage="Write something first."
      onSubmit={onCreate}
    />
  );
}
