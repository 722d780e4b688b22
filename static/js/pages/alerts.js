// /alerts: alerts (live with alert_update events), the rules and the notification channels.

import { api, url } from "../api.js";
import { $, h, replaceChildren, setText } from "../dom.js";
import { dateTime } from "../format.js";
import { startShell, toast } from "../shell.js";

const status = $("[data-filter-status]");

async function loadAlerts() {
  const query = status.value ? `?status=${status.value}` : "";
  const body = await api(`/api/alerts${query}`);
  setText($("[data-alerts-count]"), `${body.firing} firing`);
  $("[data-alerts-empty]").hidden = body.alerts.length > 0;
  replaceChildren($("[data-alert-rows]"), ...body.alerts.map((alert) => h(
    "tr", { dataset: { alertId: alert.id, status: alert.status } },
    h("td", {}, h("span.badge", { dataset: { alert: alert.status } }, alert.status)),
    h("td.mono", {}, alert.rule),
    h("td", {}, alert.daemon_id ? h("a", { href: url(`/daemons/${alert.daemon_id}`) }, alert.daemon_name || alert.daemon_id) : "—"),
    h("td.wrap", {}, alert.message),
    h("td.num", {}, dateTime(alert.started_at)),
    h("td.num", {}, alert.resolved_at ? dateTime(alert.resolved_at) : "—"),
    h("td.num", {}, alert.notified_at ? dateTime(alert.notified_at) : "—"),
  )));
}

async function loadRules() {
  const { rules } = await api("/api/alerts/rules");
  replaceChildren($("[data-rule-rows]"), ...rules.map((rule) => h(
    "tr", { dataset: { rule: rule.name } },
    h("td", {}, h("input", { type: "checkbox", name: "enabled", checked: rule.enabled })),
    h("td.mono", {}, rule.name),
    h("td", {}, rule.threshold === null ? "—" : h("input", { type: "number", name: "threshold", value: rule.threshold, min: 0, step: "any", size: 6 }), ` ${rule.threshold_unit || ""}`),
    h("td", {}, rule.window === null ? "—" : h("input", { type: "number", name: "window", value: rule.window, min: 10, size: 6 })),
    h("td.wrap.muted", {}, rule.description),
  )));
}

async function saveRules() {
  const rules = [...document.querySelectorAll("[data-rule-rows] tr")].map((row) => {
    const rule = { name: row.dataset.rule, enabled: $("[name=enabled]", row).checked };
    const threshold = $("[name=threshold]", row);
    const window = $("[name=window]", row);
    if (threshold) rule.threshold = Number(threshold.value);
    if (window) rule.window = Number(window.value);
    return rule;
  });
  try {
    await api("/api/alerts/rules", { method: "PUT", body: { rules } });
    setText($("[data-rules-note]"), "Saved.");
  } catch (exc) {
    setText($("[data-rules-note]"), exc.message);
  }
}

async function loadChannels() {
  const { channels } = await api("/api/alerts/channels");
  replaceChildren($("[data-channel-rows]"), ...channels.map((channel) => h(
    "li", { dataset: { channelId: channel.id } },
    h("span.mono", {}, `${channel.type} · ${channel.url} `),
    h("button.btn.small", { type: "button", dataset: { needs: "operator" }, onclick: () => removeChannel(channel) }, "Remove"),
  )));
}

async function removeChannel(channel) {
  await api(`/api/alerts/channels/${channel.id}`, { method: "DELETE" });
  loadChannels();
}

$("[data-channel-form]").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  try {
    await api("/api/alerts/channels", { method: "POST", body: { type: form.type.value, url: form.url.value } });
    form.url.value = "";
    setText($("[data-channel-note]"), "");
    loadChannels();
  } catch (exc) {
    setText($("[data-channel-note]"), exc.message);
  }
});
$("[data-save-rules]").addEventListener("click", saveRules);
status.addEventListener("change", loadAlerts);

const live = startShell();
live.on("alert_update", () => loadAlerts().catch((exc) => toast(exc.message, "bad")));
live.on("synced", loadAlerts);
loadAlerts();
loadRules();
loadChannels();
live.start();
