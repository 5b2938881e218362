// Shared by every page. Logged values are attacker-controlled: they only ever reach the
// page through textContent (see el() and rowOf()), never as HTML markup or attributes.
"use strict";

const SGB = (() => {
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

  // Control characters made visible (\x1b), so nothing in a log line can hide or
  // reorder text; everything else shown as it is.
  const visible = (value) => String(value ?? "").replace(
    /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (c) => "\\x" + c.charCodeAt(0).toString(16).padStart(2, "0"));

  const el = (tag, text, cls) => {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = visible(text);
    if (cls) node.className = cls;
    return node;
  };

  const pad = (n) => String(n).padStart(2, "0");
  const time = (ts) => {
    if (ts === null || ts === undefined) return "never";
    const d = new Date(ts * 1000);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  };
  const ago = (ts, now) => {
    if (ts === null || ts === undefined) return "never";
    const s = Math.max(0, (now ?? Date.now() / 1000) - ts);
    if (s < 60) return `${Math.round(s)} s ago`;
    if (s < 3600) return `${Math.round(s / 60)} min ago`;
    if (s < 86400) return `${(s / 3600).toFixed(1)} h ago`;
    return `${(s / 86400).toFixed(1)} d ago`;
  };
  const bytes = (n) => {
    let v = Number(n || 0);
    for (const unit of ["B", "kB", "MB", "GB", "TB"]) {
      if (v < 1000 || unit === "TB") return unit === "B" ? `${v} B` : `${v.toFixed(1)} ${unit}`;
      v /= 1000;
    }
    return `${n} B`;
  };
  const pct = (x) => (x === null || x === undefined ? "–" : `${(100 * x).toFixed(1)} %`);
  const num = (n) => Number(n || 0).toLocaleString("en-US");

  // One table row of a tail or search result.
  const rowOf = (r) => {
    const tr = document.createElement("tr");
    tr.className = `kind-${r.kind}` + (r.action === "REDIRECT" ? " blocked" : "") +
      (r.action === "WELCOME" ? " welcome" : "");
    tr.append(
      el("td", time(r.ts), "time"),
      el("td", r.proxy),
      el("td", r.client),
      el("td", r.user),
      el("td", r.kind === "access" ? `${r.result}/${r.status}` : r.action),
      el("td", r.category ?? ""),
      el("td", r.method),
      el("td", r.url, "url"),
    );
    return tr;
  };

  const fillTable = (table, rows) => {
    const body = table.tBodies[0];
    body.replaceChildren(...rows);
  };

  // The live channel: EventSource reconnects by itself; show its state.
  const live = (params, handlers) => {
    const state = document.getElementById("live-state");
    const source = new EventSource("/api/live?" + new URLSearchParams(params).toString());
    source.onopen = () => { state.textContent = "live"; state.className = "live on"; };
    source.onerror = () => {
      state.textContent = "reconnecting…"; state.className = "live off";
    };
    for (const [name, fn] of Object.entries(handlers)) {
      source.addEventListener(name, (ev) => fn(JSON.parse(ev.data)));
    }
    return source;
  };

  const getJSON = async (url) => {
    const resp = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (resp.status === 401) { window.location.assign("/login"); throw new Error("logged out"); }
    const data = await resp.json();
    if (!resp.ok) throw new Error(data.error || resp.statusText);
    return data;
  };

  document.addEventListener("DOMContentLoaded", () => {
    const page = document.getElementById("main").dataset.page;
    for (const a of document.querySelectorAll("nav a[data-nav]")) {
      if (a.dataset.nav === page) a.classList.add("current");
    }
  });

  return { csrf, visible, el, time, ago, bytes, pct, num, rowOf, fillTable, live, getJSON };
})();
