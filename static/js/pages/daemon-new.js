// /daemons/new: create a daemon of a registered type. Settings and configuration forms are
// generated from the JSON Schemas of GET /api/daemon-types; values are checked in the browser
// with the same schemas, and a 422 from the server is shown next to the field it names.

import { api, url } from "../api.js";
import { dependencyChoices } from "../dependency-view.js";
import { $, h, replaceChildren, setText } from "../dom.js";
import { SchemaForm, validate } from "../schema-form.js";
import { startShell, withBusy } from "../shell.js";

const form = $("#daemon-form");
const typeSelect = $("#daemon-type");
const jsonBox = $("[data-config-json]");
const jsonEditor = $("textarea[name=configuration]", jsonBox);
const jsonToggle = $("[data-json-toggle]");
const settings = new SchemaForm($("[data-settings-form]"), { prefix: "setting" });
const config = new SchemaForm($("[data-config-form]"), { prefix: "config" });
let types = new Map();

startShell();
load();

async function load() {
  try {
    const [body, choices] = await Promise.all([api("/api/daemon-types"), dependencyChoices()]);
    settings.setChoices("depends_on", choices);
    types = new Map(body.types.map((info) => [info.type, info]));
    replaceChildren(typeSelect, body.types.map((info) => h("option", { value: info.type }, info.type)));
    settings.render(body.settings_schema, {});
    const wanted = new URLSearchParams(location.search).get("type");
    if (wanted && types.has(wanted)) typeSelect.value = wanted;
    chooseType();
  } catch (exc) {
    status("error", `Could not load the daemon types — ${exc.message}`);
  }
}

function chooseType() {
  const info = types.get(typeSelect.value);
  setText($("[data-type-description]"), info.description || "");
  settings.render(settings.schema, info.default_settings);
  config.render(info.config_schema, info.default_configuration);
  jsonEditor.value = JSON.stringify(info.default_configuration, null, 2);
  fieldError("type", null);
}

typeSelect.addEventListener("change", chooseType);
$("#daemon-name").addEventListener("input", () => fieldError("name", null));
jsonToggle.addEventListener("click", toggleJson);
jsonEditor.addEventListener("input", () => checkJson());
form.addEventListener("submit", (event) => {
  event.preventDefault();
  withBusy($("[data-create]"), "Creating…", create);
});

function toggleJson() {
  const toJson = jsonBox.hidden;
  if (toJson) {
    const collected = config.collect();
    if (collected.problems) return status("error", "Fix the highlighted fields first.");
    jsonEditor.value = JSON.stringify(collected.values, null, 2);
  } else {
    const value = checkJson();
    if (value === undefined) return status("error", "The JSON has errors; fix them or keep editing as JSON.");
    config.render(config.schema, value);
  }
  jsonBox.hidden = !toJson;
  $("[data-config-form]").hidden = toJson;
  jsonToggle.setAttribute("aria-pressed", String(toJson));
  setText(jsonToggle, toJson ? "Edit as form" : "Edit as JSON");
  status(null);
}

/** The JSON editor's value if it is valid for the type's schema (problems shown), else undefined. */
function checkJson() {
  let value;
  try {
    value = JSON.parse(jsonEditor.value || "{}");
  } catch (exc) {
    fieldError("configuration", `Not valid JSON: ${exc.message}`);
    return undefined;
  }
  const problems = validate(config.schema, config.schema, value);
  fieldError("configuration", problems.length ? problems.map((p) => `${p.key || "configuration"} ${p.message}`).join("; ") : null);
  return problems.length ? undefined : value;
}

function gather() {
  const name = $("#daemon-name").value.trim();
  let ok = true;
  if (!name) {
    fieldError("name", "A name is required.");
    ok = false;
  }
  const chosen = settings.collect();
  const configuration = jsonBox.hidden ? config.collect() : { values: checkJson() };
  if (chosen.problems || configuration.problems || configuration.values === undefined) ok = false;
  if (!ok) return null;
  const start = $("input[name=start]", form).checked;
  const defaults = types.get(typeSelect.value).default_configuration;
  // Only what differs from the type's defaults is stored, so later defaults still apply.
  const changed = Object.fromEntries(
    Object.entries(configuration.values).filter(([key, value]) => JSON.stringify(value) !== JSON.stringify(defaults[key])),
  );
  return { name, type: typeSelect.value, configuration: changed, ...chosen.values, start };
}

async function create() {
  status(null);
  const body = gather();
  if (!body) return status("error", "Fix the highlighted fields, then create the daemon.");
  try {
    const daemon = await api("/api/daemons", { method: "POST", body });
    location.assign(url(`/daemons/${daemon.id}`));
  } catch (exc) {
    showServerError(exc);
  }
}

function showServerError(exc) {
  const key = exc.details && exc.details.key;
  const message = exc.message;
  if (exc.status === 409 || key === "name") fieldError("name", message);
  else if (key === "type") fieldError("type", message);
  else if (key && key.startsWith("configuration")) {
    if (jsonBox.hidden && config.showServerError(key, message)) return status("error", "The server refused a value.");
    fieldError("configuration", message);
    if (jsonBox.hidden) toggleJson();
  } else if (key && settings.showServerError(key, message)) {
    /* shown next to the setting */
  }
  status("error", `Not created — ${message}`);
}

function fieldError(name, message) {
  const node = $(`#daemon-${name}-error`);
  node.hidden = !message;
  setText(node, message || "");
  const input = form.elements.namedItem(name);
  if (input && input.toggleAttribute) input.toggleAttribute("aria-invalid", Boolean(message));
}

function status(kind, text) {
  const node = $("[data-form-status]");
  node.hidden = !kind;
  node.className = `editor-status ${kind || ""}`.trim();
  setText(node, text || "");
}
