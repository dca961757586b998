{% raw %}
// weightlab report: what makes the printout explorable, with no network and no library.
// Everything here adds to a page that reads without it: a tooltip for every plotted model
// (its row in the #wl-points table), legend entries that hide or show a method in every plot,
// tables that sort by any column, and SVG / CSV downloads of each plot and table.
(function () {
  "use strict";
  var source = document.getElementById("wl-points");
  var data = source ? JSON.parse(source.textContent) : { metrics: [], rows: [] };

  // --- Tooltips -----------------------------------------------------------------------------
  var tip = document.createElement("div");
  tip.id = "wl-tip";
  tip.className = "tip";
  tip.hidden = true;
  document.body.appendChild(tip);

  function describe(i) {
    var r = data.rows[i];
    if (!r) return [];
    var lines = [r[0], "zoo " + r[1] + " · seed " + r[2] + " · sample " + r[3]];
    data.metrics.forEach(function (m, k) {
      var v = r[4][k];
      if (v !== null && v !== undefined) lines.push(m[1] + ": " + v.toFixed(m[2]));
    });
    return lines;
  }

  document.addEventListener("mouseover", function (e) {
    var mark = e.target.closest ? e.target.closest("[data-i]") : null;
    if (!mark) {
      tip.hidden = true;
      return;
    }
    tip.textContent = "";
    describe(+mark.getAttribute("data-i")).forEach(function (line, j) {
      var el = document.createElement(j === 0 ? "b" : "div");
      el.textContent = line;
      tip.appendChild(el);
    });
    tip.hidden = false;
    tip.style.left = e.pageX + 14 + "px";
    tip.style.top = e.pageY + 14 + "px";
  });

  // --- Legends: hide or show a method everywhere --------------------------------------------
  var hidden = {};
  function apply(name) {
    var off = !!hidden[name];
    document.querySelectorAll(".series, .legend-item").forEach(function (el) {
      if (el.getAttribute("data-name") === name) el.classList.toggle("off", off);
    });
  }
  document.addEventListener("click", function (e) {
    var item = e.target.closest ? e.target.closest(".legend-item") : null;
    if (!item) return;
    var name = item.getAttribute("data-name");
    hidden[name] = !hidden[name];
    apply(name);
  });

  // --- Sortable tables -----------------------------------------------------------------------
  function key(cell) {
    var text = (cell ? cell.textContent : "").trim();
    if (/^[+\-−]?(\d|\.\d)/.test(text)) return { n: parseFloat(text.replace("−", "-")) };
    if (text === "" || text === "–" || text === "n/a") return { missing: true };
    return { s: text.toLowerCase() };
  }
  function compare(a, b) {
    if (a.missing || b.missing) return a.missing && b.missing ? 0 : a.missing ? 1 : -1;
    if (a.n !== undefined && b.n !== undefined) return a.n - b.n;
    return String(a.s !== undefined ? a.s : a.n).localeCompare(String(b.s !== undefined ? b.s : b.n));
  }
  function sortBy(table, column, th) {
    var body = table.tBodies[0];
    var descending = th.getAttribute("aria-sort") === "ascending";
    table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (x, y) {
      var a = key(x.cells[column]), b = key(y.cells[column]);
      var c = compare(a, b);
      if (a.missing || b.missing) return c; // missing values last either way
      return descending ? -c : c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  function csv(table) {
    return Array.prototype.map.call(table.rows, function (row) {
      return Array.prototype.map.call(row.cells, function (cell) {
        var t = cell.textContent.replace(/\s+/g, " ").trim();
        return /[",\n]/.test(t) ? '"' + t.replace(/"/g, '""') + '"' : t;
      }).join(",");
    }).join("\n") + "\n";
  }
  function download(name, type, text) {
    var a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([text], { type: type }));
    a.download = name;
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 0);
  }
  function tool(label, title, action) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "tool";
    b.textContent = label;
    b.title = title;
    b.addEventListener("click", action);
    return b;
  }

  document.querySelectorAll("table.sortable").forEach(function (table, t) {
    Array.prototype.forEach.call(table.tHead ? table.tHead.rows[0].cells : [], function (th, column) {
      th.classList.add("sort");
      th.addEventListener("click", function () { sortBy(table, column, th); });
    });
    var name = (table.id || "table-" + (t + 1)) + ".csv";
    var bar = document.createElement("div");
    bar.className = "tools";
    bar.appendChild(tool("CSV", "download this table as " + name, function () { download(name, "text/csv", csv(table)); }));
    table.parentNode.insertBefore(bar, table);
  });

  document.querySelectorAll("figure").forEach(function (figure) {
    var svg = figure.querySelector("svg");
    if (!svg) return;
    var name = (figure.id || "plot").replace(/^plot-/, "") + ".svg";
    var bar = document.createElement("div");
    bar.className = "tools";
    bar.appendChild(tool("SVG", "download this plot as " + name, function () {
      download(name, "image/svg+xml", '<?xml version="1.0" encoding="utf-8"?>\n' + svg.outerHTML);
    }));
    figure.insertBefore(bar, figure.firstChild);
  });
})();
{% endraw %}
