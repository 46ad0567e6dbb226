// The console's only way to the broker: the REST admin API under /api/v1.
// Every error the API answers has the shape {"error": {"code", "message"}}.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Calls the admin API; resolves to the decoded JSON (null for 204). */
export async function api(path, { method = 'GET', body } = {}) {
  // X-Requested-With: the broker answers 401 without a Basic challenge (so the
  // browser shows no dialog over the login page), and a change with it is
  // known not to be a cross-site form.
  const init = { method, headers: { accept: 'application/json', 'x-requested-with': 'conveyor-console' } };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch('/api/v1' + path, init);
  } catch (error) {
    throw new ApiError(0, 'unreachable', `the broker did not answer (${error.message})`);
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (response.status === 401 && path !== '/login') {
    window.dispatchEvent(new CustomEvent('conveyor:unauthorized'));
  }
  if (!response.ok) {
    const error = data && data.error;
    throw new ApiError(response.status, error ? error.code : `http_${response.status}`, error ? error.message : `${response.status} ${response.statusText}`);
  }
  return data;
}

/** One path segment. */
export const seg = encodeURIComponent;
