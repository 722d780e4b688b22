// System health on every page: a banner when /api/health names a failing part (no worker on
// a queue, Redis or the database unreachable), or a warning (every daemons worker slot busy).
// Polled, since health is not an event.

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
    show(report.failing || [], report.warnings || []);
  };
  check();
  setInterval(check, POLL_MS);
}

function show(failing, warnings) {
  const banner = $("#health-banner");
  banner.hidden = failing.length === 0 && warnings.length === 0;
  banner.classList.toggle("error", failing.length > 0);
  const problems = failing.map((part) => PARTS[part] || `${part} is failing`).join("; ");
  const text = [
    problems && `System problem: ${problems}.`,
    warnings.length && `Warning: ${warnings.join("; ")}: new daemons cannot start.`,
  ];
  setText($(".text", banner), text.filter(Boolean).join(" "));
}
