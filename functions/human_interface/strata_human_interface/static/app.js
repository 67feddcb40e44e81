// The console's shell: sign-in, the navigation and a hash router (#/runs/<id>) that renders one page at a time.
import { api, credential } from "/console/assets/api.js";
import { errorBox, fill, h } from "/console/assets/ui.js";
import * as overview from "/console/assets/overview.js";
import * as goals from "/console/assets/goals.js";
import * as runs from "/console/assets/runs.js";
import * as approvals from "/console/assets/approvals.js";
import * as costs from "/console/assets/costs.js";
import * as events from "/console/assets/events.js";
import * as audit from "/console/assets/audit.js";

const ROUTES = [
  [/^#?\/?$/, overview, "Overview"],
  [/^#\/goals$/, goals, "Goals"],
  [/^#\/runs$/, runs, "Runs"],
  [/^#\/runs\/([0-9a-f-]{36})$/, runs, "Run"],
  [/^#\/approvals$/, approvals, "Approvals"],
  [/^#\/costs$/, costs, "Quality & cost"],
  [/^#\/events$/, events, "Events"],
  [/^#\/audit$/, audit, "Audit"],
];

const $ = (id) => document.getElementById(id);
let cleanup = null;
let me = null;

function signedOut(message = "") {
  credential.clear();
  me = null;
  if (cleanup) cleanup();
  cleanup = null;
  fill($("page"));
  $("nav").hidden = true;
  $("signout").hidden = true;
  $("who").textContent = "";
  $("signin").hidden = false;
  $("signin-error").textContent = message;
  document.title = "Sign in · Strata console";
  $("credential").focus();
}

async function signIn() {
  me = (await api("/v1/console/overview")).principal;
  $("who").textContent = `${me.principal_id} · tenant ${me.tenant_id.slice(0, 8)}`;
  $("signin").hidden = true;
  $("nav").hidden = false;
  $("signout").hidden = false;
}

let current = 0;  // the latest navigation: a slower page that finishes after it draws nowhere

async function route() {
  if (!me) return;
  if (cleanup) cleanup();
  cleanup = null;
  const mine = ++current;
  const hash = location.hash || "#/";
  const found = ROUTES.find(([pattern]) => pattern.test(hash));
  const base = `#/${hash.split("/")[1] || ""}`;
  for (const link of document.querySelectorAll("nav a")) {
    if (link.getAttribute("href") === base) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const container = h("div", {}, h("p.hint", { text: "Loading…" }));
  fill($("page"), container);
  if (!found) {
    fill(container, h("h1", { text: "Not found" }), h("p", {}, "No such page. ", h("a", { href: "#/", text: "Back to the overview" })));
    return;
  }
  const [pattern, module, title] = found;
  document.title = `${title} · Strata console`;
  try {
    const done = (await module.render(container, { params: hash.match(pattern).slice(1), me })) || null;
    if (mine !== current) { if (done) done(); return; }
    cleanup = done;
  } catch (error) {
    if (mine !== current) return;
    fill(container, h("h1", { text: title }), errorBox(error));
  }
  const heading = container.querySelector("h1");
  if (heading) { heading.tabIndex = -1; heading.focus({ preventScroll: true }); }
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  credential.set($("credential").value.trim());
  $("credential").value = "";
  try {
    await signIn();
    $("signin-error").textContent = "";
    await route();
  } catch (error) {
    signedOut(error.status === 401 ? "That credential was not accepted." : error.message);
  }
});
$("signout").addEventListener("click", () => signedOut());
window.addEventListener("hashchange", route);
window.addEventListener("strata:unauthorized", () => signedOut("Your session ended: sign in again."));

if (credential.get()) signIn().then(route).catch(() => signedOut());
else signedOut();
