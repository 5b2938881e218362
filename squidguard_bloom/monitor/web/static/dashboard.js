"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const COLORS = ["#2b6cb0", "#2f855a", "#c53030", "#b7791f", "#6b46c1", "#00838f",
    "#d53f8c", "#4a5568", "#718096"];
  const charts = {};
  let lastTiles = [];
  let lastFetch = 0;
  let pending = null;

  const rangeQuery = () => new URLSearchParams({ range: $("range").value, proxy: $("proxy").value });

  const renderTiles = (tiles) => {
    lastTiles = tiles;
    const now = Date.now() / 1000;
    const nodes = tiles.map((t) => {
      const tile = SGB.el("article", null, "tile");
      tile.dataset.proxy = t.proxy;
      const stale = t.last_received === null || now - t.last_received > 300;
      if (stale) tile.classList.add("stale");
      const helper = t.helper ? t.helper.kind : "no state line yet";
      if (t.helper && ["emergency", "reload_failed", "stopped"].includes(t.helper.kind)) {
        tile.classList.add("alert");
      }
      tile.append(SGB.el("h2", t.proxy, "tile-name"));
      const dl = SGB.el("dl");
      const item = (label, value, title, cls) => {
        const dd = SGB.el("dd", value, cls);
        if (title) dd.title = SGB.visible(title);
        dl.append(SGB.el("dt", label), dd);
      };
      item("last line", SGB.ago(t.last_received, now), SGB.time(t.last_line_ts), "last-line");
      item("lines/min", SGB.num(t.lines_per_min), null, "lines-min");
      item("helper", helper + (t.helper ? ` (${SGB.ago(t.helper.ts, now)})` : ""),
        t.helper ? t.helper.message : null, "helper-state");
      if (t.shipper) item("shipper", t.shipper.kind.replace("_", " "), t.shipper.message, "shipper-state");
      item("cache hits (1 h)", `${SGB.pct(t.hit_ratio)} req · ${SGB.pct(t.byte_hit_ratio)} bytes`,
        null, "hit-ratio");
      item("blocks / welcomes (1 h)", `${SGB.num(t.blocks_hour)} / ${SGB.num(t.welcomes_hour)}`);
      if (t.unparsed_hour) item("unparsed (1 h)", SGB.num(t.unparsed_hour), null, "unparsed");
      tile.append(dl);
      return tile;
    });
    if (!nodes.length) nodes.push(SGB.el("p", "No proxy has sent anything yet.", "empty"));
    $("tiles").replaceChildren(...nodes);
    const select = $("proxy");
    const known = new Set([...select.options].map((o) => o.value));
    for (const t of tiles) {
      if (!known.has(t.proxy)) {
        const opt = SGB.el("option", t.proxy);
        opt.value = t.proxy;
        select.append(opt);
      }
    }
  };

  const chart = (id, times, named) => {
    const host = $(id);
    const width = Math.max(240, host.clientWidth || 600);
    const series = [{}];
    const data = [times];
    Object.entries(named).forEach(([name, values], i) => {
      series.push({ label: SGB.visible(name), stroke: COLORS[i % COLORS.length], width: 2,
        points: { show: false } });
      data.push(values);
    });
    if (charts[id]) charts[id].destroy();
    charts[id] = new uPlot({ width, height: 220, series, scales: { x: { time: true } },
      axes: [{}, { size: 60 }], legend: { live: true } }, data, host);
  };

  const topRows = (id, rows, cells) => {
    SGB.fillTable($(id), rows.map((r) => {
      const tr = document.createElement("tr");
      cells(r).forEach(([v, cls]) => tr.append(SGB.el("td", v, cls)));
      return tr;
    }));
  };

  const render = (data) => {
    renderTiles(data.tiles);
    const s = data.series;
    chart("chart-totals", s.times, s.totals);
    chart("chart-categories", s.times, s.by_category);
    const metric = $("proxy-metric").value;
    const per = {};
    for (const [name, v] of Object.entries(s.by_proxy)) per[name] = v[metric];
    chart("chart-proxies", s.times, per);
    topRows("top-blocked", data.tops.blocked, (r) => [[r.host], [r.category], [SGB.num(r.blocks), "num"]]);
    topRows("top-clients", data.tops.clients, (r) => [[r.client], [SGB.num(r.requests), "num"],
      [SGB.num(r.blocks), "num"], [SGB.bytes(r.bytes), "num"]]);
    topRows("top-cached", data.tops.cached, (r) => [[r.host], [SGB.num(r.hits), "num"],
      [SGB.num(r.requests), "num"], [SGB.bytes(r.hit_bytes), "num"]]);
  };

  let lastData = null;
  const refresh = async () => {
    lastFetch = Date.now();
    try {
      lastData = await SGB.getJSON("/api/overview?" + rangeQuery().toString());
      render(lastData);
    } catch (err) {
      $("live-state").textContent = `error: ${err.message}`;
    }
  };

  // New rows arrived: refresh the charts, at most every 5 s.
  const soon = () => {
    if (pending) return;
    const wait = Math.max(0, 5000 - (Date.now() - lastFetch));
    pending = setTimeout(() => { pending = null; refresh(); }, wait);
  };

  document.addEventListener("DOMContentLoaded", () => {
    $("range").addEventListener("change", refresh);
    $("proxy").addEventListener("change", refresh);
    $("proxy-metric").addEventListener("change", () => lastData && render(lastData));
    let resizeTimer = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => lastData && render(lastData), 200);
    });
    refresh();
    SGB.live({}, { tiles: renderTiles, tick: soon });
    setInterval(() => renderTiles(lastTiles), 10000); // keep "… ago" current
    setInterval(refresh, 60000);
  });
})();
