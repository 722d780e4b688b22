// System health on every page: a banner when /api/health names a failing part (no worker on
// a queue, Redis or the database unreachable). Polled, since health is not an event.

import { url } from "./api.js";
import { $, setText } from "./dom.js";

const POLL_MS = 10000;
const PARTS = {
  database: "the database is unreachable",
  redis: "Redis is unreachable: no live updates, starts or stops",
  "queue:daemons": "no worker consumes the daemons queue: daemons cannot start",
  "queue:jobs": "no worker consumes the jobs queue: jobs stay pending",
};

export function watchSystemHealth() {
  const check = async () => {
    let report = null;
    try {
      const response = await fetch(url("/api/health"), { headers: { Accept: "application/json" } });
      report = await response.json();
    } catch {
      report = { failing: ["web"] };
    }
    show(report.failing || []);
  };
  check();
  setInterval(check, POLL_MS);
}

function show(failing) {
  const banner = $("#health-banner");
  banner.hidden = failing.length === 0;
  const text = failing.map((part) => PARTS[part] || `${part} is failing`).join("; ");
  setText($(".text", banner), `System problem: ${text}.`);
}
