// Pieces shared by the daemon cards and the detail header: status and health (colour and
// text), live metrics, and the Start / Stop / Restart controls.

import { api } from "./api.js";
import { h, icon, replaceChildren, setText } from "./dom.js";
import { ago, duration, isNewer, parseTime } from "./format.js";
import { may } from "./session.js";
import { confirmAction, toast, withBusy } from "./shell.js";

const STATUS_TONES = {
  RUNNING: "ok",
  STARTING: "warn",
  STOPPING: "warn",
  STOPPED: "idle",
  ERROR: "bad",
};

export function statusTone(status) {
  return STATUS_TONES[status] || "idle";
}

export function paintBadge(node, status) {
  node.className = `badge tone-${statusTone(status)}`;
  node.classList.toggle("pulse", status === "STARTING" || status === "STOPPING");
  replaceChildren(node, h("span.dot"), status || "UNKNOWN");
}

const verdict = (state, reason) => ({
  state,
  reason,
  tone: { healthy: "ok", unhealthy: "bad", stopped: "idle" }[state],
  text: { healthy: "Healthy", unhealthy: "Unhealthy", stopped: "Stopped" }[state],
});

// The verdict is the server's (stashhog.services.daemon_health), on REST replies and events
// alike. The page only compares heartbeat_deadline with its clock: a daemon that stops
// beating sends no event, yet turns unhealthy on screen.
export function health(daemon, now = Date.now()) {
  const deadline = parseTime(daemon.heartbeat_deadline);
  if (daemon.health !== "unhealthy" && deadline !== null && now > deadline) {
    return verdict("unhealthy", `heartbeat overdue by ${duration((now - deadline) / 1000)}`);
  }
  return verdict(daemon.health, daemon.health_reason);
}

export function uptime(daemon, now = Date.now()) {
  const started = parseTime(daemon.started_at);
  if (daemon.status !== "RUNNING" || started === null) return "—";
  return duration((now - started) / 1000);
}

export function metric(label) {
  const value = h("div.value", {}, "—");
  return { node: h("div.metric", {}, h("div.label", {}, label), value), value };
}

export function paintHealth(node, daemon, now) {
  const state = health(daemon, now);
  node.className = `health tone-${state.tone}`;
  node.dataset.health = state.state;
  if (node.childNodes.length !== 2) replaceChildren(node, h("span.dot"), "");
  setText(node.lastChild, state.reason ? `${state.text} · ${state.reason}` : state.text);
  return state;
}

export function paintHeartbeat(node, daemon, now) {
  setText(node, daemon.last_heartbeat ? ago(daemon.last_heartbeat, now) : "never");
}

export function paintStatusLine(node, daemon) {
  const text = daemon.status_line || (daemon.status === "RUNNING" ? "running" : "idle");
  node.classList.toggle("empty", !daemon.status_line);
  setText(node, text);
  node.title = daemon.status_line || "";
}

export function paintError(node, daemon) {
  node.hidden = !daemon.last_error || daemon.status === "RUNNING";
  setText(node, daemon.last_error || "");
}

const ACTIONS = {
  start: { label: "Start", busy: "Starting…", icon: "play", tone: "go" },
  stop: { label: "Stop", busy: "Stopping…", icon: "stop", tone: "halt" },
  restart: { label: "Restart", busy: "Restarting…", icon: "restart", tone: "" },
};

/** Start / Stop / Restart buttons for one daemon; disabled while any of them acts. */
export class DaemonControls {
  constructor(getDaemon, onResult) {
    this.getDaemon = getDaemon;
    this.onResult = onResult;
    this.busy = false;
    this.buttons = {};
    this.node = h("div.controls.contents");
    if (!may("operator")) return; // a viewer is offered no controls
    for (const [action, spec] of Object.entries(ACTIONS)) {
      const button = h(
        "button.btn",
        { type: "button", className: spec.tone, dataset: { action }, onclick: () => this.run(action) },
        icon(spec.icon),
        spec.label,
      );
      this.buttons[action] = button;
      this.node.append(button);
    }
  }

  update() {
    if (!this.buttons.start) return;
    const daemon = this.getDaemon();
    const status = daemon.status;
    const running = status === "RUNNING" || status === "STARTING";
    const allowed = {
      start: daemon.enabled && (status === "STOPPED" || status === "ERROR"),
      stop: running || status === "STOPPING" || daemon.desired_state === "RUNNING",
      restart: daemon.enabled && status !== "STOPPING",
    };
    for (const [action, button] of Object.entries(this.buttons)) {
      if (!button.classList.contains("busy")) button.disabled = this.busy || !allowed[action];
    }
    this.buttons.start.title = daemon.enabled ? "" : "Enable the daemon before starting it";
  }

  async run(action) {
    const daemon = this.getDaemon();
    const button = this.buttons[action];
    this.busy = true;
    this.update();
    try {
      const result = await withBusy(button, ACTIONS[action].busy, () => this.request(daemon, action));
      if (!result) return; // the operator kept it running
      this.onResult(result.daemon);
      if (!result.changed) toast(`${daemon.name}: ${result.message}`, "idle");
      const first = result.dependencies_started || [];
      if (first.length) toast(`${daemon.name}: ${result.message} (started first: ${first.join(", ")})`, "ok");
      else if (result.dependents_stopped?.length) toast(`${daemon.name}: ${result.message}`, "ok");
    } catch (exc) {
      toast(`${daemon.name}: could not ${action} — ${exc.message}`, "bad", 8);
    } finally {
      this.busy = false;
      this.update();
    }
  }

  /** A stop asks first with cascade=false: if daemons depend on it (409 naming them), the
   *  operator confirms that they stop first, in that order (null: not confirmed). */
  async request(daemon, action) {
    const path = `/api/daemons/${daemon.id}/${action}`;
    if (action !== "stop") return api(path, { method: "POST" });
    try {
      return await api(`${path}?cascade=false`, { method: "POST" });
    } catch (exc) {
      const dependents = exc.status === 409 && exc.details?.dependents;
      if (!dependents) throw exc;
      const ok = await confirmAction({
        title: `Stop ${daemon.name} and what needs it?`,
        body:
          dependents.length === 1
            ? `${dependents[0]} depends on ${daemon.name} and will be stopped first.`
            : `${dependents.join(", ")} depend on ${daemon.name} and will be stopped first, in that order.`,
        confirm: `Stop ${dependents.length + 1} daemons`,
        danger: true,
      });
      return ok ? api(path, { method: "POST" }) : null;
    }
  }
}

/** Holds daemon dicts by id and applies REST replies and live events in order. */
export class DaemonStore {
  constructor(onChange, onRemove = () => {}) {
    this.items = new Map();
    this.deleted = new Set(); // a late event for a deleted daemon must not bring it back
    this.onChange = onChange;
    this.onRemove = onRemove;
  }

  remove(id) {
    this.deleted.add(id);
    if (this.items.delete(id)) this.onRemove(id);
  }

  /** After a fresh listing: forget daemons it no longer has (deleted while we were away). */
  keepOnly(ids) {
    for (const id of [...this.items.keys()]) if (!ids.has(id)) this.remove(id);
  }

  put(daemon) {
    if (this.deleted.has(daemon.id)) return;
    const current = this.items.get(daemon.id);
    if (!isNewer(daemon, current)) return;
    this.items.set(daemon.id, { ...current, ...daemon });
    this.onChange(this.items.get(daemon.id), !current);
  }

  patchStatus(event) {
    const current = this.items.get(event.daemon_id);
    if (!current || !isNewer(event, current)) return;
    // Besides type, daemon_id and timestamp, a daemon_status event carries daemon fields.
    const { type, daemon_id, timestamp, ...fields } = event;
    this.put({ ...current, ...fields, updated_at: timestamp });
  }
}
