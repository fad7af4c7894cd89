"""Page builders: each page module (overview, channels, channel, campaigns, campaign,
deliveries, delivery, person) turns the filters into a Page (context, tables, charts) for its
view; the other modules are the parts pages share (page, formatting, tiles, tables, funnels,
series, totals, filter_bar, backlog, delivery_rows, delivery_facts). A page module imports
parts, never another page module."""
