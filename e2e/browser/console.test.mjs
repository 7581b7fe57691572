// The web console in Debian's Chromium, driven by playwright-core against a
// running chirp (CHIRP_URL): two people sign up, one follows the other, the
// other posts, the tweet shows on the follower's timeline with its
// explanation, and its fan-out is watched to the end. Run by
// e2e/tests/browser.rs (deploy/browser-test.sh), which starts the stack.
// CHIRP_SCREENSHOTS=<dir> saves a picture of each view there (docs/ uses them).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { BASE, SHOTS, launch } from './chromium.mjs';

const suffix = String(Date.now() % 1e8);
const ALICE = `alice${suffix}`;
const BOB = `bob${suffix}`;

let browser;
let alice;
let bob;
/** Uncaught exceptions and console errors (a CSP violation is one) of every page. */
const errors = [];

async function person() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, baseURL: BASE });
  const page = await context.newPage();
  page.on('pageerror', (error) => errors.push(`uncaught: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()}`);
  });
  return page;
}

async function shot(page, name, fullPage = false) {
  if (SHOTS) await page.screenshot({ path: `${SHOTS}/console-${name}.png`, fullPage });
}

/** The signed-in user's bearer token, as the console keeps it. */
const tokenOf = (page) => page.evaluate(() => JSON.parse(localStorage.getItem('chirp.session')).token);

async function signUp(page, handle) {
  await page.goto('/');
  await page.fill('input[name=handle]', handle);
  await page.fill('input[name=display_name]', handle[0].toUpperCase() + handle.slice(1, -suffix.length));
  await page.click('form.signup button');
  await page.waitForURL(/#\/people$/);
  await page.locator('.session .me').filter({ hasText: `@${handle}` }).waitFor();
  const stored = await page.evaluate(() => JSON.parse(localStorage.getItem('chirp.session')));
  assert.equal(stored.handle, handle);
  assert.ok(stored.token, 'the token is kept in localStorage');
  return stored;
}

before(async () => {
  assert.ok(BASE, 'CHIRP_URL names the gateway');
  browser = await launch();
  alice = await person();
  bob = await person();
});

after(async () => {
  await browser?.close();
  // Failed API calls the tests make on purpose are not logged by the console;
  // the browser itself logs a failed fetch as an error, so none may fail.
  assert.deepEqual(errors, []);
});

/**
 * The delivery view of a tweet to one follower: pushed into their cached
 * timeline, or skipped as inactive (Bob may not have read since following),
 * once and only once, each count with what it means beside it.
 */
async function handledOnce(delivery) {
  const pushed = await delivery.locator('.pushed').textContent();
  const inactive = await delivery.locator('.skipped-inactive').textContent();
  assert.match(pushed, /^[01] of 1$/);
  assert.equal(Number(pushed[0]) + Number(inactive), 1, `${pushed} pushed, ${inactive} inactive`);
  assert.match(await delivery.textContent(), /not read lately/);
}

test('sign up, follow, post, read it on the other timeline, explain it, watch it fan out', async () => {
  const aliceSession = await signUp(alice, ALICE);
  await signUp(bob, BOB);

  // Bob finds Alice by handle and follows her from her page.
  await bob.fill('form.search input', ALICE);
  await bob.click('form.search button');
  await bob.click(`.found a[data-user-id="${aliceSession.user_id}"]`);
  await bob.waitForURL(new RegExp(`#/user/${aliceSession.user_id}$`));
  const follow = bob.locator('button.follow');
  await follow.filter({ hasText: 'Follow' }).waitFor();
  await follow.click();
  await follow.filter({ hasText: 'Unfollow' }).waitFor();
  await bob.locator('.profile').filter({ hasText: '1 follower ·' }).waitFor();

  // She is now among the popular accounts, with her follower.
  await bob.goto('/#/people');
  await bob.locator(`.people-grid a[data-user-id="${aliceSession.user_id}"]`).filter({ hasText: '1 follower ·' }).waitFor();
  await shot(bob, 'people');

  // Alice posts, and watches the fan-out reach her one follower.
  await alice.goto('/#/');
  const content = `hello from the console ${suffix}`;
  await alice.fill('form.composer textarea', content);
  await alice.click('form.composer button[type=submit]');
  await alice.locator('.compose-status .delivery .state').filter({ hasText: 'delivered' }).waitFor({ timeout: 20000 });
  await handledOnce(alice.locator('.compose-status .delivery'));
  await alice.locator('.feed .tweet .content').filter({ hasText: content }).waitFor();
  await shot(alice, 'post');

  // Bob sees it on his home timeline, and asks why it is there.
  await bob.goto('/#/');
  const tweet = bob.locator('.feed .tweet').filter({ hasText: content });
  await tweet.waitFor();
  await bob.check('#explain-toggle');
  const explain = bob.locator('.explanations .explain').first();
  await explain.waitFor();
  await shot(bob, 'explain');
  assert.equal(await explain.locator('.strategy').textContent(), 'hybrid');
  assert.match(await explain.locator('.cache').textContent(), /^(hit|rebuilt)$/);
  assert.ok(await explain.locator('.hops li').count() > 0, 'the time of each hop is shown');
  assert.match(await tweet.locator('.source').textContent(), /^(pushed|rebuilt)$/);

  // The tweet's own page: its fan-out, done.
  await tweet.locator('a.link-delivery').click();
  await bob.locator('.delivery .state').filter({ hasText: 'delivered' }).waitFor();
  await handledOnce(bob.locator('.delivery'));
  assert.equal(await bob.locator('.delivery .skipped-celebrity').textContent(), '0');
  await shot(bob, 'delivery');
});

test('the home timeline scrolls page after page by cursor', async () => {
  // 24 more tweets (retried posts would be deduplicated by their keys).
  for (let n = 0; n < 24; n += 1) {
    const response = await alice.request.post('/tweets', {
      data: { content: `tweet number ${n}` },
      headers: {
        authorization: `Bearer ${await tokenOf(alice)}`,
        'idempotency-key': `${suffix}-${n}`,
      },
    });
    assert.equal(response.status(), 201);
  }
  await bob.goto('/#/');
  const items = bob.locator('.feed .tweet');
  // The fan-out is asynchronous: reload until the newest is there.
  for (let tries = 0; tries < 50; tries += 1) {
    await bob.locator('.feed .tweet, .feed .sentinel').first().waitFor();
    if (await bob.locator('.feed .tweet').filter({ hasText: 'tweet number 23' }).count()) break;
    await bob.waitForTimeout(200);
    await bob.reload();
  }
  await items.first().waitFor();
  await bob.locator('.feed .sentinel').scrollIntoViewIfNeeded();
  await bob.locator('.feed .sentinel').filter({ hasText: 'the end' }).waitFor();
  assert.equal(await items.count(), 25, 'two pages of 20 and 5, joined by the cursor');
});

test('an author deletes a tweet from their page, and a follower unfollows', async () => {
  const me = await alice.evaluate(() => JSON.parse(localStorage.getItem('chirp.session')));
  await alice.goto(`/#/user/${me.user_id}`);
  const first = alice.locator('.feed .tweet').first();
  await first.waitFor();
  await shot(alice, 'author');
  await first.locator('button.danger').click();
  await alice.locator('.feed .tweet.deleted').waitFor();

  await bob.goto(`/#/user/${me.user_id}`);
  const button = bob.locator('button.follow');
  await button.filter({ hasText: 'Unfollow' }).waitFor();
  await button.click();
  await button.filter({ hasText: /^Follow$/ }).waitFor();
});

test('the system view draws every hop with live numbers, and the lab plots the strategies and the policies', async () => {
  // Some traffic to watch: Alice reads her timeline and posts, for three seconds.
  const token = await tokenOf(alice);
  const me = await alice.evaluate(() => JSON.parse(localStorage.getItem('chirp.session')).user_id);
  const headers = { authorization: `Bearer ${token}` };
  const until = Date.now() + 3000;
  const traffic = (async () => {
    for (let n = 0; Date.now() < until; n += 1) {
      await alice.request.get(`/users/${me}/timeline`, { headers });
      if (n % 5 === 0) await alice.request.post('/tweets', { data: { content: `busy ${n}` }, headers });
    }
  })();
  await bob.goto('/#/system');
  // Rates need two readings a second apart: wait for numbers, not dashes.
  const rate = /^[0-9][0-9.,]* req\/s$/;
  await bob.locator('[data-node=gateway] .node-line').first().filter({ hasText: rate }).waitFor({ timeout: 10000 });
  await bob.locator('[data-node=timeline] .node-line').first().filter({ hasText: rate }).waitFor();
  await bob.locator('[data-node=fanout] .node-line').filter({ hasText: /Kafka lag/ }).waitFor();
  await bob.locator('[data-node=tweet] .node-line').first().filter({ hasText: /^[1-9][0-9.,]* req\/s$/ }).waitFor();
  await shot(bob, 'system', true);
  await traffic;

  await bob.goto('/#/lab');
  // The lab shows the committed run of docs/runs/bench/, or says that there is none.
  const shipped = await (await bob.request.get('/console/strategies.json')).json();
  if (shipped.strategies.length) {
    await bob.locator('.plots svg.chart').nth(2).waitFor();
    assert.equal(await bob.locator('.plots table.table tbody tr').count(), shipped.strategies.length);
  } else {
    await bob.locator('.plots .no-run').filter({ hasText: 'No run of' }).waitFor();
  }
  // Below them, the policies of real networks: the committed runs of docs/runs/policies/, or a
  // note that there are none.
  const policies = await (await bob.request.get('/console/policies.json')).json();
  const section = bob.locator('section.policies');
  await section.locator('h2').filter({ hasText: 'policies of real networks' }).waitFor();
  if (policies.runs.length) {
    await section.locator('svg.chart').nth(3).waitFor();
    assert.equal(await section.locator('table.policies-table tbody tr').count(),
      policies.runs[0].policies.length);
  } else {
    await section.locator('.no-run').filter({ hasText: 'No run of' }).waitFor();
  }
  await shot(bob, 'lab', true);
});
