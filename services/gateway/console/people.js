// People: find users by handle, the most-followed accounts, and an
// author's page with follow/unfollow and their tweets.

import { api, follows, session } from './api.js';
import { count, h, mount, num } from './dom.js';
import { pager } from './pager.js';
import { tweetCard } from './tweets.js';

export function peopleView(main) {
  const query = h('input', { name: 'handle', placeholder: 'find by handle, e.g. alice', autocomplete: 'off' });
  const found = h('div', { class: 'found' });
  const popular = h('div', { class: 'people-grid' }, h('p', { class: 'muted' }, 'loading…'));
  mount(main, h('section', { class: 'column wide' },
    h('form', {
      class: 'card search',
      onsubmit: async (event) => {
        event.preventDefault();
        const handle = query.value.trim().replace(/^@/, '');
        if (!handle) return;
        try {
          const { body } = await api.byHandle(handle);
          mount(found, userCard(body));
        } catch (error) {
          mount(found, h('p', { class: 'error' }, error.message));
        }
      },
    }, query, h('button', { type: 'submit' }, 'Find')),
    found,
    h('h2', {}, 'Popular accounts'),
    h('p', { class: 'muted small' },
      'Most followers first. Authors at or above CELEBRITY_THRESHOLD are pulled at read time instead of pushed.'),
    popular));
  api.popular().then(({ body }) => {
    mount(popular, body.items.length ? body.items.map(userCard) : h('p', { class: 'muted' }, 'No users yet.'));
  }, (error) => mount(popular, h('p', { class: 'error' }, error.message)));
}

function userCard(user) {
  return h('a', { class: 'card user-card', href: `#/user/${user.id}`, 'data-user-id': user.id },
    h('strong', {}, user.display_name), h('span', { class: 'handle' }, `@${user.handle}`),
    h('span', { class: 'muted small' }, `${count(user.follower_count, 'follower')} · follows ${num(user.following_count, 0)}`));
}

export async function authorView(main, userId) {
  const me = session.get();
  mount(main, h('p', { class: 'muted' }, 'loading…'));
  let user;
  try {
    ({ body: user } = await api.user(userId));
  } catch (error) {
    mount(main, h('p', { class: 'error' }, error.message));
    return;
  }
  const counts = h('span', { class: 'muted' });
  const showCounts = () => {
    counts.textContent = `${count(user.follower_count, 'follower')} · follows ${num(user.following_count, 0)}`;
  };
  showCounts();
  const button = h('button', { class: 'follow', disabled: true }, '…');
  let following = false;
  const showButton = () => {
    button.textContent = following ? 'Unfollow' : 'Follow';
    button.classList.toggle('secondary', following);
    button.disabled = false;
  };
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      if (following) await api.unfollow(user.id); else await api.follow(user.id);
      following = !following;
      user.follower_count += following ? 1 : -1;
      showCounts();
    } catch (error) {
      main.querySelector('.profile').append(h('p', { class: 'error' }, error.message));
    }
    showButton();
  });
  const feed = h('div', { class: 'feed' });
  mount(main, h('section', { class: 'column' },
    h('div', { class: 'card profile', 'data-user-id': user.id },
      h('div', {}, h('h1', {}, user.display_name), h('span', { class: 'handle' }, `@${user.handle}`), ' ', counts),
      me && me.user_id !== user.id ? button : h('span', { class: 'muted small' }, me ? 'this is you' : 'sign up to follow')),
    h('h2', {}, 'Tweets'), feed));
  if (me && me.user_id !== user.id) {
    follows(user.id).then((yes) => { following = yes; showButton(); }, () => showButton());
  }
  pager(feed, async (cursor) => {
    const { body } = await api.byAuthor(user.id, cursor);
    return { items: body.items, next: body.next_cursor };
  }, (tweet) => tweetCard(tweet, { mine: me?.user_id === tweet.author_id }), 'No tweets yet.');
}
