// The Logs tab: the latest lines from REST, then live daemon_log events, in a terminal.
//
// Lines are kept in memory (up to MEMORY_LINES) and only the newest `windowSize` of them are
// in the DOM, appended once per animation frame, so a long session at 1,000 lines/s stays
// fast. Older lines come back on demand, from memory and then from REST (before_id).
// While a REST read is in flight live lines are held back, then merged by id, so neither a
// reconnect nor a filter change leaves a gap or a duplicate.

import { api, query } from "./api.js";
import { $, downloadText, h, replaceChildren, setText } from "./dom.js";
import { clock } from "./format.js";
import { highlighted, matchesTerms, searchTerms } from "./log-search.js";

const LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"];
const DOM_WINDOW = 1000;
const MEMORY_LINES = 20000;
const PAGE = 500;

const rank = (level) => LEVELS.indexOf(level);

export class LogView {
  constructor(root, daemon) {
    this.root = root;
    this.daemon = daemon;
    this.terminal = $("[data-log-terminal]", root);
    this.lines = []; // what the view shows (filtered), oldest first
    this.pending = []; // arrived while paused
    this.pendingOverflowed = false; // more arrived while paused than memory holds
    this.held = []; // arrived while a REST read was in flight
    this.lastId = 0; // newest line id seen, whatever the filter
    this.level = "DEBUG";
    this.q = ""; // a search (the API's q); its terms filter live lines and are highlighted
    this.terms = [];
    this.generation = undefined; // "this run" only
    this.paused = false;
    this.autoScroll = true;
    this.windowSize = DOM_WINDOW;
    this.rendered = 0; // the newest `rendered` entries of `lines` are in the DOM
    this.undrawn = []; // accepted, waiting for the next animation frame
    this.olderOnServer = false;
    this.loaded = false;
    this.reads = Promise.resolve();
    this.readsInFlight = 0;
    this.frame = null;
    this.bindControls();
  }

  bindControls() {
    const on = (name, event, fn) => $(`[data-log-${name}]`, this.root).addEventListener(event, fn);
    on("level", "change", (event) => this.setLevel(event.target.value));
    on("search", "change", (event) => this.setSearch(event.target.value.trim()));
    on("this-run", "change", (event) => this.setGeneration(event.target.checked ? this.daemon.generation : undefined));
    on("autoscroll", "click", () => this.setAutoScroll(!this.autoScroll));
    on("pause", "click", () => (this.paused ? this.resume() : this.pause()));
    on("clear", "click", () => this.clear());
    on("export", "click", () => this.exportText());
    $("[data-log-paused]", this.root).addEventListener("click", () => this.resume());
    this.terminal.addEventListener("click", (event) => {
      if (event.target.matches("[data-older]")) this.showOlder();
    });
  }

  // -- reading from REST, serialised -------------------------------------------------------
  read(task) {
    this.readsInFlight += 1;
    this.reads = this.reads
      .then(task)
      .catch((exc) => this.showProblem(`Could not load log lines — ${exc.message}`))
      .finally(() => {
        this.readsInFlight -= 1;
        if (!this.readsInFlight) this.releaseHeld();
      });
    return this.reads;
  }

  fetchLogs(params) {
    const level = this.level === "DEBUG" ? undefined : this.level;
    const q = this.q || undefined;
    const path = `/api/daemons/${this.daemon.id}/logs${query({ level, q, generation: this.generation, ...params })}`;
    return api(path).then((body) => body.logs);
  }

  reload() {
    return this.read(() => this.loadNewest());
  }

  /** After a (re)connect: the lines after the last id seen, oldest first, page by page, up
   *  to where the live stream (held meanwhile) takes over, so a fast daemon cannot keep the
   *  catch-up chasing its tail. */
  catchUp() {
    return this.read(async () => {
      if (!this.loaded) return this.loadNewest();
      for (;;) {
        const page = await this.fetchLogs({ after_id: this.lastId, limit: PAGE, order: "asc" });
        this.accept(page);
        const liveFrom = this.held.length ? this.held[0].id : Infinity;
        if (page.length < PAGE || this.lastId + 1 >= liveFrom) return;
      }
    });
  }

  async loadNewest() {
    const newest = await this.fetchLogs({ limit: PAGE, order: "desc" });
    newest.reverse();
    this.lines = newest;
    this.olderOnServer = newest.length === PAGE;
    this.lastId = Math.max(this.lastId, ...newest.map((line) => line.id));
    this.loaded = true;
    this.redraw();
  }

  releaseHeld() {
    const held = this.held;
    this.held = [];
    this.accept(held);
  }

  // -- live lines -------------------------------------------------------------------------
  receive(lines) {
    if (this.readsInFlight) this.held.push(...lines);
    else this.accept(lines);
  }

  accept(lines) {
    const fresh = [];
    for (const line of lines) {
      if (line.id <= this.lastId) continue; // already shown (REST and live overlap)
      this.lastId = line.id;
      if (rank(line.level) < rank(this.level)) continue;
      if (this.terms.length && !matchesTerms(line.message, this.terms)) continue;
      if (this.generation !== undefined && line.generation !== this.generation) continue;
      fresh.push(line);
    }
    if (!fresh.length) return;
    if (this.paused) {
      this.pending.push(...fresh);
      if (this.pending.length > MEMORY_LINES) {
        this.pending.splice(0, this.pending.length - MEMORY_LINES);
        this.pendingOverflowed = true;
      }
      this.paintStatus();
    } else {
      this.add(fresh);
    }
  }

  add(lines) {
    this.lines.push(...lines);
    this.undrawn.push(...lines);
    this.trim(this.lines);
    // A hidden tab draws no frames: only the newest window will be drawn anyway.
    if (this.undrawn.length > 2 * this.windowSize) {
      this.undrawn.splice(0, this.undrawn.length - this.windowSize);
    }
    this.schedule();
  }

  trim(list) {
    if (list.length > MEMORY_LINES) {
      list.splice(0, list.length - MEMORY_LINES);
      this.olderOnServer = true;
    }
  }

  // -- drawing ----------------------------------------------------------------------------
  schedule() {
    if (this.frame === null) this.frame = requestAnimationFrame(() => this.draw());
  }

  draw() {
    this.frame = null;
    const fresh = this.undrawn.slice(-this.windowSize);
    this.undrawn = [];
    if (!fresh.length) return;
    const fragment = document.createDocumentFragment();
    for (const line of fresh) fragment.append(lineNode(line, this.terms));
    $("[data-log-empty]", this.terminal)?.remove();
    this.terminal.append(fragment);
    this.rendered = Math.min(this.rendered + fresh.length, this.lines.length);
    this.trimDom();
    this.afterDraw();
  }

  redraw() {
    const shown = this.lines.slice(-this.windowSize);
    this.undrawn = [];
    replaceChildren(this.terminal, ...shown.map((line) => lineNode(line, this.terms)));
    this.rendered = shown.length;
    if (!shown.length) {
      this.terminal.append(h("div.terminal-empty", { "data-log-empty": true }, this.emptyText()));
    }
    this.afterDraw();
  }

  trimDom() {
    const extra = this.rendered - this.windowSize;
    if (extra <= 0) return;
    // Reading scrollHeight forces a layout: only pay for it when a reader's place must be kept.
    const before = this.autoScroll ? 0 : this.terminal.scrollHeight;
    const first = $(".log-line", this.terminal);
    const range = document.createRange();
    range.setStartBefore(first);
    range.setEndAfter(this.terminal.querySelectorAll(".log-line")[extra - 1]);
    range.deleteContents();
    this.rendered = this.windowSize;
    if (!this.autoScroll) this.terminal.scrollTop -= before - this.terminal.scrollHeight;
  }

  afterDraw() {
    const hidden = this.lines.length - this.rendered;
    let gap = $("[data-log-gap]", this.terminal);
    if (hidden > 0 || this.olderOnServer) {
      if (!gap) {
        const more = h("button", { type: "button", "data-older": true }, "show older");
        gap = h("div.log-gap", { "data-log-gap": true }, h("span"), " — ", more);
      }
      setText(
        gap.firstChild,
        hidden > 0 ? `${hidden.toLocaleString()} older lines hidden` : "Earlier lines are on the server",
      );
      if (this.terminal.firstChild !== gap) this.terminal.prepend(gap);
    } else {
      gap?.remove();
    }
    if (this.autoScroll) this.terminal.scrollTop = this.terminal.scrollHeight;
    this.paintStatus();
  }

  async showOlder() {
    this.setAutoScroll(false);
    const hidden = this.lines.length - this.rendered;
    if (hidden <= 0 && this.olderOnServer) {
      await this.read(async () => {
        const before = this.lines.length ? this.lines[0].id : this.lastId + 1;
        const older = await this.fetchLogs({ before_id: before, limit: PAGE, order: "desc" });
        this.olderOnServer = older.length === PAGE;
        this.lines.unshift(...older.reverse());
      });
    }
    const top = this.terminal.scrollHeight - this.terminal.scrollTop;
    this.windowSize = Math.min(this.windowSize + PAGE, MEMORY_LINES);
    this.redraw();
    this.terminal.scrollTop = this.terminal.scrollHeight - top;
  }

  emptyText() {
    if (!this.loaded) return "Loading log lines…";
    const filter = this.level === "DEBUG" ? "" : ` at ${this.level} or above`;
    return `No log lines${filter} yet. New lines appear here as the daemon writes them.`;
  }

  paintStatus() {
    const parts = [`${this.lines.length.toLocaleString()} lines`];
    if (this.lines.length > this.rendered) parts.push(`${this.rendered.toLocaleString()} in view`);
    if (this.lastId) parts.push(`last id ${this.lastId}`);
    setText($("[data-log-status]", this.root), parts.join(" · "));
    const note = $("[data-log-paused]", this.root);
    note.hidden = !this.paused;
    setText(note, `Paused — ${this.pending.length.toLocaleString()} new lines waiting · click to resume`);
  }

  showProblem(message) {
    this.terminal.append(h("div.log-gap", {}, message));
  }

  // -- controls ---------------------------------------------------------------------------
  setSearch(q) {
    this.q = q;
    this.terms = searchTerms(q);
    this.setLevel(this.level);
  }

  setGeneration(generation) {
    this.generation = generation;
    this.setLevel(this.level);
  }

  setLevel(level) {
    this.level = level;
    this.lines = [];
    this.pending = [];
    this.pendingOverflowed = false;
    this.windowSize = DOM_WINDOW;
    this.loaded = false;
    this.redraw();
    this.reload();
  }

  setAutoScroll(on) {
    this.autoScroll = on;
    $("[data-log-autoscroll]", this.root).setAttribute("aria-pressed", String(on));
    if (on && this.windowSize !== DOM_WINDOW) {
      this.windowSize = DOM_WINDOW;
      this.redraw();
    }
    if (on) this.terminal.scrollTop = this.terminal.scrollHeight;
  }

  pause() {
    this.paused = true;
    const button = $("[data-log-pause]", this.root);
    setText($("span", button), "Resume");
    button.setAttribute("aria-pressed", "true");
    this.paintStatus();
  }

  resume() {
    this.paused = false;
    const button = $("[data-log-pause]", this.root);
    setText($("span", button), "Pause");
    button.setAttribute("aria-pressed", "false");
    const pending = this.pending;
    this.pending = [];
    if (this.pendingOverflowed) {
      // More arrived than memory holds: start the view at the oldest line kept, so it has
      // no hidden hole; what came before is one "show older" away on the server.
      this.pendingOverflowed = false;
      this.lines = [];
      this.olderOnServer = true;
      this.lines.push(...pending);
      this.redraw();
    } else {
      this.add(pending);
    }
    this.paintStatus();
  }

  clear() {
    this.lines = [];
    this.pending = [];
    this.olderOnServer = true;
    this.windowSize = DOM_WINDOW;
    this.redraw();
  }

  /** The lines the view holds under the current filter (not only the window in the DOM). */
  exportText() {
    const text = this.lines.map(formatLine).join("\n") + (this.lines.length ? "\n" : "");
    const stamp = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
    const slug = this.daemon.name.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
    downloadText(`${slug || "daemon"}-logs-${stamp}.txt`, text);
  }
}

function lineNode(line, terms = []) {
  return h(
    "div.log-line",
    { className: `lvl-${line.level}`, dataset: { id: line.id } },
    h("span.t", { title: line.created_at }, clock(line.created_at)),
    h("span.l", {}, line.level),
    h("span.m", {}, ...highlighted(line.message, terms)),
  );
}

export function formatLine(line) {
  return `${line.created_at} ${line.level.padEnd(7)} ${line.message}`;
}
