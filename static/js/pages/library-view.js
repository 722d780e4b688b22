// Pieces the Library pages share: a file's status badge, cover, and its numbers as an
// operator reads them; and live refresh while METADATA_GENERATE jobs run.

import { h, replaceChildren } from "../dom.js";

const STATUS_TONES = { ready: "ok", pending: "info", failed: "bad", missing: "idle" };
const REFRESH_MS = 1000; // at most one re-read a second, however many job events arrive

export function statusBadge(status) {
  const node = h("span.badge");
  paintStatus(node, status);
  return node;
}

export function paintStatus(node, status) {
  node.className = `badge tone-${STATUS_TONES[status] || "idle"}`;
  node.classList.toggle("pulse", status === "pending");
  replaceChildren(node, h("span.dot"), status || "unknown");
}

export function cover(file, className = "media-thumb") {
  if (!file.thumbnail_url) {
    return h(`div.${className}.placeholder`, { title: file.error || "no thumbnail yet" }, file.kind === "image" ? "IMG" : "VIDEO");
  }
  return h(`img.${className}`, { src: file.thumbnail_url, alt: `cover of ${file.name}`, loading: "lazy" });
}

export function durationText(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const total = Math.round(seconds);
  const hh = Math.floor(total / 3600);
  const mm = Math.floor((total % 3600) / 60);
  const ss = String(total % 60).padStart(2, "0");
  return hh ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

export function resolutionText(file) {
  return file.width && file.height ? `${file.width}×${file.height}` : "—";
}

export function codecText(file) {
  return [file.video_codec, file.audio_codec].filter(Boolean).join(" / ") || file.container || "—";
}

export function sizeText(bytes) {
  if (bytes === null || bytes === undefined) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit && value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function mediaFacts(file) {
  return [
    h("span", {}, durationText(file.duration)),
    h("span", {}, resolutionText(file)),
    h("span", {}, codecText(file)),
  ];
}

/** Call `reload` (debounced) whenever a METADATA_GENERATE job moves, and after a reconnect. */
export function refreshWhileJobsRun(live, reload) {
  let timer = null;
  const schedule = () => {
    if (timer === null) timer = setTimeout(() => ((timer = null), reload()), REFRESH_MS);
  };
  live.on("job_update", (event) => {
    if (event.job && event.job.type === "METADATA_GENERATE") schedule();
  });
  live.on("synced", (event) => {
    if (!event.first) reload();
  });
}
