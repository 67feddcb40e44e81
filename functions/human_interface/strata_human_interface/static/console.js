"use strict";
const KEY = "strata.apiKey";
const $ = (id) => document.getElementById(id);

async function api(path) {
  const response = await fetch(path, { headers: { authorization: `Bearer ${sessionStorage.getItem(KEY)}` } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail || body.message || `HTTP ${response.status}`);
  return body;
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

async function showOverview() {
  const data = await api("/v1/console/overview");
  $("who").textContent = `${data.principal.principal_id} · tenant ${data.principal.tenant_id}`;
  $("overall").textContent = `Overall: ${data.status.status}`;
  const rows = data.status.layers.map((layer) => {
    const tr = document.createElement("tr");
    const deps = Object.entries(layer.dependencies || {}).map(([n, d]) => `${n}: ${d.status}`).join(", ");
    tr.append(cell(`${layer.number} ${layer.layer}`), cell(layer.status, layer.status === "ok" ? "ok" : "bad"),
      cell(layer.latency_ms != null ? `${layer.latency_ms} ms` : "—"), cell(deps || layer.error || ""));
    return tr;
  });
  $("layers").replaceChildren(...rows);
  $("signin").hidden = true;
  $("overview").hidden = false;
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY, $("api-key").value.trim());
  try { await showOverview(); $("signin-error").textContent = ""; }
  catch (error) { sessionStorage.removeItem(KEY); $("signin-error").textContent = error.message; }
});
$("refresh").addEventListener("click", () => showOverview().catch((e) => { $("overall").textContent = e.message; }));
$("signout").addEventListener("click", () => { sessionStorage.removeItem(KEY); location.reload(); });
if (sessionStorage.getItem(KEY)) showOverview().catch(() => sessionStorage.removeItem(KEY));
