// The console's Interview view in Debian's Chromium, driven by
// playwright-core against a running chirp (CHIRP_URL): the seven steps and
// their budgets, the timer marking the step to be on, and answers that read
// the running deployment (the live OpenAPI document and "try it" against
// it, the live system view, the signed-in user's own post and read animated
// hop by hop with their measured times, her explained timeline, the live
// bottleneck figures) and an estimator that computes, with its capacity plan
// from the committed runs.
// Run by e2e/tests/browser.rs (deploy/browser-test.sh), after console.test.mjs.
// CHIRP_SCREENSHOTS=<dir> saves a picture of the view there.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { BASE, SHOTS, launch } from './chromium.mjs';
// The view's pure parts, imported as the browser does (they touch no DOM when loaded).
import { estimate, humanBytes } from '../../services/gateway/console/estimate.js';
import { cores } from '../../services/gateway/console/plan.js';
import { STEPS as BUDGETS, TOTAL_SECS, stepAt } from '../../services/gateway/console/steps.js';

const HANDLE = `carol${String(Date.now() % 1e8)}`;
const STEPS = [['clarify', 'Clarify', 5], ['estimate', 'Estimate', 3], ['api', 'API', 4], ['data', 'Data model', 5],
  ['high-level', 'High-level design', 10], ['deep-dive', 'Deep dive', 12], ['bottlenecks', 'Bottlenecks', 5]];

let browser;
let page;
/** Uncaught exceptions and console errors (a CSP violation is one). */
const errors = [];

before(async () => {
  assert.ok(BASE, 'CHIRP_URL names the gateway');
  browser = await launch();
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, baseURL: BASE });
  page = await context.newPage();
  page.on('pageerror', (error) => errors.push(`uncaught: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()}`);
  });
  // Signed in, as the console keeps a session, so the deep dive can explain her timeline.
  const response = await page.request.post('/users', { data: { handle: HANDLE, display_name: 'Carol' } });
  assert.equal(response.status(), 201);
  const body = await response.json();
  await page.goto('/');
  await page.evaluate((session) => localStorage.setItem('chirp.session', JSON.stringify(session)),
    { user_id: body.user_id, handle: body.user.handle, token: body.token });
});

after(async () => {
  await browser?.close();
  assert.deepEqual(errors, []);
});

test('the budgets add up to 45 minutes, and the clock maps time to the step', () => {
  assert.equal(TOTAL_SECS, 45 * 60);
  assert.deepEqual(BUDGETS.map((step) => step.minutes), STEPS.map(([, , minutes]) => minutes));
  assert.equal(stepAt(0), 0);
  assert.equal(stepAt(5 * 60 - 1), 0);
  assert.equal(stepAt(5 * 60), 1, 'estimate starts when clarify\'s 5 minutes end');
  assert.equal(stepAt(32 * 60), 5, 'minute 32 is in the deep dive');
  assert.equal(stepAt(39 * 60), 6, 'bottlenecks from minute 39');
  assert.equal(stepAt(44 * 60), 7, 'the buffer');
  assert.equal(stepAt(45 * 60), -1, 'time is up');
});

test('the estimator is the arithmetic of `loadtest estimate`', () => {
  // The figures of load/src/estimate.rs's own test (two_hundred_million_users).
  const e = estimate({ dau: 200e6, posts: 2, ratio: 100, bytes: 300, peak: 2 });
  assert.equal(Math.round(e.writes), 4630);
  assert.equal(Math.round(e.reads), 462963);
  assert.equal(Math.round(e.peakReads), 925926);
  assert.equal(humanBytes(e.perDay), '120.0 GB');
  assert.equal(humanBytes(e.perYear), '43.8 TB');
});

test('the interview view lists the seven steps with their budgets, reachable from the navigation', async () => {
  await page.goto('/');
  await page.click('#nav a[data-view=interview]');
  await page.waitForURL(/#\/interview$/);
  const steps = page.locator('.steps .step.card');
  await steps.first().waitFor();
  assert.equal(await steps.count(), 7);
  for (const [index, [key, name, minutes]] of STEPS.entries()) {
    const step = steps.nth(index);
    assert.equal(await step.getAttribute('data-step'), key);
    assert.equal(await step.locator('.step-name').textContent(), name);
    assert.equal(await step.locator('.budget').textContent(), `${minutes} min`);
    assert.ok((await step.locator('.prompt').textContent()).length > 40, `${name} says what to deliver`);
  }
  assert.equal(await page.locator('.step.buffer .budget').textContent(), '1 min');
  assert.equal(await page.locator('.clock-time').textContent(), '00:00 / 45:00');
});

test('the timer marks the step to be on, moves on, pauses and resets', async () => {
  await page.goto('/#/interview');
  assert.equal(await page.locator('.step.current').count(), 0);
  await page.click('.clock-toggle');
  await page.locator('.step.current[data-step=clarify]').waitFor();
  await page.locator('.clock-step').filter({ hasText: 'now: Clarify' }).waitFor();
  await page.locator('.clock-time').filter({ hasText: /^00:0[1-9] \/ 45:00$/ }).waitFor({ timeout: 5000 });
  await page.click('.clock-next');
  await page.locator('.step.current[data-step=estimate]').waitFor();
  await page.locator('.clock-time').filter({ hasText: /^05:0\d \/ 45:00$/ }).waitFor();
  assert.equal(await page.locator('.step.current').count(), 1);
  await page.click('.clock-toggle');
  await page.locator('.clock-toggle').filter({ hasText: 'resume' }).waitFor();
  const paused = await page.locator('.clock-time').textContent();
  await page.waitForTimeout(1200);
  assert.equal(await page.locator('.clock-time').textContent(), paused, 'a paused clock stands still');
  await page.click('.clock-reset');
  await page.locator('.clock-step').filter({ hasText: 'not started' }).waitFor();
  assert.equal(await page.locator('.step.current').count(), 0);
});

test('the answers read the running deployment, and the estimator computes', async () => {
  await page.goto('/#/interview');
  const answer = (key) => page.locator(`.step[data-step="${key}"] .answer`);
  const open = (key) => page.click(`.step[data-step="${key}"] .show-answer`);

  // API: the paths of the live OpenAPI document, the home timeline among them.
  const spec = await (await page.request.get('/openapi.json')).json();
  await open('api');
  const timeline = answer('api').locator('tr[data-path="/users/{id}/timeline"]');
  await timeline.waitFor();
  assert.equal(await timeline.locator('td').first().textContent(), 'GET');
  const operations = Object.values(spec.paths).reduce((sum, methods) => sum + Object.keys(methods).length, 0);
  assert.equal(await answer('api').locator('tbody tr').count(), operations);
  // "Try it": a post as the signed-in user, from the document's example, then her own timeline.
  await answer('api').locator('tr[data-path="/tweets"][data-method=post] .try-it').click();
  const tryForm = answer('api').locator('.try-form');
  assert.match(await tryForm.locator('textarea[name=body]').inputValue(), /"content": "hello, world"/);
  assert.match(await tryForm.locator('input[name=Idempotency-Key]').inputValue(), /^[0-9a-f-]{36}$/);
  await tryForm.locator('button[type=submit]').click();
  await tryForm.locator('.try-status').filter({ hasText: /^201 / }).waitFor();
  assert.match(await tryForm.locator('.try-body').textContent(), /"content": "hello, world"/);
  await timeline.locator('.try-it').click();
  const me = await page.evaluate(() => JSON.parse(localStorage.getItem('chirp.session')).user_id);
  assert.equal(await tryForm.locator('input[name=id]').inputValue(), me, 'an id is yours to start with');
  await tryForm.locator('button[type=submit]').click();
  await tryForm.locator('.try-status').filter({ hasText: /^200 / }).waitFor();
  assert.match(await tryForm.locator('.try-body').textContent(), /"items"/);

  // Clarify: what is left out, checked against the live paths.
  await open('clarify');
  await answer('clarify').locator('.left-out li').filter({ hasText: /^search: no path of the live API/ }).waitFor();

  // Estimate: given inputs, the figures of `loadtest estimate`.
  await open('estimate');
  const form = answer('estimate');
  await form.locator('input[name=dau]').fill('100000000');
  await form.locator('input[name=posts]').fill('1');
  await form.locator('input[name=ratio]').fill('50');
  await form.locator('input[name=bytes]').fill('250');
  await form.locator('input[name=peak]').fill('3');
  assert.equal(await form.locator('[data-out=writes]').textContent(), '1,157');
  assert.equal(await form.locator('[data-out=reads]').textContent(), '57,870');
  assert.equal(await form.locator('[data-out=peak]').textContent(), '173,611');
  assert.equal(await form.locator('[data-out=day]').textContent(), '25.0 GB');
  assert.equal(await form.locator('[data-out=year]').textContent(), '9.1 TB');
  // Its capacity plan: that peak over the committed run's measured CPU per page, and the
  // fan-out's writes over one worker's measured inserts/s, at the assumptions given.
  const measured = await (await page.request.get('/console/capacity.json')).json();
  if (measured.cpu_us_per_page) {
    await form.locator('input[name=followers]').fill('300');
    await form.locator('input[name=busy]').fill('0.4');
    const e = estimate({ dau: 100e6, posts: 1, ratio: 50, bytes: 250, peak: 3 });
    const gateway = cores(e.peakReads, measured.cpu_us_per_page.gateway, 0.4);
    assert.ok(gateway > 0);
    assert.equal(await form.locator('tr[data-plan=gateway] .plan-value').textContent(), gateway.toLocaleString('en'));
    const workers = cores(e.writes * 300, 1e6 / measured.fanout_worker_inserts_per_sec, 0.4);
    assert.equal(await form.locator('tr[data-plan=fanout] .plan-value').textContent(), workers.toLocaleString('en'));
    assert.equal(await form.locator('tr[data-plan=loadtest]').count(), 0, 'the load generator is not planned');
    // A partition is consumed by one worker at a time: as many as the workers, at one per worker.
    assert.equal(await form.locator('tr[data-plan=kafka-partitions] .plan-value').textContent(), workers.toLocaleString('en'));
    await form.locator('input[name=partitions_per_worker]').fill('3');
    assert.equal(await form.locator('tr[data-plan=kafka-partitions] .plan-value').textContent(), (3 * workers).toLocaleString('en'));
    assert.match(await form.locator('tr[data-plan=kafka-partitions]').textContent(), /one worker/);
    const redisCores = cores(e.peakReads, measured.cpu_us_per_page['redis-server'], 0.4);
    if (measured.redis_bytes_per_entry) {
      // 100 M timelines × 800 entries × the measured bytes per entry, in 25 GB shards.
      const memory = 100e6 * 800 * measured.redis_bytes_per_entry;
      assert.equal(await form.locator('tr[data-plan=redis-memory] .plan-value').textContent(), humanBytes(memory));
      assert.equal(await form.locator('tr[data-plan=redis-shards] .plan-value').textContent(),
        Math.max(Math.ceil(memory / 25e9), redisCores).toLocaleString('en'));
    } else {
      // Not measured by a committed run: not planned from a constant either, and it says how to measure it.
      assert.equal(await form.locator('tr[data-plan=redis-memory] .plan-value').textContent(), 'not planned');
      assert.match(await form.locator('tr[data-plan=redis-memory]').textContent(), /deploy\/bench-scale\.sh/);
      assert.equal(await form.locator('tr[data-plan=redis-shards] .plan-value').textContent(), redisCores.toLocaleString('en'));
    }
  } else {
    await form.locator('.no-run').waitFor();
  }

  // Data model: the stores with their keys and access patterns, as the code defines them.
  await open('data');
  const tables = answer('data').locator('table.data-model tbody tr');
  await tables.first().waitFor();
  for (const store of ['Postgres', 'Cassandra', 'Redis', 'Kafka']) {
    assert.ok(await tables.filter({ hasText: store }).count() > 0, `${store} is in the data model`);
  }
  await tables.filter({ hasText: 'tl:{user_id}' }).first().waitFor();

  // High-level: every scraped service, live; then her own post and read, animated hop by hop,
  // each step with its measured time, to the last.
  await open('high-level');
  await answer('high-level').locator('.services-live li[data-service=gateway]').waitFor();
  const flow = (key) => answer('high-level').locator(`.flow[data-flow=${key}]`);
  await flow('post').locator('.run-flow').click();
  await answer('high-level').locator('.flow[data-flow=post][data-done]').waitFor({ timeout: 30000 });
  const posted = flow('post').locator('.flow-step');
  assert.equal(await posted.count(), 3, 'the POST, the first timeline write, the last');
  assert.match(await posted.nth(0).locator('.flow-time').textContent(), /^201 in [\d.,]+ ms$/);
  assert.match(await posted.nth(1).locator('.flow-time').textContent(), /^1st write \+[\d.,]+ ms$/);
  assert.match(await posted.nth(2).locator('.flow-time').textContent(), /^last write \+[\d.,]+ ms$/);
  for (const node of ['client', 'gateway', 'tweet', 'cassandra', 'kafka', 'fanout', 'graph', 'redis']) {
    assert.match(await flow('post').locator(`[data-node=${node}]`).getAttribute('class'), /\blit\b/, `the post reached ${node}`);
  }
  assert.match(await flow('post').locator('[data-node=timeline]').getAttribute('class'), /\bdim\b/, 'a post does not touch the timeline service');
  await flow('read').locator('.run-flow').click();
  await answer('high-level').locator('.flow[data-flow=read][data-done]').waitFor({ timeout: 30000 });
  // The round trip, then every hop the page's explanation timed, each with its time.
  const read = flow('read').locator('.flow-step');
  assert.match(await read.nth(0).locator('.flow-time').textContent(), /^page in [\d.,]+ ms$/);
  const hops = await read.locator('.flow-time').allTextContents();
  assert.ok(hops.length >= 4, `a page has hops: ${hops}`);
  for (const hop of hops.slice(1)) assert.match(hop, /^[a-z ]+ [\d.,]+ ms$/);
  assert.ok(hops.some((hop) => hop.startsWith('timeline call ')), `the gateway's call is timed: ${hops}`);
  await read.filter({ hasText: /^hydrate [\d.,]+ ms timeline, hydrate/ }).waitFor();
  assert.match(await flow('read').locator('[data-node=timeline]').getAttribute('class'), /\blit\b/);
  if (SHOTS) {
    // Tall enough for both flows below the sticky header and clock.
    await page.setViewportSize({ width: 1280, height: 2000 });
    await page.evaluate(() => window.scrollTo(0, document.querySelector('.flows').getBoundingClientRect().top + window.scrollY - 170));
    await answer('high-level').locator('.flows').screenshot({ path: `${SHOTS}/console-flows.png` });
    await page.setViewportSize({ width: 1280, height: 860 });
  }

  // Deep dive: her own timeline, explained now.
  await open('deep-dive');
  assert.equal(await answer('deep-dive').locator('.explained .strategy').textContent(), 'hybrid');
  assert.match(await answer('deep-dive').locator('.explained .cache').textContent(), /^(hit|rebuilt)$/);

  // Bottlenecks: the live figures the console reads, one per bottleneck.
  await open('bottlenecks');
  const items = answer('bottlenecks').locator('.bottleneck-list li');
  await items.first().waitFor();
  assert.equal(await items.count(), 4);
  await items.filter({ hasText: /post to push p50/ }).waitFor();
  // The hot tweet: the tweet cache's hit ratio and coalesced waits, and the command that makes them.
  const hot = answer('bottlenecks').locator('[data-bottleneck=hot-tweet]');
  assert.match(await hot.locator('.live').textContent(), /^tweet cache hits .*; coalesced waits [\d.,–]+\/s now, [\d,]+ since the timeline service started/);
  assert.match(await hot.locator('code.command').textContent(), /^TOKEN_SECRET=.* loadtest run hot-tweet /);
  // The graph: its largest audience, and no replica in this stack, said so rather than a lag.
  const graph = answer('bottlenecks').locator('[data-bottleneck=replica-lag]');
  assert.match(await graph.locator('.replica-lag').textContent(), /^no replica configured/);
  const [top] = (await (await page.request.get('/users/popular?limit=1')).json()).items;
  assert.match(await graph.locator('.live').textContent(), top?.follower_count
    ? new RegExp(`largest audience a fan-out faces: @${top.handle}, ${top.follower_count.toLocaleString('en')} followers`)
    : /no user has followers yet$/);
  // Beside the live figures, the committed run's, when one is shipped.
  const shipped = await (await page.request.get('/console/strategies.json')).json();
  const hybrid = shipped.strategies.find((row) => row.strategy === 'hybrid');
  if (hybrid) {
    const measured = await answer('bottlenecks').locator('[data-bottleneck=celebrity] .measured').textContent();
    assert.match(measured, new RegExp(`, ${hybrid.celebrity.writes.per_tweet.toLocaleString('en', { maximumFractionDigits: 0 })} under hybrid$`));
  }
  if (SHOTS) {
    // The clock running on its second step, and that step's estimate and plan under the
    // sticky clock: one screen, not the whole page (which is long with every answer open).
    await page.click('.clock-toggle');
    await page.click('.clock-next');
    await page.locator('.step.current[data-step=estimate]').waitFor();
    await page.evaluate(() => window.scrollTo(0, document.querySelector('.step[data-step=estimate]').offsetTop - 150));
    await page.screenshot({ path: `${SHOTS}/console-interview.png` });
    await page.click('.clock-reset');
  }
});
