// /library/duplicates: groups of files whose perceptual hashes are within the chosen
// distance, largest groups first.

import { api, query, url } from "../api.js";
import { $, h, replaceChildren, setText } from "../dom.js";
import { startShell, toast } from "../shell.js";
import { cover, mediaFacts, refreshWhileJobsRun, sizeText, statusBadge } from "./library-view.js";

const input = $("[data-max-distance]");
let asked = 0;

function group(entry, index) {
  return h(
    "section.panel.duplicate-group",
    { dataset: { group: String(index) } },
    h("h2", {}, `${entry.files.length} files`, h("span.muted", {}, ` · up to ${entry.distance} bits apart`)),
    h(
      "div.media-grid",
      {},
      entry.files.map((file) =>
        h(
          "a.media-card",
          { href: url(`/library/${file.id}`), title: file.path, dataset: { fileId: file.id } },
          h("div.media-cover-box", {}, cover(file)),
          h("div.media-name", {}, file.name),
          h("div.media-meta", {}, ...mediaFacts(file), h("span", {}, sizeText(file.size))),
          statusBadge(file.status),
        ),
      ),
    ),
  );
}

async function load() {
  const distance = Math.max(0, Math.min(32, Math.round(Number(input.value) || 0)));
  const mine = ++asked;
  history.replaceState(null, "", url(`/library/duplicates${query({ max_distance: distance })}`));
  try {
    const body = await api(`/api/media/duplicates${query({ max_distance: distance })}`);
    if (mine !== asked) return;
    replaceChildren($("[data-duplicate-groups]"), body.groups.map(group));
    $("[data-duplicates-empty]").hidden = body.groups.length > 0;
    const files = body.groups.reduce((sum, g) => sum + g.files.length, 0);
    setText($("[data-duplicates-summary]"), `${body.groups.length} groups · ${files} files within ${body.max_distance} bits`);
  } catch (exc) {
    toast(`Could not load duplicates — ${exc.message}`, "bad", 8);
  }
}

const initial = new URLSearchParams(location.search).get("max_distance");
if (initial !== null) input.value = initial;
input.addEventListener("change", load);
const live = startShell();
refreshWhileJobsRun(live, load);
load();
live.start();
