/* kari-debug live dashboard: polls the API, follows the log stream, draws small charts.
   Every value from the server reaches the page through textContent, never as HTML. */
"use strict";
(function () {
  const boot = JSON.parse(document.getElementById("kari-boot").textContent);
  const API = boot.api;
  const MAX_LOG_ROWS = 500;
  const MAX_POINTS = 300;
  const $ = (id) => document.getElementById(id);
  const state = {
    ext: null, source: null, stream: null, paused: false, held: [], timers: [],
    series: { cpu: [], rss: [], metric: [] }, metric: "", names: [],
    scope: null,  // "follow" (the newest run), a run id, or "all"; chosen once runs are known
    newestRun: undefined, shownRun: undefined,
  };

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  /* a test id that wraps after "/" and "::" only */
  function idNode(text) {
    const node = el("span", { class: "nodeid" });
    String(text).split(/(?<=::|\/)/).forEach((part, i) => {
      if (i) node.append(document.createElement("wbr"));
      node.append(el("span", { class: "seg" }, part));
    });
    return node;
  }

  // Runs: progress of the selected (by default the newest) run ---------------------------
  const SYMBOLS = { passed: "✓", failed: "✗", error: "⚠", skipped: "↷", xfailed: "⊘", xpassed: "★" };
  /* the stored run every panel shows: null for every run (and live data) */
  function scopedRun() {
    if (state.scope === "all" || state.scope === null) return null;
    return state.scope === "follow" ? (state.newestRun === undefined ? null : state.newestRun) : state.scope;
  }
  function rescope() {
    const run = scopedRun();
    if (run === state.shownRun) return;
    state.shownRun = run;
    state.series = { cpu: [], rss: [], metric: [] };
    $("scope").textContent = run === null ? "every panel: all runs" : `every panel: run #${run}`;
    openStream();
    refresh();
  }

  async function refreshRuns() {
    let data;
    try {
      data = await api("/runs/progress?limit=20");
    } catch (error) {
      return;  // no store: the run card stays empty
    }
    const runs = data.runs || [];
    const select = $("run");
    const newest = runs.length ? runs[0].id : null;
    if (newest !== null && state.newestRun !== undefined && newest !== state.newestRun) {
      // a new run: the health shown must be its own, not the previous run's
      api(`/health/${enc(state.ext || "")}/check`, { body: {} }).then(refresh).catch(() => {});
    }
    state.newestRun = newest;
    if (state.scope === null && state.source !== undefined) {
      state.scope = runs.length && state.source === "store" ? "follow" : "all";
    }
    const wanted = scopedRun();
    select.textContent = "";
    select.append(el("option", { value: "all" }, state.source === "live" ? "all (live data)" : "all runs"));
    for (const run of runs) {
      select.append(el("option", { value: String(run.id) }, `#${run.id} ${run.status === "running" ? "(running)" : clock(run.started_at)}`));
    }
    select.value = wanted === null ? "all" : String(wanted);
    rescope();
    if (!runs.length) return;
    const run = runs.find((r) => r.id === wanted) || runs[0];
    setStatus($("run-status"), run.status === "running" ? "degraded" : "healthy", run.status);
    const bar = $("run-bar");
    bar.max = Math.max(1, run.collected);
    bar.value = run.done;
    $("run-done").textContent = `${run.done} of ${run.collected} tests done`;
    const counts = $("run-counts");
    counts.textContent = "";
    for (const [outcome, n] of Object.entries(run.outcomes || {})) {
      counts.append(el("li", { dataset: { outcome } }, el("span", { class: `badge o-${outcome}` }, `${SYMBOLS[outcome] || "?"} ${n} ${outcome}`)));
    }
    const running = $("run-running");
    running.textContent = "";
    if (!run.running.length) running.append(el("li", { class: "empty" }, run.status === "running" ? "between tests" : "nothing: the run is over"));
    for (const test of run.running) {
      running.append(el("li", null, idNode(test.nodeid), el("span", { class: "muted" }, ` since ${clock(test.started_at)}`)));
    }
  }

  async function refreshFlaky() {
    let data;
    try {
      data = await api("/history/flaky?runs=10");
    } catch (error) {
      return;
    }
    const body = $("flaky");
    body.textContent = "";
    if (!data.flaky.length) body.append(el("tr", null, el("td", { colspan: "3", class: "empty" }, "no flaky test")));
    for (const h of data.flaky.slice(0, 30)) {
      body.append(el("tr", null,
        el("td", { class: "mono" }, h.runs.map((r) => SYMBOLS[r.outcome] || "?").join("")),
        el("td", { class: "num" }, `${h.failures} of ${h.runs.length}`),
        el("td", null, idNode(h.nodeid))));
    }
  }

  function enc(text) { return encodeURIComponent(text); }

  function showProblem(text) {
    const box = $("problem");
    box.textContent = text || "";
    box.hidden = !text;
  }

  async function api(path, options) {
    const init = Object.assign({ credentials: "same-origin", headers: { Accept: "application/json" } }, options || {});
    if (init.body !== undefined) {
      init.method = init.method || "POST";
      init.headers = Object.assign({ "Content-Type": "application/json" }, init.headers);
      init.body = JSON.stringify(init.body);
    }
    const response = await fetch(API + path, init);
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const detail = data && data.detail ? (typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail)) : response.statusText;
      throw new Error(`${response.status}: ${detail}`);
    }
    return data;
  }

  // Formatting -------------------------------------------------------------------------
  function clock(ts) {
    if (typeof ts !== "number") return "";
    const d = new Date(ts * 1000);
    return d.toLocaleTimeString(undefined, { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
  }
  /* every figure's unit and rounding: the catalogue's (figures.js) */
  function number(value) { return kariFormat(value, ""); }
  function duration(seconds) { return kariFormat(seconds, "s"); }
  function ago(ts) { return typeof ts === "number" ? clock(ts) : "–"; }
  function setStatus(node, status, text) {
    node.dataset.status = status || "";
    node.textContent = text;
  }

  // Extensions -------------------------------------------------------------------------
  function fillExtensions(list) {
    const select = $("ext");
    const current = state.ext;
    select.textContent = "";
    for (const item of list) {
      select.append(el("option", { value: item.extension_id }, `${item.extension_id} (${item.source})`));
    }
    if (!list.length) select.append(el("option", { value: "" }, "no extension yet"));
    const wanted = current || decodeURIComponent((location.hash.match(/ext=([^&]*)/) || [])[1] || "") || boot.first;
    const found = list.find((item) => item.extension_id === wanted) || list[0];
    if (found) select.value = found.extension_id;
    return found ? found.extension_id : null;
  }

  async function refreshExtensions() {
    try {
      const data = await api("/managers");
      const chosen = fillExtensions(data.managers);
      if (chosen && chosen !== state.ext) choose(chosen);
    } catch (error) {
      showProblem(`cannot list extensions: ${error.message}`);
    }
  }

  function choose(ext) {
    state.ext = ext;
    state.series = { cpu: [], rss: [], metric: [] };
    // the run scope is chosen again once this extension's source (live or store) is known
    Object.assign(state, { source: undefined, scope: null, shownRun: undefined });
    history.replaceState(null, "", `#ext=${enc(ext)}`);
    $("logs").textContent = "";
    openStream();
    refresh();
    realtime();
  }

  // Overview, health, errors, alerts, sessions ------------------------------------------
  function renderOverview(o) {
    const box = $("overview");
    box.textContent = "";
    const levels = o.log_levels || {};
    const figures = [
      ["status", o.running ? "running" : (o.source === "store" ? "recorded" : "stopped")],
      ["sessions", `${o.sessions ? o.sessions.active : 0} active / ${o.sessions ? o.sessions.completed : 0} done`],
      ["log records", number((o.counts || {}).logging || 0)],
      ["warnings+", number((levels.WARNING || 0) + (levels.ERROR || 0) + (levels.CRITICAL || 0))],
      ["errors", `${number(o.errors ? o.errors.total : 0)} in ${number(o.errors ? o.errors.groups : 0)} groups`],
      ["active alerts", number(o.alerts ? o.alerts.active : 0)],
      ["metric points", number((o.counts || {}).metrics || 0)],
      ["dropped", number(Object.values(o.dropped || {}).reduce((a, b) => a + b, 0))],
      ["debug overhead", kariFormat(o.debug_overhead_ms, "ms")],
    ];
    for (const [name, value] of figures) {
      box.append(el("div", { dataset: { figure: name } }, el("dt", null, name), el("dd", null, value)));
    }
  }

  function renderHealth(h) {
    setStatus($("health-status"), h.overall_status, `health ${h.overall_status}`);
    const list = $("health");
    list.textContent = "";
    for (const check of h.checks || []) {
      list.append(el("li", { dataset: { status: check.status } },
        el("span", { class: "name" }, check.component),
        el("span", { dataset: { status: check.status } }, check.status),
        el("span", { class: "detail" }, check.detail)));
    }
  }

  /* a notes box whose text survives the list being redrawn by the next poll */
  const typedNotes = new Map();
  function notesInput(key) {
    const input = el("input", { type: "text", class: "notes", placeholder: "notes", "aria-label": "resolution notes" });
    input.value = typedNotes.get(key) || "";
    input.addEventListener("input", () => typedNotes.set(key, input.value));
    return input;
  }

  function renderErrors(e) {
    const body = $("errors");
    body.textContent = "";
    const groups = e.groups || [];
    if (!groups.length) body.append(el("tr", null, el("td", { colspan: "5", class: "empty" }, "no errors")));
    for (const g of groups.slice(0, 50)) {
      const text = `${g.error_type || "Error"}: ${g.message || ""}`;
      let action;
      if (g.status !== "resolved") {
        const notes = notesInput(`group:${g.fingerprint}`);
        const button = el("button", { type: "button", class: "resolve" }, "Resolve");
        button.addEventListener("click", () => change(`/dashboard/${enc(state.ext)}/errors/${enc(g.fingerprint)}/resolve`, button, notes.value));
        action = el("span", { class: "resolve-with" }, notes, button);
      } else {
        const button = el("button", { type: "button", class: "reopen" }, "Reopen");
        button.addEventListener("click", () => change(`/dashboard/${enc(state.ext)}/errors/${enc(g.fingerprint)}/reopen`, button));
        action = el("span", { class: "resolve-with" }, g.resolution_notes ? el("span", { class: "muted notes-shown" }, g.resolution_notes) : null, button);
      }
      const row = el("tr", { dataset: { fingerprint: g.fingerprint } },
        el("td", { class: "num" }, number(g.count)),
        el("td", { title: g.suggestion || "" }, text),
        el("td", null, g.category || ""),
        el("td", { class: "status", dataset: { status: g.status === "resolved" ? "resolved" : "active" } }, g.status),
        el("td", null, action));
      body.append(row);
    }
  }

  /* one alert per rule and test across runs: its occurrences, when first and last seen,
     and Resolve (with notes) or Reopen */
  function renderAlerts(alerts) {
    const list = $("alerts");
    list.textContent = "";
    const shown = [...alerts].sort((a, b) => (a.status === "active" ? 0 : 1) - (b.status === "active" ? 0 : 1));
    if (!shown.length) list.append(el("li", { class: "empty" }, "no alerts"));
    for (const alert of shown.slice(0, 50)) {
      let action;
      if (alert.status === "resolved") {
        const button = el("button", { type: "button", class: "reopen" }, "Reopen");
        button.addEventListener("click", () => change(`/alerts/${enc(state.ext)}/${enc(alert.group)}/reopen`, button));
        action = [alert.resolution_notes ? el("span", { class: "muted notes-shown" }, alert.resolution_notes) : null, button];
      } else {
        const notes = notesInput(`alert:${alert.group}`);
        const button = el("button", { type: "button", class: "resolve" }, "Resolve");
        button.addEventListener("click", () => change(`/alerts/${enc(state.ext)}/${enc(alert.group)}/resolve`, button, notes.value));
        action = [notes, button];
      }
      const runs = (alert.runs || []).length;
      const seen = `×${alert.occurrences || 1}${runs > 1 ? ` in ${runs} runs` : ""}, first ${ago(alert.first_seen)}, last ${ago(alert.last_seen)}`;
      list.append(el("li", { dataset: { alertId: alert.alert_id, group: alert.group || "", severity: alert.severity, status: alert.status } },
        el("span", { class: `badge sev-${alert.severity}` }, alert.severity),
        el("span", { class: "title" }, alert.title || alert.message || alert.alert_type || alert.alert_id,
          alert.test ? el("span", { class: "test" }, " ", idNode(alert.test)) : null),
        el("span", { class: "status", dataset: { status: alert.status } }, alert.status),
        el("span", { class: "muted seen" }, seen),
        ...action));
    }
  }

  function renderSessions(sessions) {
    const body = $("sessions");
    body.textContent = "";
    const rows = [...(sessions.active || []), ...(sessions.completed || [])].slice(0, 50);
    if (!rows.length) body.append(el("tr", null, el("td", { colspan: "4", class: "empty" }, "no sessions yet")));
    for (const s of rows) {
      const records = Object.entries(s.records || {}).filter(([, n]) => n).map(([k, n]) => `${k} ${n}`).join(", ");
      body.append(el("tr", { dataset: { sessionId: s.session_id || "" } },
        el("td", { class: `o-${s.status}` }, s.status),
        el("td", null, s.name),
        el("td", { class: "num" }, s.status === "running" ? "…" : duration(s.duration_seconds)),
        el("td", { class: "muted" }, records)));
    }
  }

  function fillMetricNames(names, recorded) {
    const own = recorded.filter((n) => names.includes(n));
    const rest = names.filter((n) => !own.includes(n) && !["cpu_percent", "memory_mb", "rss_bytes"].includes(n));
    const wanted = [...own, ...rest];
    if (wanted.join("\n") === state.names.join("\n")) return;
    state.names = wanted;
    const select = $("metric");
    const current = state.metric;
    select.textContent = "";
    select.append(el("option", { value: "" }, "custom metric…"));
    for (const name of wanted) select.append(el("option", { value: name }, name));
    if (!current && wanted.length) state.metric = wanted[0];
    select.value = state.metric;
  }

  async function refresh() {
    const ext = state.ext;
    if (!ext) return;
    try {
      const run = scopedRun();
      const scope = run === null ? "" : `&run_id=${run}`;
      const data = await api(`/dashboard/${enc(ext)}?log_limit=1&window_seconds=3600${scope}`);
      if (ext !== state.ext || run !== scopedRun()) return;
      const first = state.source === undefined;
      state.source = data.source;
      if (first) refreshRuns();
      $("source").textContent = data.source;
      renderOverview(data.overview);
      renderHealth(data.health);
      renderErrors(data.errors);
      renderAlerts(data.alerts);
      renderSessions(data.sessions);
      fillMetricNames(data.metrics.names || [], data.metrics.recorded || []);
      seedSeries(data.metrics, run !== null || data.source === "store");
      $("updated").textContent = `updated ${clock(data.generated_at)}`;
      showProblem("");
    } catch (error) {
      showProblem(`cannot load the dashboard of ${ext}: ${error.message}`);
    }
  }

  /* POST a resolve or reopen; the panels are drawn anew from the server's answer */
  async function change(path, button, notes) {
    button.disabled = true;
    const body = notes === undefined ? {} : { notes: (notes || "").trim() || "resolved from the dashboard" };
    try {
      await api(path, { body });
      await refresh();
    } catch (error) {
      button.disabled = false;
      showProblem(`cannot ${path.split("/").pop()} ${decodeURIComponent(path.split("/").slice(-2, -1)[0])}: ${error.message}`);
    }
  }

  // Charts: a real time axis; no line across a stretch without samples ------------------
  const UNITS = { cpu: "%", rss: "bytes" };
  function push(series, ts, value) {
    if (typeof value !== "number" || !isFinite(value)) return;
    if (series.length && series[series.length - 1][0] >= ts) return;
    series.push([ts, value]);
    if (series.length > MAX_POINTS) series.splice(0, series.length - MAX_POINTS);
  }

  function seedSeries(metrics, recorded) {
    const series = metrics.series || {};
    const units = metrics.aggregates || {};
    state.metricUnit = state.metric && units[state.metric] ? units[state.metric].unit : "";
    if (recorded || state.series.cpu.length < 2) state.series.cpu = (series.cpu_percent || []).slice(-MAX_POINTS);
    if (recorded || state.series.rss.length < 2) state.series.rss = (series.rss_bytes || []).slice(-MAX_POINTS);
    if (recorded || state.series.metric.length < 2) {
      state.series.metric = state.metric && series[state.metric] ? series[state.metric].slice(-MAX_POINTS) : [];
    }
    drawAll();
  }
  function drawAll() {
    draw("chart-cpu", state.series.cpu, UNITS.cpu);
    draw("chart-rss", state.series.rss, UNITS.rss);
    draw("chart-metric", state.series.metric, state.metricUnit || "");
  }

  /* a step between samples longer than this is a gap: three times the usual step, at least 2 s */
  function gapAfter(points) {
    const steps = [];
    for (let i = 1; i < points.length; i++) steps.push(points[i][0] - points[i - 1][0]);
    steps.sort((a, b) => a - b);
    const usual = steps.length ? steps[Math.floor(steps.length / 2)] : 0;
    return Math.max(2, usual * 3);
  }
  function timeTicks(t0, t1) {
    const span = Math.max(t1 - t0, 1e-3);
    const step = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400]
      .find((s) => span / s <= 4) || 86400;
    const ticks = [];
    for (let t = Math.ceil(t0 / step) * step; t <= t1 && ticks.length < 8; t += step) ticks.push(t);
    return ticks;
  }
  function hhmmss(ts) {
    return new Date(ts * 1000).toLocaleTimeString(undefined, { hour12: false });
  }

  function draw(id, points, unit) {
    const svg = $(id);
    const readout = $(`${id}-readout`);
    svg.textContent = "";
    const ns = "http://www.w3.org/2000/svg";
    const node = (tag, attrs, text) => {
      const n = document.createElementNS(ns, tag);
      for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
      if (text !== undefined) n.textContent = text;
      svg.append(n);
      return n;
    };
    if (points.length < 2) {
      const none = scopedRun() === null ? "no samples yet" : `no samples in run #${scopedRun()}`;
      node("text", { x: 8, y: 60 }, points.length ? "waiting for a second sample" : none);
      svg.dataset.points = String(points.length);
      svg.dataset.gaps = "0";
      return;
    }
    const W = 360, H = 120, L = 62, R = 8, T = 8, B = 22;
    const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
    const x0 = Math.min(...xs), x1 = Math.max(...xs) > x0 ? Math.max(...xs) : x0 + 1;
    let y0 = Math.min(0, ...ys), y1 = Math.max(...ys);
    if (y1 - y0 < 1e-9) y1 = y0 + 1;
    const X = (v) => L + (v - x0) / (x1 - x0) * (W - L - R);
    const Y = (v) => H - B - (v - y0) / (y1 - y0) * (H - T - B);
    for (const v of [y0, (y0 + y1) / 2, y1]) {
      node("line", { class: "grid", x1: L, x2: W - R, y1: Y(v), y2: Y(v) });
      node("text", { class: "tick", x: L - 4, y: Y(v) + 3, "text-anchor": "end" }, kariFormat(v, unit));
    }
    for (const t of timeTicks(x0, x1)) {
      node("line", { class: "axis", x1: X(t), x2: X(t), y1: H - B, y2: H - B + 3 });
      node("text", { class: "tick", x: X(t), y: H - 6, "text-anchor": "middle" }, hhmmss(t));
    }
    node("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B });
    node("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B });
    // one path per stretch of samples; a shaded band where there were none
    const gap = gapAfter(points);
    let d = "", gaps = 0;
    points.forEach(([t, v], i) => {
      const starts = i === 0 || t - points[i - 1][0] > gap;
      if (i && starts) {
        gaps += 1;
        node("rect", { class: "gap", x: X(points[i - 1][0]), y: T, width: Math.max(1, X(t) - X(points[i - 1][0])), height: H - T - B })
          .append(Object.assign(document.createElementNS(ns, "title"), { textContent: `no samples from ${hhmmss(points[i - 1][0])} to ${hhmmss(t)}` }));
      }
      d += `${starts ? "M" : "L"}${X(t).toFixed(1)} ${Y(v).toFixed(1)}`;
    });
    node("path", { class: "series", d });
    svg.dataset.points = String(points.length);
    svg.dataset.gaps = String(gaps);
    // point at the chart: the nearest sample's time and value
    const guide = node("line", { class: "guide", x1: L, x2: L, y1: T, y2: H - B, visibility: "hidden" });
    const pad = node("rect", { class: "hover-pad", x: L, y: T, width: W - L - R, height: H - T - B });
    pad.addEventListener("mousemove", (event) => {
      const box = svg.getBoundingClientRect();
      const scale = Math.min(box.width / W, box.height / H);
      const left = box.left + (box.width - W * scale) / 2;
      const at = x0 + ((event.clientX - left) / scale - L) / (W - L - R) * (x1 - x0);
      let best = points[0];
      for (const p of points) if (Math.abs(p[0] - at) < Math.abs(best[0] - at)) best = p;
      guide.setAttribute("x1", X(best[0])); guide.setAttribute("x2", X(best[0]));
      guide.setAttribute("visibility", "visible");
      if (readout) readout.textContent = `${hhmmss(best[0])}: ${kariFormat(best[1], unit)}`;
    });
  }

  async function realtime() {
    const ext = state.ext;
    // a run's charts are what was recorded; live readings join only the live view
    if (!ext || state.source !== "live" || scopedRun() !== null) return;
    const names = ["cpu_percent", "rss_bytes"];
    if (state.metric) names.push(state.metric);
    try {
      const data = await api(`/dashboard/${enc(ext)}/metrics/realtime`, { body: { names } });
      if (ext !== state.ext) return;
      const m = data.metrics;
      if (m.cpu_percent) push(state.series.cpu, m.cpu_percent.ts, m.cpu_percent.value);
      if (m.rss_bytes) push(state.series.rss, m.rss_bytes.ts, m.rss_bytes.value);
      if (state.metric && m[state.metric]) push(state.series.metric, m[state.metric].ts, m[state.metric].value);
      $("cpu-now").textContent = m.cpu_percent ? kariFormat(m.cpu_percent.value, "%") : "";
      $("rss-now").textContent = m.rss_bytes ? kariFormat(m.rss_bytes.value, "bytes") : "";
      const custom = state.metric ? m[state.metric] : null;
      $("metric-now").textContent = custom ? kariFormat(custom.value, custom.unit || "") : "";
      drawAll();
    } catch (error) {
      showProblem(`cannot read real-time metrics: ${error.message}`);
    }
  }

  // Log stream -------------------------------------------------------------------------
  function logRow(record) {
    const text = [record.message];
    const fields = record.fields && Object.keys(record.fields).length ? JSON.stringify(record.fields) : "";
    if (fields) text.push(" ", fields);
    if (record.exception && record.exception.type) text.push(`\n${record.exception.type}: ${record.exception.message || ""}`);
    return el("li", { dataset: { level: record.level, seq: record.seq === undefined ? "" : record.seq } },
      el("span", { class: "muted" }, clock(record.ts)),
      el("span", { class: `lv lv-${String(record.level).toLowerCase()}` }, record.level),
      el("span", { class: "test", title: record.test || "" }, idNode(record.test || "")),
      el("span", { class: "msg" }, ...text));
  }

  function addLogs(records) {
    const list = $("logs");
    for (const record of records) list.prepend(logRow(record));
    while (list.children.length > MAX_LOG_ROWS) list.lastElementChild.remove();
  }

  function openStream() {
    if (state.stream) state.stream.close();
    state.held = [];
    $("dropped").hidden = true;
    if (!state.ext) return;
    const params = new URLSearchParams({ backlog: "100" });
    if (scopedRun() !== null) params.set("run_id", String(scopedRun()));
    if ($("level").value) params.set("level", $("level").value);
    if ($("search").value.trim()) params.set("query", $("search").value.trim());
    $("logs").textContent = "";
    const stream = new EventSource(`${API}/dashboard/${enc(state.ext)}/logs/stream?${params}`);
    state.stream = stream;
    stream.addEventListener("open", () => { $("log-state").textContent = "live"; });
    stream.addEventListener("log", (event) => {
      const record = JSON.parse(event.data);
      if (state.paused) { state.held.push(record); state.held.splice(0, state.held.length - MAX_LOG_ROWS); }
      else addLogs([record]);
    });
    stream.addEventListener("dropped", (event) => {
      const info = JSON.parse(event.data);
      const box = $("dropped");
      const before = Number(box.dataset.count || 0) + info.count;
      box.dataset.count = String(before);
      box.textContent = `${before} record(s) skipped (the log ran faster than this page could follow)`;
      box.hidden = false;
    });
    stream.addEventListener("error", () => {
      $("log-state").textContent = stream.readyState === EventSource.CLOSED ? "stream closed" : "reconnecting…";
    });
  }

  // Wiring -----------------------------------------------------------------------------
  $("ext").addEventListener("change", (event) => { if (event.target.value) choose(event.target.value); });
  $("level").addEventListener("change", openStream);
  let searchTimer = null;
  $("search").addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(openStream, 300); });
  $("pause").addEventListener("click", (event) => {
    state.paused = !state.paused;
    event.target.setAttribute("aria-pressed", String(state.paused));
    event.target.textContent = state.paused ? "Resume" : "Pause";
    if (!state.paused) { addLogs(state.held); state.held = []; }
  });
  $("metric").addEventListener("change", (event) => {
    state.metric = event.target.value;
    state.series.metric = [];
    refresh();
  });
  $("health-check").addEventListener("click", async () => {
    try {
      await api(`/health/${enc(state.ext)}/check`, { body: {} });
      await refresh();
    } catch (error) {
      showProblem(`health check failed: ${error.message}`);
    }
  });

  const first = fillExtensions(boot.extensions || []);
  if (first) choose(first);
  else showProblem("no extension yet: start a manager or record a run with pytest --kari-debug");
  $("run").addEventListener("change", (event) => {
    const value = event.target.value;
    state.scope = value === "all" ? "all" : Number(value) === state.newestRun ? "follow" : Number(value);
    refreshRuns();
  });
  refreshRuns();
  refreshFlaky();
  state.timers.push(setInterval(refreshRuns, 1000));
  state.timers.push(setInterval(refreshFlaky, 15000));
  state.timers.push(setInterval(refresh, 2500));
  state.timers.push(setInterval(realtime, 1000));
  state.timers.push(setInterval(refreshExtensions, 10000));
})();
