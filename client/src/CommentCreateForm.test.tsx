import { limits } from '@blog/common/contract';
import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { ApiRequestError } from './api';
import { CommentCreateForm } from './CommentCreateForm';
import { aValidationError, createDeferred } from './test-fakes';

function renderForm(onCreate: (content: string) => Promise<void>) {
  const user = userEvent.setup();
  render(<CommentCreateForm onCreate={onCreate} />);
  return {
    user,
    input: screen.getByRole('textbox', { name: 'Add a comment' }),
    button: screen.getByRole('button', { name: 'Comment' }),
  };
}

describe('CommentCreateForm', () => {
  it('when a comment is typed and Enter pressed, then it is submitted and the input clears', async () => {
    // Arrange
    const onCreate = vi.fn(() => Promise.resolve());
    const { user, input } = renderForm(onCreate);

    // Act
    await user.type(input, 'Great read{Enter}');

    // Assert
    expect(onCreate).toHaveBeenCalledExactlyOnceWith('Great read');
    expect(input).toHaveValue('');
  });

  it('when the request is on its way, then the button is disabled until the answer', async () => {
    // Arrange
    const reply = createDeferred<void>();
    const { user, input, button } = renderForm(() => reply.promise);

    // Act
    await user.type(input, 'Wait for it');
    await user.click(button);

    // Assert
    expect(button).toBeDisabled();

    // Act
    reply.resolve();

    // Assert
    await vi.waitFor(() => expect(button).toBeEnabled());
    expect(input).toHaveValue('');
  });

  it('when the API rejects the content, then its message is shown next to the field', async () => {
    // Arrange
    const onCreate = vi.fn(() => Promise.reject(aValidationError('content', 'content must not be empty')));
    const { user, input } = renderForm(onCreate);

    // Act
    await user.type(input, 'x{Enter}');

    // Assert
    expect(await screen.findByText('content must not be empty')).toBeInTheDocument();
    expect(input).toHaveAttribute('aria-invalid', 'true');
    expect(input).toHaveAccessibleDescription('content must not be empty');
  });

  it('when the post no longer exists, then the form says so and keeps the text', async () => {
    // Arrange
    const notFound = new ApiRequestError({ code: 'post_not_found', status: 404, message: 'This post no longer exists. Reload the page.' });
    const { user, input } = renderForm(() => Promise.reject(notFound));

    // Act
    await user.type(input, 'Too late{Enter}');

    // Assert
    expect(await screen.findByText('This post no longer exists. Reload the page.')).toBeInTheDocument();
    expect(input).toHaveValue('Too late');
  });

  it('when rendered, then the input stops at the documented limit', () => {
    // Act
    const { input } = renderForm(() => Promise.resolve());

    // Assert
    expect(input).toHaveAttribute('maxlength', String(limits.contentMaxLength));
  });
});
