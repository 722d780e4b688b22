// The Settings section of a daemon's Configuration tab: name, enabled, auto-start, restart
// policy and budget, as a form generated from the settings JSON Schema (GET /api/daemon-types),
// saved with If-Match; and Delete, with a confirmation that names the daemon.

import { api, url } from "./api.js";
import { dependencyChoices } from "./dependency-view.js";
import { $, setText } from "./dom.js";
import { SchemaForm } from "./schema-form.js";
import { confirmAction, toast, withBusy } from "./shell.js";

const NAME_SCHEMA = {
  type: "string",
  minLength: 1,
  maxLength: 255,
  description: "Unique, 1–255 characters; not a UUID.",
};

export class SettingsEditor {
  constructor(root, getDaemon, onSaved) {
    this.root = root;
    this.getDaemon = getDaemon;
    this.onSaved = onSaved;
    this.form = new SchemaForm($("[data-settings-form]", root), { prefix: "setting" });
    this.form.onInput = () => {
      this.dirty = true;
    };
    this.status = $("[data-settings-status]", root);
    this.dirty = false;
    this.etag = null;
    $("[data-settings-save]", root).addEventListener("click", (event) => this.save(event.currentTarget));
    $("[data-daemon-delete]", root).addEventListener("click", (event) => this.remove(event.currentTarget));
  }

  async load() {
    try {
      const [body, choices] = await Promise.all([api("/api/daemon-types"), dependencyChoices(this.getDaemon().id)]);
      this.form.setChoices("depends_on", choices);
      const schema = body.settings_schema;
      this.schema = { ...schema, properties: { name: NAME_SCHEMA, ...schema.properties } };
      this.paint(this.getDaemon());
    } catch (exc) {
      this.show("error", `Could not load the settings schema — ${exc.message}`);
    }
  }

  /** A daemon_update arrived: follow it unless the operator is editing. */
  daemonChanged(daemon) {
    if (!this.schema) return;
    if (!this.dirty) this.paint(daemon);
    else if (daemon.etag !== this.etag && this.status.hidden) {
      // Once: heartbeats also send updates, and must not hide an error shown meanwhile.
      this.show("note", "These settings were changed elsewhere while you were editing; saving will be refused until you reload them.");
    }
  }

  paint(daemon) {
    const values = Object.fromEntries(Object.keys(this.schema.properties).map((key) => [key, daemon[key]]));
    this.form.render(this.schema, values);
    this.etag = daemon.etag;
    this.dirty = false;
  }

  async save(button) {
    const collected = this.form.collect();
    if (collected.problems) return this.show("error", "Fix the highlighted settings first.");
    const daemon = this.getDaemon();
    const changes = Object.fromEntries(
      Object.entries(collected.values).filter(([key, value]) => JSON.stringify(value) !== JSON.stringify(daemon[key])),
    );
    if (!Object.keys(changes).length) return this.show("ok", "Nothing changed.");
    try {
      const result = await withBusy(button, "Saving…", () =>
        api(`/api/daemons/${daemon.id}`, { method: "PUT", body: changes, headers: { "If-Match": this.etag } }),
      );
      this.dirty = false;
      this.onSaved(result.daemon);
      this.paint(result.daemon);
      this.show("ok", `Saved: ${result.updated.join(", ")}.`);
    } catch (exc) {
      if (exc.status === 412) {
        return this.show("error", "Not saved: someone else changed this daemon while you were editing. Reload the page to see their version, then apply your change again.");
      }
      if (exc.details?.key) this.form.showServerError(exc.details.key, exc.message);
      this.show("error", `Not saved — ${exc.message}`);
    }
  }

  async remove(button) {
    const daemon = this.getDaemon();
    const ok = await confirmAction({
      title: `Delete daemon "${daemon.name}"?`,
      body: `"${daemon.name}" and its logs and job history are deleted for good. The jobs it launched are kept. A running daemon must be stopped first.`,
      confirm: `Delete ${daemon.name}`,
      danger: true,
    });
    if (!ok) return;
    try {
      await withBusy(button, "Deleting…", () => api(`/api/daemons/${daemon.id}`, { method: "DELETE" }));
      toast(`Deleted ${daemon.name}`, "ok");
      location.assign(url("/daemons"));
    } catch (exc) {
      this.show("error", `Not deleted — ${exc.message}`);
    }
  }

  show(kind, message) {
    this.status.hidden = !kind;
    this.status.className = `editor-status ${kind || ""}`;
    setText(this.status, message || "");
  }
}
