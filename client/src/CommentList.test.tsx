import { render, screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { CommentList } from './CommentList';
import { aComment } from './test-fakes';

describe('CommentList', () => {
  it('when a comment is approved, then its content is shown', () => {
    // Arrange
    const comment = aComment({ status: 'approved', content: 'Nice post!' });

    // Act
    render(<CommentList comments={[comment]} />);

    // Assert
    expect(screen.getByRole('listitem')).toHaveTextContent(/^Nice post!$/);
  });

  it('when a comment is pending, then it says it is awaiting moderation instead of its content', () => {
    // Arrange
    const comment = aComment({ status: 'pending', content: 'Not checked yet' });

    // Act
    render(<CommentList comments={[comment]} />);

    // Assert
    expect(screen.getByRole('listitem')).toHaveTextContent(/^This comment is awaiting moderation$/);
  });

  it('when a comment is rejected, then it says so instead of its content', () => {
    // Arrange
    const comment = aComment({ status: 'rejected', content: 'orange' });

    // Act
    render(<CommentList comments={[comment]} />);

    // Assert
    expect(screen.getByRole('listitem')).toHaveTextContent(/^This comment has been rejected$/);
  });

  it('when content looks like HTML, then it is shown as text', () => {
    // Arrange
    const comment = aComment({ status: 'approved', content: '<img src=x onerror=alert(1)>' });

    // Act
    render(<CommentList comments={[comment]} />);

    // Assert
    const item = screen.getByRole('listitem');
    expect(item).toHaveTextContent('<img src=x onerror=alert(1)>');
    expect(within(item).queryByRole('img')).not.toBeInTheDocument();
  });

  it('when there are several comments, then each is one list item in order', () => {
    // Arrange
    const comments = [aComment({ content: 'first' }), aComment({ status: 'pending' }), aComment({ status: 'rejected' })];

    // Act
    render(<CommentList comments={comments} />);

    // Assert
    expect(screen.getAllByRole('listitem').map((item) => item.textContent)).toEqual([
      'first',
      'This comment is awaiting moderation',
      'This comment has been rejected',
    ]);
  });

  it('when there are no comments, then it says so and shows no list', () => {
    // Act
    render(<CommentList comments={[]} />);

    // Assert
    expect(screen.getByText('No comments yet.')).toBeInTheDocument();
    expect(screen.queryByRole('list')).not.toBeInTheDocument();
  });
});
