// The interview framework's seven steps, their time budgets in a
// 45-minute interview, and what a candidate should deliver at each. Data
// and one pure function, so the timer and the view share one source.

/** Each step: its key, its name, its budget in minutes, and the prompt. */
export const STEPS = [
  { key: 'clarify', name: 'Clarify', minutes: 5,
    prompt: 'Agree on the scope before designing anything: which features are in (post, follow, home timeline?), '
      + 'which are out, who the users are, and what matters most (read latency, freshness, durability of a post).' },
  { key: 'estimate', name: 'Estimate', minutes: 3,
    prompt: 'Turn the scope into numbers: daily active users, posts per user, reads per post. '
      + 'Derive writes per second, reads per second, the peak, and the storage per day and per year.' },
  { key: 'api', name: 'API', minutes: 4,
    prompt: 'Name the calls a client makes, with their inputs and outputs: post, delete, follow, unfollow, '
      + 'read a home timeline (how it pages), read an author\'s tweets.' },
  { key: 'data', name: 'Data model', minutes: 5,
    prompt: 'Say what is stored where and why: users and the follow graph, tweets, precomputed timelines; '
      + 'for each, its access pattern and the key it is partitioned by.' },
  { key: 'high-level', name: 'High-level design', minutes: 10,
    prompt: 'Draw the services and stores, then walk two requests through them: a post, and a home timeline read.' },
  { key: 'deep-dive', name: 'Deep dive', minutes: 12,
    prompt: 'Go deep on the hard part: how a home timeline is built. Push (fan-out on write), pull '
      + '(fan-out on read) or both, where the line between them goes, and what each costs.' },
  { key: 'bottlenecks', name: 'Bottlenecks', minutes: 5,
    prompt: 'Name what breaks first as it grows and what mitigates it: the celebrity\'s fan-out, a hot tweet, '
      + 'the follow graph and its replicas, the delay before a follower sees a post.' },
];

/** What is left of 45 minutes after the seven steps: slack, not a step. */
export const BUFFER_MINUTES = 1;

/** The whole interview, in seconds. */
export const TOTAL_SECS = 60 * (STEPS.reduce((sum, step) => sum + step.minutes, 0) + BUFFER_MINUTES);

/**
 * The step to be on after `elapsedSecs`: its index into STEPS, STEPS.length
 * in the buffer, and -1 once the time is up. Each step starts where the
 * budgets before it end.
 */
export function stepAt(elapsedSecs) {
  let end = 0;
  for (const [index, step] of STEPS.entries()) {
    end += 60 * step.minutes;
    if (elapsedSecs < end) return index;
  }
  return elapsedSecs < TOTAL_SECS ? STEPS.length : -1;
}

/** Seconds from the start of the interview to the start of step `index`. */
export function startOf(index) {
  return 60 * STEPS.slice(0, index).reduce((sum, step) => sum + step.minutes, 0);
}
