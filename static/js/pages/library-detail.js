// /library/<id>: one file's cover and every piece of its metadata, re-read while
// METADATA_GENERATE jobs run (the file may be the one being generated).

import { api, url } from "../api.js";
import { $, h, replaceChildren, setText } from "../dom.js";
import { dateTime } from "../format.js";
import { startShell, toast } from "../shell.js";
import { codecText, cover, durationText, paintStatus, refreshWhileJobsRun, resolutionText, sizeText } from "./library-view.js";

let file = JSON.parse($("#media-boot").textContent);

function facts(f) {
  const rate = f.frame_rate ? `${f.frame_rate} fps` : "—";
  const bitRate = f.bit_rate ? `${Math.round(f.bit_rate / 1000).toLocaleString()} kb/s` : "—";
  return [
    ["Status", f.status],
    ["Kind", f.kind],
    ["Duration", durationText(f.duration)],
    ["Resolution", resolutionText(f)],
    ["Frame rate", rate],
    ["Codecs", codecText(f)],
    ["Container", f.container || "—"],
    ["Bit rate", bitRate],
    ["Size", `${sizeText(f.size)} (${f.size.toLocaleString()} bytes)`],
    ["Checksum (oshash)", f.checksum || "—"],
    ["Perceptual hash", f.phash || "—"],
    ["Generated", f.outputs.length ? `${f.outputs.join(", ")} · ${dateTime(f.generated_at)}` : "not yet"],
    ["Generator version", String(f.generator_version)],
    ["Folder", f.root],
    ["Missing since", f.missing_since ? dateTime(f.missing_since) : "—"],
    ["Job", f.job_id ? h("a.mono", { href: url(`/jobs/${f.job_id}`) }, f.job_id) : "—"],
  ];
}

function paint() {
  setText($("[data-media-name]"), file.name);
  setText($("[data-media-crumb]"), file.name);
  setText($("[data-media-path]"), file.path);
  paintStatus($("[data-media-badge]"), file.status);
  replaceChildren($("[data-media-cover]"), cover(file, "media-cover-image"));
  const error = $("[data-media-error]");
  error.hidden = !file.error;
  setText(error, file.error || "");
  replaceChildren(
    $("[data-media-facts]"),
    ...facts(file).map(([label, value]) => h("tr", { dataset: { fact: label } }, h("th", {}, label), h("td.mono", {}, value))),
  );
}

async function reload() {
  try {
    const fresh = await api(`/api/media/${file.id}`);
    if (fresh.updated_at !== file.updated_at) {
      file = fresh;
      paint();
    }
  } catch (exc) {
    toast(`Could not refresh this file — ${exc.message}`, "bad", 8);
  }
}

const live = startShell();
refreshWhileJobsRun(live, reload);
paint();
live.start();
