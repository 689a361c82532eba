/* semseg-bench leaderboard site: sortable and filterable tables, the plotly figures, and links
 * from the figures to the table rows. Written by bench.reporting.site; plain ES2017, no remote
 * code (plotly.min.js sits beside this file). */
"use strict";

(function () {
  /* -- tables ------------------------------------------------------------------------------ */

  function sortKey(cell, type) {
    var raw = cell ? cell.getAttribute("data-sort") : null;
    if (raw === null || raw === "") return null;
    if (type === "num") {
      var value = parseFloat(raw);
      return isNaN(value) ? null : value;
    }
    return raw.toLowerCase();
  }

  function sortTable(table, column, th) {
    var type = th.getAttribute("data-type") || "text";
    var current = th.getAttribute("aria-sort");
    var ascending = current !== "ascending";
    table.querySelectorAll("thead th").forEach(function (other) {
      other.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var keyed = rows.map(function (row, index) {
      return { row: row, key: sortKey(row.cells[column], type), index: index };
    });
    keyed.sort(function (a, b) {
      if (a.key === null && b.key === null) return a.index - b.index;
      if (a.key === null) return 1; // missing values last, whichever the direction
      if (b.key === null) return -1;
      var order = a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
      if (!ascending) order = -order;
      return order || a.index - b.index;
    });
    keyed.forEach(function (item) {
      body.appendChild(item.row);
    });
  }

  function filterTable(table, query) {
    var words = query.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0;
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
      var text = row.textContent.toLowerCase();
      var match = words.every(function (word) {
        return text.indexOf(word) !== -1;
      });
      row.hidden = !match;
      if (match) shown += 1;
    });
    var counter = document.querySelector('[data-count-for="' + table.id + '"]');
    if (counter) counter.textContent = shown + " of " + table.tBodies[0].rows.length + " rows";
  }

  function setUpTables() {
    document.querySelectorAll("table.board").forEach(function (table) {
      table.querySelectorAll("thead th").forEach(function (th, column) {
        th.setAttribute("tabindex", "0");
        th.addEventListener("click", function () {
          sortTable(table, column, th);
        });
        th.addEventListener("keydown", function (event) {
          if (event.key === "Enter" || event.key === " ") {
            event.preventDefault();
            sortTable(table, column, th);
          }
        });
      });
      filterTable(table, "");
    });
    document.querySelectorAll("input.filter").forEach(function (input) {
      var table = document.getElementById(input.getAttribute("data-table"));
      input.addEventListener("input", function () {
        filterTable(table, input.value);
      });
    });
    var global = document.getElementById("filter-all");
    if (global) {
      global.addEventListener("input", function () {
        document.querySelectorAll("input.filter").forEach(function (input) {
          input.value = global.value;
          filterTable(document.getElementById(input.getAttribute("data-table")), global.value);
        });
      });
    }
  }

  /* -- record details ------------------------------------------------------------------------ */

  function openTarget() {
    var id = decodeURIComponent(window.location.hash.slice(1));
    var target = id && document.getElementById(id);
    if (target && target.tagName === "DETAILS") target.open = true;
  }

  /* -- figures ------------------------------------------------------------------------------- */

  function highlight(runIds, on) {
    runIds.forEach(function (runId) {
      var rows = document.querySelectorAll('tr[data-run-id="' + CSS.escape(runId) + '"]');
      rows.forEach(function (row) {
        row.classList.toggle("hl", on);
      });
    });
  }

  function pointRuns(event) {
    return (event.points || [])
      .map(function (point) {
        return point.customdata && point.customdata[0];
      })
      .filter(Boolean);
  }

  function setUpFigures() {
    var specs = document.querySelectorAll('script[type="application/json"].plot-spec');
    if (!specs.length) return;
    if (typeof Plotly === "undefined") {
      throw new Error("plotly.min.js did not load; the figures cannot be drawn");
    }
    var config = {
      displaylogo: false,
      responsive: true,
      showLink: false,
      showSendToCloud: false,
      modeBarButtonsToRemove: ["sendDataToCloud"],
    };
    specs.forEach(function (script) {
      var target = document.getElementById(script.getAttribute("data-target"));
      var spec = JSON.parse(script.textContent);
      Plotly.newPlot(target, spec.data, spec.layout, config).then(function (plot) {
        plot.on("plotly_hover", function (event) {
          highlight(pointRuns(event), true);
        });
        plot.on("plotly_unhover", function (event) {
          highlight(pointRuns(event), false);
        });
        plot.on("plotly_click", function (event) {
          var runs = pointRuns(event);
          if (runs.length) window.location.hash = "run-" + runs[0];
        });
        target.setAttribute("data-rendered", "1");
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setUpTables();
    setUpFigures();
    openTarget();
    window.addEventListener("hashchange", openTarget);
    document.body.setAttribute("data-ready", "1");
  });
})();
