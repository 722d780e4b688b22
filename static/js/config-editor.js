// The Configuration tab: a JSON editor checked against the daemon type's schema (from
// GET /api/daemons/<id>/default-config) before anything is sent; the server validates again.

import { api } from "./api.js";
import { $, h, replaceChildren, setText } from "./dom.js";
import { toast, withBusy } from "./shell.js";

const JSON_TYPES = {
  number: (v) => typeof v === "number",
  integer: (v) => Number.isInteger(v),
  boolean: (v) => typeof v === "boolean",
  string: (v) => typeof v === "string",
  object: (v) => v !== null && typeof v === "object" && !Array.isArray(v),
  array: (v) => Array.isArray(v),
};

const pretty = (value) => JSON.stringify(value ?? {}, null, 2);

export class ConfigEditor {
  constructor(root, getDaemon, onSaved) {
    this.root = root;
    this.getDaemon = getDaemon;
    this.onSaved = onSaved;
    this.editor = $("[data-config-editor]", root);
    this.status = $("[data-config-status]", root);
    this.schema = {};
    this.saved = null; // configuration as stored, as the editor last loaded it
    this.typing = null; // pending check while the operator types
    this.bind();
  }

  bind() {
    const click = (name, fn) => $(`[data-config-${name}]`, this.root).addEventListener("click", fn);
    click("save", (event) => this.save(event.currentTarget, false));
    click("save-restart", (event) => this.save(event.currentTarget, true));
    click("reset-saved", () => this.fill(this.getDaemon().configuration, "Reverted to the saved configuration."));
    click("reset-defaults", () => this.fill(this.defaults(), "Defaults loaded — not saved yet."));
    this.editor.addEventListener("input", () => {
      clearTimeout(this.typing);
      this.typing = setTimeout(() => this.check(), 250);
    });
    this.editor.addEventListener("keydown", (event) => this.onKey(event));
  }

  async load() {
    try {
      const body = await api(`/api/daemons/${this.getDaemon().id}/default-config`);
      this.schema = body.configuration;
      this.paintSchema();
    } catch (exc) {
      this.show("error", `Could not load the configuration schema — ${exc.message}`);
    }
    this.daemonChanged(this.getDaemon());
  }

  defaults() {
    return Object.fromEntries(Object.entries(this.schema).map(([key, info]) => [key, info.default]));
  }

  /** A daemon_update arrived: follow the stored configuration unless the operator is editing. */
  daemonChanged(daemon) {
    const stored = pretty(daemon.configuration);
    if (this.saved === null || this.editor.value === this.saved) {
      if (this.editor.value !== stored) this.editor.value = stored;
    } else if (stored !== this.saved) {
      this.show("note", "The saved configuration changed while you were editing. Reset to saved to see it.");
    }
    this.saved = stored;
  }

  fill(configuration, message) {
    this.editor.value = pretty(configuration);
    this.editor.classList.remove("invalid");
    this.show("ok", message);
  }

  /** Parse and check against the schema; returns the object, or null after showing why. */
  check() {
    let value;
    try {
      value = JSON.parse(this.editor.value);
    } catch (exc) {
      return this.invalid(`Invalid JSON: ${exc.message}`);
    }
    if (!JSON_TYPES.object(value)) return this.invalid("The configuration must be a JSON object.");
    for (const [key, item] of Object.entries(value)) {
      const info = this.schema[key];
      if (!info) return this.invalid(`Unknown key "${key}". Known keys: ${Object.keys(this.schema).join(", ")}.`);
      const fits = JSON_TYPES[info.type];
      if (item !== null && fits && !fits(item)) {
        return this.invalid(`"${key}" must be of type ${info.type}, not ${JSON.stringify(item)}.`);
      }
    }
    this.editor.classList.remove("invalid");
    this.show(null);
    return value;
  }

  invalid(message) {
    this.editor.classList.add("invalid");
    this.show("error", message);
    return null;
  }

  async save(button, restart) {
    clearTimeout(this.typing);
    const configuration = this.check();
    if (configuration === null) return;
    const daemon = this.getDaemon();
    // Keys left out of the editor go back to their defaults (null removes a stored key).
    const patch = { ...configuration };
    for (const key of Object.keys(daemon.configuration || {})) if (!(key in patch)) patch[key] = null;
    try {
      const result = await withBusy(button, restart ? "Saving and restarting…" : "Saving…", async () => {
        const saved = await api(`/api/daemons/${daemon.id}`, { method: "PUT", body: { configuration: patch } });
        this.saved = null;
        this.onSaved(saved.daemon);
        if (!restart) return saved;
        const restarted = await api(`/api/daemons/${daemon.id}/restart`, { method: "POST" });
        this.onSaved(restarted.daemon);
        return { ...saved, restarted: true };
      });
      this.reportSaved(result);
    } catch (exc) {
      const where = exc.details?.key ? ` (${exc.details.key})` : "";
      this.invalid(`Not saved${where}: ${exc.message}`);
    }
  }

  reportSaved(result) {
    if (result.restarted) {
      this.show("ok", "Saved and restarted: the daemon now runs with this configuration.");
      toast(`${this.getDaemon().name} restarted with the new configuration`, "ok");
    } else if (result.restart_required) {
      this.show("note", "Saved. The daemon keeps its old configuration until it is restarted — use Save and restart.");
    } else {
      this.show("ok", "Saved.");
    }
  }

  show(kind, message) {
    this.status.hidden = !kind;
    this.status.className = `editor-status ${kind || ""}`;
    setText(this.status, message || "");
  }

  onKey(event) {
    if ((event.ctrlKey || event.metaKey) && event.key === "s") {
      event.preventDefault();
      $("[data-config-save]", this.root).click();
    } else if (event.key === "Tab" && !event.shiftKey) {
      event.preventDefault();
      this.editor.setRangeText("  ", this.editor.selectionStart, this.editor.selectionEnd, "end");
    }
  }

  paintSchema() {
    const rows = Object.entries(this.schema).map(([key, info]) =>
      h(
        "div.schema-row",
        {},
        h("div", {}, h("span.k", {}, key), h("span.ty", {}, info.type)),
        info.description ? h("div.d", {}, info.description) : null,
        h("div.df", {}, `default: ${JSON.stringify(info.default)}`),
      ),
    );
    replaceChildren($("[data-config-schema]", this.root), ...rows);
  }
}
