// What every page shares: the live connection and its indicator, the theme, toasts, the
// confirmation dialog and a one-second ticker for "12 s ago" style values.

import { $, h, icon, replaceChildren, setText } from "./dom.js";
import { LiveConnection, liveUrl } from "./live.js";
import { watchSystemHealth } from "./system-health.js";
import { startAlertBadge } from "./alerts-badge.js";

const tickers = new Set();

export function startShell() {
  setupTheme();
  watchSystemHealth();
  const live = new LiveConnection(liveUrl());
  live.on("state", showLiveState);
  startAlertBadge(live);
  $("#live-pill").addEventListener("click", () => live.retryNow());
  setInterval(() => {
    for (const tick of tickers) tick(Date.now());
    if (live.state.name === "reconnecting") showLiveState(live.state);
  }, 1000);
  return live;
}

export function onTick(tick) {
  tickers.add(tick);
  return () => tickers.delete(tick);
}

function showLiveState(state) {
  const pill = $("#live-pill");
  const banner = $("#live-banner");
  pill.dataset.state = state.name;
  const seconds = state.retryAt ? Math.max(0, Math.ceil((state.retryAt - Date.now()) / 1000)) : 0;
  const labels = {
    live: "Live",
    connecting: "Connecting…",
    reconnecting: seconds ? `Reconnecting in ${seconds} s` : "Reconnecting…",
  };
  setText($(".label", pill), labels[state.name]);
  pill.title = state.name === "live" ? "Receiving live updates" : "Click to reconnect now";
  banner.hidden = state.name !== "reconnecting";
  if (!banner.hidden) {
    const attempt = state.attempt ? ` (attempt ${state.attempt})` : "";
    setText($(".text", banner), `Live updates interrupted — ${labels.reconnecting.toLowerCase()}${attempt}. The page will catch up when the connection is back.`);
  }
}

export function setupTheme() {
  const root = document.documentElement;
  const button = $("#theme-toggle");
  const paint = () => {
    const theme = root.dataset.theme === "light" ? "light" : "dark";
    replaceChildren(button, icon(theme === "light" ? "moon" : "sun"));
    button.title = theme === "light" ? "Switch to dark theme" : "Switch to light theme";
  };
  button.addEventListener("click", () => {
    root.dataset.theme = root.dataset.theme === "light" ? "dark" : "light";
    localStorage.setItem("stashhog-theme", root.dataset.theme);
    paint();
  });
  paint();
}

export function toast(message, tone = "info", seconds = 5) {
  const node = h("div.toast", { className: `tone-${tone}`, role: "status" }, message);
  $("#toasts").append(node);
  setTimeout(() => node.remove(), seconds * 1000);
}

export function confirmAction({ title, body, confirm, danger = false }) {
  const dialog = $("#confirm-dialog");
  setText($("h2", dialog), title);
  setText($("p", dialog), body);
  const ok = $("[data-confirm]", dialog);
  setText(ok, confirm);
  ok.className = `btn ${danger ? "danger" : "primary"}`;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

export async function withBusy(button, label, action) {
  // A button that acts shows a spinner and stays disabled until the request is answered.
  const original = [...button.childNodes];
  button.disabled = true;
  button.classList.add("busy");
  replaceChildren(button, h("span.spinner"), label);
  try {
    return await action();
  } finally {
    button.classList.remove("busy");
    replaceChildren(button, ...original);
    button.disabled = false;
  }
}
