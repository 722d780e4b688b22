// Dependencies in the panel: "needs X" on a card, the daemons a Settings form may pick for
// depends_on, and the daemons page's dependency view (GET /api/daemons/dependencies: every
// daemon in start order, with what it needs and what needs it). The graph and its order are
// the server's (stashhog.services.daemon_dependencies); the page only draws them.

import { api, url } from "./api.js";
import { $, h, replaceChildren } from "./dom.js";
import { statusTone } from "./daemon-view.js";

/** The other daemons, as {value: id, label: name} choices for `depends_on`. */
export async function dependencyChoices(exceptId = null) {
  const { daemons } = await api("/api/daemons");
  return daemons.filter((daemon) => daemon.id !== exceptId).map((daemon) => ({ value: daemon.id, label: daemon.name }));
}

function daemonLink(ref, lookup, waiting = []) {
  const known = lookup(ref.id);
  const tone = known ? statusTone(known.status) : "idle";
  const title = known ? `${known.name}: ${known.status}` : ref.name;
  return h(
    "a.need",
    { href: url(`/daemons/${ref.id}`), className: `tone-${tone}${waiting.includes(ref.name) ? " waiting" : ""}`, title },
    h("span.dot"),
    ref.name,
  );
}

function joined(links) {
  return links.flatMap((link, index) => (index ? [", ", link] : [link]));
}

/** "needs A, B" (each coloured by its status), or hidden when the daemon needs nothing.
 *  `lookup(id)` gives a daemon the page knows (for its name and status). */
export function paintNeeds(node, daemon, lookup) {
  const ids = daemon.depends_on || [];
  node.hidden = !ids.length;
  if (!ids.length) return replaceChildren(node);
  const refs = ids.map((id) => ({ id, name: lookup(id)?.name || "unknown daemon" }));
  const waiting = daemon.waiting_for || [];
  const label = waiting.length ? "waiting for" : "needs";
  node.classList.toggle("is-waiting", waiting.length > 0);
  replaceChildren(node, h("span.label", {}, label), " ", joined(refs.map((ref) => daemonLink(ref, lookup, waiting))));
}

/** The dependency view: a row per daemon in start order — step, daemon, needs, needed by. */
export class DependencyView {
  constructor(root, lookup) {
    this.root = root;
    this.lookup = lookup;
    this.graph = null;
    this.pending = null;
  }

  /** Read the graph again (soon, once, however many changes ask for it). */
  refresh() {
    if (this.pending) return;
    this.pending = setTimeout(async () => {
      try {
        this.graph = await api("/api/daemons/dependencies");
        this.paint();
      } catch {
        // the next change asks again; the cards still show "needs"
      } finally {
        this.pending = null;
      }
    }, 150);
  }

  paint() {
    if (!this.graph) return;
    const { daemons, edges } = this.graph;
    this.root.hidden = false;
    const body = $("[data-deps-body]", this.root);
    if (!edges) {
      replaceChildren(body, h("p.muted", {}, "No daemon depends on another. Set depends_on in a daemon's Settings: what it needs then starts first, and stops after it."));
      return;
    }
    const rows = daemons
      .filter((daemon) => daemon.needs.length || daemon.needed_by.length)
      .map((daemon) =>
        h(
          "tr",
          { dataset: { daemonId: daemon.id } },
          h("td.step", {}, String(daemon.depth + 1)),
          h("td", {}, daemonLink(daemon, this.lookup)),
          h("td", {}, daemon.needs.length ? joined(daemon.needs.map((ref) => daemonLink(ref, this.lookup))) : h("span.muted", {}, "—")),
          h("td", {}, daemon.needed_by.length ? joined(daemon.needed_by.map((ref) => daemonLink(ref, this.lookup))) : h("span.muted", {}, "—")),
        ),
      );
    replaceChildren(
      body,
      h("p.muted", {}, "Start order: a daemon starts once what it needs is running with a heartbeat; a stop takes what needs it down first."),
      h(
        "div.table-wrap",
        {},
        h("table.data.deps-table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Step"), h("th", {}, "Daemon"), h("th", {}, "Needs"), h("th", {}, "Needed by"))), h("tbody", {}, rows)),
      ),
    );
  }
}
