// /daemons/<id>: live header, and the Logs, Configuration and Job history tabs.

import { api } from "../api.js";
import { ConfigEditor } from "../config-editor.js";
import { $, setText } from "../dom.js";
import {
  DaemonControls,
  DaemonStore,
  metric,
  paintBadge,
  paintError,
  paintHealth,
  paintHeartbeat,
  paintStatusLine,
  uptime,
} from "../daemon-view.js";
import { JobHistory } from "../job-history.js";
import { LogView } from "../log-view.js";
import { SettingsEditor } from "../settings-editor.js";
import { onTick, startShell, toast } from "../shell.js";
import { MetricsTab, RunsTab } from "../observability-tabs.js";

const boot = JSON.parse($("#daemon-boot").textContent);
let daemon = boot;

const header = {
  badge: $("[data-daemon-badge]"),
  health: $("[data-daemon-health]"),
  name: $("[data-daemon-name]"),
  statusLine: $("[data-daemon-status-line]"),
  error: $("[data-daemon-error]"),
  uptime: metric("Uptime"),
  heartbeat: metric("Last heartbeat"),
  restarts: metric("Restarts"),
  worker: metric("Worker"),
  generation: metric("Generation"),
};
$("[data-daemon-metrics]").append(
  ...["uptime", "heartbeat", "restarts", "worker", "generation"].map((key) => header[key].node),
);

const store = new DaemonStore((changed) => {
  daemon = changed;
  paintHeader(Date.now());
  controls.update();
  editor.daemonChanged(daemon);
  settings.daemonChanged(daemon);
});
const controls = new DaemonControls(() => daemon, (d) => store.put(d));
$("[data-daemon-actions]").append(controls.node);
const logs = new LogView($("#tab-logs"), daemon);
const editor = new ConfigEditor($("#tab-config"), () => daemon, (d) => store.put(d));
const settings = new SettingsEditor($("[data-settings]"), () => daemon, (d) => store.put(d));
const jobHistory = new JobHistory($("#tab-history"), daemon);
const runsTab = new RunsTab($("#tab-runs"), daemon);
const metricsTab = new MetricsTab($("#tab-metrics"), daemon);

function paintHeader(now) {
  setText(header.name, daemon.name);
  document.title = `${daemon.name} · StashHog`;
  paintBadge(header.badge, daemon.status);
  paintStatusLine(header.statusLine, daemon);
  paintError(header.error, daemon);
  setText(header.restarts.value, String(daemon.restart_count ?? 0));
  setText(header.worker.value, daemon.worker ? `${daemon.worker}${daemon.worker_pid ? ` · pid ${daemon.worker_pid}` : ""}` : "—");
  header.worker.value.title = daemon.worker || "";
  setText(header.generation.value, String(daemon.generation ?? 0));
  tick(now);
}

function tick(now) {
  paintHealth(header.health, daemon, now);
  setText(header.uptime.value, uptime(daemon, now));
  paintHeartbeat(header.heartbeat.value, daemon, now);
}

function selectTab(name, push = true) {
  for (const tab of document.querySelectorAll("[role=tab]")) {
    const selected = tab.dataset.tab === name;
    tab.setAttribute("aria-selected", String(selected));
    $(`#tab-${tab.dataset.tab}`).hidden = !selected;
  }
  if (push) rememberTab(name);
  if (name === "history") setText($("[data-history-count]"), "");
  if (name === "runs") runsTab.load();
  if (name === "metrics") metricsTab.load();
}

function rememberTab(name) {
  window.history.replaceState(null, "", name === "logs" ? location.pathname : `#${name}`);
}

async function refresh() {
  try {
    store.put(await api(`/api/daemons/${daemon.id}`));
  } catch (exc) {
    toast(`Could not refresh ${daemon.name} — ${exc.message}`, "bad");
  }
}

let unseen = 0;
jobHistory.onNew = () => {
  if ($("#tab-history").hidden) setText($("[data-history-count]"), String((unseen += 1)));
};
for (const tab of document.querySelectorAll("[role=tab]")) {
  tab.addEventListener("click", () => {
    if (tab.dataset.tab === "history") unseen = 0;
    selectTab(tab.dataset.tab);
  });
}
selectTab(["config", "history", "runs", "metrics"].includes(location.hash.slice(1)) ? location.hash.slice(1) : "logs", false);

const live = startShell();
live.subscribe(daemon.id);
live.on("daemon_update", (event) => event.daemon_id === daemon.id && store.put(event.daemon));
live.on("daemon_status", (event) => event.daemon_id === daemon.id && store.patchStatus(event));
live.on("daemon_status", (event) => event.daemon_id === daemon.id && !$("#tab-runs").hidden && runsTab.load());
live.on("daemon_log", (event) => event.daemon_id === daemon.id && logs.receive(event.lines));
live.on("daemon_job_action", (event) => event.daemon_id === daemon.id && jobHistory.receive(event));
live.on("job_update", (event) => jobHistory.jobChanged(event.job));
// A resource limit breached (max_memory_mb / max_cpu_percent): what was measured and done.
live.on("daemon_limit", (event) => event.daemon_id === daemon.id && toast(event.message, event.action === "warn" ? "warn" : "bad", 10));
live.on("daemon_deleted", (event) => {
  if (event.daemon_id !== daemon.id) return;
  const banner = $("[data-daemon-error]");
  banner.hidden = false;
  setText(banner, `${daemon.name} was deleted. Its logs and job history are gone.`);
  for (const button of document.querySelectorAll("main button")) button.disabled = true;
});
// Also on the first connect: whatever changed between the first REST reads and the
// subscription is read again, so the page starts without a gap.
live.on("synced", () => {
  logs.catchUp();
  refresh();
  jobHistory.load();
});
onTick(tick);

store.put(daemon);
logs.reload();
editor.load();
settings.load();
jobHistory.load();
refresh();
live.start();
