// Home: the composer, the home timeline with infinite scroll, and the
// explanation of each page.

import { api, session } from './api.js';
import { h, mount, num } from './dom.js';
import { deliveryView, tweetCard } from './tweets.js';
import { pager } from './pager.js';

/** The idempotency key of the post being written: kept across retries. */
let pendingKey = crypto.randomUUID();

export function homeView(main) {
  const me = session.get();
  if (!me) {
    mount(main, signUpCard());
    return;
  }
  const explainToggle = h('input', { type: 'checkbox', id: 'explain-toggle' });
  explainToggle.checked = localStorage.getItem('chirp.explain') === '1';
  const explanations = h('div', { class: 'explanations' });
  const feed = h('div', { class: 'feed' });
  // A 206: the page was answered while the timeline is rebuilt.
  const partialNote = h('p', { class: 'partial-note muted small', hidden: true },
    'Your timeline is being rebuilt: this page shows what was cached, and newer posts may be missing. Reload in a moment for the whole of it.');
  const side = h('aside', { class: 'side' },
    h('label', { class: 'toggle' }, explainToggle, ' Explain this timeline'),
    h('p', { class: 'muted small' },
      'Each page is read with ?explain=true: how the timeline service assembled it, and the time of each hop.'),
    explanations);
  const start = () => {
    explanations.replaceChildren();
    const explain = explainToggle.checked;
    side.classList.toggle('off', !explain);
    pager(feed, async (cursor, pageNumber) => {
      const { body, headers } = await api.timeline(me.user_id, cursor, explain);
      if (pageNumber === 1) partialNote.hidden = !body.partial;
      if (explain) explanations.append(explanation(pageNumber, body.explain, headers.get('server-timing')));
      return { items: body.items, next: body.next_cursor };
    }, (tweet) => tweetCard(tweet, { mine: tweet.author_id === me.user_id }),
    'Nothing here yet: follow someone (People) or post something.');
  };
  explainToggle.addEventListener('change', () => {
    localStorage.setItem('chirp.explain', explainToggle.checked ? '1' : '0');
    start();
  });
  mount(main, h('div', { class: 'columns' },
    h('section', { class: 'column' }, composer(me, start), h('h2', {}, 'Home timeline'), partialNote, feed),
    side));
  start();
}

function signUpCard() {
  const handle = h('input', { name: 'handle', placeholder: 'handle', maxlength: 15, required: true, pattern: '[A-Za-z0-9_]{1,15}' });
  const name = h('input', { name: 'display_name', placeholder: 'display name', maxlength: 50, required: true });
  const status = h('p', { class: 'error' });
  return h('section', { class: 'card narrow' },
    h('h1', {}, 'Study a running Twitter'),
    h('p', {}, 'chirp is the "design Twitter" answer, built for real. Sign up, follow someone, post, ',
      'and watch the tweet fan out; then see why each item of your timeline is there.'),
    h('form', {
      class: 'signup',
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          const { body } = await api.signUp(handle.value.trim(), name.value.trim());
          session.set({ user_id: body.user_id, handle: body.user.handle, token: body.token });
          location.hash = '#/people';
          window.dispatchEvent(new Event('chirp:session'));
        } catch (error) {
          status.textContent = error.message;
        }
      },
    }, handle, name, h('button', { type: 'submit' }, 'Sign up')),
    status,
    h('p', { class: 'muted small' },
      'No password: sign-up returns a bearer token, kept in this browser (localStorage).'));
}

function composer(me, refresh) {
  const text = h('textarea', { name: 'content', maxlength: 1000, rows: 3, placeholder: `What's happening, @${me.handle}?` });
  const count = h('span', { class: 'count' }, '0 / 280');
  const keyLabel = h('code', { class: 'key', title: 'Idempotency-Key: a retry with it cannot post twice' }, pendingKey.slice(0, 8));
  const status = h('div', { class: 'compose-status' });
  const button = h('button', { type: 'submit' }, 'Post');
  text.addEventListener('input', () => {
    const length = [...text.value.normalize('NFC')].length;
    count.textContent = `${length} / 280`;
    count.classList.toggle('over', length > 280);
  });
  return h('form', {
    class: 'card composer',
    onsubmit: async (event) => {
      event.preventDefault();
      button.disabled = true;
      try {
        const { status: code, body } = await api.post(text.value, pendingKey);
        pendingKey = crypto.randomUUID();
        keyLabel.textContent = pendingKey.slice(0, 8);
        text.value = '';
        mount(status,
          h('p', { class: 'ok' }, code === 201 ? 'Posted. ' : 'Already posted with this key (a retry): ',
            h('a', { href: `#/tweet/${body.id}` }, 'open its fan-out')),
          // The author's own timeline is written with the followers'.
          deliveryView(body.id, { onSettled: refresh }));
      } catch (error) {
        mount(status, h('p', { class: 'error' },
          error.status ? error.message : `${error.message}: posting again reuses the same key, so it cannot post twice`));
      } finally {
        button.disabled = false;
      }
    },
  }, text, h('div', { class: 'compose-bar' },
    h('span', { class: 'muted small' }, 'Idempotency-Key ', keyLabel), count, button), status);
}

const CACHE = {
  hit: 'cache hit: Redis held the timeline',
  rebuilt: 'rebuilt: Redis did not hold the timeline, this read rebuilt it',
  none: 'no cache: the pull strategy merges every followee at read time',
  partial: 'partial: Redis did not hold the timeline complete; this page is what it held, while a rebuild runs',
};

function explanation(pageNumber, explain, serverTiming) {
  if (!explain) {
    return h('section', { class: 'explain card' },
      h('h3', {}, `Page ${pageNumber}`),
      h('p', { class: 'muted' }, 'The timeline service sent no explanation for this page.'),
      serverTiming && h('p', { class: 'small mono' }, `Server-Timing: ${serverTiming}`));
  }
  const total = explain.hops.reduce((sum, hop) => sum + hop.micros, 0) || 1;
  return h('section', { class: 'explain card' },
    h('h3', {}, `Page ${pageNumber}`),
    h('dl', { class: 'facts' },
      h('div', {}, h('dt', {}, 'strategy'), h('dd', { class: 'strategy' }, explain.strategy || '–')),
      h('div', {}, h('dt', {}, 'cache'), h('dd', { class: 'cache', title: CACHE[explain.cache] || '' }, explain.cache || '–')),
      h('div', {}, h('dt', {}, 'celebrities merged'),
        h('dd', { class: 'pulled' }, explain.pulled_authors.length === 0 ? 'none'
          : explain.pulled_authors.map((a, i) => [i ? ', ' : '', h('a', { href: `#/user/${a.id}` }, `@${a.handle}`)])))),
    explain.cache && h('p', { class: 'muted small' }, CACHE[explain.cache]),
    h('ol', { class: 'hops' }, explain.hops.map((hop) => {
      const bar = h('span', { class: `hop-bar hop-${hop.service}` });
      bar.style.width = `${Math.max(2, (100 * hop.micros) / total)}%`;
      return h('li', {},
        h('span', { class: 'hop-name' }, h('span', { class: 'hop-service' }, hop.service), ' ', hop.name),
        h('span', { class: 'hop-track' }, bar),
        h('span', { class: 'hop-time' }, `${num(hop.micros / 1000, 2)} ms`));
    })));
}
