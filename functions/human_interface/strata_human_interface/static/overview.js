// Overview: runs by state, spend today against budget, alerts, approvals, dead letters, health of every layer and
// dependency (dead-letter queue depths and model providers included).
import { api } from "/console/assets/api.js";
import { fill, h, ms, num, relative, section, status, table, usd, when } from "/console/assets/ui.js";

const KINDS = { postgres: "database", redis: "cache", event_bus: "event bus", dead_letter_queue: "dead-letter queue",
  model_provider: "model provider" };

function bytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

// What matters of one dependency, in words (its status is in its own column).
function dependencyDetail(d) {
  const parts = [];
  if (d.kind === "postgres" && d.version) {
    parts.push(`Postgres ${d.version}`, `${num(d.connections)} of ${num(d.max_connections)} connections`);
  } else if (d.kind === "redis" && d.version) {
    parts.push(`Redis ${d.version}`, `${bytes(d.used_memory_bytes)}${d.max_memory_bytes ? ` of ${bytes(d.max_memory_bytes)}` : ""} used`);
  } else if (d.kind === "dead_letter_queue" && d.depth !== null && d.depth !== undefined) {
    parts.push(`depth ${num(d.depth)}`, `${num(d.visible)} visible, ${num(d.in_flight)} in flight, ${num(d.delayed)} delayed`);
  } else if (d.kind === "model_provider" && d.provider_kind) {
    parts.push(d.provider_kind, `breaker ${d.breaker.replace("_", " ")}`);
    if (d.last_failure) parts.push(`last failure ${relative(d.last_failure.at)}: ${d.last_failure.message}`);
  }
  if (d.error && !parts.join(" ").includes(d.error)) parts.push(d.error);
  return parts.join("; ") || "—";
}

function layerDetail(l) {
  const paused = l.peer_breaker && l.peer_breaker !== "closed" ? ["calls to it: breaker ", status(l.peer_breaker)] : [];
  return [...paused, paused.length && l.error ? "; " : "", l.error || (paused.length ? "" : "—")];
}

function card(title, ...body) {
  return h("section.card", { "aria-label": title }, h("h2", { text: title }), ...body);
}

function draw(page, data) {
  const runs = section(data.runs, (r) => [
    h("p", {}, h("span.big", { text: num(r.runs.running) }), " running, ", num(r.runs.paused), " paused"),
    h("p", { text: `Last 24 h: ${num(r.runs.completed)} completed, ${num(r.runs.failed)} failed, ${num(r.runs.cancelled)} cancelled` }),
    h("p", { text: `Tasks: ${num(r.tasks.running)} running, ${num(r.tasks.waiting)} waiting, ${num(r.tasks.awaiting_approval)} awaiting approval` }),
    h("a", { href: "#/runs", text: "All runs" }),
  ]);
  const spend = section(data.spend, (sp) => {
    const daily = sp.budgets.filter((b) => b.period === "day");
    return [
      h("p", {}, h("span.big", { text: usd(sp.today_micro_usd) }), ` in ${num(sp.calls_today)} model calls today`),
      daily.length ? daily.map((b) => {
        const share = b.limit_micro_usd ? b.spent_micro_usd / b.limit_micro_usd : 0;
        return h("div", {},
          h("p", { text: `Daily budget: ${usd(b.spent_micro_usd)} of ${usd(b.limit_micro_usd)} (${Math.round(share * 100)}%)` }),
          h(`div.meter${share > 1 ? ".over" : ""}`, { role: "meter", "aria-label": "Daily budget used", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": Math.round(share * 100) },
            h("span", { style: `width:${Math.min(share, 1) * 100}%` })));
      }) : h("p.hint", { text: "No daily budget set for the tenant." }),
      h("a", { href: "#/costs", text: "Quality and cost" }),
    ];
  });
  const listed = (part, empty, line, link) => section(part, (d) => [
    h("p", {}, h("span.big", { text: `${d.count}${d.more ? "+" : ""}` })),
    d.items.length ? h("ul", {}, d.items.map(line)) : h("p.hint", { text: empty }),
    link,
  ]);
  const alerts = listed(data.alerts, "No open alerts.", (a) => h("li", {}, status(a.severity), " ", a.message),
    null);
  const approvals = listed(data.approvals, "Nothing waits for a decision.", (a) => h("li", {}, a.what),
    h("a", { href: "#/approvals", text: "Approvals inbox" }));
  const dead = listed(data.dead_letters, "No dead letters.", (d) => h("li", {}, `${d.detail_type}: ${d.error_message || d.error_code}`),
    h("a", { href: "#/events", text: "Events and dead letters" }));
  const health = section(data.status, (st) => [
    h("p", {}, "Overall: ", status(st.status),
      h("span.hint", { text: ` checked ${when(st.checked_at)}${st.cached ? " (a moment ago)" : ""}` })),
    st.reasons.length ? h("ul.reasons", { "aria-label": "Why it is not ok" }, st.reasons.map((r) => h("li", { text: r }))) : null,
    table(`Layers (p50 and max over the last ${st.latency_history.size} checks${st.latency_history.kept ? "" : "; Redis is down: this check only"})`, [
      { title: "Layer", cell: (l) => `${l.number} ${l.layer}` },
      { title: "Status", cell: (l) => status(l.status) },
      { title: "Version", narrow: true, cell: (l) => l.version || "—" },
      { title: "Latency", num: true, cell: (l) => ms(l.latency_ms) },
      { title: "p50", num: true, cell: (l) => ms(l.latency_p50_ms) },
      { title: "Max", num: true, narrow: true, cell: (l) => ms(l.latency_max_ms) },
      { title: "Checks", num: true, narrow: true, cell: (l) => num(l.latency_samples) },
      { title: "Last ready", narrow: true, cell: (l) => (l.last_ok_at ? relative(l.last_ok_at) : "—") },
      { title: "Detail", cell: layerDetail },
    ], st.layers),
    table("Dependencies", [
      { title: "Dependency", cell: (d) => `${d.name}${d.critical ? " (critical)" : ""}` },
      { title: "Kind", narrow: true, cell: (d) => KINDS[d.kind] || d.kind },
      { title: "Status", cell: (d) => status(d.status) },
      { title: "Latency", num: true, cell: (d) => ms(d.latency_ms) },
      { title: "Detail", cell: dependencyDetail },
    ], st.dependencies),
  ]);
  fill(page, 
    h("h1", { text: "Overview" }),
    h("p.row", {}, h("span.hint", { text: `Updated ${when(new Date().toISOString())}` }),
      h("button.secondary", { type: "button", onclick: () => load(page) }, "Refresh")),
    h("div.cards", {}, card("Runs", runs), card("Spend today", spend), card("Open alerts", alerts),
      card("Pending approvals", approvals), card("Dead letters", dead)),
    h("h2", { text: "Health" }), health,
  );
}

async function load(page) {
  draw(page, await api("/v1/console/overview"));
}

export async function render(page) {
  await load(page);
  const timer = setInterval(() => { if (!document.hidden) load(page).catch(() => {}); }, 15000);
  return () => clearInterval(timer);
}
