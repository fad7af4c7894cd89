// Renders the page's Plotly figures and wires the filters; no inline scripts anywhere
// (the Content-Security-Policy forbids them), so everything the page needs is read from
// JSON data blocks and data-* attributes.
(function () {
  "use strict";

  function renderFigures() {
    document.querySelectorAll("[data-figure]").forEach(function (node) {
      var source = document.getElementById(node.dataset.figure);
      if (!source) { return; }
      var figure = JSON.parse(source.textContent);
      // On a touch screen the toolbar would sit over the chart after the first tap; zoom and
      // pan stay available with the fingers, and the card's CSV link remains.
      var touch = window.matchMedia && window.matchMedia("(pointer: coarse)").matches;
      window.Plotly.newPlot(node, figure.data, figure.layout, {
        responsive: true,
        displaylogo: false,
        displayModeBar: touch ? false : "hover",
        modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"],
      }).then(function () {
        node.classList.add("rendered");
        // One tab stop per chart (the chart itself, named by its title), not one per toolbar
        // button: a keyboard user passes a page of charts in as many presses.
        node.tabIndex = 0;
        node.querySelectorAll("a, button, [tabindex]").forEach(function (inner) {
          inner.tabIndex = -1;
        });
      });
      // A point that carries a URL drills down to it.
      node.on("plotly_click", function (event) {
        var point = event.points && event.points[0];
        var url = point && point.customdata;
        // Only a path on this site: "//host" and "/\\host" would leave it.
        if (typeof url === "string" && /^\/(?![\/\\])/.test(url)) {
          window.location.assign(url);
        }
      });
    });
  }

  function wireFilters() {
    var form = document.querySelector("form.filters");
    if (!form) { return; }
    var period = form.querySelector("[name=period]");
    var custom = form.querySelector(".custom-dates");
    function showCustom() {
      if (custom && period) { custom.hidden = period.value !== "custom"; }
    }
    showCustom();
    form.querySelectorAll("select").forEach(function (select) {
      // An arrow key on a closed menu changes its value at once: a keyboard user going
      // through the choices must not reload the page on each. Those changes wait for Enter
      // (or for the menu to lose focus); a pick with the pointer applies at once.
      var byKeyboard = false, pending = false;
      select.addEventListener("keydown", function (event) {
        byKeyboard = event.key !== "Enter" && event.key !== "Tab";
        if (event.key === "Enter" && pending) {
          event.preventDefault();
          submitClean(form);
        }
      });
      select.addEventListener("mousedown", function () { byKeyboard = false; });
      select.addEventListener("blur", function () {
        if (pending) { submitClean(form); }
      });
      select.addEventListener("change", function () {
        showCustom();
        if (select.name === "period" && select.value === "custom") { return; }
        if (byKeyboard) { pending = true; return; }
        submitClean(form);
      });
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      submitClean(form);
    });
  }

  // Navigates to the form's URL without empty parameters, so shared links stay short.
  function submitClean(form) {
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, key) {
      if (value !== "" && !(form.elements[key] && form.elements[key].dataset.default === value)) {
        if ((key === "from" || key === "to") && form.elements.period.value !== "custom") { return; }
        params.append(key, value);
      }
    });
    var query = params.toString();
    window.location.assign(form.getAttribute("action") + (query ? "?" + query : ""));
  }

  // Each header of a sortable table becomes a button (reachable and pressed with the
  // keyboard), and its th says how the table is sorted (aria-sort, read by screen readers).
  function wireSortableTables() {
    document.querySelectorAll("table.sortable").forEach(function (table) {
      table.querySelectorAll("th").forEach(function (th, index) {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "sort";
        while (th.firstChild) { button.appendChild(th.firstChild); }
        th.appendChild(button);
        button.addEventListener("click", function () {
          var body = table.tBodies[0];
          var rows = Array.prototype.slice.call(body.rows);
          var ascending = th.dataset.order !== "asc";
          table.querySelectorAll("th").forEach(function (other) {
            delete other.dataset.order;
            other.removeAttribute("aria-sort");
          });
          th.dataset.order = ascending ? "asc" : "desc";
          th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
          rows.sort(function (a, b) {
            var x = a.cells[index].dataset.value || a.cells[index].textContent.trim();
            var y = b.cells[index].dataset.value || b.cells[index].textContent.trim();
            var nx = parseFloat(x), ny = parseFloat(y);
            var both = !isNaN(nx) && !isNaN(ny);
            var result = both ? nx - ny : x.localeCompare(y);
            return ascending ? result : -result;
          });
          rows.forEach(function (row) { body.appendChild(row); });
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    renderFigures();
    wireFilters();
    wireSortableTables();
  });
})();
