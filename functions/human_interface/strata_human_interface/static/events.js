// Events: the event log with filters (type, run, time), and dead letters with replay.
import { api } from "/console/assets/api.js";
import { act, errorBox, fill, h, json, status, table, when } from "/console/assets/ui.js";

function eventLog() {
  const form = h("form.row", { id: "event-filters" },
    h("div", {}, h("label", { for: "ev-type", text: "Type" }), h("input", { id: "ev-type", name: "detail_type", type: "text", placeholder: "e.g. RunCompleted", maxlength: 100 })),
    h("div", {}, h("label", { for: "ev-run", text: "Run or request (correlation id)" }), h("input", { id: "ev-run", name: "correlation_id", type: "text", maxlength: 128 })),
    h("div", {}, h("label", { for: "ev-since", text: "Since" }), h("input", { id: "ev-since", name: "since", type: "datetime-local" })),
    h("button", { type: "submit" }, "Filter"));
  const list = h("div", { id: "event-list" });
  let cursor = null, items = [];
  const more = h("button.secondary", { type: "button", hidden: true }, "Load more");
  const params = () => {
    const v = (n) => form.elements[n].value.trim();
    return { detail_type: v("detail_type"), correlation_id: v("correlation_id"), since: v("since") ? new Date(v("since")).toISOString() : "", limit: 50 };
  };
  const draw = () => fill(list, table("Events, newest first", [
    { title: "When", cell: (e) => when(e.occurred_at) },
    { title: "Type", cell: (e) => e.detail_type },
    { title: "Source", narrow: true, cell: (e) => e.source },
    { title: "Subject", narrow: true, cell: (e) => `${e.aggregate_type} ${e.aggregate_id.slice(0, 12)}` },
    { title: "Detail", cell: (e) => h("details", {}, h("summary", { text: "show" }), json(e.detail)) },
  ], items, "No events match."));
  const load = async (next) => {
    const page = await api("/v1/events", { params: { ...params(), cursor: next || "" } });
    items = next ? items.concat(page.items) : page.items;
    cursor = page.next_cursor;
    more.hidden = !cursor;
    draw();
  };
  form.addEventListener("submit", (e) => { e.preventDefault(); load().catch((err) => fill(list, errorBox(err))); });
  more.addEventListener("click", () => load(cursor).catch((err) => fill(list, errorBox(err))));
  return { node: h("section", { "aria-labelledby": "log-title" }, h("h2", { id: "log-title", text: "Event log" }), form, list, more), load };
}

function deadLetters() {
  const list = h("div", { id: "dead-letter-list" });
  const load = async () => {
    const page = await api("/v1/dead-letters", { params: { status: "pending", limit: 50 } });
    fill(list, table("Pending dead letters", [
      { title: "Event", cell: (d) => d.detail_type },
      { title: "Error", cell: (d) => `${d.error_code}: ${d.error_message}`.slice(0, 300) },
      { title: "Tries", num: true, narrow: true, cell: (d) => String(d.retry_attempts) },
      { title: "Since", narrow: true, cell: (d) => when(d.created_at) },
      { title: "Status", cell: (d) => status(d.status) },
      { title: "", cell: (d) => h("button", { type: "button", "data-replay": d.dead_letter_id,
        onclick: (e) => act(e.currentTarget, () => api(`/v1/dead-letters/${d.dead_letter_id}/replay`, { method: "POST" }),
          `Replayed ${d.detail_type}: it is on the bus again`).then((r) => r && load()) }, "Replay") },
    ], page.items, "No pending dead letters."));
  };
  const all = h("button.secondary", { type: "button", onclick: (e) => act(e.currentTarget,
    () => api("/v1/dead-letters/replay", { method: "POST", body: { status: "pending" } }),
    (r) => `Replayed ${r.replayed.length} dead letters`).then((r) => r && load()) }, "Replay all pending");
  return { node: h("section", { "aria-labelledby": "dl-title" }, h("h2", { id: "dl-title", text: "Dead letters" }), h("p", {}, all), list), load };
}

export async function render(page, { me }) {
  const log = eventLog(), dead = deadLetters();
  fill(page, h("h1", { text: "Events" }), dead.node, log.node);
  await Promise.all([log.load(), dead.load().catch((error) => dead.node.append(errorBox(error)))]);
  return null;
}
