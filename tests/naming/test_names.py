"""Names for what events know only by number: imported from a CSV in the admin (every good
row applied, every bad one reported by its line), then shown by the dashboard's tables,
charts and CSVs beside the id."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from metrics_source.access.models import AuditAction, AuditEntry
from metrics_source.models import MessageName
from tests.dashboard.test_channel import ingest_sample

pytestmark = pytest.mark.django_db

IMPORT = "/admin/metrics_source/messagename/import/"
NAMES_CSV = (
    "kind,id,name\n"
    "campaign,7,Spring welcome\n"
    "action,96,Welcome email (day 0)\n"
    "broadcast,9,\n"  # an empty name: none to remove yet
    "story,1,Unknown kind\n"
    "campaign,seven,Bad id\n"
    "journey,3,Onboarding,extra\n"
)


def upload(client: Client, text: str | bytes, name: str = "names.csv"):
    data = text.encode() if isinstance(text, str) else text
    file = SimpleUploadedFile(name, data, content_type="text/csv")
    return client.post(IMPORT, {"file": file}, follow=True)


def test_an_import_applies_good_rows_and_reports_bad_ones_by_line(admin_client):
    response = upload(admin_client, NAMES_CSV)
    page = response.content.decode()
    assert "Names imported: 2 new, 0 changed, 0 removed." in page
    assert "line 5: unknown kind" in page
    assert "line 6: the id must be a whole number" in page
    assert "line 7: 4 columns, not 3" in page
    assert set(MessageName.objects.values_list("kind", "object_id", "name")) == {
        ("campaign", 7, "Spring welcome"),
        ("action", 96, "Welcome email (day 0)"),
    }
    entry = AuditEntry.objects.get(action=AuditAction.NAMES_IMPORTED)
    assert entry.detail == {"created": 2, "updated": 0, "removed": 0, "refused_rows": 3}

    # Again, with one renamed and one removed.
    upload(admin_client, "kind,id,name\ncampaign,7,Spring welcome v2\naction,96,\n")
    assert list(MessageName.objects.values_list("kind", "object_id", "name")) == [
        ("campaign", 7, "Spring welcome v2")
    ]


def test_a_file_that_is_not_a_names_csv_is_refused_whole(admin_client):
    page = upload(admin_client, "campaign,7,No header\n").content.decode()
    assert "the first line must be the header: kind,id,name" in page
    page = upload(admin_client, b"kind,id,name\ncampaign,7,\xff\xfe\n").content.decode()
    assert "the file is not UTF-8 text" in page
    assert not MessageName.objects.exists()


def test_only_operators_and_admins_import(client):
    analyst = User.objects.create_user("ana", password="analyst-pw-12345", is_staff=True)
    analyst.groups.add(Group.objects.get(name="Analyst"))
    client.force_login(analyst)
    assert client.get(IMPORT).status_code == 403
    operator = User.objects.create_user("otto", password="operator-pw-12345", is_staff=True)
    operator.groups.add(Group.objects.get(name="Operator"))
    client.force_login(operator)
    assert client.get(IMPORT).status_code == 200


def test_the_dashboard_shows_the_names_beside_the_ids(admin_client):
    ingest_sample()  # campaign 7 (action 96), broadcast 9
    upload(admin_client, "kind,id,name\ncampaign,7,Spring welcome\naction,96,Welcome email\n")

    campaigns = admin_client.get("/campaigns/")
    rows = {(r["kind"], r["parent_id"]): r for r in campaigns.context["parent_rows"]}
    assert rows[("campaign", 7)]["name"] == "Spring welcome"
    assert rows[("broadcast", 9)]["name"] != "Spring welcome"  # unnamed: its first subject
    listed = list(csv.reader(io.StringIO(
        admin_client.get("/campaigns/?download=campaigns").content.decode())))  # fmt: skip
    assert listed[1][:3] == ["campaign", "7", "Spring welcome"]

    page = admin_client.get("/campaigns/campaign/7/")
    assert page.context["page"].title == "Campaign 7 · Spring welcome"
    actions = {a["action_id"]: a for a in page.context["actions"]}
    assert actions[96]["label"] == "Action 96 · Welcome email"
    header, *action_rows = list(csv.reader(io.StringIO(
        admin_client.get("/campaigns/campaign/7/?download=actions").content.decode())))  # fmt: skip
    assert header[:3] == ["action_id", "action_name", "channel"]
    assert {row[1] for row in action_rows} == {"Welcome email"}
    chart = page.context["page"].charts["actions"].figure
    assert any("Welcome email" in str(trace.get("x")) for trace in chart["data"])
    # The filter bar names it too.
    assert "Campaign 7 · Spring welcome" in admin_client.get("/").content.decode()
