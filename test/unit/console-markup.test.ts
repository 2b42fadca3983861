import { describe, expect, it } from 'vitest';
import { codeBlock, jsonView, markup, page } from '../../cli/console/markup.ts';

/**
 * The console shows what producers sent (bodies, stream ids, rejection details): every value
 * goes into a page as text, never as markup, or a hostile event could run script in the page
 * that holds the console's token.
 */
describe('console markup', () => {
  const hostile = `"><script>alert(1)</script><img src=x onerror='x'>&amp;`;
  const escaped = '&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=&#39;x&#39;&gt;&amp;amp;';

  it('escapes every interpolated value, in content and in attributes', () => {
    // Act
    const text = markup`<a href="/s?id=${hostile}" title='${hostile}'>${hostile}</a>`.text;

    // Assess
    expect(text).toBe(`<a href="/s?id=${escaped}" title='${escaped}'>${escaped}</a>`);
  });

  it('inserts what markup built as it is, lists of it too; null, undefined and false disappear', () => {
    const items = ['a', '<b>'].map((item) => markup`<li>${item}</li>`);
    expect(markup`<ul>${items}${null}${undefined}${false}</ul>`.text).toBe('<ul><li>a</li><li>&lt;b&gt;</li></ul>');
  });

  it('keeps a body exactly: a leading newline, number literals as written', () => {
    // The HTML parser drops one newline right after <pre>: codeBlock writes one first.
    expect(codeBlock('\n{"n":1.50}').text).toBe('<pre class="json">\n\n{&quot;n&quot;:1.50}</pre>');
  });

  it('shows a report: objects as definition lists, lists of objects as tables, strings escaped', () => {
    const view = jsonView({ counts: { redriven: 2 }, stayed: [{ ID: '<x>', reason: null }], executions: [] }).text;
    expect(view).toBe(
      '<dl><dt>counts</dt><dd><dl><dt>redriven</dt><dd><code>2</code></dd></dl></dd>' +
        '<dt>stayed</dt><dd><table><thead><tr><th>ID</th><th>reason</th></tr></thead>' +
        '<tbody><tr><td>&lt;x&gt;</td><td><code>null</code></td></tr></tbody></table></dd>' +
        '<dt>executions</dt><dd><em>none</em></dd></dl>',
    );
  });

  it('a page loads its script and styles from the console only, and escapes its title', () => {
    const text = page({ title: hostile, section: '/streams', body: markup`<p>x</p>`, stackLine: 'local' }).text;
    expect(text).toContain(`<title>${escaped} - event store console</title>`);
    expect(text.match(/<script[^>]*>/g)).toEqual(['<script src="/assets/console.js" defer>']);
    expect(text).toContain('<a href="/streams" aria-current="page">Streams</a>');
  });
});
