// Segment builder: blocks ⇄ expression, live count from /tagging/api/segments/count.
(function () {
  "use strict";
  const root = document.getElementById("segment-builder");
  if (!root) return;
  const csrf = root.dataset.csrf;
  const fields = JSON.parse(root.dataset.fields);
  const ops = [":", "!=", ">", ">=", "<", "<="];
  const rows = document.getElementById("builder-rows");
  const join = document.getElementById("builder-join");
  const expr = document.getElementById("segment-expression");
  const count = document.getElementById("segment-count");
  const error = document.getElementById("segment-error");
  let timer = null;
  let seq = 0;

  function select(options, value) {
    const el = document.createElement("select");
    for (const o of options) {
      const opt = document.createElement("option");
      opt.value = o; opt.textContent = o; el.appendChild(opt);
    }
    if (value !== undefined) el.value = value;
    return el;
  }

  function addRow() {
    const li = document.createElement("li");
    const not = select(["", "NOT"]);
    const field = select(fields, "tag");
    const op = select(ops, ":");
    const value = document.createElement("input");
    value.placeholder = "意向/询价";
    const remove = document.createElement("button");
    remove.type = "button"; remove.className = "link"; remove.textContent = "×";
    remove.addEventListener("click", () => { li.remove(); fromBlocks(); });
    for (const el of [not, field, op, value, remove]) li.appendChild(el);
    for (const el of [not, field, op]) el.addEventListener("change", fromBlocks);
    value.addEventListener("input", fromBlocks);
    rows.appendChild(li);
  }

  function blocksAst() {
    const conds = [];
    for (const li of rows.children) {
      const [not, field, op, value] = li.querySelectorAll("select, input");
      if (!value.value.trim()) continue;
      const cond = { field: field.value, op: op.value, value: value.value.trim() };
      conds.push(not.value === "NOT" ? { not: cond } : cond);
    }
    if (!conds.length) return null;
    return conds.length === 1 ? conds[0] : { [join.value]: conds };
  }

  function ask(body, fillExpression) {
    const mine = ++seq;
    fetch("/tagging/api/segments/count", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
      credentials: "same-origin",
    }).then((r) => r.json().then((data) => ({ ok: r.ok, data })))
      .then(({ ok, data }) => {
        if (mine !== seq) return; // an older answer arriving late
        if (ok) {
          count.textContent = data.count.toLocaleString();
          error.hidden = true;
          if (fillExpression) expr.value = data.expression;
        } else {
          count.textContent = "–";
          error.textContent = data.pointer ? data.pointer + "\n" + data.error : data.error;
          error.hidden = false;
        }
      });
  }

  function later(fn) { clearTimeout(timer); timer = setTimeout(fn, 300); }
  function fromBlocks() { const ast = blocksAst(); if (ast) later(() => ask({ ast }, true)); }
  function fromText() { if (expr.value.trim()) later(() => ask({ expression: expr.value }, false)); }

  document.getElementById("builder-add").addEventListener("click", addRow);
  join.addEventListener("change", fromBlocks);
  expr.addEventListener("input", fromText);
  addRow();
})();
