// The public API, as the console calls it, and the signed-in user.
//
// The session (user id, handle, bearer token) is kept in localStorage, so a
// reload stays signed in; tokens expire (TOKEN_TTL_SECS) and a 401 signs out.

const KEY = 'chirp.session';

export const session = {
  get() {
    try { return JSON.parse(localStorage.getItem(KEY)); } catch { return null; }
  },
  set(value) { localStorage.setItem(KEY, JSON.stringify(value)); },
  clear() { localStorage.removeItem(KEY); },
};

/** An API error: the problem document's detail and code. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || `HTTP ${status}`);
    this.status = status;
    this.code = problem?.code;
  }
}

/**
 * Calls the API. Returns {status, body, headers}; throws ApiError on 4xx/5xx.
 * `auth` adds the bearer token of the signed-in user.
 */
export async function call(method, path, { body, auth = false, headers = {} } = {}) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (auth) {
    const current = session.get();
    if (!current) throw new ApiError(401, { detail: 'sign up first', code: 'unauthenticated' });
    init.headers.authorization = `Bearer ${current.token}`;
  }
  const response = await fetch(path, init);
  const text = await response.text();
  const parsed = text ? JSON.parse(text) : null;
  if (!response.ok) {
    if (response.status === 401 && auth) session.clear();
    throw new ApiError(response.status, parsed);
  }
  return { status: response.status, body: parsed, headers: response.headers };
}

export const api = {
  signUp: (handle, display_name) => call('POST', '/users', { body: { handle, display_name } }),
  user: (id) => call('GET', `/users/${id}`),
  byHandle: (handle) => call('GET', `/users/by-handle/${encodeURIComponent(handle)}`),
  popular: () => call('GET', '/users/popular?limit=12'),
  following: (id, cursor) =>
    call('GET', `/users/${id}/following?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`),
  follow: (id) => call('POST', '/follow', { body: { target_user_id: id }, auth: true }),
  unfollow: (id) => call('DELETE', `/follow/${id}`, { auth: true }),
  post: (content, key) =>
    call('POST', '/tweets', { body: { content }, auth: true, headers: { 'idempotency-key': key } }),
  tweet: (id) => call('GET', `/tweets/${id}`),
  remove: (id) => call('DELETE', `/tweets/${id}`, { auth: true }),
  delivery: (id) => call('GET', `/tweets/${id}/delivery`),
  byAuthor: (id, cursor) =>
    call('GET', `/users/${id}/tweets?limit=20${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`),
  timeline: (id, cursor, explain) => call('GET',
    `/users/${id}/timeline?limit=20${explain ? '&explain=true' : ''}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    { auth: true }),
  live: () => call('GET', '/console/live'),
  strategies: () => call('GET', '/console/strategies.json'),
  policies: () => call('GET', '/console/policies.json'),
  openapi: () => call('GET', '/openapi.json'),
  capacity: () => call('GET', '/console/capacity.json'),
};

/** Whether the signed-in user follows `userId`: walks their following list. */
export async function follows(userId) {
  const me = session.get();
  if (!me) return false;
  let cursor;
  for (let pages = 0; pages < 20; pages += 1) {
    const { body } = await api.following(me.user_id, cursor);
    if (body.items.some((user) => user.id === userId)) return true;
    cursor = body.next_cursor;
    if (!cursor) return false;
  }
  return false;
}
