// The header's alert badge: the number of alerts firing, read at load and moved by
// alert_update events (each carries the count).

import { api } from "./api.js";
import { setText } from "./dom.js";

export function startAlertBadge(live) {
  const badge = document.querySelector("[data-alert-badge]");
  if (!badge) return;
  const paint = (count) => {
    setText(badge, count ? String(count) : "");
    badge.hidden = !count;
    badge.title = `${count} alert(s) firing`;
  };
  api("/api/alerts?status=firing&limit=1").then((body) => paint(body.firing), () => {});
  live.on("alert_update", (event) => paint(event.firing));
}
