// The live connection to WS /api/daemons/ws, kept open with backoff.
//
// Pages register handlers per event type. After every (re)connect, once the daemons this
// page follows are subscribed again and the relay answers, "synced" fires: pages then re-read
// from REST whatever they show (logs after the last id seen), so a drop never leaves a gap.
// The relay sends "resync" when it had lost Redis; that is handled the same way.

import { url } from "./api.js";

const BACKOFF_SECONDS = [0.5, 1, 2, 4, 8, 15];
const PING_SECONDS = 20;

export class LiveConnection {
  constructor(url) {
    this.url = url;
    this.handlers = new Map();
    this.subscriptions = new Set();
    this.awaitingSync = false;
    this.attempt = 0;
    this.connects = 0;
    this.socket = null;
    this.retryTimer = null;
    this.pingTimer = null;
    this.state = { name: "connecting" };
  }

  on(type, handler) {
    if (!this.handlers.has(type)) this.handlers.set(type, []);
    this.handlers.get(type).push(handler);
    return this;
  }

  emit(type, payload) {
    for (const handler of this.handlers.get(type) || []) {
      try {
        handler(payload);
      } catch (exc) {
        console.error(`live handler for ${type} failed`, exc);
      }
    }
  }

  subscribe(daemonId) {
    this.subscriptions.add(daemonId);
    this.send({ command: "subscribe", daemon_id: daemonId });
  }

  send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(message));
    }
  }

  start() {
    this.connect();
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && this.state.name === "reconnecting") this.retryNow();
    });
  }

  retryNow() {
    if (this.socket) return;
    clearTimeout(this.retryTimer);
    this.connect();
  }

  setState(name, extra = {}) {
    this.state = { name, attempt: this.attempt, ...extra };
    this.emit("state", this.state);
  }

  connect() {
    this.setState(this.connects ? "reconnecting" : "connecting", { retryAt: null });
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.onopen = () => this.opened(socket);
    socket.onmessage = (event) => this.received(event.data);
    socket.onclose = () => this.closed(socket);
  }

  opened(socket) {
    this.attempt = 0;
    this.connects += 1;
    this.setState("live");
    for (const daemonId of this.subscriptions) this.send({ command: "subscribe", daemon_id: daemonId });
    // Commands are answered in order: this pong means every subscription above is in place
    // and the relay delivers from here on, so a page may read REST then without a gap.
    this.awaitingSync = true;
    this.send({ type: "ping" });
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => this.send({ type: "ping" }), PING_SECONDS * 1000);
  }

  received(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (message.type === "pong" && this.awaitingSync) {
      this.awaitingSync = false;
      this.emit("synced", { first: this.connects === 1 });
      return;
    }
    if (message.type === "resync") {
      this.emit("synced", { first: false });
      return;
    }
    if (message.type === "error") console.warn("live connection:", message.message);
    this.emit(message.type, message);
  }

  closed(socket) {
    if (this.socket !== socket) return;
    this.socket = null;
    clearInterval(this.pingTimer);
    const base = BACKOFF_SECONDS[Math.min(this.attempt, BACKOFF_SECONDS.length - 1)];
    const delay = base * (0.8 + Math.random() * 0.4);
    this.attempt += 1;
    this.setState("reconnecting", { retryAt: Date.now() + delay * 1000 });
    this.retryTimer = setTimeout(() => this.connect(), delay * 1000);
  }
}

export function liveUrl() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}${url("/api/daemons/ws")}`;
}
