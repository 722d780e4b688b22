// /jobs/<id>: one job, its progress, result or error, kept live by job_update events.

import { api, url } from "../api.js";
import { $, h, icon, replaceChildren, setText } from "../dom.js";
import { dateTime, isNewer } from "../format.js";
import { cancelJob, isActive, jobDuration, paintCancel, paintJobBadge, paintProgress, progressBar } from "../job-view.js";
import { onTick, startShell, toast } from "../shell.js";

let job = JSON.parse($("#job-boot").textContent);
const bar = progressBar(true);
$("[data-job-progress]").append(bar.node);
const cancel = $("[data-job-cancel]");
cancel.prepend(icon("cancel"));

const pretty = (value) => JSON.stringify(value, null, 2);

function paint() {
  paintJobBadge($("[data-job-badge]"), job.status);
  paintProgress(bar, job);
  setText($("[data-job-message]"), job.message || "—");
  for (const field of ["created_at", "started_at", "completed_at", "updated_at"]) {
    setText($(`[data-job-${field}]`), dateTime(job[field]));
  }
  const daemon = $("[data-job-daemon]");
  replaceChildren(daemon, job.daemon_id ? h("a", { href: url(`/daemons/${job.daemon_id}`) }, job.daemon_id) : "—");
  setText($("[data-job-metadata]"), pretty(job.metadata || {}));
  const hasResult = job.result !== null && job.result !== undefined;
  $("[data-job-result]").hidden = !hasResult;
  $("[data-job-no-result]").hidden = hasResult;
  setText($("[data-job-no-result]"), isActive(job) ? "The result appears here when the job completes." : "No result.");
  setText($("[data-job-result]"), pretty(job.result));
  $("[data-job-error-panel]").hidden = !job.error;
  setText($("[data-job-error]"), job.error || "");
  paintCancel(cancel, job);
  tick(Date.now());
}

function tick(now) {
  setText($("[data-job-duration]"), jobDuration(job, now));
}

function put(next) {
  if (next.id !== job.id || !isNewer(next, job)) return;
  job = next;
  paint();
}

cancel.addEventListener("click", async () => {
  const cancelled = await cancelJob(job, cancel, "cancelled from the job page");
  if (cancelled) put(cancelled);
  paint();
});

const live = startShell();
live.on("job_update", (event) => put(event.job));
live.on("synced", async () => {
  try {
    put(await api(`/api/jobs/${job.id}`));
  } catch (exc) {
    toast(`Could not refresh the job — ${exc.message}`, "bad");
  }
});
onTick((now) => isActive(job) && tick(now));
paint();
live.start();
