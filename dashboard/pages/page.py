"""What every dashboard page is made of: tables (datasets) that can be downloaded as CSV,
charts built from them and KPI tiles; and a table as its CSV download."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpResponse

from dashboard.filters import Filters
from dashboard.pages.csv_cells import spreadsheet_cell


@dataclass
class Dataset:
    """A table as shown on the page and as downloaded: header and rows of plain values."""

    name: str
    columns: Sequence[str]
    rows: list[Sequence[Any]]


@dataclass
class Chart:
    name: str
    title: str
    figure: dict[str, Any]
    dataset: str  # the Dataset behind it, for the CSV link
    note: str = ""
    csv_url: str = ""

    @property
    def element_id(self) -> str:
        return f"figure-{self.name}"


@dataclass
class Tile:
    label: str
    value: str
    change: str = ""
    # "good", "bad" or "" (no change or no previous period to compare with).
    tone: str = ""
    detail: str = ""


@dataclass
class Page:
    title: str
    section: str
    charts: dict[str, Chart] = field(default_factory=dict)
    datasets: dict[str, Dataset] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)

    def add_dataset(self, dataset: Dataset) -> Dataset:
        self.datasets[dataset.name] = dataset
        return dataset

    def add_chart(self, chart: Chart) -> Chart:
        self.charts[chart.name] = chart
        return chart

    def link_downloads(self, filters: Filters, **extra: str) -> None:
        """Give every chart and table its CSV link (the page's URL plus ``download``)."""
        for chart in self.charts.values():
            chart.csv_url = filters.query(**extra, download=chart.dataset)
        self.context["csv_urls"] = {
            name: filters.query(**extra, download=name) for name in self.datasets
        }


def csv_response(dataset: Dataset, *, filename: str) -> HttpResponse:
    """The table as a CSV download; every cell through spreadsheet_cell (no formulas)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([spreadsheet_cell(column) for column in dataset.columns])
    for row in dataset.rows:
        writer.writerow([spreadsheet_cell(value) for value in row])
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}-{dataset.name}.csv"'
    return response
