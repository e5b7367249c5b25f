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
    const wanted = state.runFollow === false ? state.runChosen : newest;
    select.textContent = "";
    for (const run of runs) {
      select.append(el("option", { value: String(run.id) }, `#${run.id} ${run.status === "running" ? "(running)" : clock(run.started_at)}`));
    }
    if (!runs.length) { select.append(el("option", { value: "" }, "no run recorded")); return; }
    const run = runs.find((r) => r.id === wanted) || runs[0];
    select.value = String(run.id);
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
  function number(value, digits) {
    if (typeof value !== "number" || !isFinite(value)) return "–";
    return value.toLocaleString(undefined, { maximumFractionDigits: digits === undefined ? 2 : digits });
  }
  function duration(seconds) {
    if (typeof seconds !== "number") return "–";
    return seconds < 1 ? `${number(seconds * 1000, 1)} ms` : `${number(seconds, 2)} s`;
  }
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
      ["log records", number((o.counts || {}).logging || 0, 0)],
      ["warnings+", number((levels.WARNING || 0) + (levels.ERROR || 0) + (levels.CRITICAL || 0), 0)],
      ["errors", `${number(o.errors ? o.errors.total : 0, 0)} in ${number(o.errors ? o.errors.groups : 0, 0)} groups`],
      ["active alerts", number(o.alerts ? o.alerts.active : 0, 0)],
      ["metric points", number((o.counts || {}).metrics || 0, 0)],
      ["dropped", number(Object.values(o.dropped || {}).reduce((a, b) => a + b, 0), 0)],
      ["debug overhead", `${number(o.debug_overhead_ms, 1)} ms`],
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
      let action = null;
      if (g.status !== "resolved") {
        const notes = notesInput(`group:${g.fingerprint}`);
        const button = el("button", { type: "button", class: "resolve" }, "Resolve");
        button.addEventListener("click", () => resolveGroup(g.fingerprint, button, notes.value));
        action = el("span", { class: "resolve-with" }, notes, button);
      }
      const row = el("tr", { dataset: { fingerprint: g.fingerprint } },
        el("td", { class: "num" }, number(g.count, 0)),
        el("td", { title: g.suggestion || "" }, text),
        el("td", null, g.category || ""),
        el("td", { class: "status", dataset: { status: g.status === "resolved" ? "resolved" : "active" } }, g.status),
        el("td", null, action));
      body.append(row);
    }
  }

  function renderAlerts(alerts) {
    const list = $("alerts");
    list.textContent = "";
    const active = alerts.filter((a) => a.status === "active");
    if (!active.length) list.append(el("li", { class: "empty" }, "no active alerts"));
    for (const alert of active) {
      const notes = notesInput(`alert:${alert.alert_id}`);
      const button = el("button", { type: "button", class: "resolve" }, "Resolve");
      button.addEventListener("click", () => resolveAlert(alert.alert_id, button, notes.value));
      list.append(el("li", { dataset: { alertId: alert.alert_id, severity: alert.severity } },
        el("span", { class: `badge sev-${alert.severity}` }, alert.severity),
        el("span", { class: "title" }, alert.title || alert.message || alert.alert_type || alert.alert_id),
        el("span", { class: "muted" }, clock(alert.ts)),
        notes, button));
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
    const rest = names.filter((n) => !own.includes(n) && n !== "cpu_percent" && n !== "memory_mb");
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
      const data = await api(`/dashboard/${enc(ext)}?log_limit=1&window_seconds=3600`);
      if (ext !== state.ext) return;
      state.source = data.source;
      $("source").textContent = data.source;
      renderOverview(data.overview);
      renderHealth(data.health);
      renderErrors(data.errors);
      renderAlerts(data.alerts);
      renderSessions(data.sessions);
      fillMetricNames(data.metrics.names || [], data.metrics.recorded || []);
      if (data.source === "store" || state.series.metric.length < 2) seedSeries(data.metrics);
      $("updated").textContent = `updated ${clock(data.generated_at)}`;
      showProblem("");
    } catch (error) {
      showProblem(`cannot load the dashboard of ${ext}: ${error.message}`);
    }
  }

  async function resolveGroup(fingerprint, button, notes) {
    button.disabled = true;
    try {
      await api(`/dashboard/${enc(state.ext)}/errors/${enc(fingerprint)}/resolve`, { body: { notes: (notes || "").trim() || "resolved from the dashboard" } });
      await refresh();
    } catch (error) {
      button.disabled = false;
      showProblem(`cannot resolve error group ${fingerprint}: ${error.message}`);
    }
  }

  async function resolveAlert(id, button, notes) {
    button.disabled = true;
    try {
      await api(`/alerts/${enc(state.ext)}/${enc(id)}/resolve`, { body: { notes: (notes || "").trim() || "resolved from the dashboard" } });
      await refresh();
    } catch (error) {
      button.disabled = false;
      showProblem(`cannot resolve alert ${id}: ${error.message}`);
    }
  }

  // Charts -----------------------------------------------------------------------------
  function push(series, ts, value) {
    if (typeof value !== "number" || !isFinite(value)) return;
    if (series.length && series[series.length - 1][0] >= ts) return;
    series.push([ts, value]);
    if (series.length > MAX_POINTS) series.splice(0, series.length - MAX_POINTS);
  }

  function seedSeries(metrics) {
    const series = metrics.series || {};
    state.series.metric = state.metric && series[state.metric] ? series[state.metric].slice(-MAX_POINTS) : [];
    draw("chart-metric", state.series.metric);
  }

  function draw(id, points) {
    const svg = $(id);
    svg.textContent = "";
    const ns = "http://www.w3.org/2000/svg";
    if (points.length < 2) {
      const text = document.createElementNS(ns, "text");
      text.setAttribute("x", "6"); text.setAttribute("y", "44");
      text.textContent = points.length ? "waiting for a second point" : "no data yet";
      svg.append(text);
      return;
    }
    const xs = points.map((p) => p[0]);
    const ys = points.map((p) => p[1]);
    const x0 = Math.min(...xs), x1 = Math.max(...xs);
    let y0 = Math.min(...ys), y1 = Math.max(...ys);
    if (y1 - y0 < 1e-9) { y0 -= 1; y1 += 1; }
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("class", "series");
    line.setAttribute("points", points.map(([x, y]) =>
      `${((x - x0) / (x1 - x0 || 1) * 300).toFixed(1)},${(76 - (y - y0) / (y1 - y0) * 72).toFixed(1)}`).join(" "));
    svg.append(line);
    for (const [value, y] of [[y1, 9], [y0, 78]]) {
      const label = document.createElementNS(ns, "text");
      label.setAttribute("x", "3"); label.setAttribute("y", String(y));
      label.textContent = number(value);
      svg.append(label);
    }
  }

  async function realtime() {
    const ext = state.ext;
    if (!ext || state.source === "store") return;
    const names = ["cpu_percent", "memory_mb"];
    if (state.metric) names.push(state.metric);
    try {
      const data = await api(`/dashboard/${enc(ext)}/metrics/realtime`, { body: { names } });
      if (ext !== state.ext) return;
      const m = data.metrics;
      if (m.cpu_percent) push(state.series.cpu, m.cpu_percent.ts, m.cpu_percent.value);
      if (m.memory_mb) push(state.series.rss, m.memory_mb.ts, m.memory_mb.value);
      if (state.metric && m[state.metric]) push(state.series.metric, m[state.metric].ts, m[state.metric].value);
      $("cpu-now").textContent = m.cpu_percent ? `${number(m.cpu_percent.value, 1)} %` : "";
      $("rss-now").textContent = m.memory_mb ? `${number(m.memory_mb.value, 1)} MiB` : "";
      const custom = state.metric ? m[state.metric] : null;
      $("metric-now").textContent = custom ? `${number(custom.value)} ${custom.unit || ""}` : "";
      draw("chart-cpu", state.series.cpu);
      draw("chart-rss", state.series.rss);
      draw("chart-metric", state.series.metric);
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
    realtime();
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
    const id = Number(event.target.value);
    state.runFollow = id === state.newestRun;
    state.runChosen = id;
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
