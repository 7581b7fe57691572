// The console: a hash router over a handful of views. Every view is a
// function that fills <main>; nothing here knows more than the public API.

import { api, session } from './api.js';
import { h, mount } from './dom.js';
import { homeView } from './home.js';
import { interviewView } from './interview.js';
import { labView } from './lab.js';
import { authorView, peopleView } from './people.js';
import { systemView } from './system.js';
import { deliveryView, tweetCard } from './tweets.js';

const main = document.getElementById('main');

async function tweetView(id) {
  mount(main, h('p', { class: 'muted' }, 'loading…'));
  try {
    const { body } = await api.tweet(id);
    const me = session.get();
    mount(main, h('section', { class: 'column' },
      h('h2', {}, 'The tweet'), tweetCard(body, { mine: me?.user_id === body.author_id }),
      h('h2', {}, 'Its fan-out'),
      h('p', { class: 'muted small' },
        'Recorded by the fan-out worker as it writes (GET /tweets/{id}/delivery), polled here.'),
      deliveryView(id)));
  } catch (error) {
    mount(main, h('p', { class: 'error' }, error.message));
  }
}

function route() {
  const [, view = '', arg] = location.hash.split('/');
  for (const link of document.querySelectorAll('#nav a[data-view]')) {
    link.classList.toggle('active', link.dataset.view === (view || 'home'));
  }
  window.dispatchEvent(new Event('chirp:leave'));
  switch (view) {
    case 'people': return peopleView(main);
    case 'user': return authorView(main, arg);
    case 'tweet': return tweetView(arg);
    case 'system': return systemView(main);
    case 'lab': return labView(main);
    case 'interview': return interviewView(main);
    default: return homeView(main);
  }
}

function showSession() {
  const box = document.getElementById('session');
  const me = session.get();
  if (!me) {
    mount(box, h('a', { href: '#/' }, 'Sign up'));
    return;
  }
  mount(box,
    h('a', { href: `#/user/${me.user_id}`, class: 'handle me' }, `@${me.handle}`),
    h('button', {
      class: 'link',
      onclick: () => { session.clear(); showSession(); location.hash = '#/'; route(); },
    }, 'sign out'));
}

window.addEventListener('hashchange', route);
window.addEventListener('chirp:session', showSession);
showSession();
route();
