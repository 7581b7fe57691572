// The API explorer: every operation of the OpenAPI document the gateway
// serves, each with "try it", sent from this page to this gateway as the
// signed-in user. Parameters and a JSON body are filled from the document
// (its examples, your own user id for an `id`); the answer is shown raw:
// status, the headers worth reading, the body.

import { session } from './api.js';
import { h, mount } from './dom.js';

/** The operations of `spec`, one row each, with their explorer under the table. */
export function explorer(spec) {
  const panel = h('div', { class: 'try card', hidden: true });
  const rows = Object.entries(spec.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => h('tr', { 'data-path': path, 'data-method': method },
      h('td', { class: 'mono' }, method.toUpperCase()), h('td', { class: 'mono' }, path), h('td', {}, op.summary || ''),
      h('td', {}, h('button', {
        type: 'button', class: 'link try-it',
        onclick: () => { panel.hidden = false; mount(panel, form(spec, method, path, op)); panel.scrollIntoView({ block: 'nearest' }); },
      }, 'try it')))));
  return h('div', { class: 'explorer' },
    h('table', { class: 'table api-paths' },
      h('thead', {}, h('tr', {}, h('th', {}, 'method'), h('th', {}, 'path'), h('th', {}, 'what it does'), h('th', {}, ''))),
      h('tbody', {}, rows)),
    panel);
}

/** A `$ref` of the document, followed. */
function resolve(spec, schema) {
  if (!schema?.$ref) return schema;
  return schema.$ref.replace(/^#\//, '').split('/').reduce((node, key) => node?.[key], spec);
}

/** A body to start from: each property's example, or an empty value of its type. */
function sampleBody(spec, op) {
  const schema = resolve(spec, op.requestBody?.content?.['application/json']?.schema);
  if (!schema?.properties) return '';
  const sample = Object.fromEntries(Object.entries(schema.properties).map(([name, property]) => {
    const p = resolve(spec, property);
    const type = Array.isArray(p?.type) ? p.type[0] : p?.type;
    return [name, p?.example ?? (type === 'integer' || type === 'number' ? 0 : type === 'boolean' ? false : '')];
  }));
  return JSON.stringify(sample, null, 2);
}

function form(spec, method, path, op) {
  const me = session.get();
  const secured = (op.security || []).length > 0;
  const fields = (op.parameters || []).filter((p) => ['path', 'query', 'header'].includes(p.in)).map((p) => {
    const initial = p.in === 'path' && /id$/.test(p.name) && me ? me.user_id
      : p.name.toLowerCase() === 'idempotency-key' ? crypto.randomUUID() : '';
    const input = h('input', { name: p.name, value: initial, placeholder: p.required ? 'required' : 'optional' });
    return { p, input, label: h('label', { class: 'small' }, h('span', { class: 'mono' }, `${p.in} ${p.name}`), input,
      p.description && h('span', { class: 'muted' }, p.description)) };
  });
  const body = op.requestBody && h('textarea', { name: 'body', rows: 4, class: 'mono' }, sampleBody(spec, op));
  const result = h('div', { class: 'try-result' });
  const send = async (event) => {
    event.preventDefault();
    let url = path;
    const query = new URLSearchParams();
    const headers = {};
    for (const { p, input } of fields) {
      const value = input.value.trim();
      if (p.in === 'path') url = url.replace(`{${p.name}}`, encodeURIComponent(value));
      else if (value && p.in === 'query') query.set(p.name, value);
      else if (value) headers[p.name] = value;
    }
    if (`${query}`) url += `?${query}`;
    if (me) headers.authorization = `Bearer ${me.token}`;
    if (body) headers['content-type'] = 'application/json';
    mount(result, h('p', { class: 'muted' }, `${method.toUpperCase()} ${url} …`));
    try {
      const response = await fetch(url, { method: method.toUpperCase(), headers, body: body ? body.value : undefined });
      const text = await response.text();
      let shown = text;
      try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch { /* not JSON: shown as sent */ }
      const timing = response.headers.get('server-timing');
      mount(result,
        h('p', {}, h('span', { class: 'mono' }, `${method.toUpperCase()} ${url}`), ' → ',
          h('strong', { class: `try-status ${response.ok ? 'ok' : 'error'}` }, `${response.status} ${response.statusText}`)),
        timing && h('p', { class: 'small mono' }, `Server-Timing: ${timing}`),
        h('pre', { class: 'try-body mono' }, shown));
    } catch (error) {
      mount(result, h('p', { class: 'error' }, error.message));
    }
  };
  return h('form', { class: 'try-form', onsubmit: send },
    h('h3', {}, h('span', { class: 'mono' }, `${method.toUpperCase()} ${path}`)),
    h('p', { class: 'muted small' }, secured
      ? (me ? `Sent with your bearer token (@${me.handle}).` : 'Needs a bearer token: sign up first (Home).')
      : 'Needs no token.'),
    fields.map((f) => f.label),
    body && h('label', { class: 'small' }, h('span', { class: 'mono' }, 'JSON body'), body),
    h('button', { type: 'submit' }, 'send'),
    result);
}
