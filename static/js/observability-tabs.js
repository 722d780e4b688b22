// The Runs and Metrics tabs of a daemon's page. Metrics are drawn with uPlot (vendored in
// static/vendor/uplot, no build step) and re-read every few seconds while the tab is shown.

import uPlot from "../vendor/uplot/uPlot.esm.js";
import { api } from "./api.js";
import { $, h, replaceChildren, setText } from "./dom.js";
import { dateTime, duration } from "./format.js";

const MB = 1024 * 1024;
const REFRESH_MS = 5000;

export class RunsTab {
  constructor(root, daemon) {
    this.root = root;
    this.daemon = daemon;
    this.tbody = $("[data-run-rows]", root);
  }

  async load() {
    const { runs } = await api(`/api/daemons/${this.daemon.id}/runs?limit=50`);
    replaceChildren(this.tbody, ...runs.map((run) => this.row(run)));
  }

  row(run) {
    const error = run.error ? h("details", {}, h("summary", {}, run.error.trim().split("\n").pop()), h("pre.mono", {}, run.error)) : "";
    return h(
      "tr",
      { dataset: { generation: String(run.generation), outcome: run.outcome || "running" } },
      h("td.num", {}, String(run.generation)),
      h("td", {}, h("span.badge", { dataset: { outcome: run.outcome || "running" } }, run.outcome || "running")),
      h("td.num", { title: run.started_at }, dateTime(run.started_at)),
      h("td.num", {}, duration(run.duration_seconds)),
      h("td", {}, `${run.worker || "—"}${run.pid ? ` · pid ${run.pid}` : ""}`),
      h("td.num", {}, `${run.lines_logged}${run.lines_dropped ? ` (${run.lines_dropped} lost)` : ""}`),
      h("td.num", {}, run.peak_rss ? `${(run.peak_rss / MB).toFixed(1)} MB` : "—"),
      h("td.wrap", {}, error),
    );
  }
}

export class MetricsTab {
  constructor(root, daemon) {
    this.root = root;
    this.daemon = daemon;
    this.range = $("[data-metrics-range]", root);
    this.range.addEventListener("change", () => this.load());
    this.charts = {};
    setInterval(() => !root.hidden && this.load(), REFRESH_MS);
  }

  async load() {
    const series = await api(`/api/daemons/${this.daemon.id}/metrics?range=${this.range.value}`);
    const times = series.points.map((p) => Date.parse(p.t) / 1000);
    setText($("[data-metrics-note]", this.root), series.points.length ? `${series.points.length} points` : "No samples yet: samples are taken while the daemon runs.");
    this.draw("cpu", "CPU %", times, series.points.map((p) => p.cpu_percent));
    this.draw("rss", "RSS MB", times, series.points.map((p) => p.rss / MB));
  }

  draw(name, label, times, values) {
    const data = [times, values];
    if (this.charts[name]) return this.charts[name].setData(data);
    const target = $(`[data-chart=${name}]`, this.root);
    const opts = {
      width: Math.max(320, target.clientWidth || 640),
      height: 180,
      series: [{}, { label, stroke: name === "cpu" ? "#4ea1ff" : "#f0a04b", width: 1.5 }],
      axes: [{}, { label }],
    };
    this.charts[name] = new uPlot(opts, data, target);
  }
}

// A card's sparkline of RSS over the last 15 minutes, drawn on a canvas.
export async function sparkline(canvas, daemonId) {
  const { points } = await api(`/api/daemons/${daemonId}/metrics?range=15m`);
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!points.length) return;
  const values = points.map((p) => p.rss);
  if (values.length === 1) values.push(values[0]); // one sample: a flat line
  const min = Math.min(...values);
  const span = Math.max(...values) - min || 1;
  ctx.strokeStyle = "#f0a04b";
  ctx.beginPath();
  values.forEach((value, i) => {
    const x = (i / (values.length - 1)) * canvas.width;
    const y = canvas.height - 1 - ((value - min) / span) * (canvas.height - 2);
    if (i === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  });
  ctx.stroke();
  canvas.title = `RSS ${(values.at(-1) / MB).toFixed(1)} MB`;
}
