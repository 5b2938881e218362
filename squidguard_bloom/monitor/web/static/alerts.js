// The alerts page: alerts now, silences (add, expire), history, messages sent.
// Every value goes into the page through SGB.el (textContent), never as markup.
"use strict";

(() => {
  const { el, time, getJSON, csrf } = SGB;

  const post = async (url, fields) => {
    const resp = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf(), "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(fields).toString(),
    });
    const data = await resp.json();
    if (!resp.ok) throw new Error(data.error || resp.statusText);
    return data;
  };

  const row = (...cells) => {
    const tr = document.createElement("tr");
    tr.append(...cells.map((c) => (c instanceof Node ? c : el("td", c))));
    return tr;
  };

  const render = (data) => {
    document.getElementById("alerts").tBodies[0].replaceChildren(...data.alerts.map((a) =>
      row(a.state, a.rule, a.proxy, time(a.since), a.summary)));
    document.getElementById("silences").tBodies[0].replaceChildren(...data.silences.map((s) => {
      const td = document.createElement("td");
      const button = el("button", "Expire");
      button.type = "button";
      button.addEventListener("click", async () => {
        await post(`/api/silences/${Number(s.id)}/expire`, {});
        refresh();
      });
      td.append(button);
      return row(String(s.id), s.rule, s.proxy, time(s.ends), s.author, s.comment, td);
    }));
    document.getElementById("history").tBodies[0].replaceChildren(...data.history.map((h) =>
      row(time(h.ts), h.rule, h.proxy, `${h.from} -> ${h.to}`, h.summary)));
    document.getElementById("messages").tBodies[0].replaceChildren(...data.notifications.map(
      (n) => row(time(n.created), n.channel, n.error ? `${n.status}: ${n.error}` : n.status,
                 n.title)));
  };

  const refresh = async () => render(await getJSON("/api/alerts"));

  document.addEventListener("DOMContentLoaded", () => {
    const form = document.getElementById("silence-form");
    const message = document.getElementById("s-message");
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        const got = await post("/api/silences", Object.fromEntries(new FormData(form)));
        message.textContent = `silence #${got.id} added`;
      } catch (err) {
        message.textContent = String(err.message);
      }
      refresh();
    });
    refresh();
    setInterval(refresh, 10000);
  });
})();
