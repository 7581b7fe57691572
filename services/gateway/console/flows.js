// The two flows of the high-level design, a post and a read, walked on the
// architecture drawing by a real request of the signed-in user. The post:
// its round trip as this browser timed it, then its fan-out as the worker
// recorded it (GET /tweets/{id}/delivery: the first and the last timeline
// write after the post). The read: its round trip, then each hop as the
// timeline service and the gateway timed it (?explain=true). Each box
// lights in the order the request reached it, with the measured time
// beside it; a stretch no measurement splits (the outbox relay, Kafka and
// the worker before its first write) is shown as one step, not divided up.

import { api, session } from './api.js';
import { h, mount, num } from './dom.js';
import { architecture } from './drawing.js';

/** The pause before the next step lights: pacing for the eye, not a measurement. */
const STEP_MS = 400;
/** How long the post's flow waits for its fan-out to finish before showing what was recorded. */
const DELIVERY_WAIT_MS = 15000;
/** How often the fan-out's record is read meanwhile. */
const DELIVERY_POLL_MS = 200;

const ms = (value) => `${num(value, value < 10 ? 2 : 0)} ms`;

/**
 * What each hop of an explained page did, by `service:name` (the names the
 * timeline service and the gateway give their hops): the boxes it surely
 * reached, the arrows it surely took, and what it is. A hop served by a
 * cache lights only the process holding the cache: the explanation does not
 * say whether it missed and asked further.
 */
const HOPS = {
  'timeline:redis page': [['timeline', 'redis'], [['gateway', 'timeline'], ['timeline', 'redis']],
    'a page of ids from the reader\'s cached timeline (Redis)'],
  'timeline:rebuild': [['timeline', 'graph', 'tweet', 'redis'], [['timeline', 'graph'], ['timeline', 'tweet'], ['timeline', 'redis']],
    'not in Redis: rebuilt from whom the reader follows (graph) and their tweets (tweet store), and cached'],
  'timeline:graph': [['timeline', 'graph'], [['timeline', 'graph']], 'whom the reader follows (the pull strategy asks on every read)'],
  'timeline:pull': [['timeline'], [],
    'the newest ids of the celebrities followed, cached per author in the timeline service (a miss asks the tweet service)'],
  'timeline:store': [['timeline', 'tweet', 'cassandra'], [['timeline', 'tweet'], ['tweet', 'cassandra']],
    'past the cached timeline: older tweets from the tweet store'],
  'timeline:merge': [['timeline'], [], 'pushed and pulled ids merged, newest first'],
  'timeline:hydrate': [['timeline'], [],
    'ids into tweets through the timeline service\'s tweet cache (its misses, if any: one BatchGetTweets to the tweet service)'],
  'gateway:timeline call': [['gateway', 'timeline'], [['gateway', 'timeline']],
    'the gateway\'s call to the timeline service, end to end: the hops above and the network'],
  'gateway:author handles': [['gateway'], [],
    'the authors\' handles, from the gateway\'s cache (a miss asks the graph)'],
  'gateway:explain': [['gateway'], [], 'this explanation: the pulled authors\' handles'],
};

/** A flow's card: what it does, a button that runs it, and where it is drawn. */
function flowCard(key, title, what, run) {
  const stage = h('div', { class: 'flow-stage' });
  const go = h('button', { type: 'button', class: 'secondary run-flow' }, title);
  const card = h('div', { class: 'card flow', 'data-flow': key }, h('h3', {}, title), h('p', { class: 'muted small' }, what), go, stage);
  go.addEventListener('click', async () => {
    go.disabled = true;
    delete card.dataset.done;
    mount(stage, h('p', { class: 'muted' }, 'sending…'));
    try {
      await animate(card, stage, await run(stage));
      card.dataset.done = 'true';
    } catch (error) {
      mount(stage, h('p', { class: 'error' }, error.message));
    } finally {
      go.disabled = false;
    }
  });
  return card;
}

/** The two flows, or a word on signing up first. */
export function flows() {
  if (!session.get()) return h('p', { class: 'muted' }, 'Sign up (Home) to send a post and a read of your own through the system here.');
  return h('div', { class: 'flows' },
    flowCard('post', 'Post a tweet and follow it',
      'Posts a tweet as you, then follows it: this browser times the POST, the fan-out worker records when it wrote the first and the last timeline.',
      postSteps),
    flowCard('read', 'Read your timeline and follow it',
      'Reads your home timeline with ?explain=true: this browser times the request, the timeline service and the gateway time each hop.',
      readSteps));
}

async function postSteps(stage) {
  const started = performance.now();
  const { body: tweet } = await api.post(`Practising the interview: a post followed through chirp (${new Date().toISOString()})`,
    crypto.randomUUID());
  const roundTrip = performance.now() - started;
  mount(stage, h('p', { class: 'muted' }, 'posted; waiting for the fan-out worker\'s record…'));
  const delivery = await delivered(tweet.id);
  const steps = [{
    nodes: ['client', 'gateway', 'tweet', 'cassandra'], edges: [['client', 'gateway'], ['gateway', 'tweet'], ['tweet', 'cassandra']],
    at: 'client', label: `201 in ${ms(roundTrip)}`,
    text: `POST /tweets answered 201 after ${ms(roundTrip)} (this browser's round trip): the gateway checked the token and `
      + 'called the tweet service, which wrote the tweet and its outbox event to Cassandra in one batch.',
  }];
  if (delivery.post_to_first_write_ms === undefined) {
    return [...steps, {
      nodes: ['kafka', 'fanout'], edges: [['tweet', 'kafka'], ['kafka', 'fanout']], at: 'fanout', label: 'no write yet',
      text: `The fan-out worker recorded no timeline write within ${num(DELIVERY_WAIT_MS / 1000, 0)} s (state: ${delivery.state}): `
        + 'is it running? Its record is what times this half of the flow.',
    }];
  }
  steps.push({
    nodes: ['kafka', 'fanout', 'graph', 'postgres', 'redis'],
    edges: [['tweet', 'kafka'], ['kafka', 'fanout'], ['fanout', 'graph'], ['graph', 'postgres'], ['fanout', 'redis']],
    at: 'fanout', label: `1st write +${ms(delivery.post_to_first_write_ms)}`,
    text: `The first timeline write, ${ms(delivery.post_to_first_write_ms)} after the post (the worker's record): the outbox relay sent `
      + 'the event to Kafka, the fan-out worker took it, asked the graph for a page of followers and wrote their cached '
      + 'timelines in Redis, yours first.',
  });
  steps.push(delivery.state === 'pulled' ? {
    nodes: ['redis'], edges: [], at: 'redis', label: `last write +${ms(delivery.post_to_last_write_ms)}`,
    text: `You are a celebrity here: the tweet went to your own timeline only (${ms(delivery.post_to_last_write_ms)} after the post), `
      + `and your ${num(delivery.followers_skipped_celebrity, 0)} followers pull it when they read.`,
  } : {
    nodes: ['redis'], edges: [], at: 'redis', label: `last write +${ms(delivery.post_to_last_write_ms)}`,
    text: `The last timeline write, ${ms(delivery.post_to_last_write_ms)} after the post: ${num(delivery.followers_pushed, 0)} `
      + `followers pushed to, ${num(delivery.followers_skipped_inactive, 0)} skipped as inactive (their next read rebuilds `
      + `their timeline, the tweet included)${delivery.state === 'delivered' ? '' : `; still ${delivery.state} when this stopped waiting`}.`,
  });
  return steps;
}

/** The tweet's fan-out record once it is done, or as it stands after DELIVERY_WAIT_MS. */
async function delivered(id) {
  const deadline = Date.now() + DELIVERY_WAIT_MS;
  for (;;) {
    const { body } = await api.delivery(id);
    if (['delivered', 'pulled'].includes(body.state) || Date.now() >= deadline) return body;
    await new Promise((resolve) => { setTimeout(resolve, DELIVERY_POLL_MS); });
  }
}

async function readSteps() {
  const me = session.get();
  const started = performance.now();
  const { body } = await api.timeline(me.user_id, undefined, true);
  const roundTrip = performance.now() - started;
  const explain = body.explain;
  if (!explain) throw new Error('The timeline service sent no explanation of the page.');
  return [{
    nodes: ['client', 'gateway'], edges: [['client', 'gateway']], at: 'client', label: `page in ${ms(roundTrip)}`,
    text: `GET /users/${me.user_id}/timeline?explain=true: ${body.items.length} tweets back after ${ms(roundTrip)} `
      + `(this browser's round trip, every hop below included); strategy ${explain.strategy}, cache ${explain.cache || '–'}.`,
  }, ...explain.hops.map((hop) => {
    const [nodes, edges, what] = HOPS[`${hop.service}:${hop.name}`] || [[hop.service], [], 'a step this view does not know'];
    return {
      nodes, edges, at: hop.service, label: `${hop.name} ${ms(hop.micros / 1000)}`,
      text: `${hop.service}, ${hop.name}: ${ms(hop.micros / 1000)} — ${what}.`,
    };
  })];
}

/**
 * Lights `steps` one after another on the drawing in `stage`, each with its
 * text in the list below; resolves when the last is lit (or the card left
 * the page).
 */
function animate(card, stage, steps) {
  const drawing = h('div', { class: 'drawing flow-drawing' });
  const list = h('ol', { class: 'flow-steps' });
  mount(stage, drawing, list);
  const draw = (shown) => {
    const lit = steps.slice(0, shown);
    const current = lit[lit.length - 1];
    const lines = {};
    for (const step of lit) (lines[step.at] ||= []).push(step.label);
    const has = (step, from, to) => step.edges.some(([a, b]) => a === from && b === to);
    mount(drawing, architecture({
      label: `a ${card.dataset.flow} through chirp, step ${shown} of ${steps.length}`,
      node: (name) => ({
        state: current.nodes.includes(name) ? 'lit current' : lit.some((step) => step.nodes.includes(name)) ? 'lit' : 'dim',
        lines: (lines[name] || []).slice(-3),
      }),
      edge: (from, to) => (has(current, from, to) ? 'busy' : lit.some((step) => has(step, from, to)) ? 'lit' : ''),
    }));
  };
  return new Promise((resolve) => {
    let shown = 0;
    const next = () => {
      shown += 1;
      draw(shown);
      const step = steps[shown - 1];
      list.append(h('li', { class: 'flow-step', 'data-at': step.at }, h('span', { class: 'flow-time mono' }, step.label), ' ', step.text));
      if (shown < steps.length && card.isConnected) setTimeout(next, STEP_MS);
      else resolve();
    };
    next();
  });
}
