"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const MAX_ROWS = 500;
  let source = null;
  let paused = false;

  const filters = () => {
    const params = { tail: "1" };
    for (const [k, v] of new FormData($("filters")).entries()) {
      if (String(v).trim()) params[k] = String(v).trim();
    }
    return params;
  };

  const onRows = (data) => {
    if (paused) return;
    const body = $("tail").tBodies[0];
    for (const r of data.rows) body.prepend(SGB.rowOf(r));
    while (body.rows.length > MAX_ROWS) body.deleteRow(-1);
  };

  const connect = () => {
    if (source) source.close();
    source = SGB.live(filters(), { rows: onRows });
  };

  document.addEventListener("DOMContentLoaded", () => {
    const query = new URLSearchParams(window.location.search);
    for (const [k, v] of query.entries()) {
      const input = $("filters").elements.namedItem(k);
      if (input) input.value = v;
    }
    $("filters").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const params = filters();
      delete params.tail;
      history.replaceState(null, "", "/tail?" + new URLSearchParams(params).toString());
      connect();
    });
    $("pause").addEventListener("click", () => {
      paused = !paused;
      $("pause").textContent = paused ? "Resume" : "Pause";
    });
    $("clear").addEventListener("click", () => $("tail").tBodies[0].replaceChildren());
    connect();
  });
})();
