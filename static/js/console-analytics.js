/*
 * AGIPower console: Cost Analytics.
 *
 * The page (templates/console/analytics.html) is a GET form and a frame; its
 * root element carries the view in force (data-from, data-to: UTC days, both
 * inclusive; data-granularity, data-key, data-model). This script asks
 * GET /api/v1/analytics/cost once per grouping (model, key, type, provider),
 * with the console's session, and fills the cards, the charts (Chart.js,
 * vendored under static/vendor/chartjs) and the table per model. Amounts come
 * as USD decimal strings; they become numbers here only to be drawn and shown.
 */
(function () {
  "use strict";

  var root = document.querySelector("[data-analytics]");
  if (!root) return;

  var PALETTE = [
    "#4f46e5", "#0ea5e9", "#10b981", "#f59e0b", "#ef4444",
    "#8b5cf6", "#14b8a6", "#f97316", "#ec4899", "#64748b",
  ];
  var OTHER_COLOR = "#98a2b3";
  // Beyond this many models, the smallest are drawn together as "Other models".
  var MAX_STACKED = 8;
  var MONEY = ["cost", "input_cost", "output_cost", "other_cost",
    "avg_cost_per_request", "avg_cost_per_million_tokens"];

  var view = {
    api: root.getAttribute("data-api"),
    from: root.getAttribute("data-from"),
    to: root.getAttribute("data-to"),
    granularity: root.getAttribute("data-granularity"),
    key: root.getAttribute("data-key"),
    model: root.getAttribute("data-model"),
  };
  var status = root.querySelector("[data-analytics-status]");

  // --- formatting --------------------------------------------------------------

  var moneyFormats = {};
  function usd(value) {
    var amount = Number(value);
    var size = Math.abs(amount);
    // Requests cost fractions of a cent: show the digits that say something.
    var places = size === 0 || size >= 1 ? 2 : size >= 0.01 ? 4 : 6;
    if (!moneyFormats[places]) {
      moneyFormats[places] = new Intl.NumberFormat("en-US", {
        style: "currency", currency: "USD",
        minimumFractionDigits: places, maximumFractionDigits: places,
      });
    }
    return moneyFormats[places].format(amount);
  }

  var countFormat = new Intl.NumberFormat("en-US");
  function count(value) {
    return countFormat.format(Number(value));
  }

  function shown(slug, value) {
    // An average of nothing (no requests, no tokens) is null.
    if (value === null || value === undefined) return "—";
    return MONEY.indexOf(slug) >= 0 ? usd(value) : count(value);
  }

  var percentFormat = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });

  /** The change against the previous period: [text, direction, spoken]. */
  function change(current, previous) {
    var now = Number(current);
    var before = Number(previous);
    if (!isFinite(now) || !isFinite(before)) return ["", "none", ""];
    if (before === 0) {
      if (now === 0) return ["— same as previous period", "none", "No change from the previous period"];
      return ["▲ new this period", "up", "None in the previous period"];
    }
    var percent = ((now - before) / before) * 100;
    if (Math.abs(percent) < 0.05) {
      return ["0% vs previous period", "none", "No change from the previous period"];
    }
    var text = percentFormat.format(Math.abs(percent)) + "%";
    if (percent > 0) {
      return ["▲ " + text + " vs previous period", "up", "Up " + text + " from the previous period"];
    }
    return ["▼ " + text + " vs previous period", "down", "Down " + text + " from the previous period"];
  }

  // --- time buckets (UTC) --------------------------------------------------------

  function utcDay(text) {
    var parts = text.split("-").map(Number);
    return Date.UTC(parts[0], parts[1] - 1, parts[2]);
  }

  /** Every bucket's start (ms since the epoch): the API lists them, with
   * usage or not; else they are counted here from the first day to the last. */
  function buckets(answer) {
    if (answer && Array.isArray(answer.buckets)) return answer.buckets.map(Date.parse);
    var start = utcDay(view.from);
    var end = utcDay(view.to) + 86400000;
    var out = [];
    if (view.granularity === "month") {
      var moment = new Date(start);
      var month = Date.UTC(moment.getUTCFullYear(), moment.getUTCMonth(), 1);
      while (month < end) {
        out.push(month);
        moment = new Date(month);
        month = Date.UTC(moment.getUTCFullYear(), moment.getUTCMonth() + 1, 1);
      }
      return out;
    }
    var step = view.granularity === "hour" ? 3600000 : 86400000;
    for (var t = start; t < end; t += step) out.push(t);
    return out;
  }

  var labelFormats = {
    hour: new Intl.DateTimeFormat("en-US", {
      timeZone: "UTC", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
    }),
    day: new Intl.DateTimeFormat("en-US", { timeZone: "UTC", month: "short", day: "numeric" }),
    month: new Intl.DateTimeFormat("en-US", { timeZone: "UTC", month: "short", year: "numeric" }),
  };

  function bucketLabel(ms) {
    return labelFormats[view.granularity].format(new Date(ms));
  }

  // --- the API -------------------------------------------------------------------

  function load(groupBy) {
    var params = new URLSearchParams({
      from: view.from, to: view.to, granularity: view.granularity, group_by: groupBy,
    });
    if (view.key) params.set("key", view.key);
    if (view.model) params.set("model", view.model);
    return fetch(view.api + "?" + params.toString(), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (!response.ok) throw new Error(problem(body) || "the server answered " + response.status);
        return body;
      });
    });
  }

  /** The first message of an error answer ({"field": ["…"]}, {"detail": "…"}). */
  function problem(body) {
    if (!body || typeof body !== "object") return "";
    if (body.error && body.error.message) return body.error.message;
    if (typeof body.detail === "string") return body.detail;
    for (var name in body) {
      var value = body[name];
      if (Array.isArray(value) && value.length) return name + ": " + value[0];
      if (typeof value === "string") return name + ": " + value;
    }
    return "";
  }

  /** Series rows summed by group, largest first: [{group, label, cost}]. */
  function byGroup(series) {
    var groups = {};
    var order = [];
    (series || []).forEach(function (row) {
      var name = String(row.group);
      if (!groups[name]) {
        groups[name] = { group: name, label: row.label || name, cost: 0 };
        order.push(name);
      }
      groups[name].cost += Number(row.cost);
    });
    return order.map(function (name) { return groups[name]; })
      .sort(function (a, b) { return b.cost - a.cost; });
  }

  // --- cards and the table ----------------------------------------------------------

  function fillCards(totals, previous) {
    root.querySelectorAll("[data-metric]").forEach(function (card) {
      var slug = card.getAttribute("data-metric");
      var value = totals ? totals[slug] : null;
      card.querySelector("[data-value]").textContent = shown(slug, value);
      var line = card.querySelector("[data-change]");
      if (!previous || value === null || value === undefined) {
        line.textContent = "";
        return;
      }
      if (previous[slug] === null || previous[slug] === undefined) {
        // An average over no requests at all.
        line.textContent = "none in the previous period";
        line.setAttribute("data-direction", "none");
        return;
      }
      var result = change(value, previous[slug]);
      line.textContent = result[0];
      line.setAttribute("data-direction", result[1]);
      line.setAttribute("title", result[2] + " (" + shown(slug, previous[slug]) + ")");
    });
  }

  function cell(text, className) {
    var td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function fillModels(rows) {
    var body = root.querySelector("[data-model-rows]");
    body.textContent = "";
    rows = (rows || []).slice().sort(function (a, b) { return Number(b.cost) - Number(a.cost); });
    rows.forEach(function (row) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-testid", "model-row");
      var name = document.createElement("th");
      name.scope = "row";
      name.className = "log-model";
      name.textContent = row.model;
      tr.appendChild(name);
      tr.appendChild(cell(count(row.calls), "num"));
      tr.appendChild(cell(count(row.input_tokens), "num"));
      tr.appendChild(cell(count(row.output_tokens), "num"));
      tr.appendChild(cell(row.cost_per_call === null ? "—" : usd(row.cost_per_call), "num amount"));
      tr.appendChild(cell(usd(row.cost), "num amount"));
      body.appendChild(tr);
    });
  }

  // --- charts ------------------------------------------------------------------------

  var charts = {};

  function draw(name, config) {
    var canvas = root.querySelector('[data-chart="' + name + '"]');
    if (!canvas || !window.Chart) return;
    if (charts[name]) charts[name].destroy();
    config.options = Object.assign({
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
    }, config.options || {});
    charts[name] = new window.Chart(canvas, config);
  }

  function describe(name, groups) {
    // What the chart shows, for screen readers (the canvas is an image).
    var canvas = root.querySelector('[data-chart="' + name + '"]');
    if (!canvas) return;
    canvas.setAttribute("aria-description", groups.slice(0, 10).map(function (group) {
      return group.label + " " + usd(group.cost);
    }).join(", "));
  }

  // Axis ticks: three significant digits at most ("$0.05", "$1.25", "$120").
  var tickFormat = new Intl.NumberFormat("en-US", {
    style: "currency", currency: "USD", maximumSignificantDigits: 3,
  });
  var moneyTicks = { callback: function (value) { return tickFormat.format(value); } };
  var moneyTooltip = {
    callbacks: {
      label: function (context) {
        var value = context.parsed && typeof context.parsed === "object"
          ? (context.chart.config.options.indexAxis === "y" ? context.parsed.x : context.parsed.y)
          : context.parsed;
        var label = context.dataset.label || context.label || "";
        return (label ? label + ": " : "") + usd(value);
      },
    },
  };

  function drawTime(answer) {
    var series = answer.series;
    var times = buckets(answer);
    var index = {};
    times.forEach(function (t, i) { index[t] = i; });
    var groups = byGroup(series);
    var shownGroups = groups.slice(0, groups.length > MAX_STACKED ? MAX_STACKED - 1 : MAX_STACKED);
    var named = {};
    shownGroups.forEach(function (group) { named[group.group] = true; });
    var datasets = shownGroups.map(function (group, i) {
      return {
        label: group.label, group: group.group, data: times.map(function () { return 0; }),
        backgroundColor: PALETTE[i % PALETTE.length], stack: "cost",
      };
    });
    var other = null;
    if (groups.length > shownGroups.length) {
      other = {
        label: "Other models", data: times.map(function () { return 0; }),
        backgroundColor: OTHER_COLOR, stack: "cost",
      };
      datasets.push(other);
    }
    var byName = {};
    datasets.forEach(function (dataset) { if (dataset.group) byName[dataset.group] = dataset; });
    (series || []).forEach(function (row) {
      var i = index[Date.parse(row.t)];
      if (i === undefined) return;
      var dataset = named[String(row.group)] ? byName[String(row.group)] : other;
      if (dataset) dataset.data[i] += Number(row.cost);
    });
    draw("time", {
      type: "bar",
      data: { labels: times.map(bucketLabel), datasets: datasets },
      options: {
        scales: {
          x: { stacked: true, ticks: { maxRotation: 0, autoSkip: true, autoSkipPadding: 8 } },
          y: { stacked: true, beginAtZero: true, ticks: moneyTicks },
        },
        plugins: { legend: { position: "bottom" }, tooltip: moneyTooltip },
      },
    });
    describe("time", groups);
  }

  function drawBars(name, series) {
    var groups = byGroup(series);
    draw(name, {
      type: "bar",
      data: {
        labels: groups.map(function (group) { return group.label; }),
        datasets: [{
          label: "Cost",
          data: groups.map(function (group) { return group.cost; }),
          backgroundColor: groups.map(function (_, i) { return PALETTE[i % PALETTE.length]; }),
        }],
      },
      options: {
        indexAxis: "y",
        scales: { x: { beginAtZero: true, ticks: moneyTicks } },
        plugins: { legend: { display: false }, tooltip: moneyTooltip },
      },
    });
    describe(name, groups);
  }

  function drawDoughnut(name, series) {
    var groups = byGroup(series).filter(function (group) { return group.cost > 0; });
    draw(name, {
      type: "doughnut",
      data: {
        labels: groups.map(function (group) { return group.label; }),
        datasets: [{
          data: groups.map(function (group) { return group.cost; }),
          backgroundColor: groups.map(function (_, i) { return PALETTE[i % PALETTE.length]; }),
        }],
      },
      options: { plugins: { legend: { position: "bottom" }, tooltip: moneyTooltip } },
    });
    describe(name, groups);
  }

  // --- the page ------------------------------------------------------------------------

  function say(text) {
    status.textContent = text;
    status.hidden = !text;
  }

  Promise.all([load("model"), load("key"), load("type"), load("provider")])
    .then(function (answers) {
      var byModel = answers[0];
      var totals = byModel.totals || {};
      fillCards(totals, byModel.previous);
      var empty = !Number(totals.requests);
      root.querySelector("[data-analytics-empty]").hidden = !empty;
      root.querySelector("[data-analytics-charts]").hidden = empty;
      root.querySelector("[data-analytics-models]").hidden = empty;
      if (!empty) {
        fillModels(byModel.models);
        if (window.Chart) {
          window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
          window.Chart.defaults.color = "#667085";
          drawTime(byModel);
          drawBars("key", answers[1].series);
          drawDoughnut("type", answers[2].series);
          drawBars("provider", answers[3].series);
        }
      }
      root.setAttribute("data-ready", "true");
      say(window.Chart || empty ? "" : "The charts could not be drawn; the totals and the table are complete.");
    })
    .catch(function (error) {
      fillCards(null, null);
      root.setAttribute("data-ready", "error");
      say("Could not load usage: " + error.message);
    });
})();
