"""Plain data -> Plotly figures (as JSON-ready dicts for plotly.js), one module per kind of
figure: series over time, comparisons, funnels, one delivery's timeline, one person's activity.

Drill-down targets travel in each point's ``customdata`` as a URL; the page's script follows
it when the point is clicked.
"""
