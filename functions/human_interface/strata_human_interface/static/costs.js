// Quality and cost: spend over time per model and per agent, mean task score per agent, budgets.
import { api } from "/console/assets/api.js";
import { fill, h, lineChart, section, table, usd } from "/console/assets/ui.js";

const dollars = (micro) => usd(Math.round(micro));
const score = (v) => Number(v).toFixed(2);

function named(series, agents) {
  return Object.fromEntries(Object.entries(series).map(([id, values]) => [agents[id] || id.slice(0, 8), values]));
}

export async function render(page) {
  const days = h("select", { id: "cost-days" }, [7, 14, 30, 90].map((d) => h("option", { value: d, text: `${d} days`, selected: d === 14 })));
  const body = h("div");
  const load = async () => {
    const data = await api("/v1/console/costs", { params: { days: days.value } });
    fill(body, 
      section(data.spend_by_model, (d) => [
        lineChart("Spend per day by model", data.days, d.series, dollars),
        h("p", { text: `Total over the period: ${usd(d.total_micro_usd)}` }),
      ]),
      section(data.spend_by_agent, (d) => lineChart("Spend per day by agent", data.days, named(d.series, data.agents), dollars)),
      section(data.score_by_agent, (d) => lineChart("Mean task score per day by agent", data.days, named(d.series, data.agents), score)),
      h("h2", { text: "Budgets" }),
      section(data.budgets, (budgets) => table("The tenant's budgets", [
        { title: "Period", cell: (b) => b.period },
        { title: "Spent", num: true, cell: (b) => usd(b.spent_micro_usd) },
        { title: "Limit", num: true, cell: (b) => usd(b.limit_micro_usd) },
        { title: "Used", num: true, cell: (b) => `${Math.round((100 * b.spent_micro_usd) / Math.max(b.limit_micro_usd, 1))}%` },
        { title: "Window", narrow: true, cell: (b) => b.window },
      ], budgets, "No tenant budget set.")));
  };
  days.addEventListener("change", () => load().catch((e) => fill(body, h("p.error-box", { role: "alert", text: e.message }))));
  fill(page, h("h1", { text: "Quality and cost" }),
    h("div", {}, h("label", { for: "cost-days", text: "Period" }), days), body);
  await load();
  return null;
}
