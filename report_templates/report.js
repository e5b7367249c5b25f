/* kari-debug report: builds every view from the JSON block, lazily, with DOM text nodes only
   (never innerHTML), so nothing from the test data is ever parsed as markup. */
(function () {
  "use strict";
  var root = document.documentElement;
  root.classList.remove("no-js");
  root.classList.add("js");

  // ---------------------------------------------------------------- helpers
  var SVGNS = "http://www.w3.org/2000/svg";

  function add(node, kids) {
    for (var i = 0; i < kids.length; i++) {
      var kid = kids[i];
      if (kid === null || kid === undefined || kid === false) continue;
      if (Array.isArray(kid)) add(node, kid);
      else if (typeof kid === "object" && kid.nodeType) node.appendChild(kid);
      else node.appendChild(document.createTextNode(String(kid)));
    }
    return node;
  }
  function setAttrs(node, attrs) {
    if (!attrs) return node;
    Object.keys(attrs).forEach(function (key) {
      var value = attrs[key];
      if (value === null || value === undefined || value === false) return;
      if (key === "text") node.textContent = String(value);
      else if (key === "class") node.setAttribute("class", value);
      else if (key.slice(0, 2) === "on" && typeof value === "function") node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    });
    return node;
  }
  function el(tag, attrs) {
    var node = setAttrs(document.createElement(tag), attrs);
    return add(node, Array.prototype.slice.call(arguments, 2));
  }
  function svg(tag, attrs) {
    var node = setAttrs(document.createElementNS(SVGNS, tag), attrs);
    return add(node, Array.prototype.slice.call(arguments, 2));
  }
  function isNum(v) { return typeof v === "number" && isFinite(v); }
  /* every figure's unit and rounding: the catalogue's (figures.js, kariFormat) */
  function fmtMs(v) { return kariFormat(v, "ms"); }
  function fmtBytes(v) { return kariFormat(v, "bytes"); }
  function fmtSeconds(v) { return kariFormat(v, "s"); }
  function fmtNum(v) {
    if (!isNum(v)) return v === null || v === undefined ? "" : String(v);
    return kariFormat(v, "");
  }
  function fmtTs(ts) {
    if (!isNum(ts)) return "";
    return new Date(ts * 1000).toISOString().replace("T", " ").replace("Z", " UTC");
  }
  /* the catalogue unit of a field named *key* (peak_rss_bytes: bytes; cpu_user_s: s) */
  function unitOfKey(key) {
    var fig = FIGURES[key];
    if (fig) return fig.unit;
    var m = /_(bytes|ms|s|mb|percent)$/.exec(key);
    return m ? { bytes: "bytes", ms: "ms", s: "s", mb: "MiB", percent: "%" }[m[1]] : "";
  }
  function fmtValue(key, v) {
    if (!isNum(v)) return typeof v === "object" && v !== null ? JSON.stringify(v) : v === null || v === undefined ? "" : String(v);
    if (/(_at|^ts|^start|^end)$/.test(key) && v > 1e8) return fmtTs(v);
    return kariFormat(v, unitOfKey(key));
  }
  function cell(v) {
    if (v === null || v === undefined) return "";
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }
  /* a test id as text nodes with a <wbr> after each "/" and "::": it wraps there only */
  function idNode(text, attrs) {
    var node = el("span", Object.assign({ class: "nodeid" }, attrs || {}));
    String(text).split(/(?<=::|\/)/).forEach(function (part, i) {
      if (i) node.appendChild(document.createElement("wbr"));
      node.appendChild(el("span", { class: "seg" }, part));
    });
    return node;
  }
  var HIST_WORDS = { P: "passed", F: "failed", E: "error", S: "skipped", x: "xfailed", X: "xpassed" };
  /* the test's outcomes in its last stored runs, oldest first: one bar each, as tall as its
     duration is long; red for a failure */
  /* a test's stored history, decoded once from its compact form (report/data.py) */
  function histOf(t) {
    if (!t.h) return null;
    if (t._hist) return t._hist;
    var parts = String(t.h).split(" "), o = parts[0], runs = DATA.historyRuns || [];
    t._hist = { o: o, d: parts.slice(1).map(function (x) { return x === "-" ? null : Number(x); }),
      r: t.hr || runs.slice(runs.length - o.length), b: t.hb };
    return t._hist;
  }
  function sparkline(h) {
    if (!h || !h.o) return null;
    var n = h.o.length, W = 6, H = 16, max = 0;
    (h.d || []).forEach(function (d) { if (isNum(d) && d > max) max = d; });
    var label = "Last " + n + " runs, oldest first: " + h.o.split("").map(function (c, i) {
      return (HIST_WORDS[c] || c) + (h.d && isNum(h.d[i]) ? " " + fmtMs(h.d[i]) : "");
    }).join(", ");
    var g = svg("svg", { class: "spark", width: n * W, height: H, viewBox: "0 0 " + n * W + " " + H, role: "img", "aria-label": label },
      svg("title", null, label));
    h.o.split("").forEach(function (c, i) {
      var d = h.d && isNum(h.d[i]) && max > 0 ? h.d[i] / max : 1;
      var hh = Math.max(3, Math.round(d * H));
      g.appendChild(svg("rect", { class: c, x: i * W, y: H - hh, width: W - 1, height: hh }));
    });
    return g;
  }
  function histBadges(h) {
    return h && h.b ? h.b.map(function (b) { return [" ", el("span", { class: "badge hb-" + b.split(" ")[0] }, b)]; }) : null;
  }
  function cls(word) { return String(word || "").toLowerCase().replace(/[^a-z0-9_-]/g, ""); }
  function debounce(fn, ms) {
    var timer = null;
    return function () { clearTimeout(timer); timer = setTimeout(fn, ms); };
  }
  function jsonView(value) {
    var text = JSON.stringify(value, null, 2);
    if (text && text.length > 100000) text = text.slice(0, 100000) + "\n[... cut at 100000 characters]";
    return el("pre", { class: "json", text: text === undefined ? "" : text });
  }
  function records(data) { return data && Array.isArray(data.records) ? data.records : []; }
  function omittedNote(data, what) {
    var parts = [];
    if (data && data.dropped) parts.push(data.dropped + " " + what + " dropped by the bounded buffer");
    if (data && data.omitted) parts.push(data.omitted + " older " + what + " left out of this page (see the JSON export or the store)");
    return parts.length ? el("p", { class: "note" }, parts.join("; ") + ".") : null;
  }

  var OUTCOMES = { passed: "✓", failed: "✗", error: "⚠", skipped: "↷", xfailed: "⊘", xpassed: "★" };
  var OUTCOME_RANK = { failed: 0, error: 1, xpassed: 2, passed: 4, skipped: 5, xfailed: 6 };
  var SEVERITIES = { critical: "‼", high: "!", medium: "•", low: "·", info: "i" };
  var LEVELS = { TRACE: 5, DEBUG: 10, INFO: 20, WARN: 30, WARNING: 30, ERROR: 40, FATAL: 50, CRITICAL: 50 };
  function badge(outcome) {
    return el("span", { class: "badge o-" + cls(outcome) }, (OUTCOMES[outcome] || "?") + " " + outcome);
  }
  function sevBadge(severity) {
    var s = String(severity || "unknown").toLowerCase();
    return el("span", { class: "badge sev-" + cls(s) }, (SEVERITIES[s] || "?") + " " + s);
  }
  function levelNo(level) {
    if (isNum(level)) return level;
    var n = LEVELS[String(level || "").toUpperCase()];
    return n === undefined ? 0 : n;
  }

  function showFatal(message) {
    var main = document.getElementById("main");
    main.insertBefore(el("p", { class: "warn-note", role: "alert" }, message), main.firstChild);
  }

  var DATA;
  try {
    DATA = JSON.parse(document.getElementById("kari-data").textContent);
  } catch (err) {
    showFatal("The report's data could not be read (" + err.message + "); the summary above is still valid.");
    return;
  }
  var TESTS = DATA.tests || [];
  var MANY_EXT = (DATA.extensions || []).length > 1;
  /* what the page stores once or inside the test's data (report/data.py), back on each test */
  TESTS.forEach(function (t) {
    if (typeof t.ext === "number") t.ext = (DATA.extensions || [])[t.ext] || "";
    var res = t.data && t.data.metrics && t.data.metrics.resources;
    if (res) {
      if (t.rss === undefined && isNum(res.peak_rss_bytes)) t.rss = res.peak_rss_bytes;
      if (t.cpu === undefined && isNum(res.cpu_ms)) t.cpu = res.cpu_ms;
    }
  });
  var RUN = DATA.run || {};
  var NAMES = DATA.extensionNames || {};

  /* The page stores records compactly (see report/data.py): keys shared by every record of a
     kind sit in "common", and timestamps are milliseconds since the test started (t.t0).
     Restore them once, when a test's data is first needed. */
  var TIME_KEYS = ["ts", "start", "end", "created_at", "resolved_at"];
  function restore(r, common, base) {
    if (!r || typeof r !== "object" || Array.isArray(r)) return r;
    var out = common ? Object.assign({}, common, r) : r;
    if (base !== null) {
      TIME_KEYS.forEach(function (k) { if (isNum(out[k])) out[k] = base + out[k] / 1000; });
    }
    return out;
  }
  function columnsToRows(table) {
    // records and samples are stored as one list per key
    if (!table || typeof table !== "object" || Array.isArray(table)) return table;
    var keys = Object.keys(table), n = 0, rows = [];
    keys.forEach(function (k) { if (Array.isArray(table[k])) n = Math.max(n, table[k].length); });
    for (var i = 0; i < n; i++) {
      var row = {};
      keys.forEach(function (k) {
        var v = Array.isArray(table[k]) ? table[k][i] : undefined;
        if (v !== null && v !== undefined) row[k] = v;
      });
      rows.push(row);
    }
    return rows;
  }
  function hydrate(t) {
    if (t.hydrated) return t;
    t.hydrated = true;
    var base = isNum(t.t0) ? t.t0 : null, d = t.data || {};
    Object.keys(d).forEach(function (k) {
      var kind = d[k];
      if (!kind || typeof kind !== "object" || Array.isArray(kind)) return;
      var common = kind.common && typeof kind.common === "object" ? kind.common : null;
      var stored = columnsToRows(kind.records);
      if (Array.isArray(stored)) {
        var recs = stored.map(function (r) { return restore(r, common, base); });
        recs.forEach(function (r) {
          if (r && r.name === 0) r.name = t.nodeid;  // "0" stands for the test's own name
          if (r && isNum(r.parent) && recs[r.parent] && r.parent_id === undefined) r.parent_id = recs[r.parent].span_id;
        });
        kind.records = recs;
      }
      var samples = columnsToRows(kind.samples);
      if (Array.isArray(samples)) kind.samples = samples.map(function (r) { return restore(r, null, base); });
      delete kind.common;
    });
    return t;
  }

  // ---------------------------------------------------------------- charts
  function niceTicks(lo, hi, count) {
    if (!(hi > lo)) { hi = lo + 1; }
    var raw = (hi - lo) / Math.max(1, count);
    var mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 2.5, 5, 10].map(function (m) { return m * mag; }).find(function (s) { return s >= raw; }) || 10 * mag;
    var start = Math.floor(lo / step) * step, ticks = [];
    for (var v = start; v <= hi + step * 0.5 && ticks.length < 20; v += step) ticks.push(Math.round(v / step) * step);
    return ticks;
  }
  function downsample(points, max) {
    if (points.length <= max) return points;
    // keep each bucket's min and max so spikes survive
    var out = [], size = points.length / (max / 2);
    for (var b = 0; b < points.length; b += size) {
      var lo = null, hi = null;
      for (var i = Math.floor(b); i < Math.min(points.length, Math.floor(b + size)); i++) {
        var p = points[i];
        if (!lo || p[1] < lo[1]) lo = p;
        if (!hi || p[1] > hi[1]) hi = p;
      }
      if (lo && hi) { if (lo[0] <= hi[0]) { out.push(lo); if (hi !== lo) out.push(hi); } else { out.push(hi); out.push(lo); } }
    }
    return out;
  }
  /* opts: title, unit, xLabel, points [[x, y]], fmtY, fmtX, dots (scatter), marks [[x, y]] drawn red */
  function chart(opts) {
    var W = 340, H = 170, L = 58, R = 10, T = 10, B = 36;
    var pts = opts.points.filter(function (p) { return isNum(p[0]) && isNum(p[1]); });
    var fmtY = opts.fmtY || fmtNum, fmtX = opts.fmtX || fmtNum;
    var xs = pts.map(function (p) { return p[0]; }), ys = pts.map(function (p) { return p[1]; });
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    if (opts.xSpan) { x0 = Math.min(x0, opts.xSpan[0]); x1 = Math.max(x1, opts.xSpan[1]); }
    var y0 = Math.min(0, Math.min.apply(null, ys)), y1 = Math.max.apply(null, ys);
    if (!(x1 > x0)) x1 = x0 + 1;
    var yt = niceTicks(y0, y1 > y0 ? y1 : y0 + 1, 4);
    y0 = Math.min(y0, yt[0]); y1 = Math.max(y1, yt[yt.length - 1]);
    var xt = niceTicks(x0, x1, 4).filter(function (v) { return v >= x0 - 1e-9 && v <= x1 + 1e-9; });
    function X(v) { return L + (v - x0) / (x1 - x0) * (W - L - R); }
    function Y(v) { return H - B - (v - y0) / (y1 - y0 || 1) * (H - T - B); }
    var last = ys[ys.length - 1];
    var named = opts.title + (opts.unit ? " (" + opts.unit + ")" : "");
    var label = named + ": " + pts.length + " points, lowest " + fmtY(Math.min.apply(null, ys)) +
      ", highest " + fmtY(Math.max.apply(null, ys)) + ", last " + fmtY(last) + "; x axis: " + opts.xLabel;
    var g = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": label, class: "chart-svg" },
      svg("title", null, label));
    yt.forEach(function (v) {
      g.appendChild(svg("line", { class: "grid", x1: L, x2: W - R, y1: Y(v), y2: Y(v) }));
      g.appendChild(svg("text", { x: L - 4, y: Y(v) + 3, "text-anchor": "end" }, fmtY(v)));
    });
    xt.forEach(function (v) {
      g.appendChild(svg("line", { class: "axis", x1: X(v), x2: X(v), y1: H - B, y2: H - B + 4 }));
      g.appendChild(svg("text", { x: X(v), y: H - B + 14, "text-anchor": "middle" }, fmtX(v)));
    });
    g.appendChild(svg("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B }));
    g.appendChild(svg("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
    g.appendChild(svg("text", { x: L + (W - L - R) / 2, y: H - 4, "text-anchor": "middle" }, opts.xLabel));
    g.appendChild(svg("text", { x: 10, y: T + (H - T - B) / 2, "text-anchor": "middle",
      transform: "rotate(-90 10 " + (T + (H - T - B) / 2) + ")" }, opts.unit));
    var shown = downsample(pts, 800);
    var d = shown.map(function (p, i) {
      return (opts.dots || i === 0 ? "M" : "L") + X(p[0]).toFixed(1) + " " + Y(p[1]).toFixed(1) + (opts.dots ? "h0" : "");
    }).join("");
    g.appendChild(svg("path", { class: opts.dots ? "dots" : opts.cls || "series", d: d }));
    if (opts.marks && opts.marks.length) {
      var md = downsample(opts.marks, 400).map(function (p) { return "M" + X(p[0]).toFixed(1) + " " + Y(p[1]).toFixed(1) + "h0"; }).join("");
      g.appendChild(svg("path", { class: "dots-fail", d: md }));
    }
    (opts.picks || []).forEach(function (p) {
      if (!isNum(p.x) || !isNum(p.y)) return;
      var c = svg("circle", { class: "pick", cx: X(p.x).toFixed(1), cy: Y(p.y).toFixed(1), r: 4, tabindex: "0", role: "link",
        "aria-label": p.text }, svg("title", null, p.text));
      var go = function () { openTest(p.test, true); };
      c.addEventListener("click", go);
      c.addEventListener("keydown", function (ev) { if (ev.key === "Enter") go(); });
      g.appendChild(c);
    });
    if (!opts.dots && pts.length <= 40) {
      pts.forEach(function (p) {
        g.appendChild(svg("circle", { class: "pt", cx: X(p[0]).toFixed(1), cy: Y(p[1]).toFixed(1), r: 2 },
          svg("title", null, fmtX(p[0]) + ": " + fmtY(p[1]))));
      });
    }
    (opts.phases || []).forEach(function (m) {
      if (!(m[0] > x0 && m[0] < x1)) return;
      g.appendChild(svg("line", { class: "phase-mark", x1: X(m[0]), x2: X(m[0]), y1: T, y2: H - B }));
      g.appendChild(svg("text", { class: "phase-label", x: X(m[0]) + 2, y: T + 8 }, m[1]));
    });
    var readout = null;
    if (opts.readout && pts.length) {
      // point at the chart: the nearest sample's time and value, with a guide line
      readout = el("p", { class: "readout note", "aria-live": "polite" }, "Point at the chart for a sample's value.");
      var guide = svg("line", { class: "guide", x1: L, x2: L, y1: T, y2: H - B, visibility: "hidden" });
      var dot = svg("circle", { class: "guide-dot", r: 3, cx: L, cy: H - B, visibility: "hidden" });
      var pad = svg("rect", { class: "hover-pad", x: L, y: T, width: W - L - R, height: H - T - B });
      g.appendChild(guide); g.appendChild(dot); g.appendChild(pad);
      pad.addEventListener("mousemove", function (ev) {
        var box = g.getBoundingClientRect();
        var x = x0 + ((ev.clientX - box.left) / box.width * W - L) / (W - L - R) * (x1 - x0);
        var best = pts[0];
        pts.forEach(function (p) { if (Math.abs(p[0] - x) < Math.abs(best[0] - x)) best = p; });
        guide.setAttribute("x1", X(best[0])); guide.setAttribute("x2", X(best[0]));
        dot.setAttribute("cx", X(best[0])); dot.setAttribute("cy", Y(best[1]));
        guide.setAttribute("visibility", "visible"); dot.setAttribute("visibility", "visible");
        readout.textContent = opts.title + " at " + fmtX(best[0]) + ": " + fmtY(best[1]);
      });
    }
    return el("figure", { class: "chart" }, el("figcaption", null, named), g, readout,
      opts.note ? el("p", { class: "note" }, opts.note) : null);
  }

  /* tests ranked by a figure: one bar each, as long as its value is big; selecting one opens
     the test */
  function rankedBars(title, rows) {
    var max = 0;
    rows.forEach(function (r) { if (r[1] > max) max = r[1]; });
    return el("figure", { class: "chart ranked" }, el("figcaption", null, title),
      el("ol", { class: "bars" }, rows.map(function (r) {
        var t = TESTS[r[0]], bar = el("span", { class: "bar" + (t.outcome === "failed" || t.outcome === "error" ? " fail" : "") });
        bar.style.width = (max > 0 ? Math.max(1, (r[1] / max) * 100) : 0) + "%";
        return el("li", null, el("a", { href: "#test-" + r[0], title: t.nodeid + ": " + r[2] },
          el("span", { class: "bar-label" }, idNode(t.nodeid)), el("span", { class: "bar-track" }, bar), el("span", { class: "bar-value" }, r[2])));
      })));
  }

  // ---------------------------------------------------------------- per-test panels
  function panel(title, info) {
    var kids = Array.prototype.slice.call(arguments, 2);
    return el("section", { class: "panel" }, el("h3", null, title, info ? el("small", null, info) : null), kids);
  }

  function overviewPanel(t) {
    var facts = [
      ["outcome", badge(t.outcome)],
      ["extension", NAMES[t.ext] ? t.ext + " (" + NAMES[t.ext] + ")" : t.ext],
      ["duration", fmtMs(t.duration)],
      ["started", fmtTs(t.t0)],
    ];
    if (t.worker) facts.push(["worker", t.worker]);
    if (isNum(t.cpu)) facts.push(["CPU", fmtMs(t.cpu)]);
    if (isNum(t.rss)) facts.push(["peak RSS", fmtBytes(t.rss)]);
    if (isNum(t.alloc)) facts.push(["traced peak", fmtBytes(t.alloc)]);
    if (t.crashed) facts.push(["crashed", "the worker died under this test"]);
    var phases = t.phases || {};
    if (Array.isArray(phases)) phases = { setup: phases[0], call: phases[1], teardown: phases[2] };
    var names = Object.keys(phases), total = 0;
    names.forEach(function (n) { if (isNum(phases[n])) total += phases[n]; });
    var bar = el("div", { class: "phasebar", role: "img", "aria-label": "Phase durations: " +
      names.map(function (n) { return n + " " + fmtMs(phases[n]); }).join(", ") });
    names.forEach(function (n) {
      var part = el("span", { class: "ph-" + cls(n), title: n + " " + fmtMs(phases[n]) });
      part.style.width = (total > 0 ? (phases[n] / total) * 100 : 0) + "%";
      bar.appendChild(part);
    });
    return panel("Overview", null,
      el("ul", { class: "facts" }, facts.map(function (f) { return el("li", null, el("span", null, f[0] + ": "), f[1]); })),
      names.length ? el("ul", { class: "facts" }, names.map(function (n) {
        return el("li", null, el("span", null, n + ": "), fmtMs(phases[n]));
      })) : null,
      names.length ? bar : null);
  }

  function longreprOf(t) {
    if (t.longrepr) return t.longrepr;
    if (t.longreprRef) {
      var node = document.getElementById(t.longreprRef);
      var pre = node && node.querySelector("pre.tb");
      if (pre) return pre.textContent;
    }
    return "";
  }

  function logsPanel(t, data) {
    var recs = records(data);
    if (!recs.length && !data.dropped) return null;
    var min = el("select", null,
      el("option", { value: "0" }, "all levels"),
      el("option", { value: "10" }, "DEBUG and above"),
      el("option", { value: "20" }, "INFO and above"),
      el("option", { value: "30" }, "WARNING and above"),
      el("option", { value: "40" }, "ERROR and above"),
      el("option", { value: "50" }, "CRITICAL"));
    var q = el("input", { type: "search", placeholder: "text in message, logger or fields", autocomplete: "off" });
    var count = el("p", { class: "note log-count", "aria-live": "polite" });
    var body = el("tbody");
    var more = el("button", { type: "button", class: "more", hidden: true }, "Show more records");
    var limit = 300;
    var t0 = isNum(t.t0) ? t.t0 : recs.length ? recs[0].ts : 0;
    var hay = recs.map(function (r) {
      return [r.message, r.name, r.logger, r.level, r.fields ? JSON.stringify(r.fields) : "",
        r.exception ? JSON.stringify(r.exception) : "", r.correlation_id, r.user_id, r.tenant_id]
        .filter(Boolean).join(" ").toLowerCase();
    });
    function row(r) {
      var lv = String(r.level || "");
      var exc = r.exception;
      return el("tr", { class: "log-row" },
        el("td", { class: "num" }, isNum(r.ts) ? "+" + fmtMs((r.ts - t0) * 1000) : ""),
        el("td", null, el("span", { class: "lv lv-" + cls(lv) }, lv)),
        el("td", { class: "mono" }, r.name || r.logger || ""),
        el("td", null, el("span", { class: "msg" }, r.message === undefined ? "" : String(r.message)),
          exc ? el("details", null, el("summary", null, (exc.type || "exception") + ": " + (exc.message || "")),
            el("pre", { text: exc.traceback || JSON.stringify(exc, null, 2) })) : null),
        el("td", { class: "mono" }, [r.correlation_id && "correlation " + r.correlation_id, r.user_id && "user " + r.user_id,
          r.tenant_id && "tenant " + r.tenant_id, r.thread && "thread " + r.thread, r.task && "task " + r.task,
          r.fields && Object.keys(r.fields).length ? JSON.stringify(r.fields) : ""].filter(Boolean).join(" · ")));
    }
    function update() {
      var m = Number(min.value), needle = q.value.trim().toLowerCase(), hits = [];
      for (var i = 0; i < recs.length; i++) {
        if (levelNo(recs[i].level) < m) continue;
        if (needle && hay[i].indexOf(needle) < 0) continue;
        hits.push(recs[i]);
      }
      var frag = document.createDocumentFragment();
      hits.slice(0, limit).forEach(function (r) { frag.appendChild(row(r)); });
      body.replaceChildren(frag);
      more.hidden = hits.length <= limit;
      count.textContent = "Showing " + Math.min(hits.length, limit) + " of " + hits.length + " matching (" + recs.length + " records).";
    }
    min.addEventListener("change", function () { limit = 300; update(); });
    q.addEventListener("input", debounce(function () { limit = 300; update(); }, 80));
    more.addEventListener("click", function () { limit += 500; update(); });
    update();
    return panel("Logs", recs.length + " records",
      el("div", { class: "controls" }, el("label", null, "Level", min), el("label", null, "Search logs", q)),
      count,
      el("div", { class: "scroll" }, el("table", { class: "logs" },
        el("thead", null, el("tr", null, el("th", { scope: "col", class: "num" }, "Time"), el("th", { scope: "col" }, "Level"),
          el("th", { scope: "col" }, "Logger"), el("th", { scope: "col" }, "Message"), el("th", { scope: "col" }, "Context"))),
        body)),
      more, omittedNote(data, "log records"));
  }

  var SAMPLE_TITLES = { cpu_percent: "CPU", rss_bytes: "RSS", uss_bytes: "USS", vms_bytes: "VMS", threads: "Threads",
    open_files: "Open files", open_fds: "Open file descriptors", ctx_switches: "Context switches (cumulative)",
    cpu_user_s: "CPU user time (cumulative)", cpu_system_s: "CPU system time (cumulative)",
    io_read_bytes: "Disk read (cumulative)", io_write_bytes: "Disk written (cumulative)",
    net_bytes_sent: "Network sent, system-wide (cumulative)", net_bytes_recv: "Network received, system-wide (cumulative)" };
  var SAMPLE_ORDER = ["cpu_percent", "rss_bytes", "uss_bytes", "threads", "open_fds", "open_files", "io_read_bytes",
    "io_write_bytes", "ctx_switches", "vms_bytes", "cpu_user_s", "cpu_system_s", "net_bytes_sent", "net_bytes_recv"];

  function metricsPanel(t, data) {
    var parts = [], samples = Array.isArray(data.samples) ? data.samples : [];
    var t0 = isNum(t.t0) ? t.t0 : samples.length && isNum(samples[0].ts) ? samples[0].ts : 0;
    if (samples.length) {
      var keys = [];
      samples.forEach(function (s) {
        Object.keys(s).forEach(function (k) { if (k !== "ts" && isNum(s[k]) && keys.indexOf(k) < 0) keys.push(k); });
      });
      // memory_mb repeats rss_bytes in another unit
      keys = keys.filter(function (k) { return !(k === "memory_mb" && keys.indexOf("rss_bytes") >= 0); });
      keys.sort(function (a, b) {
        var ia = SAMPLE_ORDER.indexOf(a), ib = SAMPLE_ORDER.indexOf(b);
        return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || (a < b ? -1 : 1);
      });
      // where the test's setup ended and its call ended, on the same time axis
      var phases = t.phases || {}, marks = [], at = 0;
      if (Array.isArray(phases)) phases = { setup: phases[0], call: phases[1], teardown: phases[2] };
      ["setup", "call", "teardown"].forEach(function (n, i) {
        if (isNum(phases[n])) { at += phases[n]; if (i < 2) marks.push([at, i ? "teardown" : "call"]); }
      });
      var sampleChart = function (k) {
        var unit = unitOfKey(k);
        return chart({ title: SAMPLE_TITLES[k] || k, unit: "", xLabel: "time since the test started",
          points: samples.map(function (s) { return [(s.ts - t0) * 1000, isNum(s[k]) ? s[k] : NaN]; }),
          fmtX: fmtMs, fmtY: function (v) { return kariFormat(v, unit); }, phases: marks, xSpan: [0, at],
          readout: true, cls: k === "rss_bytes" ? "series2" : "series" });
      };
      parts.push(el("h4", null, "Resources over the test (" + samples.length + " samples)"),
        el("div", { class: "charts" }, keys.slice(0, 4).map(sampleChart)));
      var rest = keys.slice(4);
      if (rest.length) {
        // the other sampled figures are drawn only when asked for
        var more = el("details", null, el("summary", null, "More sampled figures (" + rest.length + ")"));
        more.addEventListener("toggle", function () {
          if (more.open && more.childNodes.length === 1) more.appendChild(el("div", { class: "charts" }, rest.map(sampleChart)));
        });
        parts.push(more);
      }
    }
    if (data.samples_dropped) parts.push(el("p", { class: "note" }, data.samples_dropped + " samples dropped by the bounded sampler buffer."));
    if (data.resources && typeof data.resources === "object") {
      parts.push(el("h4", null, "Resource usage"), kvTable(data.resources));
    }
    if (data.memory && typeof data.memory === "object") {
      parts.push(el("h4", null, "Traced allocations (tracemalloc)"), kvTable(data.memory));
    }
    var recs = records(data);
    if (recs.length) {
      var byName = {}, names = [];
      recs.forEach(function (r) {
        var key = String(r.name) + (r.labels && Object.keys(r.labels).length ? " " + JSON.stringify(r.labels) : "");
        if (!byName[key]) { byName[key] = []; names.push(key); }
        byName[key].push(r);
      });
      var charted = names.filter(function (n) { return byName[n].length >= 2; }).slice(0, 8);
      if (charted.length) {
        parts.push(el("h4", null, "Metrics recorded by the test"), el("div", { class: "charts" }, charted.map(function (n) {
          var pts = byName[n];
          var unit = pts[pts.length - 1].unit || "";
          return chart({ title: n, unit: "", xLabel: "time since the test started", readout: true,
            fmtX: fmtMs, fmtY: function (v) { return kariFormat(v, unit); },
            points: pts.map(function (r) { return [(r.ts - t0) * 1000, r.value]; }) });
        })));
      }
      var rest = names.filter(function (n) { return charted.indexOf(n) < 0; });
      if (rest.length) {
        parts.push(el("div", { class: "scroll" }, el("table", null,
          el("thead", null, el("tr", null, el("th", { scope: "col" }, "Metric"), el("th", { scope: "col", class: "num" }, "Points"),
            el("th", { scope: "col", class: "num" }, "Last value"))),
          el("tbody", null, rest.slice(0, 500).map(function (n) {
            var pts = byName[n], lastPt = pts[pts.length - 1];
            return el("tr", null, el("td", { class: "mono" }, n), el("td", { class: "num" }, pts.length),
              el("td", { class: "num" }, kariFormat(lastPt.value, lastPt.unit || "")));
          })))));
      }
    }
    Object.keys(data).forEach(function (k) {
      if (["records", "samples", "samples_dropped", "resources", "memory", "dropped", "omitted"].indexOf(k) < 0) {
        parts.push(el("h4", null, k), jsonView(data[k]));
      }
    });
    if (!parts.length) return null;
    return panel("Metrics", samples.length ? samples.length + " samples" : null, parts, omittedNote(data, "metric points"));
  }

  /* keys a person has no use for: the plugin's own flags and empty notes */
  var INTERNAL = /(_by_session|_started_by_|^notes$|^session_id$|^extension_id$|_internal$)/;
  var FIGURES = DATA.figures || {};
  /* the value of *k* in the catalogue's unit (peak_rss_bytes is shown as peak_rss_mb's MiB) */
  function catalogued(k) {
    var name = FIGURES[k] ? k : FIGURES[k.replace(/_bytes$/, "_mb")] ? k.replace(/_bytes$/, "_mb") : null;
    return name ? FIGURES[name] : null;
  }
  function kvTable(obj) {
    var keys = Object.keys(obj).filter(function (k) {
      var v = obj[k];
      if (INTERNAL.test(k) || v === null || v === undefined) return false;
      if (Array.isArray(v) && !v.length) return false;
      // a figure given twice in two units: keep the bytes (shown in MiB)
      if (/_mb$/.test(k) && (k.replace(/_mb$/, "_bytes") in obj)) return false;
      return true;
    });
    return el("table", { class: "kv" }, el("tbody", null, keys.map(function (k) {
      var fig = catalogued(k), v = obj[k];
      var shown = fig && isNum(v) && FIGURES[k] ? kariFormat(v, fig.unit) : fmtValue(k, v);
      return el("tr", null, el("th", { scope: "row", title: fig ? fig.about : null }, k.replace(/_(bytes|ms|s|mb)$/, "")),
        el("td", { class: "num" }, typeof v === "object" ? objectView(v) : shown));
    })));
  }

  function spanTimes(s) {
    var start = isNum(s.start) ? s.start : s.ts;
    var end = isNum(s.end) ? s.end : isNum(s.duration_ms) ? start + s.duration_ms / 1000 : start;
    return [start, end];
  }

  function waterfallPanel(t, data) {
    var spans = records(data).filter(function (s) { return isNum(s.start) || isNum(s.ts); });
    if (!spans.length) return null;
    var byId = {}, kids = {}, roots = [];
    spans.forEach(function (s) { if (s.span_id) byId[s.span_id] = s; });
    spans.forEach(function (s) {
      if (s.parent_id && byId[s.parent_id] && s.parent_id !== s.span_id) (kids[s.parent_id] = kids[s.parent_id] || []).push(s);
      else roots.push(s);
    });
    function byStart(a, b) { return spanTimes(a)[0] - spanTimes(b)[0]; }
    var ordered = [], seen = new Set();
    (function walk(list, depth) {
      list.sort(byStart).forEach(function (s) {
        if (seen.has(s)) return;
        seen.add(s);
        ordered.push([s, depth]);
        if (s.span_id && kids[s.span_id]) walk(kids[s.span_id], depth + 1);
      });
    })(roots, 0);
    var t0 = Infinity, t1 = -Infinity;
    ordered.forEach(function (o) { var tt = spanTimes(o[0]); t0 = Math.min(t0, tt[0]); t1 = Math.max(t1, tt[1]); });
    var range = Math.max(t1 - t0, 1e-6);
    var errors = 0, cap = 1000;
    // the tracing feature's analysis per trace: critical path and bottlenecks
    var analyses = data.analysis && typeof data.analysis === "object" ? Object.keys(data.analysis).map(function (k) { return data.analysis[k]; }) : [];
    var slow = new Set();
    analyses.forEach(function (a) {
      (Array.isArray(a.bottlenecks) ? a.bottlenecks : []).forEach(function (b) { if (b && b.span_id) slow.add(b.span_id); });
    });
    var list = el("ol", { class: "waterfall", "aria-label": "Spans on a time axis, nested under their parents" });
    ordered.slice(0, cap).forEach(function (o) {
      var s = o[0], depth = o[1], tt = spanTimes(s), dur = isNum(s.duration_ms) ? s.duration_ms : (tt[1] - tt[0]) * 1000;
      var isErr = String(s.status || "").toLowerCase() === "error";
      var isSlow = slow.has(s.span_id);
      if (isErr) errors++;
      var info = null;
      var hasInfo = (s.tags && Object.keys(s.tags).length) || (s.events && s.events.length);
      var name = el("button", { type: "button", "aria-expanded": hasInfo ? "false" : null, disabled: hasInfo ? null : true,
        title: s.name + (isErr ? " (error)" : "") + (isSlow ? " (bottleneck)" : "") },
        (isErr ? "✗ " : "") + (isSlow ? "⚑ " : "") + s.name + (isErr ? " (error)" : "") + (isSlow ? " (bottleneck)" : ""));
      var label = el("span", { class: "wf-label" }, name);
      label.style.paddingLeft = Math.min(depth, 12) * 0.9 + "em";
      var bar = el("span", { class: "wf-bar", title: s.name + ": " + fmtMs(dur) + (isNum(s.self_ms) ? " (self " + fmtMs(s.self_ms) + ")" : "") +
        ", starts at +" + fmtMs((tt[0] - t0) * 1000) });
      bar.style.left = ((tt[0] - t0) / range) * 100 + "%";
      bar.style.width = Math.max(((tt[1] - tt[0]) / range) * 100, 0.2) + "%";
      var li = el("li", { class: "wf-row" + (isErr ? " error" : "") + (isSlow ? " slow" : ""), "data-depth": String(depth) },
        label, el("span", { class: "wf-track" }, bar), el("span", { class: "wf-dur" }, fmtMs(dur)));
      if (hasInfo) {
        name.addEventListener("click", function () {
          var open = name.getAttribute("aria-expanded") === "true";
          name.setAttribute("aria-expanded", String(!open));
          if (open) { info.remove(); return; }
          info = el("li", { class: "wf-info" },
            s.status_message ? el("p", null, el("strong", null, "Status: "), String(s.status_message)) : null,
            s.tags && Object.keys(s.tags).length ? kvTable(s.tags) : null,
            s.events && s.events.length ? el("div", null, el("h4", null, "Events"), jsonView(s.events)) : null,
            el("p", { class: "note mono" }, "trace " + (s.trace_id || "?") + " · span " + (s.span_id || "?")));
          li.after(info);
        });
      }
      list.appendChild(li);
    });
    var axis = el("div", { class: "wf-axis", "aria-hidden": "true" });
    [0, 0.25, 0.5, 0.75, 1].forEach(function (f) {
      var tick = el("span", null, f === 0 ? "0" : fmtMs(range * f * 1000));
      tick.style.left = f * 100 + "%";
      axis.appendChild(tick);
    });
    return panel("Spans", spans.length + " spans, " + fmtMs(range * 1000) + (errors ? ", " + errors + " with errors" : ""),
      el("div", { class: "wf-head" }, el("span", { class: "note" }, "span"), axis, el("span", { class: "note wf-dur" }, "duration")),
      list,
      ordered.length > cap ? el("p", { class: "note" }, (ordered.length - cap) + " more spans not drawn.") : null,
      el("p", { class: "note" }, "Bars show when each span ran; ✗ and a hatched red bar mark spans that ended in an error, ⚑ a bottleneck. Select a span name for its tags and events."),
      analyses.map(traceAnalysis),
      data.sampled === false ? el("p", { class: "note" }, "This test's trace was not sampled (sampling rate " + cell(data.sampling_rate) + ").") : null,
      omittedNote(data, "spans"));
  }

  function traceAnalysis(a) {
    if (!a || typeof a !== "object") return null;
    var path = [];
    (Array.isArray(a.critical_path) ? a.critical_path : []).forEach(function (step) {
      var name = step && step.name !== undefined ? String(step.name) : "?";
      if (path.length && path[path.length - 1][0] === name) path[path.length - 1][1] += step.ms || 0;
      else path.push([name, isNum(step && step.ms) ? step.ms : 0]);
    });
    var bottlenecks = Array.isArray(a.bottlenecks) ? a.bottlenecks : [];
    if (!path.length && !bottlenecks.length) return null;
    return el("div", { class: "trace-analysis" },
      path.length ? el("p", null, el("strong", null, "Critical path: "),
        path.map(function (p) { return p[0] + " (" + fmtMs(p[1]) + ")"; }).join(" → ")) : null,
      bottlenecks.length ? el("div", null, el("h4", null, "Bottlenecks" + (isNum(a.slow_span_ms) ? " (spans over " + fmtMs(a.slow_span_ms) + ")" : "")),
        genericTable(bottlenecks)) : null);
  }

  function callTree(rootNode) {
    var total = isNum(rootNode.time_s) && rootNode.time_s > 0 ? rootNode.time_s : 0;
    function node(n, depth) {
      var share = total ? (n.time_s || 0) / total : 0;
      var selfShare = total ? (n.self_s || 0) / total : 0;
      var children = Array.isArray(n.children) ? n.children : [];
      var li = el("li");
      var bar = el("span", { class: "ct-share", role: "img", "aria-label": kariFormat(share * 100, "%") + " of the time" }, el("span"));
      bar.firstChild.style.width = Math.min(100, share * 100) + "%";
      var toggle = null, sub = null;
      if (children.length) {
        toggle = el("button", { type: "button", "aria-expanded": "false", "aria-label": "Show the calls of " + (n.function || "?") }, "+");
        toggle.addEventListener("click", function () {
          var open = toggle.getAttribute("aria-expanded") === "true";
          toggle.setAttribute("aria-expanded", String(!open));
          toggle.textContent = open ? "+" : "−";
          if (!sub) {
            sub = el("ul", null, children.map(function (c) { return node(c, depth + 1); }));
            if (n.pruned) sub.appendChild(el("li", { class: "note" }, n.pruned + " smaller calls left out"));
            li.appendChild(sub);
          }
          sub.hidden = open;
        });
      }
      li.appendChild(el("div", { class: "ct-node" }, toggle || el("span", { class: "leaf", "aria-hidden": "true" }), bar,
        el("strong", { class: "mono" }, n.function || "?"),
        el("span", null, kariFormat(share * 100, "%") + " · " + fmtMs((n.time_s || 0) * 1000) + " (self " + kariFormat(selfShare * 100, "%") + ")"),
        el("span", { class: "ct-file" }, (n.file || "") + (n.line ? ":" + n.line : ""))));
      // open the hot path so the answer is on screen at once
      if (toggle && depth < 8 && share >= 0.1) toggle.click();
      return li;
    }
    return el("ul", { class: "calltree" }, node(rootNode, 0));
  }

  function profilePanel(t, data) {
    var parts = [];
    if (data.call_tree && typeof data.call_tree === "object") {
      parts.push(el("h4", null, "Call tree"), callTree(data.call_tree),
        el("p", { class: "note" }, "Shares are of the profiled time; + opens a function's calls."));
    }
    var recs = records(data);
    if (recs.length) {
      parts.push(el("h4", null, "Timed operations"), el("div", { class: "scroll" }, el("table", null,
        el("thead", null, el("tr", null, el("th", { scope: "col" }, "Operation"), el("th", { scope: "col", class: "num" }, "Wall"),
          el("th", { scope: "col", class: "num" }, "CPU"), el("th", { scope: "col" }, "Result"))),
        el("tbody", null, recs.slice(0, 1000).map(function (r) {
          return el("tr", null, el("td", { class: "mono" }, r.name || ""), el("td", { class: "num" }, fmtMs(r.wall_ms !== undefined ? r.wall_ms : r.value)),
            el("td", { class: "num" }, fmtMs(r.cpu_ms)), el("td", null, r.failed ? "✗ failed" : "ok"));
        })))));
    }
    if (data.memory && typeof data.memory === "object") parts.push(el("h4", null, "Memory"), kvTable(data.memory));
    if (Array.isArray(data.top_allocations) && data.top_allocations.length) {
      parts.push(el("h4", null, "Top allocations"), genericTable(data.top_allocations));
    }
    Object.keys(data).forEach(function (k) {
      if (["records", "call_tree", "memory", "top_allocations", "dropped", "omitted"].indexOf(k) < 0) parts.push(el("h4", null, k), objectView(data[k]));
    });
    if (!parts.length) return null;
    return panel("Profile", null, parts, omittedNote(data, "timings"));
  }

  function errorKey(e) {
    return e.fingerprint ? String(e.fingerprint) : (e.error_type || e.name || "error") + ": " + (e.error_message || e.message || "");
  }

  function errorsPanel(t, data) {
    var recs = records(data);
    if (!recs.length) return null;
    var groups = {}, keys = [];
    recs.forEach(function (e) {
      var k = errorKey(e);
      if (!groups[k]) { groups[k] = []; keys.push(k); }
      groups[k].push(e);
    });
    return panel("Errors", recs.length + " in " + keys.length + " group" + (keys.length === 1 ? "" : "s"),
      keys.map(function (k) {
        var list = groups[k], e = list[0];
        return el("details", { class: "error-group" },
          el("summary", null, "×" + list.length + " ", el("code", null, e.error_type || e.name || "error"), ": " + (e.error_message || e.message || ""),
            e.category ? " [" + e.category + "]" : "", e.level ? " (" + e.level + ")" : ""),
          e.suggestion ? el("p", null, el("strong", null, "Suggestion: "), String(e.suggestion)) : null,
          e.stack_trace ? el("pre", { text: String(e.stack_trace) }) : null,
          Array.isArray(e.frames) && e.frames.length ? genericTable(e.frames) : null,
          e.chain ? el("div", null, el("h4", null, "Cause chain"), jsonView(e.chain)) : null,
          e.context && Object.keys(e.context).length ? el("div", null, el("h4", null, "Context"), jsonView(e.context)) : null,
          el("p", { class: "note mono" }, "fingerprint " + (e.fingerprint || "none") + (list.length > 1 ? "; last at " + fmtTs(list[list.length - 1].ts) : "")));
      }), omittedNote(data, "errors"));
  }

  function alertsPanel(t, data) {
    var recs = records(data);
    if (!recs.length) return null;
    return panel("Alerts", recs.length + " fired", el("div", { class: "scroll" }, el("table", { class: "alerts" },
      el("thead", null, el("tr", null, ["Severity", "Rule", "Alert", "Metric", "Value", "Threshold", "Status", "Seen"].map(function (h, i) {
        return el("th", { scope: "col", class: i >= 4 && i !== 6 ? "num" : null }, h);
      }))),
      el("tbody", null, recs.map(function (a) {
        return el("tr", null,
          el("td", null, sevBadge(a.severity || a.level)),
          el("td", { class: "mono" }, cell(a.rule || a.name || a.alert_type)),
          el("td", null, el("strong", null, cell(a.title)), a.message ? el("div", null, cell(a.message)) : null),
          el("td", { class: "mono" }, cell(a.metric_name)),
          el("td", { class: "num" }, fmtNum(a.current_value !== undefined ? a.current_value : a.value)),
          el("td", { class: "num" }, fmtNum(a.threshold_value)),
          el("td", null, cell(a.status)),
          el("td", { class: "num" }, cell(a.occurrences)));
      })))), omittedNote(data, "alerts"));
  }

  /* a mapping read as a person would: its plain values in a table, its lists of records as
     tables of their own, anything else as JSON */
  function objectView(obj) {
    if (!obj || typeof obj !== "object" || Array.isArray(obj)) {
      return Array.isArray(obj) && obj.length && typeof obj[0] === "object" ? genericTable(obj) : jsonView(obj);
    }
    var plain = {}, rest = [];
    Object.keys(obj).forEach(function (k) {
      var v = obj[k];
      if (v === null || typeof v !== "object") plain[k] = v;
      else rest.push(k);
    });
    return el("div", { class: "objview" }, Object.keys(plain).length ? kvTable(plain) : null,
      rest.map(function (k) {
        var v = obj[k];
        if (Array.isArray(v) && !v.length) return null;
        return el("div", null, el("h4", null, k), Array.isArray(v) && typeof v[0] === "object" ? genericTable(v) : jsonView(v));
      }));
  }

  function genericTable(rows) {
    var cols = [];
    rows.slice(0, 200).forEach(function (r) {
      if (r && typeof r === "object") Object.keys(r).forEach(function (k) { if (cols.indexOf(k) < 0 && cols.length < 12) cols.push(k); });
    });
    if (!cols.length) return jsonView(rows);
    return el("div", { class: "scroll" }, el("table", null,
      el("thead", null, el("tr", null, cols.map(function (c) { return el("th", { scope: "col" }, c); }))),
      el("tbody", null, rows.slice(0, 1000).map(function (r) {
        return el("tr", null, cols.map(function (c) {
          var v = r && typeof r === "object" ? r[c] : r;
          return isNum(v) ? el("td", { class: "num" }, fmtValue(c, v)) : el("td", null, cell(v));
        }));
      }))),
      rows.length > 1000 ? el("p", { class: "note" }, (rows.length - 1000) + " more rows not shown.") : null);
  }

  function genericPanel(kind, data) {
    if (data === null || typeof data !== "object" || Array.isArray(data)) return panel(kind, null, jsonView(data));
    var recs = records(data), parts = [];
    if (recs.length) parts.push(genericTable(recs));
    Object.keys(data).forEach(function (k) {
      if (k !== "records" && k !== "dropped" && k !== "omitted") parts.push(el("h4", null, k), jsonView(data[k]));
    });
    return parts.length ? panel(kind, recs.length ? recs.length + " records" : null, parts, omittedNote(data, "records")) : null;
  }

  var KNOWN = { logging: logsPanel, metrics: metricsPanel, tracing: waterfallPanel, profiling: profilePanel,
    error_tracking: errorsPanel, alerting: alertsPanel };
  var KIND_ORDER = ["error_tracking", "alerting", "logging", "tracing", "metrics", "profiling"];

  function historyPanel(h) {
    var letters = h.o.split("");
    return panel("History", "last " + letters.length + " stored runs", histBadges(h), el("div", { class: "scroll" }, el("table", { class: "history" },
      el("thead", null, el("tr", null, el("th", { scope: "col" }, "Run"), el("th", { scope: "col" }, "Outcome"), el("th", { scope: "col", class: "num" }, "Duration"))),
      el("tbody", null, letters.map(function (c, k) { return k; }).reverse().map(function (k) {
        return el("tr", null, el("td", null, "#" + (h.r ? h.r[k] : k + 1)), el("td", null, badge(HIST_WORDS[letters[k]] || letters[k])),
          el("td", { class: "num" }, h.d && isNum(h.d[k]) ? fmtMs(h.d[k]) : "–"));
      })))));
  }

  function detail(i) {
    var t = hydrate(TESTS[i]), d = t.data || {};
    var body = el("div", { class: "detail-body" }, overviewPanel(t));
    var tb = longreprOf(t);
    if (tb) body.appendChild(panel("Failure", null, el("pre", { class: "tb", text: tb })));
    var captured = t.captured || [];
    if (!captured.length && t.longreprRef) {
      var art = document.getElementById(t.longreprRef);
      if (art) art.querySelectorAll("pre.captured").forEach(function (pre) {
        captured.push({ stream: pre.getAttribute("data-stream"), phase: pre.getAttribute("data-phase"), text: pre.textContent });
      });
    }
    if (captured.length) {
      body.appendChild(panel("Captured output", null, captured.map(function (c) {
        return [el("h4", null, c.stream + (c.phase ? " (" + c.phase + ")" : "")), el("pre", { class: "captured", text: c.text })];
      })));
    }
    if (t.h) body.appendChild(historyPanel(histOf(t)));
    var hang = t.extra && t.extra.hang_dump;
    if (hang && hang.dumps && hang.dumps.length) {
      // the stacks of every thread and asyncio task while the test hung (--kari-hang-dump, pytest-timeout)
      body.appendChild(panel("Hang dump", hang.dumps.length + " dump(s), " + (hang.reason || "slow"),
        hang.dumps.map(function (dump, n) {
          var title = "after " + fmtSeconds(Number(dump.after_s)) + " (" + (dump.reason || hang.reason) + ")";
          return el("details", { class: "extra", open: n === hang.dumps.length - 1 ? "" : null },
            el("summary", null, title), el("pre", { class: "tb hang", text: String(dump.text || "") }));
        })));
    }
    var kinds = KIND_ORDER.filter(function (k) { return d[k]; }).concat(Object.keys(d).filter(function (k) { return KIND_ORDER.indexOf(k) < 0; }));
    kinds.forEach(function (k) {
      var made;
      try {
        made = KNOWN[k] ? KNOWN[k](t, d[k]) : genericPanel(k, d[k]);
      } catch (err) {
        // a malformed section must not hide the others
        made = panel(k, "could not be drawn", el("p", { class: "warn-note" }, String(err && err.message)), jsonView(d[k]));
      }
      if (made) body.appendChild(made);
    });
    if (t.extra) {
      // what other features added to the test's record (record["extra"][feature])
      body.appendChild(panel("More data", null, Object.keys(t.extra).filter(function (k) { return k !== "hang_dump"; }).map(function (k) {
        return el("details", { class: "extra" }, el("summary", null, k), jsonView(t.extra[k]));
      })));
    }
    return body;
  }

  // ---------------------------------------------------------------- the test table
  var tbody = document.getElementById("t-body");
  var moreBtn = document.getElementById("t-more");
  var countEl = document.getElementById("t-count");
  var fq = document.getElementById("f-q"), fOutcome = document.getElementById("f-outcome");
  var fExt = document.getElementById("f-ext"), fHas = document.getElementById("f-has"), fSort = document.getElementById("f-sort");
  var chip = document.getElementById("f-chip");
  var PAGE = 100;
  var state = { sort: "index", dir: 1, order: [], shown: 0, open: new Set(), group: null, only: null };
  var lowerIds = null;

  function sortValue(t, i, key) {
    switch (key) {
      case "duration": return t.duration || 0;
      case "rss": return isNum(t.rss) ? t.rss : -1;
      case "alerts": return (t.counts && t.counts.alerts) || 0;
      case "outcome": return OUTCOME_RANK[t.outcome] !== undefined ? OUTCOME_RANK[t.outcome] : 3;
      case "nodeid": return t.nodeid;
      case "ext": return t.ext;
      default: return i;
    }
  }

  function compute() {
    var needle = fq.value.trim().toLowerCase(), outcome = fOutcome.value, ext = fExt.value, has = fHas.value;
    if (needle && !lowerIds) lowerIds = TESTS.map(function (t) { return (t.nodeid + " " + t.ext).toLowerCase(); });
    var groupSet = state.group ? new Set(state.group.tests) : null;
    var order = [];
    if (state.only !== null) {
      // a linked test shown on its own, whatever the filters say
      state.order = [state.only];
      return;
    }
    for (var i = 0; i < TESTS.length; i++) {
      var t = TESTS[i];
      if (outcome === "!fail" ? t.outcome !== "failed" && t.outcome !== "error" : outcome && t.outcome !== outcome) continue;
      if (ext && t.ext !== ext) continue;
      if (has && !(t.counts && t.counts[has] > 0)) continue;
      if (groupSet && !groupSet.has(i)) continue;
      if (needle && lowerIds[i].indexOf(needle) < 0) continue;
      order.push(i);
    }
    var key = state.sort, dir = state.dir;
    if (key !== "index") {
      var vals = {};
      order.forEach(function (j) { vals[j] = sortValue(TESTS[j], j, key); });
      order.sort(function (a, b) {
        var va = vals[a], vb = vals[b];
        return (va < vb ? -1 : va > vb ? 1 : a - b) * (va === vb ? 1 : dir);
      });
    }
    state.order = order;
  }

  function rowFor(i) {
    var t = TESTS[i], open = state.open.has(i), c = t.counts || {};
    var alerts = c.alerts ? el("span", null, String(c.alerts), " ", el("span", { class: "badge sev-high" }, "! alert" + (c.alerts > 1 ? "s" : ""))) : "0";
    return el("tr", { class: "row", "data-index": String(i) },
      el("th", { scope: "row" }, el("button", { type: "button", class: "expand", id: "test-" + i, "aria-expanded": String(open), "aria-controls": "detail-" + i },
        el("span", { class: "chev", "aria-hidden": "true" }), idNode(t.nodeid)), histBadges(histOf(t))),
      el("td", { "data-label": "outcome" }, badge(t.outcome), sparkline(histOf(t))),
      MANY_EXT ? el("td", { "data-label": "extension" }, t.ext) : null,
      el("td", { class: "num", "data-label": "duration" }, fmtMs(t.duration)),
      el("td", { class: "num", "data-label": "peak RSS" }, isNum(t.rss) ? fmtBytes(t.rss) : "–"),
      el("td", { class: "num", "data-label": "alerts" }, alerts));
  }

  function detailRow(i) {
    var content;
    try { content = detail(i); } catch (err) { content = el("p", { class: "warn-note" }, "This test's details could not be drawn: " + err.message); }
    return el("tr", { class: "detail", id: "detail-" + i }, el("td", { colspan: MANY_EXT ? "6" : "5" }, content));
  }

  function renderMore(upto) {
    var end = Math.min(state.order.length, Math.max(state.shown + PAGE, upto || 0));
    var frag = document.createDocumentFragment();
    for (var k = state.shown; k < end; k++) {
      var i = state.order[k];
      frag.appendChild(rowFor(i));
      if (state.open.has(i)) frag.appendChild(detailRow(i));
    }
    tbody.appendChild(frag);
    state.shown = end;
    moreBtn.hidden = state.shown >= state.order.length;
    moreBtn.textContent = "Show more tests (" + (state.order.length - state.shown) + " left)";
    countEl.textContent = state.order.length === TESTS.length
      ? TESTS.length + " tests; showing " + state.shown + "."
      : state.order.length + " of " + TESTS.length + " tests match; showing " + state.shown + ".";
  }

  function refresh() {
    compute();
    tbody.replaceChildren();
    state.shown = 0;
    renderMore();
    document.querySelectorAll("#test-table th[data-sort]").forEach(function (th) {
      var k = th.getAttribute("data-sort");
      if (k === state.sort) th.setAttribute("aria-sort", state.dir > 0 ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    });
  }

  function toggle(i, button) {
    var open = button.getAttribute("aria-expanded") === "true";
    var tr = button.closest("tr");
    if (open) {
      state.open.delete(i);
      button.setAttribute("aria-expanded", "false");
      var d = document.getElementById("detail-" + i);
      if (d) d.remove();
    } else {
      state.open.add(i);
      button.setAttribute("aria-expanded", "true");
      tr.after(detailRow(i));
    }
  }

  tbody.addEventListener("click", function (ev) {
    var button = ev.target.closest("button.expand");
    if (!button || !tbody.contains(button)) return;
    toggle(Number(button.closest("tr").getAttribute("data-index")), button);
  });
  moreBtn.addEventListener("click", function () { renderMore(); });
  if ("IntersectionObserver" in window) {
    new IntersectionObserver(function (entries) {
      if (entries.some(function (e) { return e.isIntersecting; }) && !moreBtn.hidden) renderMore();
    }, { rootMargin: "400px" }).observe(moreBtn);
  }
  function filtersChanged() {
    if (state.only !== null) { state.only = null; renderChip(); }
    refresh();
  }
  fq.addEventListener("input", debounce(filtersChanged, 120));
  [fOutcome, fExt, fHas].forEach(function (s) { s.addEventListener("change", filtersChanged); });
  fSort.addEventListener("change", function () {
    var parts = fSort.value.split(":");
    state.sort = parts[0];
    state.dir = Number(parts[1] || 1);
    refresh();
  });
  document.querySelectorAll("#test-table th[data-sort] button").forEach(function (b) {
    b.addEventListener("click", function () {
      var key = b.parentNode.getAttribute("data-sort");
      if (state.sort === key) state.dir = -state.dir;
      else { state.sort = key; state.dir = key === "duration" || key === "rss" || key === "alerts" ? -1 : 1; }
      fSort.value = "";
      refresh();
    });
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "/" && !/^(INPUT|SELECT|TEXTAREA)$/.test((document.activeElement || {}).tagName || "")) {
      ev.preventDefault();
      fq.focus();
    }
  });

  document.querySelectorAll(".counts-line a[data-outcome]").forEach(function (a) {
    a.addEventListener("click", function (ev) {
      ev.preventDefault();
      var wanted = a.getAttribute("data-outcome");
      fOutcome.value = wanted;
      document.querySelectorAll(".counts-line a[data-outcome]").forEach(function (b) { b.setAttribute("aria-pressed", String(b === a && wanted !== "")); });
      filtersChanged();
      document.getElementById("tests").scrollIntoView({ block: "start" });
    });
  });

  function renderChip() {
    chip.replaceChildren();
    var group = state.group, only = state.only;
    chip.hidden = !group && only === null;
    if (only !== null) {
      chip.appendChild(el("span", { class: "chip" }, "Showing one linked test",
        el("button", { type: "button", onclick: function () { state.only = null; renderChip(); refresh(); } }, "Show all tests")));
    } else if (group) {
      chip.appendChild(el("span", { class: "chip" }, "Error group: " + group.type + " (" + group.tests.length + " tests)",
        el("button", { type: "button", "aria-label": "Clear the error group filter", onclick: function () { setGroup(null); } }, "✕")));
    }
  }
  function setGroup(group) {
    state.group = group;
    state.only = null;
    renderChip();
    refresh();
  }

  function openTest(i, focus) {
    if (!(i >= 0 && i < TESTS.length)) return;
    var pos = state.order.indexOf(i);
    if (pos < 0 || pos >= state.shown + PAGE) {
      // far down or filtered out: show that test alone rather than draw every row above it
      state.only = i;
      renderChip();
      refresh();
    } else if (pos >= state.shown) {
      renderMore(pos + 1);
    }
    var button = document.getElementById("test-" + i);
    if (!button) return;
    if (button.getAttribute("aria-expanded") !== "true") toggle(i, button);
    button.scrollIntoView({ block: "start" });
    if (focus) button.focus();
  }
  function fromHash() {
    var m = /^#test-(\d+)$/.exec(location.hash);
    if (m) return openTest(Number(m[1]), true);
    // #test=<node id, URL-encoded>: the link a JUnit XML property (kari.report) carries
    m = /^#test=(.*)$/.exec(location.hash);
    if (!m) return;
    var wanted;
    try { wanted = decodeURIComponent(m[1]); } catch (e) { return; }
    for (var i = 0; i < TESTS.length; i++) {
      if (TESTS[i].nodeid === wanted) return openTest(i, true);
    }
  }
  window.addEventListener("hashchange", fromHash);

  // ---------------------------------------------------------------- run-wide views
  function runCharts() {
    var box = document.getElementById("run-charts");
    var t0 = null;
    TESTS.forEach(function (t) { if (isNum(t.t0) && (t0 === null || t.t0 < t0)) t0 = t.t0; });
    if (isNum(RUN.started_at) && (t0 === null || RUN.started_at < t0)) t0 = RUN.started_at;
    var charts = [];
    var withStart = TESTS.filter(function (t) { return isNum(t.t0); });
    if (withStart.length) {
      var pts = [], fails = [];
      withStart.forEach(function (t) {
        var p = [t.t0 - t0, t.duration];
        (t.outcome === "failed" || t.outcome === "error" ? fails : pts).push(p);
      });
      // the dots a pointer can name and open: every test of a small run, else the failed and
      // the slowest ones
      var pickable = withStart.slice();
      if (pickable.length > 400) {
        pickable = pickable.filter(function (t) { return t.outcome === "failed" || t.outcome === "error"; })
          .concat(pickable.slice().sort(function (a, b) { return b.duration - a.duration; }).slice(0, 200));
      }
      charts.push(chart({ title: "Test duration", unit: "", xLabel: "time since the run started", dots: true,
        fmtY: fmtMs, fmtX: fmtSeconds,
        points: pts.concat(fails), marks: fails,
        picks: pickable.map(function (t) { return { x: t.t0 - t0, y: t.duration, test: TESTS.indexOf(t), text: t.nodeid + ": " + fmtMs(t.duration) + " (" + t.outcome + ")" }; }),
        note: "One dot per test at its start; square red marks are failed tests. Point at a dot for its test; select it to open the test." }));
      var cpu = withStart.filter(function (t) { return isNum(t.cpu); }).map(function (t) { return [t.t0 - t0, t.cpu]; });
      if (cpu.length) charts.push(chart({ title: "CPU time per test", unit: "", xLabel: "time since the run started", points: cpu,
        dots: true, fmtY: fmtMs, fmtX: fmtSeconds }));
    }
    var samples = [];
    TESTS.forEach(function (t) {
      var m = t.data && t.data.metrics;
      if (m && m.samples) m = hydrate(t).data.metrics;
      if (m && Array.isArray(m.samples)) m.samples.forEach(function (s) { if (isNum(s.ts)) samples.push(s); });
    });
    if (samples.length) {
      samples.sort(function (a, b) { return a.ts - b.ts; });
      var cpuS = samples.filter(function (s) { return isNum(s.cpu_percent); }).map(function (s) { return [s.ts - t0, s.cpu_percent]; });
      var rssS = samples.filter(function (s) { return isNum(s.rss_bytes); }).map(function (s) { return [s.ts - t0, s.rss_bytes]; });
      if (cpuS.length) charts.push(chart({ title: "CPU over the run (samples)", unit: "", xLabel: "time since the run started", points: cpuS,
        fmtY: function (v) { return kariFormat(v, "%"); }, fmtX: fmtSeconds, readout: true }));
      if (rssS.length) charts.push(chart({ title: "RSS over the run (samples)", unit: "", xLabel: "time since the run started", points: rssS,
        fmtY: fmtBytes, fmtX: fmtSeconds, readout: true, cls: "series2" }));
    }
    var indexed = TESTS.map(function (t, i) { return [t, i]; });
    var slow = indexed.filter(function (p) { return isNum(p[0].duration); }).sort(function (a, b) { return b[0].duration - a[0].duration; }).slice(0, 10);
    if (slow.length) charts.push(rankedBars("Slowest tests", slow.map(function (p) { return [p[1], p[0].duration, fmtMs(p[0].duration)]; })));
    // a test's own traced peak where measured (--kari-memory), else the process's peak RSS
    var memKey = indexed.some(function (p) { return isNum(p[0].alloc); }) ? "alloc" : "rss";
    var mem = indexed.filter(function (p) { return isNum(p[0][memKey]); }).sort(function (a, b) { return b[0][memKey] - a[0][memKey]; }).slice(0, 10);
    if (mem.length) charts.push(rankedBars(memKey === "alloc" ? "Biggest memory users (traced peak)" : "Biggest memory users (peak RSS of the process)",
      mem.map(function (p) { return [p[1], p[0][memKey], fmtBytes(p[0][memKey])]; })));
    box.replaceChildren();
    if (!charts.length) box.appendChild(el("p", null, "No timed tests to draw."));
    charts.forEach(function (c) { box.appendChild(c); });
  }

  function errorGroupsView() {
    var box = document.getElementById("error-groups-body");
    var groups = DATA.errorGroups || [];
    if (!box || !groups.length) return;
    box.appendChild(el("div", { class: "scroll" }, el("table", null,
      el("thead", null, el("tr", null, el("th", { scope: "col", class: "num" }, "Count"), el("th", { scope: "col" }, "Error"),
        el("th", { scope: "col" }, "Affected tests"))),
      el("tbody", null, groups.slice(0, 500).map(function (g) {
        return el("tr", null, el("td", { class: "num" }, String(g.count)),
          el("td", null, el("code", null, g.type), g.message ? ": " + g.message : "", g.category ? " [" + g.category + "]" : "",
            g.new ? [" ", el("span", { class: "badge sev-high" }, "★ new")] : null,
            g.status === "regressed" ? [" ", el("span", { class: "badge sev-high" }, "↺ regressed")]
              : g.status === "resolved" ? [" ", el("span", { class: "badge" }, "✓ resolved")] : null,
            g.suggestion ? el("div", { class: "note" }, "Suggestion: " + g.suggestion) : null),
          el("td", null, g.tests.slice(0, 8).map(function (i) {
            return el("div", null, el("a", { href: "#test-" + i, class: "nodeid" }, TESTS[i] ? TESTS[i].nodeid : "#" + i));
          }), g.tests.length > 8 ? el("button", { type: "button", onclick: function () {
            setGroup(g);
            document.getElementById("tests").scrollIntoView();
          } }, "Show all " + g.tests.length + " in the test table") : null));
      })))),
      groups.length > 500 ? el("p", { class: "note" }, (groups.length - 500) + " smaller groups not listed.") : null);
  }

  function sectionsView() {
    var box = document.getElementById("sections-body");
    var sections = DATA.sections || {};
    if (!box) return;
    Object.keys(sections).forEach(function (k) {
      var v = sections[k];
      box.appendChild(el("details", null, el("summary", null, k), objectView(v)));
    });
  }

  // ---------------------------------------------------------------- start
  function start() {
    refresh();
    errorGroupsView();
    sectionsView();
    var box = document.getElementById("run-charts");
    if ("IntersectionObserver" in window) {
      var seen = false;
      var io = new IntersectionObserver(function (entries) {
        if (!seen && entries.some(function (e) { return e.isIntersecting; })) { seen = true; io.disconnect(); runCharts(); }
      }, { rootMargin: "300px" });
      io.observe(box);
    } else {
      runCharts();
    }
    fromHash();
    // for tests and the curious: the data, and one test's records as the page restores them
    window.kariReport = { data: DATA, test: function (i) { return hydrate(TESTS[i]); }, open: openTest };
    root.setAttribute("data-ready-ms", String(Math.round(performance.now())));
    root.setAttribute("data-ready", "true");
  }
  // let the static summary paint first, then build the interactive views
  requestAnimationFrame(function () { setTimeout(start, 0); });
})();
