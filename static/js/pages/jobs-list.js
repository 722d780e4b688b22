// /jobs: filterable list; rows, statuses and progress bars move live with job_update events.

import { api, query, url } from "../api.js";
import { $, h, icon, replaceChildren, setText } from "../dom.js";
import { dateTime, shortId, isNewer } from "../format.js";
import {
  cancelJob,
  isActive,
  jobBadge,
  jobDuration,
  paintCancel,
  paintJobBadge,
  paintProgress,
  progressBar,
} from "../job-view.js";
import { onTick, startShell, toast, withBusy } from "../shell.js";

const LIMIT = 200;
const rows = new Map(); // job id -> row
const daemonNames = new Map();
const tbody = $("[data-job-rows]");
const filters = { status: $("[data-filter-status]"), type: $("[data-filter-type]") };

class JobRow {
  constructor(job) {
    this.badge = jobBadge(job.status);
    this.bar = progressBar();
    this.message = h("td.wrap");
    this.duration = h("td.num");
    this.daemon = h("td");
    this.cancel = h("button.btn.small.halt", { type: "button", dataset: { needs: "operator" }, onclick: () => this.cancelJob() }, icon("cancel"), "Cancel");
    this.node = h(
      "tr",
      { dataset: { jobId: job.id } },
      h("td", {}, h("a.mono", { href: url(`/jobs/${job.id}`), title: job.id }, shortId(job.id))),
      h("td", {}, h("span.mono", {}, job.type)),
      h("td", {}, this.badge),
      h("td", {}, this.bar.node),
      this.message,
      this.daemon,
      h("td.num", { title: job.created_at }, dateTime(job.created_at)),
      this.duration,
      h("td.end", {}, this.cancel),
    );
  }

  update(job) {
    if (!isNewer(job, this.job)) return;
    this.job = job;
    this.node.dataset.status = job.status;
    paintJobBadge(this.badge, job.status);
    paintProgress(this.bar, job);
    const text = job.error || job.message || "";
    setText(this.message, text);
    this.message.title = text;
    this.message.classList.toggle("muted", !job.error);
    this.paintDaemon();
    paintCancel(this.cancel, job);
    this.tick(Date.now());
  }

  paintDaemon() {
    const id = this.job.daemon_id;
    const label = id ? daemonNames.get(id) || shortId(id) : null;
    replaceChildren(this.daemon, id ? h("a", { href: url(`/daemons/${id}`) }, label) : h("span.faint", {}, "—"));
  }

  tick(now) {
    setText(this.duration, jobDuration(this.job, now));
  }

  async cancelJob() {
    const job = await cancelJob(this.job, this.cancel, "cancelled from the jobs page");
    this.update(job || this.job);
  }
}

function matches(job) {
  return (!filters.status.value || job.status === filters.status.value) && (!filters.type.value || job.type === filters.type.value);
}

function upsert(job, { fresh = false } = {}) {
  let row = rows.get(job.id);
  if (!row) {
    if (!matches(job)) return;
    row = new JobRow(job);
    rows.set(job.id, row);
    if (fresh) row.node.classList.add("fresh");
    tbody.prepend(row.node);
  }
  row.update(job);
  paintCount();
}

function paintCount() {
  $("[data-jobs-empty]").hidden = rows.size > 0;
  const active = [...rows.values()].filter((row) => isActive(row.job)).length;
  setText($("[data-jobs-count]"), `${rows.size} jobs shown · ${active} active`);
}

async function load() {
  const params = { status: filters.status.value, type: filters.type.value, limit: LIMIT };
  history.replaceState(null, "", url(`/jobs${query({ status: params.status, type: params.type })}`));
  try {
    const body = await api(`/api/jobs${query(params)}`);
    rows.clear();
    tbody.replaceChildren();
    for (const job of body.jobs.reverse()) upsert(job);
    paintCount();
  } catch (exc) {
    toast(`Could not load jobs — ${exc.message}`, "bad", 8);
  }
}

async function loadDaemonNames() {
  try {
    for (const daemon of (await api("/api/daemons")).daemons) daemonNames.set(daemon.id, daemon.name);
    for (const row of rows.values()) row.paintDaemon();
  } catch {
    // Ids stay in place of names.
  }
}

async function runTestJob(button) {
  try {
    const job = await withBusy(button, "Queuing…", () => api("/api/jobs", { method: "POST", body: { type: "TEST" } }));
    upsert(job, { fresh: true });
  } catch (exc) {
    toast(`Could not create a job — ${exc.message}`, "bad", 8);
  }
}

const params = new URLSearchParams(location.search);
filters.status.value = params.get("status") || "";
filters.type.value = params.get("type") || "";
for (const select of Object.values(filters)) select.addEventListener("change", load);
$("[data-run-test-job]").addEventListener("click", (event) => runTestJob(event.currentTarget));

const live = startShell();
live.on("job_update", (event) => upsert(event.job, { fresh: true }));
live.on("daemon_update", (event) => daemonNames.set(event.daemon.id, event.daemon.name));
live.on("synced", () => load());
onTick((now) => {
  for (const row of rows.values()) if (isActive(row.job)) row.tick(now);
});
loadDaemonNames();
load();
live.start();
