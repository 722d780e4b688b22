// /library: the files as a thumbnail grid or a table, filtered by status and path, paged by
// path (keyset), kept live while METADATA_GENERATE jobs run.

import { api, query, url } from "../api.js";
import { $, h, replaceChildren, setText } from "../dom.js";
import { startShell, toast } from "../shell.js";
import { codecText, cover, durationText, mediaFacts, refreshWhileJobsRun, resolutionText, sizeText, statusBadge } from "./library-view.js";

const PAGE = 60;
const filters = { status: $("[data-filter-status]"), q: $("[data-filter-q]") };
const grid = $("[data-media-grid]");
const tbody = $("[data-media-rows]");
const shown = new Map(); // id -> {card, row}
let nextAfter = null;
let view = localStorage.getItem("stashhog-library-view") === "table" ? "table" : "grid";
let generation = 0; // answers to an older filter are ignored

function card(file) {
  return h(
    "a.media-card",
    { href: url(`/library/${file.id}`), dataset: { fileId: file.id, status: file.status }, title: file.path },
    h("div.media-cover-box", {}, cover(file)),
    h("div.media-name", {}, file.name),
    h("div.media-meta", {}, ...mediaFacts(file)),
    statusBadge(file.status),
  );
}

function row(file) {
  return h(
    "tr",
    { dataset: { fileId: file.id, status: file.status } },
    h("td", {}, cover(file, "media-thumb-small")),
    h("td.wrap", { title: file.path }, h("a", { href: url(`/library/${file.id}`) }, file.name), h("div.faint.mono", {}, file.path)),
    h("td", {}, statusBadge(file.status)),
    h("td.num", {}, durationText(file.duration)),
    h("td.num", {}, resolutionText(file)),
    h("td", {}, codecText(file)),
    h("td.num", {}, sizeText(file.size)),
  );
}

function upsert(file) {
  const old = shown.get(file.id);
  if (old && old.file.updated_at === file.updated_at) return;
  const entry = { file, card: card(file), row: row(file) };
  if (old) {
    old.card.replaceWith(entry.card);
    old.row.replaceWith(entry.row);
  } else {
    grid.append(entry.card);
    tbody.append(entry.row);
  }
  shown.set(file.id, entry);
}

function paintCounts(counts) {
  const order = ["ready", "pending", "failed", "missing"];
  const total = order.reduce((sum, status) => sum + (counts[status] || 0), 0);
  replaceChildren(
    $("[data-library-counts]"),
    h("span", {}, h("b", {}, total.toLocaleString()), " files"),
    ...order.map((status) => h("span", { dataset: { count: status } }, h("b", {}, (counts[status] || 0).toLocaleString()), ` ${status}`)),
  );
}

function paintChrome() {
  grid.hidden = view !== "grid";
  $("[data-media-table]").hidden = view !== "table";
  for (const button of document.querySelectorAll("[data-view]")) button.setAttribute("aria-pressed", String(button.dataset.view === view));
  $("[data-media-empty]").hidden = shown.size > 0;
  $("[data-media-pager]").hidden = shown.size === 0;
  $("[data-media-more]").hidden = nextAfter === null;
  setText($("[data-media-shown]"), `${shown.size.toLocaleString()} shown${nextAfter === null ? "" : " · more below"}`);
}

function params(extra) {
  return { status: filters.status.value, q: filters.q.value.trim(), ...extra };
}

async function load({ append = false } = {}) {
  const mine = append ? generation : ++generation;
  const limit = append ? PAGE : Math.max(PAGE, Math.min(500, shown.size));
  try {
    const body = await api(`/api/media${query(params({ limit, after: append ? nextAfter : undefined }))}`);
    if (mine !== generation) return;
    if (!append) {
      const keep = new Set(body.files.map((file) => file.id));
      for (const [id, entry] of shown) {
        if (keep.has(id)) continue;
        entry.card.remove();
        entry.row.remove();
        shown.delete(id);
      }
    }
    for (const file of body.files) upsert(file);
    if (!append) reorder(body.files);
    nextAfter = body.next_after;
    paintCounts(body.counts);
    paintChrome();
  } catch (exc) {
    toast(`Could not load the library — ${exc.message}`, "bad", 8);
  }
}

function reorder(files) {
  // Keep path order after a refresh inserted files in the middle.
  for (const file of files) {
    const entry = shown.get(file.id);
    grid.append(entry.card);
    tbody.append(entry.row);
  }
}

function refilter() {
  const search = params({});
  history.replaceState(null, "", url(`/library${query(search)}`));
  nextAfter = null;
  load();
}

const initial = new URLSearchParams(location.search);
filters.status.value = initial.get("status") || "";
filters.q.value = initial.get("q") || "";
filters.status.addEventListener("change", refilter);
let typing = null;
filters.q.addEventListener("input", () => {
  clearTimeout(typing);
  typing = setTimeout(refilter, 250);
});
for (const button of document.querySelectorAll("[data-view]")) {
  button.addEventListener("click", () => {
    view = button.dataset.view;
    localStorage.setItem("stashhog-library-view", view);
    paintChrome();
  });
}
$("[data-media-more]").addEventListener("click", () => load({ append: true }));

const live = startShell();
refreshWhileJobsRun(live, () => load());
paintChrome();
load();
live.start();
