// The campaign form: preset or custom schema, and a form editor for the schema that writes the JSON
// the server validates (the JSON textarea stays the one source of truth; the live check and preview
// are htmx requests the form sends as it is edited).
(() => {
  "use strict";
  const form = document.getElementById("campaign-form");
  if (!form) return;
  const presets = JSON.parse(document.getElementById("preset-schemas").textContent);
  const json = form.querySelector("#f-label_schema");
  const builder = form.querySelector("#schema-builder");
  const presetSelect = form.querySelector("#f-preset");
  const presetBox = form.querySelector("#preset-box");
  const customBox = form.querySelector("#custom-box");

  const kind = () => (form.querySelector("input[name=kind]:checked") || {}).value || "pairwise";
  const mode = () => (form.querySelector("input[name=schema_mode]:checked") || {}).value || "preset";
  const changed = () => json.dispatchEvent(new Event("input", { bubbles: true }));

  function filterPresets() {
    let firstMatch = null;
    for (const option of presetSelect.options) {
      const fits = option.dataset.kind === kind();
      option.hidden = !fits;
      option.disabled = !fits;
      if (fits && !firstMatch) firstMatch = option;
    }
    if (presetSelect.selectedOptions[0] && presetSelect.selectedOptions[0].disabled && firstMatch) {
      presetSelect.value = firstMatch.value;
    }
  }

  function parsed() {
    try {
      const value = JSON.parse(json.value);
      return value && typeof value === "object" ? value : null;
    } catch (e) {
      return null;
    }
  }

  // A blank schema for the kind, or the chosen preset's, when switching to custom.
  function starter() {
    const preset = presets[presetSelect.value];
    if (preset && presetSelect.selectedOptions[0] && presetSelect.selectedOptions[0].dataset.kind === kind()) {
      return JSON.parse(JSON.stringify(preset));
    }
    const schema = { justification: "optional", confidence: false };
    if (kind() !== "rubric") {
      schema.pairwise = { aspects: [{ name: "overall", scale: 2, allow_tie: true, description: "Which response is better overall?" }] };
    }
    if (kind() !== "pairwise") {
      schema.rubric = { criteria: [{ name: "helpfulness", min: 0, max: 4, description: "How helpful is the response?", scores: {} }] };
    }
    return schema;
  }

  function el(tag, attrs = {}, children = []) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (key === "text") node.textContent = value;
      else if (key in node && typeof value !== "string") node[key] = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) node.append(child);
    return node;
  }

  function field(labelText, input) {
    return el("label", { class: "mini" }, [el("span", { text: labelText }), input]);
  }

  // The form editor: one row per aspect / criterion, plus the schema-wide options.
  function render(force = false) {
    if (!force && builder.contains(document.activeElement)) return;  // never redraw under the cursor
    const schema = parsed();
    builder.replaceChildren();
    if (!schema) {
      builder.append(el("p", { class: "muted", text: "The JSON below does not parse; fix it there (the error is shown under it)." }));
      return;
    }
    const write = () => {
      json.value = JSON.stringify(schema, null, 2);
      changed();
    };
    const common = el("div", { class: "builder-row" }, [
      field("Justification", (() => {
        const select = el("select", { name: "" });
        for (const mode of ["none", "optional", "required"]) select.append(el("option", { value: mode, text: mode }));
        select.value = schema.justification || "optional";
        select.addEventListener("change", () => { schema.justification = select.value; write(); });
        return select;
      })()),
      field("Ask for confidence (1–5)", (() => {
        const box = el("input", { type: "checkbox" });
        box.checked = !!schema.confidence;
        box.addEventListener("change", () => { schema.confidence = box.checked; write(); });
        return box;
      })()),
    ]);
    builder.append(common);
    if (kind() !== "rubric") {
      schema.pairwise = schema.pairwise || { aspects: [] };
      const list = schema.pairwise.aspects = schema.pairwise.aspects || [];
      builder.append(el("h3", { text: "Pairwise aspects (−scale … +scale; negative favours A)" }));
      list.forEach((aspect, i) => builder.append(aspectRow(list, aspect, i, write)));
      builder.append(el("button", { type: "button", class: "link add-aspect", text: "+ Add aspect",
        onclick: () => { list.push({ name: `aspect_${list.length + 1}`, scale: 2, allow_tie: true, description: "" }); write(); render(true); focusLast(".aspect-name"); } }));
    }
    if (kind() !== "pairwise") {
      schema.rubric = schema.rubric || { criteria: [] };
      const list = schema.rubric.criteria = schema.rubric.criteria || [];
      builder.append(el("h3", { text: "Rubric criteria" }));
      list.forEach((criterion, i) => builder.append(criterionRow(list, criterion, i, write)));
      builder.append(el("button", { type: "button", class: "link add-criterion", text: "+ Add criterion",
        onclick: () => { list.push({ name: `criterion_${list.length + 1}`, min: 1, max: 5, description: "", scores: {} }); write(); render(true); focusLast(".criterion-name"); } }));
    }
  }

  function focusLast(selector) {
    const inputs = builder.querySelectorAll(selector);
    if (inputs.length) inputs[inputs.length - 1].select();
  }

  function text(value, onInput, attrs = {}) {
    const input = el("input", { type: "text", value: value ?? "", ...attrs });
    input.addEventListener("input", () => onInput(input.value));
    return input;
  }

  function number(value, onInput, attrs = {}) {
    const input = el("input", { type: "number", value: String(value ?? ""), ...attrs });
    input.addEventListener("input", () => onInput(input.value === "" ? null : Number(input.value)));
    return input;
  }

  function aspectRow(list, aspect, i, write) {
    const scale = el("select", {});
    for (const n of [1, 2, 3]) scale.append(el("option", { value: String(n), text: `±${n} (${2 * n + 1} points)` }));
    scale.value = String(aspect.scale || 1);
    scale.addEventListener("change", () => { aspect.scale = Number(scale.value); write(); });
    const tie = el("input", { type: "checkbox" });
    tie.checked = aspect.allow_tie !== false;
    tie.addEventListener("change", () => { aspect.allow_tie = tie.checked; write(); });
    const remove = el("button", { type: "button", class: "link remove", text: "Remove",
      onclick: () => { list.splice(i, 1); write(); render(true); } });
    return el("div", { class: "builder-row aspect", "data-index": String(i) }, [
      field("Name", text(aspect.name, (v) => { aspect.name = v; write(); }, { class: "aspect-name", size: "14" })),
      field("Question", text(aspect.description, (v) => { aspect.description = v; write(); }, { size: "36" })),
      field("Scale", scale),
      field("Tie allowed", tie),
      remove,
    ]);
  }

  function criterionRow(list, criterion, i, write) {
    const scores = el("textarea", { rows: "3", placeholder: "One per line: 1: Poor" });
    scores.value = Object.entries(criterion.scores || {}).map(([k, v]) => `${k}: ${v}`).join("\n");
    scores.addEventListener("input", () => {
      const out = {};
      for (const line of scores.value.split("\n")) {
        const match = line.match(/^\s*(-?\d+)\s*[:=]\s*(.+)$/);
        if (match) out[match[1]] = match[2].trim();
      }
      criterion.scores = out;
      write();
    });
    const remove = el("button", { type: "button", class: "link remove", text: "Remove",
      onclick: () => { list.splice(i, 1); write(); render(true); } });
    return el("div", { class: "builder-row criterion", "data-index": String(i) }, [
      field("Name", text(criterion.name, (v) => { criterion.name = v; write(); }, { class: "criterion-name", size: "14" })),
      field("Question", text(criterion.description, (v) => { criterion.description = v; write(); }, { size: "30" })),
      field("Min", number(criterion.min, (v) => { criterion.min = v; write(); }, { class: "short" })),
      field("Max", number(criterion.max, (v) => { criterion.max = v; write(); }, { class: "short" })),
      field("What each score means", scores),
      remove,
    ]);
  }

  function showMode() {
    const custom = mode() === "custom";
    presetBox.hidden = custom;
    customBox.hidden = !custom;
    if (custom) {
      const schema = parsed();
      if (!schema) {
        json.value = JSON.stringify(starter(), null, 2);
      }
      render();
    }
  }

  form.addEventListener("change", (event) => {
    if (event.target.name === "kind") {
      filterPresets();
      if (mode() === "custom") {
        const schema = parsed() || {};
        const fresh = starter();
        if (kind() === "rubric") delete schema.pairwise; else schema.pairwise = schema.pairwise || fresh.pairwise;
        if (kind() === "pairwise") delete schema.rubric; else schema.rubric = schema.rubric || fresh.rubric;
        json.value = JSON.stringify(schema, null, 2);
        render();
      }
    }
    if (event.target.name === "schema_mode") {
      if (mode() === "custom") json.value = JSON.stringify(starter(), null, 2);
      showMode();
    }
  });
  json.addEventListener("input", () => { if (!builder.contains(document.activeElement)) render(); });
  builder.addEventListener("focusout", () => setTimeout(render, 0));

  filterPresets();
  if (mode() === "custom") render();
})();
