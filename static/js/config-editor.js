// The Configuration tab: a JSON editor and, beside it, a form generated from the daemon type's
// JSON Schema (GET /api/daemons/<id>/default-config); the two show the same value. Both are
// checked against the full schema (types, bounds, enums, unknown keys) before anything is sent;
// the server validates again. An edit is sent with If-Match the ETag of the version it started
// from, so a change someone else saved meanwhile is never silently overwritten (412).

import { api } from "./api.js";
import { $, setText } from "./dom.js";
import { SchemaForm, validate } from "./schema-form.js";
import { toast, withBusy } from "./shell.js";

// Keys in one order whatever sent them: the page's first data (Flask sorts keys) and live
// events (PostgreSQL's JSONB order) must compare equal when the configuration is the same,
// or a heartbeat's update reads as "changed while you were editing".
const sortedKeys = (value) => {
  if (Array.isArray(value)) return value.map(sortedKeys);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(Object.keys(value).sort().map((key) => [key, sortedKeys(value[key])]));
};
const pretty = (value) => JSON.stringify(sortedKeys(value ?? {}), null, 2);

export class ConfigEditor {
  constructor(root, getDaemon, onSaved) {
    this.root = root;
    this.getDaemon = getDaemon;
    this.onSaved = onSaved;
    this.editor = $("[data-config-editor]", root);
    this.status = $("[data-config-status]", root);
    this.schema = { properties: {} };
    this.form = new SchemaForm($("[data-config-form]", root), { prefix: "config" });
    this.form.onInput = () => this.formChanged();
    this.saved = null; // configuration as stored, as the editor last loaded it
    this.etag = null; // the ETag of the version the editor shows
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
      this.typing = setTimeout(() => {
        const value = this.check();
        if (value !== null) this.form.render(this.schema, this.effective(value));
      }, 250);
    });
    this.editor.addEventListener("keydown", (event) => this.onKey(event));
  }

  async load() {
    try {
      const body = await api(`/api/daemons/${this.getDaemon().id}/default-config`);
      this.schema = body.schema;
      this.defaultValues = body.default_configuration;
      // The daemon may have arrived first (its editor filled, no form yet): draw the form now.
      this.form.render(this.schema, this.effective(this.getDaemon().configuration));
    } catch (exc) {
      this.show("error", `Could not load the configuration schema — ${exc.message}`);
    }
    this.daemonChanged(this.getDaemon());
  }

  defaults() {
    return { ...this.defaultValues };
  }

  /** What the daemon runs with: the defaults, then the given keys. */
  effective(configuration) {
    return { ...this.defaultValues, ...configuration };
  }

  /** The form changed: write the keys that differ from their defaults into the JSON editor. */
  formChanged() {
    const collected = this.form.collect();
    if (collected.problems) return this.show("error", "Fix the highlighted fields in the form.");
    const changed = Object.fromEntries(
      Object.entries(collected.values).filter(
        ([key, value]) => JSON.stringify(value) !== JSON.stringify(this.defaultValues?.[key]),
      ),
    );
    this.editor.value = pretty(changed);
    this.check();
  }

  /** A daemon_update arrived: follow the stored configuration unless the operator is editing. */
  daemonChanged(daemon) {
    const stored = pretty(daemon.configuration);
    if (this.saved === null || this.editor.value === this.saved) {
      if (this.editor.value !== stored || this.etag === null) {
        this.editor.value = stored;
        if (this.defaultValues) this.form.render(this.schema, this.effective(daemon.configuration));
      }
      this.etag = daemon.etag;
    } else if (stored !== this.saved) {
      this.show("note", "The saved configuration changed while you were editing. Reset to saved to see it.");
    }
    this.saved = stored;
  }

  fill(configuration, message) {
    this.editor.value = pretty(configuration);
    this.form.render(this.schema, this.effective(configuration));
    if (configuration === this.getDaemon().configuration) this.etag = this.getDaemon().etag;
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
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      return this.invalid("The configuration must be a JSON object.");
    }
    const problems = validate(this.schema, this.schema, value);
    if (problems.length) {
      const { key, message } = problems[0];
      this.form.showServerError(key, message);
      return this.invalid(`"${key}" ${message}.`);
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
        const headers = this.etag ? { "If-Match": this.etag } : {};
        const saved = await api(`/api/daemons/${daemon.id}`, { method: "PUT", body: { configuration: patch }, headers });
        this.saved = null;
        this.etag = saved.daemon.etag;
        this.onSaved(saved.daemon);
        if (!restart) return saved;
        const restarted = await api(`/api/daemons/${daemon.id}/restart`, { method: "POST" });
        this.onSaved(restarted.daemon);
        return { ...saved, restarted: true };
      });
      this.reportSaved(result);
    } catch (exc) {
      if (exc.status === 412) {
        return this.invalid("Not saved: someone else changed this daemon while you were editing. Your text is kept; Reset to saved shows their version, then apply your change again.");
      }
      const where = exc.details?.key ? ` (${exc.details.key})` : "";
      if (exc.details?.key) this.form.showServerError(exc.details.key, exc.message);
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
}
