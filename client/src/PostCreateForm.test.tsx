import { limits } from '@blog/common/contract';
import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { ApiRequestError } from './api';
import { PostCreateForm } from './PostCreateForm';
import { aValidationError, createDeferred } from './test-fakes';

function renderForm(onCreate: (title: string) => Promise<void>) {
  const user = userEvent.setup();
  render(<PostCreateForm onCreate={onCreate} />);
  return {
    user,
    input: screen.getByRole('textbox', { name: 'Post title' }),
    button: screen.getByRole('button', { name: 'Create post' }),
  };
}

describe('PostCreateForm', () => {
  it('when a title is typed and Enter pressed, then it is submitted and the input clears', async () => {
    // Arrange
    const onCreate = vi.fn(() => Promise.resolve());
    const { user, input } = renderForm(onCreate);

    // Act
    await user.type(input, 'My first post{Enter}');

    // Assert
    expect(onCreate).toHaveBeenCalledExactlyOnceWith('My first post');
    expect(input).toHaveValue('');
    expect(input).not.toHaveAttribute('aria-invalid');
  });

  it('when the request is on its way, then the button is disabled and a second Enter sends nothing', async () => {
    // Arrange
    const reply = createDeferred<void>();
    const onCreate = vi.fn(() => reply.promise);
    const { user, input, button } = renderForm(onCreate);

    // Act
    await user.type(input, 'Slow post{Enter}');
    await user.keyboard('{Enter}');

    // Assert
    expect(button).toBeDisabled();
    expect(input).toHaveValue('Slow post');
    expect(onCreate).toHaveBeenCalledOnce();

    // Act
    reply.resolve();

    // Assert
    await vi.waitFor(() => expect(button).toBeEnabled());
    expect(input).toHaveValue('');
  });

  it('when the API rejects the title, then its message is shown next to the field and the text is kept', async () => {
    // Arrange
    const onCreate = vi.fn(() => Promise.reject(aValidationError('title', 'title must be at most 200 characters')));
    const { user, input, button } = renderForm(onCreate);

    // Act
    await user.type(input, 'Too long, says the server{Enter}');

    // Assert
    expect(await screen.findByText('title must be at most 200 characters')).toBeInTheDocument();
    expect(input).toHaveAttribute('aria-invalid', 'true');
    expect(input).toHaveAccessibleDescription('title must be at most 200 characters');
    expect(input).toHaveValue('Too long, says the server');
    expect(button).toBeEnabled();
  });

  it('when the title is blank, then it asks for one without calling the API', async () => {
    // Arrange
    const onCreate = vi.fn(() => Promise.resolve());
    const { user, button, input } = renderForm(onCreate);

    // Act
    await user.type(input, '   ');
    await user.click(button);

    // Assert
    expect(input).toHaveAccessibleDescription('Give the post a title.');
    expect(input).toHaveAttribute('aria-invalid', 'true');
    expect(onCreate).not.toHaveBeenCalled();
  });

  it('when the server cannot be reached, then the message is shown by the form and the text is kept', async () => {
    // Arrange
    const networkError = new ApiRequestError({ code: 'network_error', message: "Couldn't reach the server." });
    const onCreate = vi.fn(() => Promise.reject(networkError));
    const { user, input, button } = renderForm(onCreate);

    // Act
    await user.type(input, 'Offline post{Enter}');

    // Assert
    expect(await screen.findByText("Couldn't reach the server.")).toBeInTheDocument();
    expect(input).toHaveAccessibleDescription("Couldn't reach the server.");
    expect(input).not.toHaveAttribute('aria-invalid');
    expect(input).toHaveValue('Offline post');
    expect(button).toBeEnabled();
  });

  it('when submitting fails in an unexpected way, then a generic message is shown', async () => {
    // Arrange
    const consoleError = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const onCreate = vi.fn(() => Promise.reject(new TypeError('bug')));
    const { user, input } = renderForm(onCreate);

    // Act
    await user.type(input, 'Buggy post{Enter}');

    // Assert
    expect(await screen.findByText('Something went wrong. Try again.')).toBeInTheDocument();
    expect(consoleError).toHaveBeenCalled();
    consoleError.mockRestore();
  });

  it('when rendered, then the input stops at the documented limit', () => {
    // Act
    const { input } = renderForm(() => Promise.resolve());

    // Assert
    expect(input).toHaveAttribute('maxlength', String(limits.titleMaxLength));
  });
});
