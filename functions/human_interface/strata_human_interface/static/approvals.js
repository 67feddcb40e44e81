// Approvals inbox: what is asked, why, for whom and until when; approve or reject with a comment.
import { api } from "/console/assets/api.js";
import { act, fill, h, json, relative, status, when } from "/console/assets/ui.js";

function item(approval, reload) {
  const id = approval.approval_id;
  const comment = h("textarea", { id: `comment-${id}`, rows: 2, maxlength: 2000 });
  const decide = (decision) => (event) => act(event.currentTarget,
    () => api(`/v1/approvals/${id}`, { method: "POST", body: { decision, comment: comment.value.trim() } }),
    (a) => `${decision === "approve" ? "Approved" : "Rejected"}: the request is now ${a.status}`).then((a) => a && reload());
  const open = approval.status === "pending";
  return h("article.card", { "aria-labelledby": `what-${id}`, "data-approval": id },
    h("h2", { id: `what-${id}`, text: approval.what }),
    h("p", {}, status(approval.status), ` · ${approval.subject_type.replace("_", " ")} · requested for ${approval.requested_by}`),
    h("p", {}, h("strong", { text: "Why: " }), approval.why),
    open ? h("p", { text: `Level ${approval.level + 1} of ${approval.levels.length}: ${approval.quorum} of ${approval.approvers.join(", ")} must approve; deadline ${when(approval.deadline)} (${relative(approval.deadline)})` })
      : h("p", { text: `Decided by ${approval.decided_by.join(", ") || "—"} ${approval.decided_at ? when(approval.decided_at) : ""}${approval.comment ? `: ${approval.comment}` : ""}` }),
    h("details", {}, h("summary", { text: "Details" }), json(approval.details)),
    open ? [h("label", { for: `comment-${id}`, text: "Comment" }), comment,
      h("p.row", {}, h("button", { type: "button", onclick: decide("approve") }, "Approve"),
        h("button.danger", { type: "button", onclick: decide("reject") }, "Reject"))] : null);
}

export async function render(page) {
  const filter = h("select", { id: "approval-status" },
    ["pending", "approved", "rejected", "expired"].map((v) => h("option", { value: v, text: v })));
  const list = h("div", { id: "approval-list" });
  const load = async () => {
    const found = await api("/v1/approvals", { params: { status: filter.value, limit: 50 } });
    fill(list, ...(found.items.length ? found.items.map((a) => item(a, load))
      : [h("p.hint", { text: filter.value === "pending" ? "Nothing waits for a decision." : `No ${filter.value} requests.` })]));
  };
  filter.addEventListener("change", load);
  fill(page, h("h1", { text: "Approvals" }),
    h("div.row", {}, h("div", {}, h("label", { for: "approval-status", text: "Show" }), filter),
      h("button.secondary", { type: "button", onclick: load }, "Refresh")),
    list);
  await load();
  const timer = setInterval(() => { if (!document.hidden && filter.value === "pending" && !list.contains(document.activeElement)) load().catch(() => {}); }, 10000);
  return () => clearInterval(timer);
}
