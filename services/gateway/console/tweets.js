// A tweet as a card, and the delivery view: how far its fan-out has got.

import { api } from './api.js';
import { ago, h, mount, num } from './dom.js';

const SOURCES = {
  pushed: 'pushed into your cached timeline by the fan-out worker when it was posted',
  pulled: 'pulled at read time from a followed celebrity (not pushed: too many followers)',
  rebuilt: 'written by the rebuild this read ran: your timeline was not in Redis',
  store: 'older than the cached timeline reaches: read from the tweet store',
};

/** One tweet. `mine` adds a delete button; `onDeleted` runs after it. */
export function tweetCard(tweet, { mine = false, onDeleted } = {}) {
  const card = h('article', { class: 'tweet', 'data-tweet-id': tweet.id },
    h('div', { class: 'tweet-head' },
      h('a', { class: 'handle', href: `#/user/${tweet.author_id}` }, `@${tweet.author_handle}`),
      h('span', { class: 'time', title: tweet.created_at }, ago(tweet.created_at)),
      tweet.source && h('span', { class: `source source-${tweet.source}`, title: SOURCES[tweet.source] },
        tweet.source)),
    h('p', { class: 'content' }, tweet.content),
    h('div', { class: 'tweet-actions' },
      h('a', { href: `#/tweet/${tweet.id}`, class: 'link-delivery' }, 'fan-out'),
      mine && h('button', {
        class: 'link danger',
        onclick: async (event) => {
          event.target.disabled = true;
          try {
            await api.remove(tweet.id);
            card.classList.add('deleted');
            onDeleted?.();
          } catch (error) {
            event.target.disabled = false;
            card.append(h('p', { class: 'error' }, error.message));
          }
        },
      }, 'delete')));
  return card;
}

const STATES = {
  pending: 'waiting for the fan-out worker',
  delivering: 'going through the followers',
  delivered: 'every follower handled: pushed, or skipped as inactive',
  pulled: 'celebrity: not pushed; followers pull it when they read',
};

/** What each count of a delivery means, shown under it. */
const COUNTS = {
  pushed: 'in their cached home timeline: on their next page',
  inactive: 'no cached timeline (not read lately): nothing written; their next read rebuilds it with this tweet',
  lossy: 'they follow more accounts than the lossy fan-out\'s limit: this tweet was drawn out of their timeline until its next rebuild',
  celebrity: 'the author is a celebrity: not pushed; they pull it when they read',
};

/**
 * A live view of one tweet's fan-out, polled until it is done (delivered,
 * or pulled) and then for a last second; at most for a minute, and never
 * once the view has left the page. `onSettled` runs once, when it is done.
 */
export function deliveryView(tweetId, { onSettled } = {}) {
  const box = h('section', { class: 'delivery', 'data-tweet-id': tweetId },
    h('p', { class: 'muted' }, 'reading the fan-out…'));
  const started = Date.now();
  let settledAt;
  const poll = async () => {
    const waited = Date.now() - started;
    // The first call comes before the box is on the page.
    if ((!box.isConnected && waited > 1000) || waited > 60000) return;
    try {
      const { body } = await api.delivery(tweetId);
      render(box, body);
      if (!settledAt && (body.state === 'delivered' || body.state === 'pulled')) {
        settledAt = Date.now();
        onSettled?.(body);
      }
    } catch (error) {
      mount(box, h('p', { class: 'error' }, error.message));
      if (error.status === 404) return;
    }
    if (!settledAt || Date.now() - settledAt < 1000) setTimeout(poll, waited < 30000 ? 250 : 2000);
  };
  poll();
  return box;
}

function render(box, d) {
  const audience = Math.max(d.followers, 1);
  const handled = d.state === 'pulled' ? 0
    : Math.min(d.followers_pushed + d.followers_skipped_inactive + (d.followers_skipped_lossy || 0), audience);
  const bar = h('div', { class: 'bar' }, h('div', { class: `fill fill-${d.state}` }));
  bar.firstChild.style.width = `${d.followers === 0 ? 100 : (100 * handled) / audience}%`;
  const count = (label, cls, value, meaning) => h('div', {},
    h('dt', {}, label), h('dd', { class: cls }, value), h('p', { class: 'fact-note muted' }, meaning));
  mount(box,
    h('div', { class: 'delivery-head' },
      h('span', { class: `state state-${d.state}` }, d.state),
      h('span', { class: 'muted' }, STATES[d.state])),
    bar,
    h('dl', { class: 'facts' },
      count('pushed', 'pushed', `${num(d.followers_pushed, 0)} of ${num(d.followers, 0)}`, COUNTS.pushed),
      count('skipped: inactive', 'skipped-inactive', num(d.followers_skipped_inactive, 0), COUNTS.inactive),
      count('skipped: celebrity', 'skipped-celebrity', num(d.followers_skipped_celebrity, 0), COUNTS.celebrity),
      d.followers_skipped_lossy > 0
        && count('skipped: lossy', 'skipped-lossy', num(d.followers_skipped_lossy, 0), COUNTS.lossy),
      h('div', {}, h('dt', {}, 'post → first write'),
        h('dd', {}, d.post_to_first_write_ms === undefined ? '–' : `${num(d.post_to_first_write_ms, 0)} ms`)),
      h('div', {}, h('dt', {}, 'post → last write'),
        h('dd', { class: 'last-write' }, d.post_to_last_write_ms === undefined ? '–' : `${num(d.post_to_last_write_ms, 0)} ms`))));
}
