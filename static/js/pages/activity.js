// /activity: the audit trail (who did what, from where, and how it ended), newest first,
// filtered by actor, action and outcome; "Older" pages back.

import { api, query } from "../api.js";
import { $, h, replaceChildren, setText } from "../dom.js";
import { dateTime } from "../format.js";
import { startShell, toast } from "../shell.js";

const LIMIT = 100;
const form = $("[data-activity-filters]");
const tbody = $("[data-activity-rows]");
const more = $("[data-activity-more]");
let nextBefore = null;
let shown = 0;
let asked = 0;

const OUTCOME_TONES = { ok: "tone-ok", failed: "tone-warn", error: "tone-bad", denied: "tone-bad" };

function changeText(details) {
  if (!details || (details.before === undefined && details.after === undefined)) {
    const rest = Object.entries(details || {}).map(([k, v]) => `${k}: ${JSON.stringify(v)}`);
    return rest.join(", ");
  }
  return `${JSON.stringify(details.before ?? null)} → ${JSON.stringify(details.after ?? null)}`;
}

function row(event) {
  const via = event.actor_via && event.actor_via !== "session" ? ` (${event.actor_via})` : "";
  const target = event.target_name || event.target_id || "";
  const details = [event.message, changeText(event.details)].filter(Boolean).join(" · ");
  return h(
    "tr",
    { dataset: { auditId: String(event.id), outcome: event.outcome } },
    h("td.num", { title: event.created_at }, dateTime(event.created_at)),
    h("td", {}, event.actor, h("span.muted", {}, via)),
    h("td", {}, h("span.mono", {}, event.action)),
    h("td.wrap", { title: event.target_id || "" }, target),
    h("td", {}, h("span", { className: `badge ${OUTCOME_TONES[event.outcome] || ""}` }, event.outcome)),
    h("td", { title: event.user_agent || "" }, event.address || "—"),
    h("td.wrap", { title: details }, details),
  );
}

function filters() {
  const data = new FormData(form);
  return Object.fromEntries([...data.entries()].map(([k, v]) => [k, String(v).trim()]));
}

async function load({ older = false } = {}) {
  const mine = ++asked;
  const params = { ...filters(), limit: LIMIT, before_id: older ? nextBefore : undefined };
  try {
    const body = await api(`/api/audit${query(params)}`);
    if (mine !== asked) return;
    if (!older) {
      replaceChildren(tbody);
      shown = 0;
    }
    tbody.append(...body.events.map(row));
    shown += body.events.length;
    nextBefore = body.next_before_id;
    more.hidden = nextBefore === null;
    setText($("[data-activity-count]"), `${shown} record${shown === 1 ? "" : "s"}${nextBefore ? " (more below)" : ""}`);
  } catch (exc) {
    toast(`Could not load the activity: ${exc.message}`, "error");
  }
}

form.addEventListener("input", () => load());
form.addEventListener("submit", (event) => {
  event.preventDefault();
  load();
});
more.addEventListener("click", () => load({ older: true }));
startShell().start();
load();
