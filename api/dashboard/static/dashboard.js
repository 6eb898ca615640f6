// Homecare RPM nurse dashboard: live worklist / alert view and patient charts.
// Server-rendered pages work without this script; it adds the live updates (the API's SSE
// stream triggers a re-read of the server-rendered rows) and draws the charts with uPlot.
"use strict";

(function () {
  // --- live queue -------------------------------------------------------------------------
  function liveQueue(status) {
    var rowsUrl = status.dataset.rowsUrl;
    var body = document.getElementById(status.dataset.rowsTarget);
    var announce = document.getElementById("live-announce");
    var timer = null;
    var pending = false;
    var inflight = false;

    function ids() {
      return Array.prototype.map.call(body.querySelectorAll("[data-alert-id]"), function (tr) {
        return tr.dataset.alertId;
      });
    }

    function busy() {
      // Do not replace rows under a nurse who is typing or choosing in a form of the list.
      var active = document.activeElement;
      return active && body.contains(active) && (active.tagName === "INPUT" || active.tagName === "SELECT");
    }

    // Where the keyboard is (a button, a link, a disclosure) and which disclosures are open:
    // a re-read puts both back, so a live update never drops the focus to the page body.
    function place() {
      var active = document.activeElement;
      var focus = null;
      if (active && body.contains(active)) {
        var holder = active.id ? active : active.closest("[id]");
        var within = active.id ? null : holder && Array.prototype.indexOf.call(
          holder.querySelectorAll("a, button, summary, input, select"), active);
        focus = holder ? { id: holder.id, index: within } : null;
      }
      var open = Array.prototype.map.call(body.querySelectorAll("details[open][id]"), function (d) { return d.id; });
      return { focus: focus, open: open };
    }

    function replace(where) {
      where.open.forEach(function (id) {
        var d = document.getElementById(id);
        if (d && body.contains(d)) d.open = true;
      });
      if (!where.focus) return;
      var holder = document.getElementById(where.focus.id);
      var target = holder;
      if (holder && where.focus.index !== null && where.focus.index >= 0) {
        target = holder.querySelectorAll("a, button, summary, input, select")[where.focus.index] || holder;
      }
      if (!target || !body.contains(target)) {
        // What had the focus is gone (resolved by someone else): the list's heading gets it.
        target = document.querySelector("main h1");
        if (target) target.setAttribute("tabindex", "-1");
      }
      if (target) target.focus({ preventScroll: true });
    }

    // What the nurse entered in the rows' forms (an outcome chosen, a note typed) and left for
    // the button: a re-read of the rows must not throw it away (the outcome is required, so a
    // reset one would silently block the resolve she is about to click).
    function entered() {
      var values = {};
      Array.prototype.forEach.call(body.querySelectorAll("select[id], input[id]"), function (el) {
        if (el.type !== "hidden" && el.value !== "") values[el.id] = el.value;
      });
      return values;
    }

    function restore(values) {
      Object.keys(values).forEach(function (id) {
        var el = document.getElementById(id);
        if (el && body.contains(el)) el.value = values[id];
      });
    }

    function refresh() {
      timer = null;
      if (busy()) { pending = true; return; }
      if (inflight) { pending = true; return; }
      inflight = true;
      var before = ids();
      fetch(rowsUrl, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (response) {
          if (response.status === 401) { window.location.assign("/dashboard/login"); return null; }
          return response.ok ? response.text() : null;
        })
        .then(function (html) {
          if (html === null) return;
          var values = entered();
          var where = place();
          body.innerHTML = html;
          restore(values);
          replace(where);
          var fresh = ids().filter(function (id) { return before.indexOf(id) < 0; });
          fresh.forEach(function (id) {
            var row = document.getElementById("alert-" + id);
            if (row && row.closest("li.patient")) row = row.closest("li.patient");
            if (row) row.classList.add("new");
          });
          announce.textContent = fresh.length ? status.dataset.msgNew : status.dataset.msgUpdated;
        })
        .catch(function () { pending = true; })
        .then(function () {
          inflight = false;
          if (pending) { pending = false; schedule(); }
        });
    }

    function schedule() {
      if (timer === null) timer = window.setTimeout(refresh, 150);
    }

    body.addEventListener("focusout", function () { if (pending) { pending = false; schedule(); } });

    if (!window.EventSource) return;
    var source = new EventSource(status.dataset.liveUrl, { withCredentials: true });
    source.addEventListener("open", function () {
      status.textContent = status.dataset.msgLive;
      status.classList.remove("offline");
      status.dataset.state = "live";
      schedule(); // catch up on anything missed while (re)connecting
    });
    source.addEventListener("alert", schedule);
    source.addEventListener("error", function () {
      status.textContent = status.dataset.msgOffline;
      status.classList.add("offline");
      status.dataset.state = "offline";
    });
  }

  // --- charts -----------------------------------------------------------------------------
  // Times on the charts are in the care team's zone and the page's language: uPlot places the
  // ticks in that zone (tzDate); the browser's Intl formats the labels.
  function formatters(data) {
    var lang = data.locale === "fr-CA" ? "fr-CA" : "en-CA";
    var zone = { timeZone: data.zone };
    function make(options) {
      var f = new Intl.DateTimeFormat(lang, Object.assign({}, zone, options));
      return function (ts) { return f.format(new Date(ts * 1e3)); };
    }
    var number = new Intl.NumberFormat(lang, { maximumFractionDigits: 1 });
    return {
      day: make({ day: "numeric", month: "short" }),
      hour: make({ hour: "numeric", minute: "2-digit" }),
      full: make({ dateStyle: "medium", timeStyle: "short" }),
      number: function (v) { return number.format(v); },
    };
  }

  function plot(el, x, lines, labels, data) {
    var uPlot = window.uPlot;
    var fmt = formatters(data);
    var series = [{ label: labels.time, value: function (u, ts) { return ts == null ? "--" : fmt.full(ts); } }];
    var values = [x];
    lines.forEach(function (line) {
      series.push(line.series);
      values.push(line.values);
    });
    var opts = {
      width: Math.max(el.clientWidth, 280),
      height: 200,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), data.zone); },
      scales: { x: { time: true } },
      series: series,
      axes: [
        {
          // Labels need room: at least 90 px between ticks (uPlot's default 50 px made the
          // dated labels overlap). Below a day apart, the date is written once per day, on a
          // second line, at the first tick of that day.
          space: 90,
          size: 48,
          values: function (u, splits, axisIdx, foundSpace, foundIncr) {
            if (foundIncr >= 86400) return splits.map(function (ts) { return fmt.day(ts); });
            var lastDay = null;
            return splits.map(function (ts) {
              var day = fmt.day(ts);
              var text = fmt.hour(ts) + (day !== lastDay ? "\n" + day : "");
              lastDay = day;
              return text;
            });
          },
        },
        { values: function (u, splits) { return splits.map(function (v) { return fmt.number(v); }); } },
      ],
      legend: { live: true },
    };
    var chart = new uPlot(opts, values, el);
    window.addEventListener("resize", function () {
      chart.setSize({ width: Math.max(el.clientWidth, 280), height: 200 });
    });
    return chart;
  }

  var OPS = { ">=": "≥", "<=": "≤", ">": ">", "<": "<" };

  function thresholdLines(x, thresholds, labels, fmt) {
    return thresholds.map(function (th) {
      var what = th.rule_id === "news2" ? labels.news2_red : labels.threshold;
      return {
        series: {
          label: what + " " + (OPS[th.op] || th.op || "≥") + " " + fmt.number(th.value),
          stroke: th.severity === "critical" || th.severity === "high" ? "#b3261e" : "#c77700",
          dash: [6, 4],
          width: 1.5,
          points: { show: false },
        },
        values: x.map(function () { return th.value; }),
      };
    });
  }

  function charts(dataEl) {
    var data = JSON.parse(dataEl.textContent);
    var labels = JSON.parse(document.getElementById("chart-labels").textContent);
    var haveData = data.series.length > 0 || data.news2.x.length > 0;
    if (!window.uPlot) {
      if (haveData) document.getElementById("charts-missing").hidden = false;
      return;
    }
    data.series.forEach(function (s) {
      var el = document.getElementById("plot-" + s.type);
      if (!el) return;
      var few = s.x.length < 60;
      var lines = [
        { series: { label: labels.mean, stroke: "#1f5fa8", width: 2, points: { show: few } }, values: s.mean },
        { series: { label: labels.min, stroke: "#8aa9d6", width: 1, points: { show: false } }, values: s.min },
        { series: { label: labels.max, stroke: "#8aa9d6", width: 1, points: { show: false } }, values: s.max },
      ].concat(thresholdLines(s.x, s.thresholds, labels, formatters(data)));
      plot(el, s.x, lines, labels, data);
    });
    var n = data.news2;
    var el = document.getElementById("plot-news2");
    if (el && n.x.length) {
      var lines = [{ series: { label: labels.news2, stroke: "#5b2a86", width: 2, points: { show: n.x.length < 60 } }, values: n.score }]
        .concat(thresholdLines(n.x, n.thresholds.map(function (t) { return { op: ">=", value: t.value, severity: t.severity }; }), labels, formatters(data)));
      plot(el, n.x, lines, labels, data);
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var status = document.getElementById("live-status");
    if (status) liveQueue(status);
    var dataEl = document.getElementById("chart-data");
    if (dataEl) charts(dataEl);
  });
})();
