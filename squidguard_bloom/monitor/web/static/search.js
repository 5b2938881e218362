"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  let cursors = [null]; // cursors[i]: the "before" of page i
  let pageNo = 0;
  let nextCursor = null;

  const toLocalInput = (ts) => {
    const d = new Date(ts * 1000 - new Date(ts * 1000).getTimezoneOffset() * 60000);
    return d.toISOString().slice(0, 19);
  };
  const fromLocalInput = (value) => (value ? new Date(value).getTime() / 1000 : null);

  const params = () => {
    const p = {};
    for (const [k, v] of new FormData($("search-form")).entries()) {
      const text = String(v).trim();
      if (!text) continue;
      // The inputs show whole seconds, and "to" means up to and including that
      // second: the server's range is [from, to), so "to" is sent as its end.
      if (k === "from") p[k] = String(fromLocalInput(text));
      else if (k === "to") p[k] = String(fromLocalInput(text) + 1);
      else p[k] = text;
    }
    return p;
  };

  const run = async () => {
    const p = params();
    $("export").href = "/api/search.csv?" + new URLSearchParams(p).toString();
    if (cursors[pageNo]) p.before = cursors[pageNo];
    $("search-status").textContent = "searching…";
    try {
      const data = await SGB.getJSON("/api/search?" + new URLSearchParams(p).toString());
      SGB.fillTable($("results"), data.rows.map(SGB.rowOf));
      nextCursor = data.next;
      $("search-status").textContent = data.rows.length ? `${data.rows.length} rows` : "no rows";
    } catch (err) {
      $("search-status").textContent = `error: ${err.message}`;
      SGB.fillTable($("results"), []);
      nextCursor = null;
    }
    $("page").textContent = `page ${pageNo + 1}`;
    $("prev").disabled = pageNo === 0;
    $("next").disabled = !nextCursor;
  };

  document.addEventListener("DOMContentLoaded", () => {
    const now = Date.now() / 1000;
    const query = new URLSearchParams(window.location.search);
    // No "to" in the address: left empty, meaning "until now", so that the
    // newest rows (this very second's included) are always found.
    if (query.has("to")) $("s-to").value = toLocalInput(Number(query.get("to")) - 1);
    $("s-from").value = toLocalInput(query.has("from") ? Number(query.get("from")) : now - 86400);
    for (const [k, v] of query.entries()) {
      const input = $("search-form").elements.namedItem(k);
      if (input && k !== "from" && k !== "to") input.value = v;
    }
    $("search-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      cursors = [null];
      pageNo = 0;
      history.replaceState(null, "", "/search?" + new URLSearchParams(params()).toString());
      run();
    });
    $("next").addEventListener("click", () => {
      if (!nextCursor) return;
      cursors[pageNo + 1] = nextCursor;
      pageNo += 1;
      run();
    });
    $("prev").addEventListener("click", () => {
      if (pageNo === 0) return;
      pageNo -= 1;
      run();
    });
    $("export").href = "/api/search.csv?" + new URLSearchParams(params()).toString();
    if (query.toString()) run();
  });
})();
