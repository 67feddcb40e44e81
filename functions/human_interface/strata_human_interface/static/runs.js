// Runs: the list, and one run live (its task graph polled with ETags until it ends), each task's steps with their
// model turns and tool calls, and the controls: pause, resume, cancel, retry a failed task.
import { api, request } from "/console/assets/api.js";
import { act, duration, errorBox, fill, h, json, ms, num, status, table, taskGraph, usd, when } from "/console/assets/ui.js";

const ENDED = ["completed", "failed", "cancelled"];

async function list(page) {
  const filter = h("select", { id: "run-filter" }, h("option", { value: "", text: "every state" }),
    ["running", "paused", "completed", "failed", "cancelled"].map((v) => h("option", { value: v, text: v })));
  const body = h("div");
  const load = async () => {
    const runs = await api("/v1/runs", { params: { limit: 50, status: filter.value } });
    fill(body, table("The newest runs", [
      { title: "Run", cell: (r) => h("a", { href: `#/runs/${r.run_id}`, text: r.run_id.slice(0, 8) }) },
      { title: "Status", cell: (r) => status(r.status) },
      { title: "Tasks", num: true, cell: (r) => `${r.tasks_done}/${r.task_count}` },
      { title: "Error", narrow: true, cell: (r) => r.error || "" },
      { title: "Started", cell: (r) => when(r.created_at) },
    ], runs.items, filter.value ? `No ${filter.value} runs.` : "No runs yet: submit a goal."));
  };
  filter.addEventListener("change", () => load().catch((error) => fill(body, errorBox(error))));
  fill(page, h("h1", { text: "Runs" }), h("div", {}, h("label", { for: "run-filter", text: "Show" }), filter), body);
  await load();
}

function stepView(step) {
  const d = step.detail || {};
  let summary = step.kind;
  if (step.kind === "model") summary = `model turn: ${d.model || "?"}${d.tool_calls?.length ? `, asks for ${d.tool_calls.map((c) => c.name).join(", ")}` : ""}`;
  else if (step.kind === "tools") summary = `tool results: ${(d.results || []).length}`;
  else if (step.kind === "tool") summary = `tool call${d.tool ? `: ${d.tool}` : ""}`;
  return h("li", {},
    h("details", {},
      h("summary", {}, `#${step.step} (attempt ${step.attempt}) ${summary} — ${ms(step.duration_ms)}, `,
        `${num(step.input_tokens)}+${num(step.output_tokens)} tokens, ${usd(step.cost_micro_usd)}`),
      json(d)));
}

async function taskPanel(runId, taskId, run, refresh) {
  const [task, steps] = await Promise.all([
    api(`/v1/runs/${runId}/tasks/${encodeURIComponent(taskId)}`),
    api(`/v1/runs/${runId}/tasks/${encodeURIComponent(taskId)}/steps`, { params: { limit: 100 } }),
  ]);
  const retry = task.status === "failed" && run.status !== "cancelled"
    ? h("button", { type: "button", id: "retry-task", onclick: (e) => act(e.currentTarget,
        () => api(`/v1/runs/${runId}/tasks/${encodeURIComponent(taskId)}/retry`, { method: "POST", body: {} }),
        `Task ${taskId} retried: the run goes on`).then(refresh) }, "Retry this task")
    : null;
  return h("section.card", { "aria-labelledby": "task-title", id: "task-panel" },
    h("h2", { id: "task-title" }, `Task ${task.task_id}`),
    h("p", {}, status(task.status), ` · ${task.kind}${task.tool ? ` (${task.tool})` : ""} · attempt ${task.attempt}/${task.attempt_base + task.max_attempts}`),
    retry,
    task.title ? h("p", { text: task.title }) : null,
    task.instructions ? h("details", {}, h("summary", { text: "Instructions" }), h("p", { text: task.instructions })) : null,
    h("p", { text: `${num(task.input_tokens)} in + ${num(task.output_tokens)} out tokens, ${usd(task.cost_micro_usd)}; model ${ms(task.model_ms)}, tools ${ms(task.tool_ms)}; ran ${duration(task.first_started_at || task.started_at, task.finished_at)}` }),
    task.error ? h("div", {}, h("h3", { text: "Error" }), json(task.error)) : null,
    h("h3", { text: "Input" }), json(task.input),
    h("h3", { text: "Output" }), json(task.output),
    h("h3", { text: `Steps (${steps.items.length})` }),
    steps.items.length ? h("ol", {}, steps.items.map(stepView)) : h("p.hint", { text: "No steps recorded yet." }));
}

function controls(run, refresh) {
  const control = (action, label, enabled, cls = "") => h(`button${cls}`, {
    type: "button", id: `run-${action}`, disabled: !enabled,
    onclick: (e) => {
      if (action === "cancel" && !confirm("Cancel this run? Running tasks stop at their next step.")) return;
      act(e.currentTarget, () => api(`/v1/runs/${run.run_id}/${action}`, { method: "POST", body: { reason: "from the console" } }),
        `Run ${action === "pause" ? "paused" : action === "resume" ? "resumed" : "cancelled"}`).then(refresh);
    },
  }, label);
  return h("p.row", {}, control("pause", "Pause", run.status === "running", ".secondary"),
    control("resume", "Resume", run.status === "paused", ".secondary"),
    control("cancel", "Cancel", !ENDED.includes(run.status), ".danger"));
}

async function view(page, runId) {
  let etag = null, run = null, selected = null, timer = null, stopped = false;
  const head = h("div"), graph = h("div"), panel = h("div", { "aria-live": "polite" }), tasks = h("div");
  fill(page, h("h1", {}, "Run ", h("code", { text: runId.slice(0, 8) })), head, graph,
    h("div.split", {}, tasks, panel));

  const select = async (taskId) => {
    selected = taskId;
    draw();
    try { fill(panel, await taskPanel(runId, taskId, run, refresh)); } catch (error) { fill(panel, errorBox(error)); }
    panel.querySelector("h2")?.focus?.();
  };
  const draw = () => {
    fill(head, 
      h("p", {}, h("span", { id: "run-status" }, status(run.status)), ` · ${run.tasks_done}/${run.task_count} tasks · ${num(run.input_tokens + run.output_tokens)} tokens · ${usd(run.cost_micro_usd)} · ${duration(run.started_at, run.finished_at)}`,
        run.goal_id ? [" · ", h("a", { href: "#/goals", text: "goal" })] : null),
      run.error ? h("p.error-box", { text: run.error }) : null,
      controls(run, refresh));
    fill(graph, taskGraph(run.tasks, select, selected));
    fill(tasks, table("Tasks", [
      { title: "Task", cell: (t) => h("button.secondary", { type: "button", onclick: () => select(t.task_id) }, t.task_id) },
      { title: "Status", cell: (t) => status(t.status) },
      { title: "Attempt", num: true, narrow: true, cell: (t) => `${t.attempt}/${t.attempt_base + t.max_attempts}` },
      { title: "Steps", num: true, narrow: true, cell: (t) => num(t.steps) },
      { title: "Cost", num: true, cell: (t) => usd(t.cost_micro_usd) },
      { title: "Time", num: true, narrow: true, cell: (t) => duration(t.first_started_at || t.started_at, t.finished_at) },
    ], run.tasks));
  };
  // poll while the run is open: an unchanged run answers 304 and costs nothing to draw
  const poll = async () => {
    if (stopped) return;
    try {
      const answer = await request(`/v1/runs/${runId}`, { etag });
      if (!answer.notModified) {
        const before = run?.status;
        run = answer.data; etag = answer.etag; draw();
        if (selected && before !== undefined) select(selected);
      }
    } catch (error) {
      if (!run) throw error;  // the first look: the page shows the API's answer
      fill(head, errorBox(error));
    }
    if (!stopped && run && !ENDED.includes(run.status)) timer = setTimeout(poll, 1000);
  };
  async function refresh() { clearTimeout(timer); etag = null; await poll(); }
  await poll();
  return () => { stopped = true; clearTimeout(timer); };
}

export async function render(page, { params }) {
  if (params[0]) return view(page, params[0]);
  await list(page);
  return null;
}
