import { limits } from '@blog/common/contract';
import { SingleFieldForm } from './SingleFieldForm';

export function PostCreateForm({ onCreate }: { onCreate: (title: string) => Promise<void> }) {
  return (
    <section className="card new-post" aria-label="New post">
      <SingleFieldForm
        label="Post title"
        submitLabel="Create post"
        fieldName="title"
        maxLength={limits.titleMaxLength}
        blankMessage="Give the post a title."
        onSubmit={onCreate}
      />
    </section>
  );
}
