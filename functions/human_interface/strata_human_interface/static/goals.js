// Goals: submit one with its constraints, follow it to its plan (drawn as a graph) and its run; recent goals.
import { api } from "/console/assets/api.js";
import { act, errorBox, fill, h, status, table, taskGraph, when } from "/console/assets/ui.js";

const field = (id, label, input, hint) => h("div", {}, h("label", { for: id, text: label }), input,
  hint ? h("p.hint", { id: `${id}-hint`, text: hint }) : null);

function constraints(form) {
  const value = (name) => form.elements[name].value.trim();
  const out = { require_approval: form.elements.require_approval.checked, on_failure: value("on_failure") };
  if (value("budget_usd")) out.budget_micro_usd = Math.round(Number(value("budget_usd")) * 1e6);
  if (value("deadline")) out.deadline = new Date(value("deadline")).toISOString();
  if (value("max_parallelism")) out.max_parallelism = Number(value("max_parallelism"));
  if (value("allowed_tools")) out.allowed_tools = value("allowed_tools").split(",").map((t) => t.trim()).filter(Boolean);
  return out;
}

async function follow(goalId, into, stop) {
  let shownPlan = null;
  while (!stop.stopped) {
    const goal = await api(`/v1/goals/${goalId}`);
    const parts = [h("p", {}, "Goal ", h("code", { text: goal.goal_id }), ": ", status(goal.status))];
    if (goal.reasons?.length) parts.push(h("ul", {}, goal.reasons.map((r) => h("li", { text: r }))));
    if (goal.run_id) parts.push(h("p", {}, h("a", { href: `#/runs/${goal.run_id}`, text: "Open its run" })));
    if (goal.plan_id && shownPlan?.plan_id !== goal.plan_id) shownPlan = await api(`/v1/plans/${goal.plan_id}`);
    if (shownPlan) {
      parts.push(h("h2", { text: `Plan v${shownPlan.version} (${shownPlan.strategy})` }),
        taskGraph(shownPlan.body.tasks, null),
        h("p.hint", { text: `${shownPlan.body.tasks.length} tasks, signed ${shownPlan.signature.slice(0, 16)}…` }));
    }
    fill(into, ...parts);
    if (!["submitted", "planned", "running"].includes(goal.status) || (goal.run_id && shownPlan)) return;
    await new Promise((resolve) => setTimeout(resolve, 700));
  }
}

async function recent(into) {
  const page = await api("/v1/goals", { params: { limit: 20 } });
  fill(into, table("Recent goals", [
    { title: "Goal", cell: (g) => g.text.length > 80 ? `${g.text.slice(0, 79)}…` : g.text },
    { title: "Status", cell: (g) => status(g.status) },
    { title: "Run", cell: (g) => g.run_id ? h("a", { href: `#/runs/${g.run_id}`, text: g.run_id.slice(0, 8) }) : "—" },
    { title: "Submitted", narrow: true, cell: (g) => when(g.created_at) },
  ], page.items, "No goals yet."));
}

export async function render(page) {
  const stop = { stopped: false };
  const outcome = h("div", { id: "goal-outcome", "aria-live": "polite" });
  const list = h("div");
  const form = h("form", { id: "goal-form" },
    field("goal-text", "Goal", h("textarea", { id: "goal-text", name: "text", rows: 3, required: true, maxlength: 20000 })),
    h("div.row", {},
      field("goal-strategy", "Planning", h("select", { id: "goal-strategy", name: "strategy" },
        [["hybrid", "a template if one matches, else the model"], ["template", "a plan template only"],
          ["llm", "the model"]].map(([v, text]) => h("option", { value: v, text })))),
      field("goal-budget", "Budget (USD)", h("input", { id: "goal-budget", name: "budget_usd", type: "number", min: 0, step: "0.01" })),
      field("goal-deadline", "Deadline", h("input", { id: "goal-deadline", name: "deadline", type: "datetime-local" })),
      field("goal-parallelism", "Max parallel tasks", h("input", { id: "goal-parallelism", name: "max_parallelism", type: "number", min: 1, max: 1000 })),
      field("goal-on-failure", "When a task fails", h("select", { id: "goal-on-failure", name: "on_failure" },
        h("option", { value: "fail", text: "fail the goal" }), h("option", { value: "replan", text: "plan again" })))),
    field("goal-tools", "Allowed tools", h("input", { id: "goal-tools", name: "allowed_tools", type: "text", "aria-describedby": "goal-tools-hint" }),
      "Comma-separated; empty allows every tool policy allows."),
    h("p.check", {}, h("input", { id: "goal-approval", name: "require_approval", type: "checkbox" }), " ",
      h("label", { for: "goal-approval", text: "A human approves the plan before it runs" })),
    h("button", { type: "submit" }, "Submit goal"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { text: form.elements.text.value.trim(), strategy: form.elements.strategy.value, constraints: constraints(form) };
    const goal = await act(form.querySelector("button[type=submit]"), () => api("/v1/goals", { method: "POST", body }),
      "Goal submitted: planning it");
    if (!goal) return;
    follow(goal.goal_id, outcome, stop).then(() => recent(list)).catch((error) => fill(outcome, errorBox(error)));
  });
  fill(page, h("h1", { text: "Goals" }), form, outcome, h("h2", { text: "Recent goals" }), list);
  await recent(list);
  return () => { stop.stopped = true; };
}
