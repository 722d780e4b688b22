// Pieces shared by the job pages and the daemon's job history: status badges, progress bars,
// the running time, and the Cancel button.

import { api } from "./api.js";
import { h, replaceChildren, setText } from "./dom.js";
import { duration, parseTime, shortId } from "./format.js";
import { toast, withBusy } from "./shell.js";

const JOB_TONES = {
  pending: "idle",
  running: "info",
  cancelling: "warn",
  completed: "ok",
  failed: "bad",
  cancelled: "idle",
};
const ACTION_TONES = {
  LAUNCHED: "info",
  MONITORED: "idle",
  FINISHED: "ok",
  FAILED: "bad",
  CANCELLED: "warn",
};

export const isActive = (job) => ["pending", "running", "cancelling"].includes(job.status);

export function jobBadge(status) {
  const node = h("span.badge");
  paintJobBadge(node, status);
  return node;
}

export function paintJobBadge(node, status) {
  node.className = `badge tone-${JOB_TONES[status] || "idle"}`;
  node.classList.toggle("pulse", status === "running" || status === "cancelling");
  replaceChildren(node, h("span.dot"), status || "unknown");
}

export function actionBadge(action) {
  return h("span.badge", { className: `tone-${ACTION_TONES[action] || "idle"}` }, action);
}

export function progressBar(large = false) {
  const fill = h("div.fill");
  const pct = h("span.pct");
  const node = h("div.progress", { className: large ? "large" : "" }, h("div.bar", {}, fill), pct);
  return { node, fill, pct };
}

export function paintProgress(bar, job) {
  const value = Math.max(0, Math.min(100, Math.round(job.progress || 0)));
  bar.fill.style.width = `${value}%`;
  bar.node.className = `progress tone-${JOB_TONES[job.status] || "info"} ${bar.node.classList.contains("large") ? "large" : ""}`;
  bar.node.setAttribute("role", "progressbar");
  bar.node.setAttribute("aria-valuenow", String(value));
  setText(bar.pct, `${value}%`);
}

/** How long the job ran, or has been running (to ``now``) while it is active. */
export function jobDuration(job, now) {
  const start = parseTime(job.started_at);
  const end = parseTime(job.completed_at) ?? (isActive(job) ? now : null);
  return start && end ? duration((end - start) / 1000) : "—";
}

/** Shown while the job can still be cancelled; disabled once it is cancelling. */
export function paintCancel(button, job) {
  button.hidden = !isActive(job);
  button.disabled = job.status === "cancelling" || button.classList.contains("busy");
}

/** Ask the API to cancel the job; the job as it replied, or null after a toast. */
export async function cancelJob(job, button, reason) {
  try {
    const result = await withBusy(button, "Cancelling…", () =>
      api(`/api/jobs/${job.id}/cancel`, { method: "POST", body: { reason } }),
    );
    return result.job;
  } catch (exc) {
    toast(`Could not cancel job ${shortId(job.id)} — ${exc.message}`, "bad", 8);
    return null;
  }
}
