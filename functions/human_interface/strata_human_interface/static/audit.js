// Audit trail: the hash-chained, signed log of decisions, newest first, and a verification of the whole chain.
import { api } from "/console/assets/api.js";
import { act, fill, h, json, table, when } from "/console/assets/ui.js";

export async function render(page) {
  const result = h("div", { id: "audit-verification", "aria-live": "polite" });
  const list = h("div");
  let cursor = null, items = [];
  const more = h("button.secondary", { type: "button", hidden: true }, "Load more");
  const load = async (next) => {
    const found = await api("/v1/audit", { params: { limit: 50, cursor: next || "" } });
    items = next ? items.concat(found.items) : found.items;
    cursor = found.next_cursor;
    more.hidden = !cursor;
    fill(list, table("Audit entries, newest first", [
      { title: "Seq", num: true, cell: (e) => String(e.seq) },
      { title: "Kind", cell: (e) => e.kind },
      { title: "When", cell: (e) => when(e.created_at) },
      { title: "Hash", narrow: true, cell: (e) => h("code", { text: `${e.hash.slice(0, 16)}…` }) },
      { title: "Signed", cell: (e) => (e.signature ? `yes (${e.key_id})` : "no") },
      { title: "Entry", cell: (e) => h("details", {}, h("summary", { text: "show" }), json(e.entry)) },
    ], items, "The audit log is empty."));
  };
  more.addEventListener("click", () => load(cursor));
  const verify = h("button", { type: "button", id: "audit-verify", onclick: (e) => act(e.currentTarget,
    () => api("/v1/audit/verify", { method: "POST" }),
    (v) => (v.ok ? `The chain verifies: ${v.checked} entries` : `The chain is broken at seq ${v.first_broken.seq}`)).then((v) => {
    if (!v) return;
    fill(result, v.ok
      ? h("p.status.s-ok", { text: `Verified: ${v.checked} entries linked, ${v.signed} with a verified signature.` })
      : h("p.error-box", { role: "alert", text: `Broken at seq ${v.first_broken.seq}: ${v.first_broken.problem} (${v.checked} entries held before it).` }));
  }) }, "Verify the chain");
  fill(page, h("h1", { text: "Audit trail" }), h("p", {}, verify), result, list, more);
  await load();
  return null;
}
