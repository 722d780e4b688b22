// /daemons: a card per daemon, kept live by daemon_status and daemon_update events.
//
// At 1,000 daemons every heartbeat is an event (about 100 a second): a change only marks its
// card, and one render per animation frame paints the marked cards, the summary and the
// dependency view once. Cards off screen skip layout and paint (content-visibility), and
// only cards on screen tick every second and fetch their sparkline.

import { api, url } from "../api.js";
import { $, h, icon, replaceChildren, setText } from "../dom.js";
import {
  DaemonControls,
  DaemonStore,
  metric,
  paintBadge,
  paintError,
  paintHealth,
  paintHeartbeat,
  paintStatusLine,
  statusTone,
  uptime,
} from "../daemon-view.js";
import { DependencyView, paintNeeds } from "../dependency-view.js";
import { sparkline } from "../observability-tabs.js";
import { confirmAction, onTick, startShell, toast, withBusy } from "../shell.js";

const SPARK_MS = 15_000;
const CARD_HEIGHT_PX = 260; // a card's size until it is first laid out (content-visibility)

const cards = new Map();
const grid = $("#daemon-cards");
const lookup = (id) => store.items.get(id);
const dependencyView = new DependencyView($("#daemon-deps"), lookup);
const pending = { changed: new Map(), added: [], frame: 0 };
const store = new DaemonStore(
  (daemon, isNew) => {
    if (!pending.changed.has(daemon.id)) pending.changed.set(daemon.id, cards.get(daemon.id)?.daemon);
    if (isNew) pending.added.push(daemon.id);
    scheduleRender();
  },
  (id) => {
    const card = cards.get(id);
    if (card) {
      visible.delete(card);
      seen.unobserve(card.node);
      card.node.remove();
    }
    cards.delete(id);
    pending.changed.delete(id);
    $("#daemons-empty").hidden = cards.size > 0;
    dependencyView.refresh();
    paintSummary();
  },
);

function scheduleRender() {
  if (!pending.frame) pending.frame = requestAnimationFrame(render);
}

/** Everything the events of one frame changed, painted once. */
function render() {
  const { changed, added } = pending;
  pending.changed = new Map();
  pending.added = [];
  pending.frame = 0;
  addCards(added.filter((id) => store.items.has(id)));
  let moved = false;
  let statusMoved = false;
  const dependedOn = new Set();
  for (const [id, before] of changed) {
    const daemon = store.items.get(id);
    const card = cards.get(id);
    if (!daemon || !card) continue;
    card.update(daemon);
    moved ||= !before || before.name !== daemon.name || JSON.stringify(before.depends_on) !== JSON.stringify(daemon.depends_on);
    if (before && before.status !== daemon.status) {
      statusMoved = true;
      dependedOn.add(id);
    }
  }
  paintDependents(dependedOn);
  if (moved) dependencyView.refresh();
  else if (statusMoved) dependencyView.paint();
  if (changed.size) paintSummary();
}

// A daemon's status shows on the "needs" line of the cards of the daemons that need it.
function paintDependents(ids) {
  if (!ids.size) return;
  for (const card of cards.values()) {
    if (card.daemon?.depends_on?.some((id) => ids.has(id))) paintNeeds(card.needs, card.daemon, lookup);
  }
}

// Cards on screen (or near it): the ones that tick and draw a sparkline.
const visible = new Set();
const seen = new IntersectionObserver(
  (entries) => {
    for (const entry of entries) {
      const card = entry.target.card;
      if (!entry.isIntersecting) visible.delete(card);
      else if (!visible.has(card)) {
        visible.add(card);
        card.tick(Date.now());
        if (Date.now() - card.sparkAt > SPARK_MS) card.drawSpark();
      }
    }
  },
  { rootMargin: "200px" },
);

class DaemonCard {
  constructor(daemon) {
    this.id = daemon.id;
    this.badge = h("span.badge");
    this.health = h("span.health");
    this.uptime = metric("Uptime");
    this.heartbeat = metric("Heartbeat");
    this.restarts = metric("Restarts");
    this.statusLine = h("div.status-line");
    this.needs = h("div.card-needs", { hidden: true });
    this.error = h("div.error-box");
    this.controls = new DaemonControls(() => this.daemon, (d) => store.put(d));
    this.autoStart = this.toggle("Auto-start", "auto_start");
    this.enabled = this.toggle("Enabled", "enabled");
    this.title = h("a", { href: url(`/daemons/${daemon.id}`) });
    this.type = h("span.card-type");
    this.spark = h("canvas.sparkline", { width: 120, height: 24, "aria-label": "Memory, last 15 minutes" });
    this.alert = h("a.card-alert", { href: url("/alerts"), hidden: true });
    this.sparkAt = 0;
    this.node = h(
      "article.card.panel",
      { dataset: { daemonId: daemon.id } },
      h("div.card-head", {}, h("div.card-title", {}, this.title, this.type), this.spark, this.badge),
      this.alert,
      this.health,
      h("div.metrics", {}, this.uptime.node, this.heartbeat.node, this.restarts.node),
      this.statusLine,
      this.needs,
      this.error,
      h(
        "div.card-actions",
        {},
        this.controls.node,
        h("a.details", { href: url(`/daemons/${daemon.id}`) }, "Details", icon("chevron")),
      ),
      h("div.card-toggles", {}, this.autoStart.label, this.enabled.label),
    );
    this.node.card = this;
    this.node.style.contentVisibility = "auto";
    this.node.style.containIntrinsicSize = `auto ${CARD_HEIGHT_PX}px`;
  }

  drawSpark() {
    this.sparkAt = Date.now();
    sparkline(this.spark, this.id).catch(() => {});
  }

  toggle(text, field) {
    const input = h("input", { type: "checkbox", dataset: { field } });
    input.addEventListener("change", () => this.save(field, input));
    return { input, label: h("label.switch", {}, input, h("span.track"), text) };
  }

  async save(field, input) {
    input.disabled = true;
    try {
      const result = await api(`/api/daemons/${this.id}`, { method: "PUT", body: { [field]: input.checked } });
      store.put(result.daemon);
    } catch (exc) {
      input.checked = !input.checked;
      toast(`${this.daemon.name}: could not change ${field.replace("_", "-")} — ${exc.message}`, "bad", 8);
    } finally {
      input.disabled = false;
    }
  }

  update(daemon) {
    this.daemon = daemon;
    this.node.className = `card panel tone-${statusTone(daemon.status)}`;
    setText(this.title, daemon.name);
    setText(this.type, daemon.type);
    paintBadge(this.badge, daemon.status);
    paintStatusLine(this.statusLine, daemon);
    paintNeeds(this.needs, daemon, lookup);
    paintError(this.error, daemon);
    setText(this.restarts.value, String(daemon.restart_count ?? 0));
    this.autoStart.input.checked = daemon.auto_start;
    this.enabled.input.checked = daemon.enabled;
    this.controls.update();
    this.tick(Date.now());
  }

  tick(now) {
    paintHealth(this.health, this.daemon, now);
    setText(this.uptime.value, uptime(this.daemon, now));
    paintHeartbeat(this.heartbeat.value, this.daemon, now);
  }
}

/** New cards, in name order among the others: one pass over the grid for the lot. */
function addCards(ids) {
  if (!ids.length) return;
  for (const node of grid.querySelectorAll(".skeleton")) node.remove();
  $("#daemons-empty").hidden = true;
  const byName = (a, b) => a.daemon.name.localeCompare(b.daemon.name);
  const fresh = ids.map((id) => {
    const card = new DaemonCard(store.items.get(id));
    card.daemon = store.items.get(id);
    cards.set(id, card);
    seen.observe(card.node);
    return card;
  });
  fresh.sort(byName);
  const placed = [...grid.children].map((node) => node.card).filter(Boolean);
  if (!placed.length || byName(placed[placed.length - 1], fresh[0]) <= 0) {
    grid.append(...fresh.map((card) => card.node)); // the first load: all in one append
    return;
  }
  let next = 0;
  for (const card of fresh) {
    while (next < placed.length && byName(placed[next], card) <= 0) next += 1;
    grid.insertBefore(card.node, placed[next]?.node ?? null);
  }
}

function paintSummary() {
  const counts = {};
  for (const daemon of store.items.values()) counts[daemon.status] = (counts[daemon.status] || 0) + 1;
  const parts = ["RUNNING", "STARTING", "STOPPING", "STOPPED", "ERROR"]
    .filter((status) => counts[status])
    .map((status) => h("span", {}, h("b", {}, String(counts[status])), ` ${status.toLowerCase()}`));
  replaceChildren($("#daemon-summary"), h("span", {}, h("b", {}, String(store.items.size)), " daemons"), parts);
}

async function load() {
  try {
    // no-cache: not a list built before this page's live subscription (the server reuses
    // one for a fraction of a second for pollers).
    const { daemons } = await api("/api/daemons", { headers: { "Cache-Control": "no-cache" } });
    for (const daemon of daemons) store.put(daemon);
    store.keepOnly(new Set(daemons.map((daemon) => daemon.id)));
    if (!daemons.length) {
      grid.replaceChildren();
      $("#daemons-empty").hidden = false;
    }
  } catch (exc) {
    toast(`Could not load daemons — ${exc.message}`, "bad", 8);
  }
}

async function bulk(action, button) {
  const what = { "start-all": "Start", "stop-all": "Stop", "restart-all": "Restart" }[action];
  const ok = await confirmAction({
    title: `${what} all daemons?`,
    body:
      action === "start-all"
        ? "Every enabled daemon that is not running will be started."
        : `Every running daemon will be ${action === "stop-all" ? "stopped" : "restarted"}. Jobs they monitor keep running.`,
    confirm: `${what} all`,
    danger: action !== "start-all",
  });
  if (!ok) return;
  try {
    const result = await withBusy(button, `${what.replace(/p$/, "pp")}ing…`, () =>
      api(`/api/daemons/${action}`, { method: "POST" }),
    );
    const errors = result.errors.map((error) => `${error.name}: ${error.error}`);
    const skipped = result.skipped ? `, ${result.skipped} disabled skipped` : "";
    toast(`${what} all: ${result.changed} of ${result.requested} changed${skipped}`, errors.length ? "warn" : "ok");
    for (const error of errors) toast(error, "bad", 10);
  } catch (exc) {
    toast(`${what} all failed — ${exc.message}`, "bad", 8);
  }
}

const live = startShell();
live.on("daemon_update", (event) => store.put(event.daemon));
live.on("daemon_created", (event) => store.put(event.daemon));
live.on("daemon_deleted", (event) => store.remove(event.daemon_id));
live.on("daemon_status", (event) => store.patchStatus(event));
live.on("synced", () => load());
live.on("alert_update", () => {
  paintAlerts().catch(() => {});
  drawSparklines(); // an alert is when a spike is worth seeing
});

// Firing alerts on their daemons' cards; each card's memory sparkline, redrawn now and then.
async function paintAlerts() {
  const { alerts } = await api("/api/alerts?status=firing&limit=1000");
  const byDaemon = new Map();
  for (const alert of alerts) byDaemon.set(alert.daemon_id, [...(byDaemon.get(alert.daemon_id) || []), alert]);
  for (const card of cards.values()) {
    const mine = byDaemon.get(card.id) || [];
    card.alert.hidden = !mine.length;
    setText(card.alert, mine.map((alert) => alert.message).join(" · "));
  }
}
function drawSparklines() {
  for (const card of visible) card.drawSpark();
}
setTimeout(() => {
  paintAlerts().catch(() => {});
  drawSparklines();
}, 500);
setInterval(drawSparklines, SPARK_MS);
onTick((now) => {
  for (const card of visible) if (card.daemon) card.tick(now);
});
for (const button of document.querySelectorAll("[data-bulk]")) {
  button.addEventListener("click", () => bulk(button.dataset.bulk, button));
}
load();
live.start();
