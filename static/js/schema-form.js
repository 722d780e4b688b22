// Forms generated from a JSON Schema (a daemon type's configuration, as pydantic's
// model_json_schema() gives it), and the validation the browser does before sending: the same
// rules the server applies (types, bounds, enums, unknown keys), so a bad value is shown next to
// its field at once; the server's 422 is shown the same way.

import { h, replaceChildren, setText } from "./dom.js";

const TYPE_CHECKS = {
  number: (v) => typeof v === "number" && Number.isFinite(v),
  integer: (v) => Number.isInteger(v),
  boolean: (v) => typeof v === "boolean",
  string: (v) => typeof v === "string",
  object: (v) => v !== null && typeof v === "object" && !Array.isArray(v),
  array: (v) => Array.isArray(v),
  null: (v) => v === null,
};

/** The property schema with `$ref` resolved and `Optional[...]` (anyOf with null) noted. */
export function resolve(root, schema) {
  let node = schema || {};
  for (let hops = 0; node.$ref && hops < 10; hops += 1) {
    const name = node.$ref.split("/").pop();
    node = { ...((root.$defs || {})[name] || {}), ...node, $ref: undefined };
  }
  if (Array.isArray(node.anyOf)) {
    const options = node.anyOf.map((option) => resolve(root, option));
    const real = options.filter((option) => option.type !== "null");
    if (real.length === 1) return { ...real[0], ...strip(node), nullable: real.length < options.length };
  }
  return node;
}

function strip(node) {
  const { anyOf, ...rest } = node;
  return rest;
}

/** Every problem with `value` against `schema`, as [{key, message}] with dotted keys. */
export function validate(root, schema, value, key = "") {
  const node = resolve(root, schema);
  if (value === null && node.nullable) return [];
  if (node.enum && !node.enum.some((option) => option === value)) {
    return [{ key, message: `must be one of ${node.enum.map((o) => JSON.stringify(o)).join(", ")}` }];
  }
  const types = [].concat(node.type || []);
  if (types.length && !types.some((type) => TYPE_CHECKS[type]?.(value))) {
    return [{ key, message: `must be ${types.includes("integer") ? "a whole number" : `of type ${types.join(" or ")}`}` }];
  }
  if (typeof value === "number") return numberProblems(node, value, key);
  if (typeof value === "string") return stringProblems(node, value, key);
  if (Array.isArray(value)) return arrayProblems(root, node, value, key);
  if (TYPE_CHECKS.object(value)) return objectProblems(root, node, value, key);
  return [];
}

function numberProblems(node, value, key) {
  const rules = [
    ["minimum", (v, b) => v >= b, "at least"],
    ["exclusiveMinimum", (v, b) => v > b, "greater than"],
    ["maximum", (v, b) => v <= b, "at most"],
    ["exclusiveMaximum", (v, b) => v < b, "less than"],
  ];
  for (const [name, holds, words] of rules) {
    if (node[name] !== undefined && !holds(value, node[name])) {
      return [{ key, message: `must be ${words} ${node[name]}` }];
    }
  }
  return [];
}

function stringProblems(node, value, key) {
  if (node.minLength !== undefined && value.length < node.minLength) {
    return [{ key, message: `must have at least ${node.minLength} characters` }];
  }
  if (node.maxLength !== undefined && value.length > node.maxLength) {
    return [{ key, message: `must have at most ${node.maxLength} characters` }];
  }
  return [];
}

function arrayProblems(root, node, value, key) {
  if (node.minItems !== undefined && value.length < node.minItems) {
    return [{ key, message: `needs at least ${node.minItems} items` }];
  }
  if (node.maxItems !== undefined && value.length > node.maxItems) {
    return [{ key, message: `takes at most ${node.maxItems} items` }];
  }
  if (!node.items) return [];
  return value.flatMap((item, index) => validate(root, node.items, item, join(key, index)));
}

function objectProblems(root, node, value, key) {
  const properties = node.properties || {};
  const problems = [];
  for (const name of node.required || []) {
    if (!(name in value)) problems.push({ key: join(key, name), message: "is required" });
  }
  for (const [name, item] of Object.entries(value)) {
    if (properties[name]) problems.push(...validate(root, properties[name], item, join(key, name)));
    else if (node.additionalProperties === false) {
      problems.push({ key: join(key, name), message: "unknown key" });
    } else if (TYPE_CHECKS.object(node.additionalProperties)) {
      problems.push(...validate(root, node.additionalProperties, item, join(key, name)));
    }
  }
  return problems;
}

const join = (key, part) => (key === "" ? String(part) : `${key}.${part}`);

/** What kind of control a property gets. */
export function fieldKind(node) {
  if (node.enum) return "enum";
  const type = [].concat(node.type || ["object"]).find((t) => t !== "null");
  if (type === "array" && ["string", "number", "integer"].includes(node.items?.type)) return "list";
  return { number: "number", integer: "number", boolean: "boolean", string: "string" }[type] || "json";
}

/** One field per configuration key, named after it, with its description, default and bounds. */
export class SchemaForm {
  constructor(container, { prefix = "config" } = {}) {
    this.container = container;
    this.prefix = prefix;
    this.schema = { properties: {} };
    this.fields = new Map(); // key -> {node, kind, input, error}
    this.choices = {}; // key -> [{value, label}]: a list of strings picked with checkboxes
    this.onInput = null;
  }

  /** Offer `options` ([{value, label}]) as checkboxes for a list-of-strings key (from the
   *  next render on), e.g. the daemons a daemon may depend on. */
  setChoices(key, options) {
    this.choices[key] = options;
  }

  render(schema, values = {}) {
    this.schema = schema || { properties: {} };
    this.fields.clear();
    const rows = Object.entries(this.schema.properties || {}).map(([key, raw]) =>
      this.renderField(key, resolve(this.schema, raw), values[key]),
    );
    replaceChildren(this.container, rows.length ? rows : h("p.muted", {}, "This type has no settings."));
  }

  renderField(key, node, value) {
    const kind = this.choices[key] && fieldKind(node) === "list" ? "choices" : fieldKind(node);
    const id = `${this.prefix}-${key}`;
    const input = this.control(kind, node, id, key);
    const error = h("p.field-error", { id: `${id}-error`, role: "alert", hidden: true });
    input.setAttribute("aria-describedby", `${id}-help ${id}-error`);
    input.addEventListener("input", () => {
      this.check(key);
      this.onInput?.(key);
    });
    this.fields.set(key, { node, kind, input, error });
    this.set(key, value === undefined ? node.default : value);
    const label = h("label", { for: id }, key);
    const help = h("p.field-help", { id: `${id}-help` }, describe(node));
    return h("div.form-field", { dataset: { field: key, kind } }, label, input, help, error);
  }

  control(kind, node, id, key) {
    if (kind === "boolean") return h("input", { type: "checkbox", id, name: key });
    if (kind === "choices") {
      const options = this.choices[key].map((option) =>
        h("label.choice", {}, h("input", { type: "checkbox", name: key, value: option.value }), option.label),
      );
      return h("div.choices", { id, role: "group" }, options.length ? options : h("span.muted", {}, "Nothing to choose from."));
    }
    if (kind === "enum") {
      return h("select", { id, name: key }, node.enum.map((o) => h("option", { value: JSON.stringify(o) }, String(o))));
    }
    if (kind === "number") {
      const integer = [].concat(node.type).includes("integer");
      return h("input", {
        type: "number", id, name: key, step: integer ? "1" : "any",
        min: node.minimum ?? node.exclusiveMinimum, max: node.maximum ?? node.exclusiveMaximum,
      });
    }
    if (kind === "string") {
      // A write-only key (a token): typed unseen, and never filled back from the server.
      const type = node.writeOnly ? "password" : "text";
      return h("input", { type, id, name: key, maxlength: node.maxLength, autocomplete: node.writeOnly ? "new-password" : "off" });
    }
    const rows = kind === "list" ? 4 : 5;
    return h("textarea", { id, name: key, rows, spellcheck: "false", className: kind === "json" ? "mono" : "" });
  }

  set(key, value) {
    const field = this.fields.get(key);
    if (!field) return;
    const { kind, input } = field;
    if (kind === "boolean") input.checked = Boolean(value);
    else if (kind === "choices") {
      field.picked = [...(value || [])]; // kept in this order; values not offered stay
      for (const box of input.querySelectorAll("input")) box.checked = field.picked.includes(box.value);
    } else if (kind === "enum") input.value = JSON.stringify(value ?? field.node.enum[0]);
    else if (kind === "list") input.value = (value || []).join("\n");
    else if (kind === "json") input.value = JSON.stringify(value ?? {}, null, 2);
    else input.value = value ?? "";
    this.showError(key, null);
  }

  /** The value a field holds, or {error} when its text cannot be read as that kind. */
  read(key) {
    const { kind, input, node } = this.fields.get(key);
    const text = input.value;
    if (kind === "boolean") return { value: input.checked };
    if (kind === "choices") {
      const boxes = [...input.querySelectorAll("input")];
      const offered = new Set(boxes.map((box) => box.value));
      const checked = boxes.filter((box) => box.checked).map((box) => box.value);
      const { picked } = this.fields.get(key);
      const kept = picked.filter((value) => !offered.has(value) || checked.includes(value));
      return { value: [...kept, ...checked.filter((value) => !kept.includes(value))] };
    }
    if (kind === "enum") return { value: JSON.parse(text) };
    if (kind === "number") {
      if (text.trim() === "") return node.nullable ? { value: null } : { error: "is required" };
      const number = Number(text);
      return Number.isFinite(number) ? { value: number } : { error: "must be a number" };
    }
    if (kind === "list") {
      const items = text.split("\n").map((line) => line.trim()).filter(Boolean);
      const numeric = node.items.type !== "string";
      return { value: numeric ? items.map(Number) : items };
    }
    if (kind === "json") {
      try {
        return { value: JSON.parse(text || "null") };
      } catch {
        return { error: "is not valid JSON" };
      }
    }
    return { value: text };
  }

  check(key) {
    const { node } = this.fields.get(key);
    const read = this.read(key);
    const problem = read.error ? { message: read.error } : validate(this.schema, node, read.value, key)[0];
    this.showError(key, problem ? problem.message : null);
    return !problem;
  }

  /** {values} when every field is valid, else {problems} (also shown next to the fields). */
  collect() {
    const values = {};
    const problems = [];
    for (const key of this.fields.keys()) {
      if (!this.check(key)) problems.push(key);
      else values[key] = this.read(key).value;
    }
    return problems.length ? { problems } : { values };
  }

  /** Show a server error (422 with a dotted `key`) next to its field; false if none fits. */
  showServerError(key, message) {
    const name = String(key || "").replace(/^configuration\./, "").split(".")[0];
    if (!this.fields.has(name)) return false;
    this.showError(name, message);
    this.fields.get(name).input.focus();
    return true;
  }

  showError(key, message) {
    const { error, input } = this.fields.get(key);
    error.hidden = !message;
    setText(error, message ? `${key} ${message}`.replace(`${key} ${key}:`, `${key}:`) : "");
    input.toggleAttribute("aria-invalid", Boolean(message));
  }
}

function describe(node) {
  const parts = [node.description || ""];
  const bounds = [];
  if (node.minimum !== undefined) bounds.push(`≥ ${node.minimum}`);
  if (node.exclusiveMinimum !== undefined) bounds.push(`> ${node.exclusiveMinimum}`);
  if (node.maximum !== undefined) bounds.push(`≤ ${node.maximum}`);
  if (node.exclusiveMaximum !== undefined) bounds.push(`< ${node.exclusiveMaximum}`);
  if (bounds.length) parts.push(`(${bounds.join(", ")})`);
  if (node.default !== undefined) parts.push(`Default: ${JSON.stringify(node.default)}.`);
  return parts.filter(Boolean).join(" ");
}
