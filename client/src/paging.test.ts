import { describe, expect, it } from 'vitest';
import { compareCursors, isCursor } from './paging';

describe('compareCursors', () => {
  it('when one cursor has more digits, then it sorts newer, not as text would', () => {
    // Act
    const order = [compareCursors('10', '9'), compareCursors('9', '10')];

    // Assert
    expect(order).toEqual([1, -1]);
  });

  it('when two cursors are the same place, then neither sorts newer', () => {
    // Act
    const order = compareCursors('42', '42');

    // Assert
    expect(order).toBe(0);
  });

  it('when cursors are beyond what a double holds exactly, then they still compare exactly', () => {
    // Arrange
    const large = (2n ** 53n + 1n).toString();
    const justBelow = (2n ** 53n).toString();

    // Act
    const order = compareCursors(large, justBelow);

    // Assert
    expect(order).toBe(1);
  });
});

describe('isCursor', () => {
  it('when a value is a decimal integer string, then it is a cursor, and anything else is not', () => {
    // Act
    const verdicts = ['0', '17', '', '1.5', '-3', ' 4', 'abc', 12, null].map(isCursor);

    // Assert
    expect(verdicts).toEqual([true, true, false, false, false, false, false, false, false]);
  });
});
