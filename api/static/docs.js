// Renders /openapi.json as a reference page. Every value is set with textContent: nothing
// from the document is parsed as HTML.
"use strict";
(function () {
  const main = document.getElementById("doc");
  const el = (tag, text, cls) => {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  };
  const add = (parent, ...children) => { children.forEach((c) => parent.appendChild(c)); return parent; };
  const table = (head, rows) => {
    const t = el("table"), tr = el("tr");
    head.forEach((h) => tr.appendChild(el("th", h)));
    t.appendChild(tr);
    rows.forEach((r) => { const row = el("tr"); r.forEach((c) => row.appendChild(el("td", c))); t.appendChild(row); });
    return t;
  };
  fetch("/openapi.json").then((r) => r.json()).then((doc) => {
    main.textContent = "";
    add(main, el("h1", doc.info.title + " (v" + doc.info.version + ")"), el("pre", doc.info.description || ""));
    const profile = doc["x-http-message-signatures"];
    if (profile) add(main, el("h2", "Signatures (x-http-message-signatures)"), el("pre", JSON.stringify(profile, null, 2)));
    add(main, el("h2", "Operations"));
    Object.keys(doc.paths).forEach((path) => {
      Object.entries(doc.paths[path]).forEach(([method, op]) => {
        const box = add(el("section", undefined, "op"), add(el("h3"), el("span", method, "method"), el("code", path)));
        if (op.summary) box.appendChild(el("p", op.summary));
        if (op.description) box.appendChild(el("pre", op.description));
        const params = op.parameters || [];
        if (params.length) {
          box.appendChild(el("h4", "Parameters"));
          box.appendChild(table(["name", "in", "required", "description"],
            params.map((p) => [p.name, p.in, p.required ? "yes" : "no", p.description || ""])));
        }
        box.appendChild(el("h4", "Responses"));
        box.appendChild(table(["status", "description", "headers"], Object.entries(op.responses || {}).map(([s, r]) =>
          [s, r.description || "", Object.keys(r.headers || {}).join(", ")])));
        main.appendChild(box);
      });
    });
    if (doc.components && doc.components.schemas) {
      add(main, el("h2", "Schemas"));
      Object.entries(doc.components.schemas).forEach(([name, schema]) =>
        add(main, el("h3", name), el("pre", JSON.stringify(schema, null, 2))));
    }
  }).catch(() => { document.getElementById("status").textContent = "Could not load /openapi.json."; });
})();
