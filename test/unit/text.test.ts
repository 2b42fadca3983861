import { describe, expect, it } from 'vitest';
import { truncate } from '../../core/text.ts';

describe('truncate', () => {
  it('keeps a text of at most max characters as it is', () => {
    expect(truncate('abcdefgh', 8)).toBe('abcdefgh');
    expect(truncate('', 8)).toBe('');
  });

  it('cuts a longer text to max characters, the last three of them "..."', () => {
    const cut = truncate('abcdefghi', 8);

    expect(cut).toBe('abcde...');
    expect(cut).toHaveLength(8);
  });
});
