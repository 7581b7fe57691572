// Interview practice: the seven steps of the "design Twitter" answer with
// their budgets, a 45-minute timer that says which step you should be on,
// and, one click away at each step, this system's answer with live evidence
// (answers.js). The timer lives in this module, not the view, so it keeps
// running while you look at the System view or the lab and come back.

import { h, mount } from './dom.js';
import { ANSWERS } from './answers.js';
import { BUFFER_MINUTES, STEPS, TOTAL_SECS, startOf, stepAt } from './steps.js';

/** The clock: seconds banked by earlier runs, and when the current run began. */
const clock = { banked: 0, since: null };
const elapsed = () => clock.banked + (clock.since === null ? 0 : (Date.now() - clock.since) / 1000);

let timer;
window.addEventListener('chirp:leave', () => clearTimeout(timer));

const mmss = (secs) => {
  const whole = Math.max(0, Math.floor(secs));
  return `${String(Math.floor(whole / 60)).padStart(2, '0')}:${String(whole % 60).padStart(2, '0')}`;
};

export function interviewView(main) {
  const time = h('span', { class: 'clock-time mono' });
  const now = h('span', { class: 'clock-step' });
  const toggle = h('button', { type: 'button', class: 'clock-toggle' });
  const next = h('button', { type: 'button', class: 'secondary clock-next' }, 'next step');
  const reset = h('button', { type: 'button', class: 'secondary clock-reset' }, 'reset');
  const items = STEPS.map((step, index) => stepItem(step, index));
  const buffer = h('li', { class: 'step buffer', 'data-step': 'buffer' },
    h('div', { class: 'step-head' }, h('span', { class: 'step-name' }, 'Buffer'),
      h('span', { class: 'budget' }, `${BUFFER_MINUTES} min`)),
    h('p', { class: 'muted small' }, 'Slack for questions, or to finish the step that ran over.'));

  const show = () => {
    const secs = elapsed();
    const current = clock.since === null && secs === 0 ? null : stepAt(secs);
    time.textContent = `${mmss(secs)} / ${mmss(TOTAL_SECS)}`;
    now.textContent = current === null ? 'not started'
      : current === -1 ? 'time is up'
        : current === STEPS.length ? 'now: buffer' : `now: ${STEPS[current].name}`;
    toggle.textContent = clock.since === null ? (secs ? 'resume' : 'start') : 'pause';
    items.forEach((item, index) => item.classList.toggle('current', index === current));
    buffer.classList.toggle('current', current === STEPS.length);
  };
  const tick = () => {
    show();
    if (clock.since !== null && elapsed() >= TOTAL_SECS) { clock.banked = TOTAL_SECS; clock.since = null; show(); }
    clearTimeout(timer);
    if (time.isConnected && clock.since !== null) timer = setTimeout(tick, 250);
  };
  toggle.addEventListener('click', () => {
    if (clock.since === null) clock.since = Date.now();
    else { clock.banked = elapsed(); clock.since = null; }
    tick();
  });
  next.addEventListener('click', () => {
    // Done early: jump to the start of the next step, keeping the clock's state.
    const current = stepAt(elapsed());
    if (current === -1 || current >= STEPS.length) return;
    clock.banked = startOf(current + 1);
    if (clock.since !== null) clock.since = Date.now();
    tick();
  });
  reset.addEventListener('click', () => { clock.banked = 0; clock.since = null; tick(); });

  mount(main, h('section', { class: 'column wide interview' },
    h('h1', {}, 'Practise the interview'),
    h('p', { class: 'muted' }, 'Design Twitter in 45 minutes, alone: start the clock, deliver each step out loud or on paper, ',
      'then open this system\'s answer to compare. The answers read the running deployment where they can.'),
    h('div', { class: 'card clock' }, time, now, toggle, next, reset),
    h('ol', { class: 'steps' }, items, buffer)));
  tick();
}

function stepItem(step, index) {
  const answer = h('div', { class: 'answer' });
  const open = h('button', { type: 'button', class: 'link show-answer' }, 'show this system\'s answer');
  open.addEventListener('click', async () => {
    if (!answer.hidden && answer.childElementCount) { answer.hidden = true; open.textContent = 'show this system\'s answer'; return; }
    answer.hidden = false;
    open.textContent = 'hide the answer';
    mount(answer, h('p', { class: 'muted' }, 'loading…'));
    try {
      mount(answer, await ANSWERS[step.key]());
    } catch (error) {
      mount(answer, h('p', { class: 'error' }, error.message));
    }
  });
  return h('li', { class: 'step card', 'data-step': step.key },
    h('div', { class: 'step-head' },
      h('span', { class: 'step-number' }, `${index + 1}`), h('span', { class: 'step-name' }, step.name),
      h('span', { class: 'budget' }, `${step.minutes} min`),
      h('span', { class: 'muted small' }, `from ${mmss(startOf(index))}`)),
    h('p', { class: 'prompt' }, step.prompt),
    open, answer);
}
