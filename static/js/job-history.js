// The Job history tab: what the daemon did with jobs, newest first, paged, with new rows
// arriving live from daemon_job_action events and job statuses kept live by job_update.

import { api, query, url } from "./api.js";
import { $, h, replaceChildren, setText } from "./dom.js";
import { dateTime, shortId } from "./format.js";
import { actionBadge, jobBadge } from "./job-view.js";

const PAGE_SIZE = 20;
const FETCH_LIMIT = 1000; // the API's cap; older entries are not paged into
const FRESH_MS = 2200; // tr.fresh's highlight (app.css); a re-render must not cut it short

export class JobHistory {
  constructor(root, daemon) {
    this.root = root;
    this.daemon = daemon;
    this.body = $("[data-history-rows]", root);
    this.entries = [];
    this.jobs = new Map(); // job id -> {type, status}, from job_update events
    this.page = 0;
    this.action = "";
    this.fresh = new Map(); // entry id -> when it arrived live
    this.loaded = false;
    $("[data-history-action]", root).addEventListener("change", (event) => {
      this.action = event.target.value;
      this.page = 0;
      this.load();
    });
    $("[data-history-newer]", root).addEventListener("click", () => this.turn(-1));
    $("[data-history-older]", root).addEventListener("click", () => this.turn(1));
  }

  async load() {
    const params = { action: this.action || undefined, limit: FETCH_LIMIT };
    try {
      const body = await api(`/api/daemons/${this.daemon.id}/history${query(params)}`);
      const known = new Map(this.entries.map((entry) => [entry.id, entry]));
      this.entries = body.history.map((entry) => ({ ...known.get(entry.id), ...entry }));
      this.loaded = true;
      this.render();
    } catch (exc) {
      replaceChildren(this.body, this.messageRow(`Could not load job history — ${exc.message}`));
    }
  }

  /** A daemon_job_action event: a new row at the top. */
  receive(event) {
    if (this.action && event.action !== this.action) return;
    if (this.entries.some((entry) => entry.id === event.id)) return;
    const job = this.jobs.get(event.job_id) || {};
    const entry = { ...event, job_type: job.type ?? null, job_status: job.status ?? null };
    this.entries.unshift(entry);
    this.fresh.set(entry.id, performance.now());
    this.render();
    if (entry.job_id && !job.type) this.lookUpJob(entry.job_id);
    this.onNew?.(entry);
  }

  /** A job_update event: keep the type and status cells of that job's rows current. */
  jobChanged(job) {
    this.jobs.set(job.id, { type: job.type, status: job.status });
    let touched = false;
    for (const entry of this.entries) {
      if (entry.job_id === job.id && (entry.job_status !== job.status || entry.job_type !== job.type)) {
        entry.job_status = job.status;
        entry.job_type = job.type;
        touched = true;
      }
    }
    if (touched) this.render();
  }

  async lookUpJob(jobId) {
    try {
      this.jobChanged(await api(`/api/jobs/${jobId}`));
    } catch {
      // The row keeps "—"; a later job_update fills it in.
    }
  }

  turn(step) {
    const pages = Math.max(1, Math.ceil(this.entries.length / PAGE_SIZE));
    this.page = Math.min(Math.max(this.page + step, 0), pages - 1);
    this.render();
  }

  render() {
    const now = performance.now();
    for (const [id, at] of this.fresh) if (now - at >= FRESH_MS) this.fresh.delete(id);
    const start = this.page * PAGE_SIZE;
    const rows = this.entries.slice(start, start + PAGE_SIZE).map((entry) => this.row(entry));
    if (!rows.length) {
      rows.push(this.messageRow(this.loaded ? "No job actions yet. Launched jobs appear here as they happen." : "Loading…"));
    }
    replaceChildren(this.body, ...rows);
    const total = this.entries.length;
    const shown = total ? `${start + 1}–${Math.min(start + PAGE_SIZE, total)} of ${total}` : "0 entries";
    setText($("[data-history-range]", this.root), total >= FETCH_LIMIT ? `${shown} (latest ${FETCH_LIMIT})` : shown);
    $("[data-history-newer]", this.root).disabled = this.page === 0;
    $("[data-history-older]", this.root).disabled = start + PAGE_SIZE >= total;
  }

  row(entry) {
    const job = entry.job_id
      ? h("a.mono", { href: url(`/jobs/${entry.job_id}`), title: entry.job_id }, shortId(entry.job_id))
      : h("span.faint", {}, "—");
    const arrived = this.fresh.get(entry.id);
    const tr = h(
      "tr",
      { className: arrived === undefined ? "" : "fresh", dataset: { historyId: entry.id } },
      h("td.num", { title: entry.created_at }, dateTime(entry.created_at)),
      h("td", {}, actionBadge(entry.action)),
      h("td", {}, job),
      h("td", {}, entry.job_type ? h("span.mono", {}, entry.job_type) : h("span.faint", {}, "—")),
      h("td", {}, entry.job_status ? jobBadge(entry.job_status) : h("span.faint", {}, "—")),
      h("td.wrap", { title: entry.reason || "" }, entry.reason || h("span.faint", {}, "—")),
    );
    // A row re-rendered while highlighted (its job's status arrived) keeps the highlight
    // where it was rather than losing it or starting it over (CSSOM: allowed by the CSP).
    if (arrived !== undefined) tr.style.animationDelay = `-${Math.round(performance.now() - arrived)}ms`;
    return tr;
  }

  messageRow(text) {
    return h("tr", {}, h("td.muted.table-note", { colspan: 6 }, text));
  }
}
