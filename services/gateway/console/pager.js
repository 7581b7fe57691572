// Infinite scroll by cursor: a sentinel at the end of the list loads the
// next page when it comes into view, until a page has no next_cursor.

import { h } from './dom.js';

/**
 * Fills `list` page by page. `load(cursor, pageNumber)` returns
 * {items, next}; `render(item)` makes an element of one item.
 */
export function pager(list, load, render, emptyText) {
  list.replaceChildren();
  const sentinel = h('div', { class: 'sentinel muted' }, 'loading…');
  list.append(sentinel);
  let cursor;
  let pageNumber = 0;
  let busy = false;
  const generation = (list.dataset.generation = String(Number(list.dataset.generation || 0) + 1));
  const observer = new IntersectionObserver(async (entries) => {
    if (!entries.some((entry) => entry.isIntersecting) || busy) return;
    busy = true;
    try {
      pageNumber += 1;
      const page = await load(cursor, pageNumber);
      if (list.dataset.generation !== generation) return;
      for (const item of page.items) sentinel.before(render(item));
      cursor = page.next;
      if (!cursor) {
        observer.disconnect();
        sentinel.textContent = pageNumber === 1 && page.items.length === 0 ? emptyText : 'the end';
      } else {
        // Still in view (a short page): load the next one too.
        observer.unobserve(sentinel);
        observer.observe(sentinel);
      }
    } catch (error) {
      observer.disconnect();
      sentinel.textContent = error.message;
      sentinel.classList.add('error');
    } finally {
      busy = false;
    }
  }, { rootMargin: '400px' });
  observer.observe(sentinel);
}
