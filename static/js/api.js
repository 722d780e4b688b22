// The REST API: JSON in and out; errors arrive as {"error": {"code", "message", ...}}.
// `api("/api/...")` takes paths from the panel's root; `url()` puts them under URL_PREFIX.
// The page is signed in by its session cookie, so every change carries the CSRF token the
// page was rendered with; a 401 (the session ended) sends the browser to the login page.

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
// Where the panel is served: "" at the root, or URL_PREFIX (e.g. "/daemons-panel").
const ROOT = document.querySelector('meta[name="stashhog-root"]')?.content || "";

/** A panel path ("/api/daemons", "/daemons/<id>") as the browser must ask for it: under
 *  URL_PREFIX when there is one. Every URL a script builds goes through here. */
export function url(path) {
  return `${ROOT}${path}`;
}

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

/** The header a cookie-carried change needs (the CSRF token the page was rendered with). */
export function csrfHeader(method) {
  return SAFE_METHODS.has(method.toUpperCase()) ? {} : { "X-CSRF-Token": csrfToken() };
}

function toLogin() {
  const next = `${location.pathname}${location.search}`;
  location.assign(url(`/login?next=${encodeURIComponent(next)}`));
}

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `request failed with HTTP ${status}`);
    this.status = status;
    this.code = error.code || "http_error";
    this.details = error;
  }
}

export async function api(path, { method = "GET", body, headers = {} } = {}) {
  const options = { method, headers: { Accept: "application/json", ...csrfHeader(method), ...headers } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url(path), options);
  } catch (exc) {
    throw new ApiError(0, { error: { code: "network", message: `network error: ${exc.message}` } });
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (response.status === 401) toLogin();
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
