// Log search in the browser: the same syntax as the API's q (words, "quoted phrases",
// -excluded), to filter live lines while a search is shown and to highlight matches.

import { h } from "./dom.js";

export function searchTerms(q) {
  const terms = [];
  for (const match of (q || "").matchAll(/(-?)"([^"]*)"|(-?)(\S+)/g)) {
    const text = (match[2] ?? match[4] ?? "").trim();
    if (text && text !== "-") terms.push({ excluded: Boolean(match[1] || match[3]), text: text.toLowerCase() });
  }
  return terms;
}

export function matchesTerms(message, terms) {
  const lower = message.toLowerCase();
  return terms.every((term) => lower.includes(term.text) !== term.excluded);
}

// The message as text nodes with each match of a wanted term in a <mark> (never innerHTML).
export function highlighted(message, terms) {
  const wanted = terms.filter((term) => !term.excluded).map((term) => term.text);
  if (!wanted.length) return [message];
  const lower = message.toLowerCase();
  const parts = [];
  let at = 0;
  while (at < message.length) {
    let next = -1;
    let length = 0;
    for (const text of wanted) {
      const found = lower.indexOf(text, at);
      if (found !== -1 && (next === -1 || found < next)) [next, length] = [found, text.length];
    }
    if (next === -1) break;
    if (next > at) parts.push(message.slice(at, next));
    parts.push(h("mark", {}, message.slice(next, next + length)));
    at = next + length;
  }
  if (at < message.length) parts.push(message.slice(at));
  return parts;
}
