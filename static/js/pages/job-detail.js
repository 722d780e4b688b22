// /jobs/<id>: one job, its progress, result or error, kept live by job_update events.

import { api } from "../api.js";
import { $, h, icon, replaceChildren, setText } from "../dom.js";
import { dateTime, duration, isNewer, parseTime } from "../format.js";
import { isActive, paintJobBadge, paintProgress, progressBar } from "../job-view.js";
import { onTick, startShell, toast, withBusy } from "../shell.js";

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
  replaceChildren(daemon, job.daemon_id ? h("a", { href: `/daemons/${job.daemon_id}` }, job.daemon_id) : "—");
  setText($("[data-job-metadata]"), pretty(job.metadata || {}));
  const hasResult = job.result !== null && job.result !== undefined;
  $("[data-job-result]").hidden = !hasResult;
  $("[data-job-no-result]").hidden = hasResult;
  setText($("[data-job-no-result]"), isActive(job) ? "The result appears here when the job completes." : "No result.");
  setText($("[data-job-result]"), pretty(job.result));
  $("[data-job-error-panel]").hidden = !job.error;
  setText($("[data-job-error]"), job.error || "");
  cancel.hidden = !isActive(job);
  cancel.disabled = job.status === "cancelling" || cancel.classList.contains("busy");
  tick(Date.now());
}

function tick(now) {
  const start = parseTime(job.started_at);
  const end = parseTime(job.completed_at) ?? (isActive(job) ? now : null);
  setText($("[data-job-duration]"), start && end ? duration((end - start) / 1000) : "—");
}

function put(next) {
  if (next.id !== job.id || !isNewer(next, job)) return;
  job = next;
  paint();
}

cancel.addEventListener("click", async () => {
  try {
    const result = await withBusy(cancel, "Cancelling…", () =>
      api(`/api/jobs/${job.id}/cancel`, { method: "POST", body: { reason: "cancelled from the job page" } }),
    );
    put(result.job);
  } catch (exc) {
    toast(`Could not cancel — ${exc.message}`, "bad", 8);
  }
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
