/* kari-debug: figures shown in their catalogue unit, rounded by one rule. KARI_DISPLAY (the
   figures catalogue's display_rules(), put before this script by the page) holds the units;
   kariFormat(value, unit) is pytest_kari_debug.figures.format_value, line for line. */
var kariFormat = (function () {
  "use strict";
  var rules = KARI_DISPLAY;
  function decimals(m) { return m >= 100 ? 0 : m >= 10 ? 1 : m >= 1 ? 2 : 3; }
  function fixed(v, d) { var t = v.toFixed(d); return /^-0(\.0*)?$/.test(t) ? t.slice(1) : t; }
  return function (value, unit) {
    if (typeof value !== "number" || !isFinite(value)) return "n/a";
    unit = unit || "";
    var known = rules.units[unit], base = known ? known[0] : "", factor = known ? known[1] : 1;
    if (base === "" && unit) { base = unit; factor = 1; }
    var amount = value * factor, steps = rules.steps[base] || [[1, base]], index = 0;
    steps.forEach(function (step, i) { if (Math.abs(amount) >= step[0]) index = i; });
    var text = "";
    while (!text) {
      var shown = amount / steps[index][0];
      text = shown === Math.trunc(shown) ? String(Math.trunc(shown)) : fixed(shown, decimals(Math.abs(shown)));
      if (decimals(Math.abs(Number(text))) < decimals(Math.abs(shown))) text = fixed(shown, decimals(Math.abs(Number(text))));
      if (index + 1 < steps.length && Math.abs(Number(text)) * steps[index][0] >= steps[index + 1][0]) { index += 1; text = ""; }
    }
    return (text + " " + steps[index][1]).trim();
  };
})();
