/**
 * A small Markdown renderer for the reports triage writes (headings, lists,
 * fenced code, block quotes, paragraphs, **bold**, `code`, tables written
 * inside code fences). Safe by construction: every piece of text is
 * HTML-escaped before any markup is added, raw HTML in the source stays
 * text, and links are not turned into anchors (a report names files; the
 * page links them itself).
 */
import { escapeHtml } from './html.ts';

function inline(text: string): string {
  // Split on code spans first so that ** inside `...` stays literal.
  return text
    .split(/(`[^`]*`)/)
    .map((part) => {
      if (part.length >= 2 && part.startsWith('`') && part.endsWith('`')) return `<code>${escapeHtml(part.slice(1, -1))}</code>`;
      return escapeHtml(part).replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>');
    })
    .join('');
}

export function renderMarkdown(md: string): string {
  const lines = md.replace(/\r\n?/g, '\n').split('\n');
  const out: string[] = [];
  let para: string[] = [];
  let list: { indent: number; items: string[] }[] = [];
  let quote: string[] = [];

  const flushPara = () => {
    if (para.length) out.push(`<p>${inline(para.join(' '))}</p>`);
    para = [];
  };
  const flushList = () => {
    while (list.length) {
      const l = list.pop()!;
      const html = `<ul>${l.items.map((i) => `<li>${i}</li>`).join('')}</ul>`;
      if (list.length) {
        const parent = list[list.length - 1]!;
        parent.items[parent.items.length - 1] += html;
      } else out.push(html);
    }
  };
  const flushQuote = () => {
    if (quote.length) out.push(`<blockquote>${inline(quote.join(' '))}</blockquote>`);
    quote = [];
  };
  const flushAll = () => {
    flushPara();
    flushList();
    flushQuote();
  };

  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const fence = /^\s*```(\S*)\s*$/.exec(line);
    if (fence) {
      flushAll();
      const body: string[] = [];
      for (i++; i < lines.length && !/^\s*```\s*$/.test(lines[i]!); i++) body.push(lines[i]!);
      const lang = fence[1] ? ` data-lang="${escapeHtml(fence[1])}"` : '';
      out.push(`<pre${lang}><code>${escapeHtml(body.join('\n'))}</code></pre>`);
      continue;
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    if (heading) {
      flushAll();
      const level = Math.min(6, heading[1]!.length + 1); // the page has its own h1
      out.push(`<h${level}>${inline(heading[2]!)}</h${level}>`);
      continue;
    }
    const item = /^(\s*)[-*]\s+(.*)$/.exec(line);
    if (item) {
      flushPara();
      flushQuote();
      const indent = item[1]!.length;
      while (list.length && indent < list[list.length - 1]!.indent) {
        const l = list.pop()!;
        const html = `<ul>${l.items.map((x) => `<li>${x}</li>`).join('')}</ul>`;
        if (list.length) list[list.length - 1]!.items[list[list.length - 1]!.items.length - 1] += html;
        else out.push(html);
      }
      if (!list.length || indent > list[list.length - 1]!.indent) list.push({ indent, items: [] });
      list[list.length - 1]!.items.push(inline(item[2]!));
      continue;
    }
    const q = /^>\s?(.*)$/.exec(line);
    if (q) {
      flushPara();
      flushList();
      quote.push(q[1]!);
      continue;
    }
    if (!line.trim()) {
      flushAll();
      continue;
    }
    if (list.length && /^\s+\S/.test(line)) {
      // a continuation line of a list item
      const l = list[list.length - 1]!;
      l.items[l.items.length - 1] += ` ${inline(line.trim())}`;
      continue;
    }
    flushList();
    flushQuote();
    para.push(line.trim());
  }
  flushAll();
  return out.join('\n');
}
