// Small DOM helpers shared by the pages: elements, formatting, toasts, tables, charts and task graphs.

// h("tag.class", {attr: value, onclick: fn}, ...children): children may be strings, nodes, arrays or null.
export function h(spec, attrs = {}, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag);
  if (classes.length) el.className = classes.join(" ");
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "text") el.textContent = value;
    else el.setAttribute(name, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

// Replace an element's children (null, false and nested arrays allowed, as in h()).
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

const SVG = "http://www.w3.org/2000/svg";
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (value !== undefined && value !== null) el.setAttribute(name, value);
  }
  append(el, children);
  return el;
}

export const usd = (micro) => (micro === null || micro === undefined ? "—" : `$${(micro / 1e6).toFixed(micro < 10_000 ? 6 : 4)}`);
export const num = (n) => (n === null || n === undefined ? "—" : Number(n).toLocaleString("en"));
export const when = (iso) => (iso ? new Date(iso).toLocaleString("en-GB", { hour12: false }) : "—");
export function ms(value) {
  if (value === null || value === undefined) return "—";
  return value < 1000 ? `${Math.round(value)} ms` : `${(value / 1000).toFixed(value < 10_000 ? 2 : 1)} s`;
}
export function duration(start, end) {
  if (!start) return "—";
  return ms((end ? new Date(end) : new Date()) - new Date(start));
}
export function relative(iso) {
  const seconds = Math.round((new Date(iso) - new Date()) / 1000);
  const abs = Math.abs(seconds);
  const text = abs < 90 ? `${abs} s` : abs < 5400 ? `${Math.round(abs / 60)} min` : `${Math.round(abs / 3600)} h`;
  return seconds >= 0 ? `in ${text}` : `${text} ago`;
}

export const status = (value) => h(`span.status.s-${value}`, { text: String(value).replace("_", " ") });

export function toast(message, kind = "ok") {
  const el = h(`div.toast${kind === "error" ? ".error" : ""}`, { text: message });
  document.getElementById("toasts").append(el);
  setTimeout(() => el.remove(), kind === "error" ? 9000 : 5000);
}

// Run `action` (an async function) from a button: disabled meanwhile, success or the API's error as a toast.
export async function act(button, action, success) {
  button.disabled = true;
  try {
    const result = await action();
    toast(typeof success === "function" ? success(result) : success);
    return result;
  } catch (error) {
    toast(error.message, "error");
    return undefined;
  } finally {
    button.disabled = false;
  }
}

export const errorBox = (error) => h("p.error-box", { role: "alert", text: error.message || String(error) });

// A table: columns [{title, cell(row) -> node|string, num?, narrow?}], rows, a caption.
export function table(caption, columns, rows, empty = "Nothing here yet.") {
  if (!rows.length) return h("p.hint", { text: empty });
  const cls = (c) => [c.num ? "num" : "", c.narrow ? "hide-narrow" : ""].join(" ").trim() || null;
  return h("div.table-wrap", {},
    h("table", {},
      h("caption", { text: caption }),
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: cls(c), text: c.title })))),
      h("tbody", {}, rows.map((row) => h("tr", {}, columns.map((c) => h("td", { class: cls(c) }, c.cell(row))))))));
}

export const json = (value) => h("pre", { text: JSON.stringify(value, null, 2) });

// A section of an L10 view: its data drawn by `draw`, or why it is missing.
export function section(part, draw) {
  if (part.ok) return h("div", {}, draw(part.data));
  return h("p.hint", { role: part.reason === "unavailable" ? "alert" : null, text: `Not shown: ${part.error}` });
}

const PALETTE = ["#0b4fa8", "#c2410c", "#0a6b2d", "#7e22ce", "#a4000f", "#0e7490", "#854d0e", "#be185d"];

// A line chart of several series over the same x labels, with a legend and the numbers in a table for
// screen readers (and anyone who wants them). `format` formats a y value.
export function lineChart(title, labels, series, format) {
  const names = Object.keys(series);
  const width = 720, height = 260, left = 70, bottom = 30, top = 10;
  const values = names.flatMap((n) => series[n].filter((v) => v !== null && v !== undefined));
  const max = Math.max(...values, 0) || 1;
  const x = (i) => left + (labels.length === 1 ? (width - left) / 2 : (i * (width - left - 10)) / (labels.length - 1));
  const y = (v) => top + (height - top - bottom) * (1 - v / max);
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `${title}: chart` });
  for (const tick of [0, 0.5, 1]) {
    svg.append(s("line", { x1: left, x2: width, y1: y(max * tick), y2: y(max * tick), stroke: "#cfd5de" }),
      s("text", { x: left - 6, y: y(max * tick) + 4, "text-anchor": "end", "font-size": 11 }, format(max * tick)));
  }
  const every = Math.ceil(labels.length / 7);
  labels.forEach((label, i) => {
    if (i % every === 0) svg.append(s("text", { x: x(i), y: height - 8, "text-anchor": "middle", "font-size": 11 }, label.slice(5)));
  });
  names.forEach((name, k) => {
    const color = PALETTE[k % PALETTE.length];
    const points = series[name].map((v, i) => (v === null || v === undefined ? null : [x(i), y(v)]));
    let path = "";
    points.forEach((p, i) => { if (p) path += `${path && points[i - 1] ? "L" : "M"}${p[0].toFixed(1)},${p[1].toFixed(1)}`; });
    svg.append(s("path", { d: path, fill: "none", stroke: color, "stroke-width": 2 }));
    points.forEach((p) => p && svg.append(s("circle", { cx: p[0], cy: p[1], r: 3, fill: color })));
  });
  const legend = h("ul.legend", {}, names.map((n, k) => h("li", {}, h("i", { style: `background:${PALETTE[k % PALETTE.length]}` }), n)));
  const data = table(`${title} (data)`, [{ title: "Day", cell: (r) => r.label },
    ...names.map((n) => ({ title: n, num: true, cell: (r) => (r.values[n] === null || r.values[n] === undefined ? "—" : format(r.values[n])) }))],
    labels.map((label, i) => ({ label, values: Object.fromEntries(names.map((n) => [n, series[n][i]])) })));
  return h("figure.chart", {}, h("figcaption", {}, h("strong", { text: title })),
    names.length ? [svg, legend] : h("p.hint", { text: "No data in this period." }),
    h("details", {}, h("summary", { text: "Show the numbers" }), data));
}

// A task graph: tasks [{task_id, title, status?, depends_on}] laid out in columns by depth; `onSelect(task_id)`
// when a node is clicked or chosen with Enter/Space (every node is focusable).
export function taskGraph(tasks, onSelect, selected) {
  const depth = {};
  const byId = Object.fromEntries(tasks.map((t) => [t.task_id, t]));
  const depthOf = (id, seen = new Set()) => {
    if (depth[id] !== undefined) return depth[id];
    if (seen.has(id)) return 0;
    seen.add(id);
    const deps = (byId[id]?.depends_on || []).filter((d) => byId[d]);
    depth[id] = deps.length ? 1 + Math.max(...deps.map((d) => depthOf(d, seen))) : 0;
    return depth[id];
  };
  tasks.forEach((t) => depthOf(t.task_id));
  const columns = [];
  tasks.forEach((t) => (columns[depth[t.task_id]] ||= []).push(t));
  const W = 170, H = 46, GX = 60, GY = 18;
  const rows = Math.max(...columns.map((c) => c.length));
  const width = columns.length * (W + GX) + 20, height = rows * (H + GY) + 20;
  const at = {};
  columns.forEach((col, ci) => col.forEach((t, ri) => { at[t.task_id] = [10 + ci * (W + GX), 10 + ri * (H + GY)]; }));
  const svg = s("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "group", "aria-label": "Task graph" });
  tasks.forEach((t) => (t.depends_on || []).forEach((d) => {
    if (!at[d]) return;
    const [x1, y1] = [at[d][0] + W, at[d][1] + H / 2];
    const [x2, y2] = [at[t.task_id][0], at[t.task_id][1] + H / 2];
    svg.append(s("path", { class: "edge", d: `M${x1},${y1} C${x1 + GX / 2},${y1} ${x2 - GX / 2},${y2} ${x2},${y2}`, "marker-end": "url(#arrow)" }));
  }));
  svg.prepend(s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto" },
    s("path", { d: "M0,0 L10,5 L0,10 z", fill: "#767d8a" }))));
  tasks.forEach((t) => {
    const [x, y] = at[t.task_id];
    const state = t.status || "planned";
    const label = `${t.task_id}: ${t.title || ""} (${state.replace("_", " ")})`;
    const node = s("g", {
      class: `node n-${state}${selected === t.task_id ? " selected" : ""}`, transform: `translate(${x},${y})`,
      tabindex: 0, role: "button", "aria-label": label, "data-task": t.task_id,
      onclick: () => onSelect && onSelect(t.task_id),
      onkeydown: (e) => { if ((e.key === "Enter" || e.key === " ") && onSelect) { e.preventDefault(); onSelect(t.task_id); } },
    }, s("title", {}, label), s("rect", { width: W, height: H, rx: 6 }),
    s("text", { x: 8, y: 18, "font-weight": 600 }, t.task_id.length > 22 ? `${t.task_id.slice(0, 21)}…` : t.task_id),
    s("text", { x: 8, y: 36 }, state.replace("_", " ") + (t.kind ? ` · ${t.tool || t.kind}` : "")));
    svg.append(node);
  });
  return h("div.graph", {}, svg);
}
