// Times, durations and ids as an operator reads them.

export function parseTime(iso) {
  return iso ? new Date(iso).getTime() : null;
}

export function ago(iso, now = Date.now()) {
  const then = parseTime(iso);
  if (then === null) return "never";
  const seconds = Math.max(0, Math.round((now - then) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  let s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const hh = Math.floor(s / 3600);
  s -= hh * 3600;
  const mm = Math.floor(s / 60);
  s -= mm * 60;
  if (d) return `${d}d ${hh}h ${mm}m`;
  if (hh) return `${hh}h ${mm}m ${s}s`;
  if (mm) return `${mm}m ${s}s`;
  return `${s}s`;
}

const pad = (n, width = 2) => String(n).padStart(width, "0");

export function clock(iso) {
  const t = new Date(iso);
  return `${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}.${pad(t.getMilliseconds(), 3)}`;
}

export function dateTime(iso) {
  if (!iso) return "—";
  const t = new Date(iso);
  return `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())} ${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}`;
}

export function shortId(id) {
  return id ? String(id).slice(0, 8) : "—";
}

export function isNewer(candidate, current) {
  // Rows carry updated_at; an older snapshot (a slow REST reply) never overwrites a newer event.
  if (!current) return true;
  const a = parseTime(candidate.updated_at ?? candidate.timestamp);
  const b = parseTime(current.updated_at);
  return a === null || b === null || a >= b;
}
