// The API client: same origin, the credential from this tab's session storage as a bearer token.
const KEY = "strata.credential";

export const credential = {
  get: () => sessionStorage.getItem(KEY),
  set: (value) => sessionStorage.setItem(KEY, value),
  clear: () => sessionStorage.removeItem(KEY),
};

// An API answer that was not 2xx: the status and the problem+json body (detail, and for 422 the fields).
export class ApiError extends Error {
  constructor(status, problem) {
    const fields = (problem.errors || []).map((e) => `${e.loc.filter((p) => p !== "body").join(".")}: ${e.msg}`);
    const detail = problem.detail || problem.title || problem.message || `HTTP ${status}`;
    super(fields.length ? `${detail} (${fields.join("; ")})` : detail);
    this.status = status;
    this.problem = problem;
  }
}

// One request: {data, etag, notModified}. `etag` asks for 304 when nothing changed; errors throw ApiError.
export async function request(path, { method = "GET", body, params, etag, headers = {} } = {}) {
  const url = new URL(path, location.origin);
  for (const [name, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  const sent = { accept: "application/json", authorization: `Bearer ${credential.get()}`, ...headers };
  if (body !== undefined) sent["content-type"] = "application/json";
  if (etag) sent["if-none-match"] = etag;
  const response = await fetch(url, { method, headers: sent, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 304) return { data: null, etag, notModified: true };
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { detail: text.slice(0, 300) }; }
  if (!response.ok) {
    if (response.status === 401) window.dispatchEvent(new CustomEvent("strata:unauthorized"));
    throw new ApiError(response.status, data || {});
  }
  return { data, etag: response.headers.get("etag"), notModified: false };
}

export async function api(path, options) {
  return (await request(path, options)).data;
}
