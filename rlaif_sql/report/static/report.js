/* rlaif-sql report page: draws the figures from the embedded JSON and runs the task browser.
   Every text from the run (questions, completions, judge outputs) goes into the page through
   textContent, never as HTML; Prism's highlighter escapes the SQL it marks up. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563",
                 "#ca8a04", "#db2777", "#65a30d"];
  var PAGE_SIZE = 50;
  var report = { data: data, charts: {}, ready: false };
  window.rlaifReport = report;

  // ------------------------------------------------------------------ figures

  function chartConfig(spec) {
    var valueAxis = spec.horizontal ? "x" : "y";
    var datasets = spec.series.map(function (s, i) {
      var colour = PALETTE[i % PALETTE.length];
      return {
        label: s.label, data: s.data, notes: s.notes, borderColor: colour,
        backgroundColor: spec.kind === "line" ? colour : colour + "cc",
        borderWidth: spec.kind === "line" ? 2 : 1, pointRadius: 3, spanGaps: true
      };
    });
    var scales = {};
    scales[valueAxis] = { beginAtZero: true, stacked: spec.stacked,
                          title: { display: Boolean(spec.y_label), text: spec.y_label } };
    if (spec.percent) {
      scales[valueAxis].suggestedMax = 100;
      scales[valueAxis].ticks = { callback: function (v) { return v + "%"; } };
    }
    scales[spec.horizontal ? "y" : "x"] = { stacked: spec.stacked };
    return {
      type: spec.kind,
      data: { labels: spec.labels, datasets: datasets },
      options: {
        indexAxis: spec.horizontal ? "y" : "x", responsive: true, maintainAspectRatio: false,
        animation: false, scales: scales,
        plugins: {
          legend: { display: datasets.length > 1 },
          tooltip: { callbacks: { afterLabel: function (ctx) {
            var notes = ctx.dataset.notes;
            return notes && notes[ctx.dataIndex] ? notes[ctx.dataIndex] : "";
          } } }
        }
      }
    };
  }

  function drawCharts() {
    var specs = {};
    data.charts.forEach(function (c) { specs[c.id] = c; });
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var spec = specs[canvas.dataset.chart];
      if (spec) { report.charts[spec.id] = new Chart(canvas, chartConfig(spec)); }
    });
  }

  // ------------------------------------------------------------------ small DOM helpers

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { node.textContent = attrs[k]; }
      else if (k === "cls") { node.className = attrs[k]; }
      else { node.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) {
      if (c !== null && c !== undefined) { node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); }
    });
    return node;
  }

  function sqlBlock(sql) {
    var code = el("code", { cls: "language-sql" });
    if (window.Prism && Prism.languages.sql) {
      code.innerHTML = Prism.highlight(sql, Prism.languages.sql, "sql");
    } else {
      code.textContent = sql;
    }
    return el("pre", { cls: "sql language-sql" }, [code]);
  }

  function fmt(value, digits) {
    if (value === null || value === undefined) { return "n/a"; }
    return typeof value === "number" && !Number.isInteger(value) ? value.toFixed(digits || 3) : String(value);
  }

  var strings = null;
  function text(ref) {
    if (strings === null) { strings = JSON.parse(document.getElementById("strings").textContent); }
    return strings[ref];
  }

  // ------------------------------------------------------------------ task browser

  var index = data.index;
  var shown = [];
  var page = 0;
  var tbody = document.querySelector("#task-table tbody");
  var search = document.getElementById("task-search");
  var filter = document.getElementById("task-filter");
  var detail = document.getElementById("task-detail");

  function matches(row, query, mode) {
    if (mode === "passed" && !row[3]) { return false; }
    if (mode === "none-passed" && row[3]) { return false; }
    if (mode === "pairs" && !row[4]) { return false; }
    if (mode === "judged" && !row[5]) { return false; }
    if (!query) { return true; }
    return row[0].toLowerCase().indexOf(query) >= 0 || row[1].toLowerCase().indexOf(query) >= 0;
  }

  function applyFilter() {
    var query = search.value.trim().toLowerCase();
    shown = [];
    index.forEach(function (row, i) { if (matches(row, query, filter.value)) { shown.push(i); } });
    // an exact id match comes first, so a search by id finds its task on the first row
    var exact = shown.findIndex(function (i) { return index[i][0].toLowerCase() === query; });
    if (exact > 0) { shown.unshift(shown.splice(exact, 1)[0]); }
    page = 0;
    renderTable();
  }

  function renderTable() {
    var pages = Math.max(1, Math.ceil(shown.length / PAGE_SIZE));
    page = Math.min(page, pages - 1);
    var rows = shown.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE).map(function (i) {
      var r = index[i];
      var cells = [el("td", {}, [el("a", { href: "#task=" + encodeURIComponent(r[0]), text: r[0] })]),
                   el("td", { text: r[1] }), el("td", { text: String(r[2]) }), el("td", { text: String(r[3]) })];
      if (data.summary.kind === "run") {
        cells.push(el("td", { text: String(r[4]) }), el("td", { text: String(r[5]) }));
      }
      var tr = el("tr", { "data-task-id": r[0], "data-index": String(i) }, cells);
      tr.addEventListener("click", function (event) {
        event.preventDefault();
        var hash = "#task=" + encodeURIComponent(r[0]);
        if (window.location.hash === hash) { openTask(i); } else { window.location.hash = hash; }
      });
      return tr;
    });
    tbody.replaceChildren.apply(tbody, rows);
    document.getElementById("task-count").textContent = shown.length + " of " + index.length + " tasks";
    document.getElementById("page-info").textContent = "page " + (page + 1) + " of " + pages;
    document.getElementById("page-prev").disabled = page === 0;
    document.getElementById("page-next").disabled = page >= pages - 1;
  }

  function preview(p) {
    if (!p) { return el("p", { cls: "muted", text: "No gold result preview (tasks file not given)." }); }
    if (p.error) { return el("p", { cls: "muted", text: "Gold result not available: " + p.error }); }
    var head = el("tr", {}, p.columns.map(function (c) { return el("th", { text: c }); }));
    var body = p.rows.map(function (r) { return el("tr", {}, r.map(function (c) { return el("td", { text: c }); })); });
    return el("div", {}, [
      el("table", { cls: "preview" }, [el("thead", {}, [head]), el("tbody", {}, body)]),
      el("p", { cls: "muted", text: p.row_count + " row(s)" + (p.row_count > p.rows.length ? ", first " + p.rows.length + " shown" : "") })
    ]);
  }

  function candidateCard(c, related) {
    var status = c.passed === true ? "pass" : c.passed === false ? "fail" : "none";
    var facts = [c.source];
    if (c.check) { facts.push("failed check: " + c.check); }
    if (c.rows !== null && c.rows !== undefined) { facts.push(c.rows + " rows (gold " + fmt(c.gold_rows) + ")"); }
    if (c.ms !== undefined) { facts.push(c.ms + " ms"); }
    Object.keys(c.meta || {}).forEach(function (k) { facts.push(k + " " + c.meta[k]); });
    var parts = [
      el("div", { cls: "cand-head" }, [el("span", { cls: "badge " + status, text: c.reason }),
        el("strong", { text: c.id }), el("span", { cls: "muted", text: facts.join(" · ") })]),
      c.detail ? el("p", { cls: "detail", text: c.detail }) : null,
      c.sql ? sqlBlock(c.sql) : null,
      el("details", {}, [el("summary", { text: "completion (" + c.completion.length + " characters)" }),
                         el("pre", { cls: "completion", text: c.completion })])
    ];
    if (related.length) { parts.push(el("p", { cls: "muted", text: related.join(" · ") })); }
    return el("div", { cls: "candidate " + status, "data-candidate-id": c.id }, parts);
  }

  function judgmentCard(j) {
    var head = j.purpose + ": " + j.a + " vs " + j.b + " → " + j.outcome +
      (j.winner ? " (winner " + j.winner + ", confidence " + fmt(j.confidence) + ")" : "");
    var calls = j.calls.map(function (call) {
      var prompt = call.prompt.map(function (m) {
        return el("div", { cls: "msg" }, [el("span", { cls: "role", text: m[0] }), el("pre", { text: text(m[1]) })]);
      });
      var info = "order " + call.order + " · vote " + call.vote + " · winner " + fmt(call.winner) +
        " · P(a) " + fmt(call.p_a) + " · " + (call.source || "") + (call.outcome ? " · " + call.outcome : "");
      return el("details", { cls: "call" }, [el("summary", { text: info }),
        el("div", {}, prompt), el("p", { cls: "role", text: "judge output" }),
        el("pre", { cls: "output", text: call.output || "" }),
        call.error ? el("p", { cls: "detail", text: "error: " + call.error }) : null]);
    });
    return el("details", { cls: "judgment", "data-outcome": j.outcome }, [el("summary", { text: head }),
      el("p", { cls: "muted", text: j.model + " · " + j.rubric + " · " + j.detail })].concat(calls));
  }

  function pairsTable(pairs) {
    var rows = pairs.map(function (p) {
      return el("tr", { cls: p.filter ? "removed" : "" }, [el("td", { text: p.strategy }),
        el("td", { text: p.chosen }), el("td", { text: p.rejected }),
        el("td", { text: p.filter ? "removed: " + p.filter : "kept" })]);
    });
    var head = el("tr", {}, ["strategy", "chosen", "rejected", ""].map(function (h) { return el("th", { text: h }); }));
    return el("table", { cls: "pairs" }, [el("thead", {}, [head]), el("tbody", {}, rows)]);
  }

  function openTask(i) {
    var t = JSON.parse(document.getElementById("task-" + i).textContent);
    var related = {};
    t.judgments.forEach(function (j) {
      [j.a, j.b].forEach(function (id) { (related[id] = related[id] || []).push(j.purpose + " " + j.outcome); });
    });
    t.pairs.forEach(function (p) {
      (related[p.chosen] = related[p.chosen] || []).push("chosen in " + p.strategy + (p.filter ? " (removed)" : ""));
      (related[p.rejected] = related[p.rejected] || []).push("rejected in " + p.strategy + (p.filter ? " (removed)" : ""));
    });
    var passed = t.candidates.filter(function (c) { return c.passed; }).length;
    var parts = [
      el("h3", { text: t.id }), el("p", { cls: "question", text: t.question }),
      el("h4", { text: t.gold.length ? "Gold" + (t.dialect ? " (" + t.dialect + ")" : "") : "Gold: not in the store (pass the tasks file)" })
    ].concat(t.gold.map(sqlBlock)).concat([preview(t.preview),
      el("h4", { text: "Candidates: " + t.candidates.length + ", " + passed + " passed" })])
      .concat(t.candidates.map(function (c) { return candidateCard(c, related[c.id] || []); }));
    if (data.summary.kind === "run") {
      parts.push(el("h4", { text: "Judge: " + t.judgments.length + " comparison(s)" }));
      parts = parts.concat(t.judgments.map(judgmentCard));
      parts.push(el("h4", { text: "Pairs: " + t.pairs.filter(function (p) { return !p.filter; }).length + " kept, " +
                                  t.pairs.filter(function (p) { return p.filter; }).length + " removed" }));
      if (t.pairs.length) { parts.push(pairsTable(t.pairs)); }
    }
    parts.push(el("p", {}, [el("button", { type: "button", id: "detail-close", text: "close" })]));
    detail.replaceChildren.apply(detail, parts);
    detail.hidden = false;
    detail.dataset.taskId = t.id;
    document.getElementById("detail-close").addEventListener("click", function () { detail.hidden = true; });
    detail.scrollIntoView({ block: "start" });
  }

  function openFromHash() {
    var match = /^#task=(.+)$/.exec(window.location.hash);
    if (!match) { return; }
    var id = decodeURIComponent(match[1]);
    var i = index.findIndex(function (r) { return r[0] === id; });
    if (i >= 0) { openTask(i); }
  }

  function startBrowser() {
    if (!tbody) { return; }
    search.addEventListener("input", applyFilter);
    filter.addEventListener("change", applyFilter);
    document.getElementById("page-prev").addEventListener("click", function () { page -= 1; renderTable(); });
    document.getElementById("page-next").addEventListener("click", function () { page += 1; renderTable(); });
    window.addEventListener("hashchange", openFromHash);
    applyFilter();
    openFromHash();
  }

  report.open = function (taskId) {
    var i = index.findIndex(function (r) { return r[0] === taskId; });
    if (i >= 0) { openTask(i); }
    return i >= 0;
  };
  drawCharts();
  startBrowser();
  report.ready = true;
  document.body.dataset.ready = "1";
  if (window.performance && performance.mark) { performance.mark("report-ready"); }
})();
