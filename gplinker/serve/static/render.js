// Draws prediction records (the JSON lines of `gplinker predict`) as HTML: NER marks (nested spans
// nested), relation arcs (SVG) with a table, one card per event. Shared by the page of
// `gplinker serve` and the report of `gplinker eval --report`. Offsets are Python string offsets
// (code points), so text is handled as Array.from(text). An item may carry "mark": "miss" (gold the
// model did not find) or "fp" (found, not gold); the report uses that.
"use strict";

const GPL = (() => {
  function hue(label) {
    let h = 0;
    for (const ch of String(label)) h = (h * 31 + ch.codePointAt(0)) >>> 0;
    return h % 360;
  }

  function color(label) {
    return `hsl(${hue(label)}, 70%, 82%)`;
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "style") node.style.cssText = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }

  function score(s) {
    return typeof s === "number" ? ` ${s.toFixed(3)}` : "";
  }

  // spans: [{start, end, label, title, cls, mark}] -> nested tree; spans crossing another go to `crossing`
  function nest(spans) {
    const sorted = [...spans].sort((a, b) => a.start - b.start || b.end - a.end || (a.label < b.label ? -1 : 1));
    const roots = [], stack = [], crossing = [];
    for (const s of sorted) {
      while (stack.length && stack[stack.length - 1].end <= s.start) stack.pop();
      const parent = stack[stack.length - 1];
      if (parent && s.end > parent.end) { crossing.push(s); continue; }
      const node = { ...s, children: [] };
      (parent ? parent.children : roots).push(node);
      stack.push(node);
    }
    return { roots, crossing };
  }

  function markFor(chars, node) {
    const classes = ["span", node.cls || "", node.mark || ""].join(" ").trim();
    const mark = el("mark", { class: classes, "data-label": node.label, title: node.title || node.label,
                              style: `--c: ${color(node.label)}` });
    mark.append(fill(chars, node.start, node.end, node.children), el("span", { class: "tag" }, node.tag || node.label));
    if (node.ref !== undefined) mark.dataset.ref = node.ref;
    return mark;
  }

  function fill(chars, start, end, nodes) {
    const out = document.createDocumentFragment();
    let at = start;
    for (const n of nodes) {
      if (n.start > at) out.append(chars.slice(at, n.start).join(""));
      out.append(markFor(chars, n));
      at = n.end;
    }
    if (end > at) out.append(chars.slice(at, end).join(""));
    return out;
  }

  function markedText(text, spans) {
    const chars = Array.from(text || "");
    const { roots, crossing } = nest(spans);
    const box = el("div", { class: "text" }, fill(chars, 0, chars.length, roots));
    if (crossing.length) {
      box.append(el("div", { class: "crossing" }, "also (crossing the spans above): ",
        ...crossing.map((s) => markFor(chars, { ...s, children: [] }))));
    }
    return box;
  }

  function renderEntities(record) {
    const spans = (record.entities || []).map((e) => ({
      start: e.start, end: e.end, label: e.type, mark: e.mark, cls: "entity",
      title: `${e.type}${score(e.score)}${e.mark ? ` (${e.mark})` : ""}`,
    }));
    return markedText(record.text, spans);
  }

  // one {subject, objects: [{slot, text, type, start, end}]} per spo, for both DuIE styles
  function spoParts(spo) {
    const objects = [];
    if (spo.object !== null && typeof spo.object === "object") {
      for (const slot of Object.keys(spo.object)) {
        objects.push({ slot, text: spo.object[slot], type: (spo.object_type || {})[slot] || "",
                       start: (spo.object_start || {})[slot], end: (spo.object_end || {})[slot] });
      }
    } else {
      objects.push({ slot: "@value", text: spo.object, type: spo.object_type || "", start: spo.object_start,
                     end: spo.object_end });
    }
    return { subject: { text: spo.subject, type: spo.subject_type || "", start: spo.subject_start,
                        end: spo.subject_end }, objects };
  }

  function renderRelations(record) {
    const spans = new Map(), arcs = [];
    const add = (part, role) => {
      if (typeof part.start !== "number") return null;
      const key = `${part.start}:${part.end}`;
      if (!spans.has(key)) {
        spans.set(key, { start: part.start, end: part.end, label: part.type || role, cls: role, ref: key,
                         title: `${part.type || role}`, mark: undefined });
      }
      return key;
    };
    const rows = [];
    (record.spo_list || []).forEach((spo, k) => {
      const { subject, objects } = spoParts(spo);
      const from = add(subject, "subject");
      for (const o of objects) {
        const to = add(o, "object");
        const predicate = o.slot === "@value" ? spo.predicate : `${spo.predicate}.${o.slot}`;
        if (from && to) arcs.push({ from, to, label: predicate, mark: spo.mark, k });
      }
      if (spo.mark && from) spans.get(from).mark = spans.get(from).mark || spo.mark;
      rows.push(el("tr", { class: spo.mark || "" }, el("td", {}, subject.text), el("td", {}, spo.predicate),
        el("td", {}, objects.map((o) => (o.slot === "@value" ? o.text : `${o.slot}: ${o.text}`)).join("; ")),
        el("td", {}, spo.mark || (typeof spo.score === "number" ? spo.score.toFixed(3) : ""))));
    });
    const box = el("div", { class: "relations" });
    const stage = el("div", { class: "arc-stage" }, markedText(record.text, [...spans.values()]));
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("class", "arcs");
    stage.prepend(svg);
    stage.dataset.arcs = JSON.stringify(arcs);
    box.append(stage);
    if (rows.length) {
      box.append(el("table", { class: "spo" }, el("tr", {}, el("th", {}, "subject"), el("th", {}, "predicate"),
        el("th", {}, "object"), el("th", {}, "score")), ...rows));
    }
    return box;
  }

  // arcs need the layout: call after the element is in the document (and again on resize)
  function drawArcs(root) {
    for (const stage of root.querySelectorAll(".arc-stage")) {
      const svg = stage.querySelector("svg.arcs");
      const arcs = JSON.parse(stage.dataset.arcs || "[]");
      const base = stage.getBoundingClientRect();
      const levels = 1 + Math.min(arcs.length, 4);
      stage.style.paddingTop = `${16 * levels + 8}px`;
      svg.setAttribute("width", stage.clientWidth);
      svg.setAttribute("height", stage.clientHeight);
      svg.replaceChildren();
      const centre = (ref) => {
        const m = stage.querySelector(`mark[data-ref="${ref}"]`);
        if (!m) return null;
        const r = m.getBoundingClientRect();
        return { x: r.left - base.left + r.width / 2, y: r.top - base.top };
      };
      arcs.forEach((a, k) => {
        const p = centre(a.from), q = centre(a.to);
        if (!p || !q) return;
        const top = Math.min(p.y, q.y) - 14 - 16 * (k % 4);
        const ns = "http://www.w3.org/2000/svg";
        const path = document.createElementNS(ns, "path");
        path.setAttribute("d", `M ${p.x} ${p.y} C ${p.x} ${top}, ${q.x} ${top}, ${q.x} ${q.y}`);
        path.setAttribute("class", `arc ${a.mark || ""}`.trim());
        path.setAttribute("marker-end", "url(#gpl-arrow)");
        const label = document.createElementNS(ns, "text");
        label.setAttribute("x", (p.x + q.x) / 2);
        label.setAttribute("y", top + 10);
        label.setAttribute("class", "arc-label");
        label.textContent = a.label;
        svg.append(path, label);
      });
      svg.insertAdjacentHTML("afterbegin", '<defs><marker id="gpl-arrow" viewBox="0 0 10 10" refX="9" refY="5" ' +
        'markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>');
    }
  }

  function renderEvents(record) {
    const box = el("div", { class: "events" });
    const events = record.event_list || [];
    if (!events.length) box.append(el("div", { class: "text" }, record.text || ""));
    for (const ev of events) {
      const spans = [];
      if (typeof ev.trigger_start_index === "number" && ev.trigger) {
        spans.push({ start: ev.trigger_start_index, end: ev.trigger_start_index + Array.from(ev.trigger).length,
                     label: ev.event_type, tag: "trigger", cls: "trigger", title: `trigger of ${ev.event_type}` });
      }
      for (const a of ev.arguments || []) {
        const end = a.argument_start_index + Array.from(a.argument || "").length;
        spans.push({ start: a.argument_start_index, end, label: a.role, cls: "argument", mark: a.mark,
                     title: `${a.role}${a.mark ? ` (${a.mark})` : ""}` });
      }
      const card = el("div", { class: `event-card ${ev.mark || ""}`.trim(), "data-event-type": ev.event_type },
        el("div", { class: "event-head", style: `--c: ${color(ev.event_type)}` },
          el("b", {}, ev.event_type), ` trigger: ${ev.trigger ?? "–"}`, ev.mark ? ` (${ev.mark})` : score(ev.score)),
        markedText(record.text, spans),
        el("ul", { class: "roles" }, ...(ev.arguments || []).map((a) => el("li", { class: a.mark || "" },
          el("span", { class: "role", style: `--c: ${color(a.role)}` }, a.role), " ", a.argument))));
      box.append(card);
    }
    return box;
  }

  function renderRecord(record) {
    const card = el("article", { class: "record" });
    if (record.error) {
      card.classList.add("error");
      card.append(el("div", {}, record.error));
      return card;
    }
    if (record.id !== undefined) card.append(el("div", { class: "record-id" }, `id ${record.id}`));
    if ("spo_list" in record) card.append(renderRelations(record));
    else if ("event_list" in record) card.append(renderEvents(record));
    else card.append(renderEntities(record));
    return card;
  }

  // records into `container`, replacing what it held
  function show(container, records) {
    container.replaceChildren(...records.map(renderRecord));
    drawArcs(container);
  }

  // the JSON lines of a prediction file; a line that is not JSON becomes an error record
  function parseJsonl(content) {
    return content.split(/\r?\n/).filter((l) => l.trim()).map((line, k) => {
      try { return JSON.parse(line); } catch (e) { return { error: `line ${k + 1}: ${e.message}` }; }
    });
  }

  return { color, hue, nest, renderRecord, show, drawArcs, parseJsonl };
})();
