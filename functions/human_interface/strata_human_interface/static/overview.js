// Overview: runs by state, spend today against budget, alerts, approvals, dead letters, health of every layer.
import { api } from "/console/assets/api.js";
import { fill, h, ms, num, section, status, table, usd, when } from "/console/assets/ui.js";

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
    h("p", {}, "Overall: ", status(st.status)),
    table("Layers and their dependencies", [
      { title: "Layer", cell: (l) => `${l.number} ${l.layer}` },
      { title: "Status", cell: (l) => status(l.status) },
      { title: "Latency", num: true, cell: (l) => ms(l.latency_ms) },
      { title: "Version", narrow: true, cell: (l) => l.version || "—" },
      { title: "Dependencies", cell: (l) => Object.entries(l.dependencies || {}).map(([n, d], i) => [i ? ", " : "", n, ": ", status(d.status)]).flat().concat(l.error ? [l.error] : []) },
    ], st.layers),
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
