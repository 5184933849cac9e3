// The live group page: per phase a bar (limit, CT reading, other load, reserved for
// offline chargers, allocated), per connector its status, LED, offer, draw and reason,
// updated from the SSE stream /api/events (at least once a second); below, the last 24 h
// from /api/history in two uPlot charts.
"use strict";

// Conductor colours of the manual (5.3.4): L1 brown, L2 black, L3 grey.
const PHASE_COLOURS = {L1: "#8b4513", L2: "#222222", L3: "#8a8a8a"};
const LED_CSS = {white: "#f4f4f4", green: "#1fa34a", magenta: "#d0349b", yellow: "#f0c419",
                 blue: "#2f6fdb", red: "#d62d20"};
const HISTORY_REFRESH_MS = 30000;

function phaseBar(p) {
  const parts = [p.other_load_a, p.reserved_offline_a, p.allocated_a];
  const used = parts.reduce((a, b) => a + b, 0);
  const scale = Math.max(p.limit_a, p.configured_limit_a || 0, p.ct_a || 0, used, 1) * 1.08;
  const pct = (v) => `${Math.max(0, Math.min(100, (100 * v) / scale))}%`;
  const bar = el("div", {class: "bar", title: `limit ${amps(p.limit_a)}`});
  let left = 0;
  for (const [cls, v] of [["other", p.other_load_a], ["reserved", p.reserved_offline_a],
                          ["allocated", p.allocated_a]]) {
    if (v > 0) {
      const seg = el("div", {class: `seg ${cls}`});
      seg.style.left = pct(left);
      seg.style.width = pct(v);
      bar.append(seg);
    }
    left += v;
  }
  const limit = el("div", {class: "mark limit"});
  limit.style.left = pct(p.limit_a);
  bar.append(limit);
  if (p.ct_a !== null && p.ct_a !== undefined) {
    const ct = el("div", {class: "mark ct"});
    ct.style.left = pct(p.ct_a);
    bar.append(ct);
  }
  return bar;
}

function phaseRow(p) {
  const num = (field, label, v) => el("span", {class: `num ${field}`, "data-field": field},
                                      el("em", {text: label}), amps(v));
  const row = el("div", {class: "phase", "data-phase": p.phase},
    el("div", {class: "phase-name", text: p.phase}),
    phaseBar(p),
    el("div", {class: "nums"},
       num("limit_a", "limit", p.limit_a), num("ct_a", "CT", p.ct_a),
       num("other_load_a", "other load", p.other_load_a),
       num("reserved_offline_a", "reserved offline", p.reserved_offline_a),
       num("allocated_a", "allocated", p.allocated_a),
       num("drawn_a", "drawn by chargers", p.drawn_a)));
  if (p.limited_by) row.append(el("div", {class: "limited", text: p.limited_by}));
  return row;
}

function ledSwatch(led) {
  const s = el("span", {class: `led${led.blinking ? " blinking" : ""}`, title: led.meaning});
  const colours = led.colours.length ? led.colours.map((c) => LED_CSS[c] || c) : ["#ccc"];
  s.style.background = colours.length === 1 ? colours[0]
    : `linear-gradient(90deg, ${colours.map((c, i) => `${c} ${(100 * i) / colours.length}% ${(100 * (i + 1)) / colours.length}%`).join(", ")})`;
  return el("span", {class: "led-cell"}, s, el("span", {class: "led-words", text: led.meaning}));
}

function connectorRows(members) {
  const rows = [];
  for (const m of members) {
    if (!m.connectors.length) {
      rows.push(el("tr", {"data-charger": m.charger_id},
        el("td", {text: m.charger_id}), el("td", {class: m.online ? "" : "offline",
                                                text: m.online ? "online" : "offline"}),
        el("td", {colspan: 6, text: m.offline_reason || ""})));
    }
    for (const c of m.connectors) {
      const draw = c.draw_a ? c.draw_a.map((v) => v.toFixed(1)).join(" / ") + " A" : "–";
      const why = [c.reason_words || c.reason.replace(/_/g, " ")];
      if (!m.online && m.offline_reason) why.push(`offline: ${m.offline_reason}`);
      if (m.limits_refused_reason) why.push(`refuses: ${m.limits_refused_reason}`);
      rows.push(el("tr", {"data-connector": `${m.charger_id}/${c.connector_id}`},
        el("td", {text: m.charger_id}),
        el("td", {class: m.online ? "" : "offline", text: m.online ? "online" : "offline"}),
        el("td", {text: c.connector_id}),
        el("td", {class: "status", text: c.status.replace(/_/g, " ")}),
        el("td", {}, ledSwatch(c.led)),
        el("td", {class: "offer num-cell", "data-value": c.offer_a, text: amps(c.offer_a)}),
        el("td", {class: "draw num-cell", text: draw}),
        el("td", {class: "reason", text: why.join("; ")})));
    }
  }
  return rows;
}

function renderLive(view, ev) {
  view.header.replaceChildren(
    el("span", {}, el("em", {text: "group "}), ev.group),
    el("span", {}, el("em", {text: "master "}), ev.master_id),
    el("span", {}, el("em", {text: "term "}), ev.term),
    el("span", {id: "cycle"}, el("em", {text: "cycle "}), ev.cycle),
    el("span", {}, el("em", {text: "mode "}), ev.mode),
    el("span", {}, el("em", {text: "CT "}), ev.ct_status + (ev.ct_fault ? `: ${ev.ct_fault}` : "")),
    el("span", {}, el("em", {text: "offline strategy "}), ev.offline_strategy),
    el("span", {id: "updated", "data-at": ev.at_unix_s},
       el("em", {text: "updated "}), new Date(ev.at_unix_s * 1000).toLocaleTimeString()));
  view.phases.replaceChildren(...ev.phases.map(phaseRow));
  view.connectors.replaceChildren(...connectorRows(ev.members));
}

function chartOptions(title, width, series) {
  return {
    title, width, height: 260,
    scales: {x: {time: true}, y: {range: (u, min, max) => [0, Math.max(max || 0, 6) * 1.1]}},
    axes: [{}, {label: "A", size: 50}],
    series: [{}, ...series],
  };
}

function historyData(h) {
  const phaseSeries = [];
  const phaseCols = [h.t];
  for (const [name, s] of Object.entries(h.phases)) {
    const colour = PHASE_COLOURS[name] || "#555";
    phaseSeries.push({label: `${name} limit`, stroke: colour, dash: [6, 4], width: 1.5});
    phaseCols.push(s.limit_a);
    phaseSeries.push({label: `${name} CT`, stroke: colour, width: 2});
    phaseCols.push(s.ct_a);
    phaseSeries.push({label: `${name} chargers`, stroke: colour, width: 1, dash: [2, 3]});
    phaseCols.push(s.drawn_a);
  }
  const connSeries = [];
  const connCols = [h.t];
  const palette = ["#2f6fdb", "#1fa34a", "#d0349b", "#e07b00", "#7a3fd1", "#0097a7",
                   "#c2185b", "#5d4037"];
  Object.entries(h.connectors).forEach(([key, s], i) => {
    const colour = palette[i % palette.length];
    connSeries.push({label: `${key} offer`, stroke: colour, dash: [6, 4], width: 1.5});
    connCols.push(s.offer_a);
    connSeries.push({label: `${key} draw`, stroke: colour, width: 2});
    connCols.push(s.draw_a);
  });
  return {phaseSeries, phaseCols, connSeries, connCols};
}

async function drawHistory(view) {
  const h = await api("GET", "/api/history?points=720");
  const d = historyData(h);
  const width = Math.max(320, view.charts.clientWidth - 20);
  view.charts.replaceChildren();
  if (!h.t.length) {
    view.charts.append(el("p", {class: "hint", text: "No history yet: this charger keeps " +
      "a sample every 10 s while it leads the group."}));
    return;
  }
  const a = el("div", {id: "chart-phases"});
  const b = el("div", {id: "chart-connectors"});
  view.charts.append(a, b);
  if (typeof uPlot === "undefined") return;
  view.plots = [
    new uPlot(chartOptions("Per phase: current against the limit (24 h)", width, d.phaseSeries),
              d.phaseCols, a),
    new uPlot(chartOptions("Per connector: offer and draw (24 h)", width, d.connSeries),
              d.connCols, b),
  ];
}

io7.pages.live = async (main) => {
  const view = {
    header: el("div", {class: "live-header", id: "live-header"}),
    phases: el("div", {class: "phases", id: "phases"}),
    connectors: el("tbody", {id: "connectors"}),
    charts: el("div", {class: "charts", id: "charts"}),
    plots: [],
  };
  const legend = el("div", {class: "legend"},
    el("span", {class: "key other"}), "other load ",
    el("span", {class: "key reserved"}), "reserved for offline chargers ",
    el("span", {class: "key allocated"}), "allocated ",
    el("span", {class: "key limit"}), "limit ",
    el("span", {class: "key ct"}), "CT reading");
  const body = el("div", {id: "live-body"},
    el("section", {class: "card"}, el("h1", {text: "Live group"}), view.header, legend,
       view.phases),
    el("section", {class: "card"}, el("h2", {text: "Connectors"}),
       el("table", {class: "connectors"},
          el("thead", {}, el("tr", {},
            ...["charger", "link", "conn.", "status", "LED", "offer", "measured draw",
                "reason"].map((h) => el("th", {text: h})))),
          view.connectors)),
    el("section", {class: "card"}, el("h2", {text: "Last 24 hours"}), view.charts));
  const notice = el("div", {id: "live-notice"});
  main.append(notice, body);

  let source = null;
  let retry = null;
  let historyTimer = null;
  let closed = false;
  let probing = false;
  const open = () => {
    source = new EventSource("/api/events");
    source.onmessage = (msg) => {
      const ev = JSON.parse(msg.data);
      if (!ev.leading) {
        body.hidden = true;
        notice.replaceChildren(leaderNotice(ev));
        return;
      }
      if (body.hidden) drawHistory(view).catch((err) => banner(err.message));
      body.hidden = false;
      notice.replaceChildren();
      renderLive(view, ev);
    };
    // An EventSource cannot read a status: on any error (the server ended the stream, or
    // refused to reopen it) ask /api/me, whose 401 sends the page to the login form.
    source.onerror = async () => {
      if (closed || probing) return;
      probing = true;
      let ended = false;
      try {
        await api("GET", "/api/me");
      } catch (err) {
        ended = err instanceof ApiError && err.status === 401;
      } finally {
        probing = false;
      }
      if (!ended && !closed && source.readyState === EventSource.CLOSED) {
        retry = setTimeout(open, 2000);
      }
    };
  };
  open();
  await drawHistory(view).catch((err) => banner(err.message));
  historyTimer = setInterval(() => drawHistory(view).catch(() => {}), HISTORY_REFRESH_MS);
  io7.stoppers.push(() => {
    closed = true;
    if (source) source.close();
    clearTimeout(retry);
    clearInterval(historyTimer);
  });
};
