"""The server-rendered pages that exist so far answer, and ask for a login."""


def test_home_asks_anonymous_visitors_to_log_in(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_home_explains_how_to_send_the_first_event(admin_client):
    response = admin_client.get("/")
    assert response.status_code == 200
    assert b"No events yet" in response.content
    assert b"/v1/track" in response.content


def test_favicon_points_at_the_static_icon(client, db):
    response = client.get("/favicon.ico")
    assert response.status_code in (301, 302)
    assert response["Location"].endswith("metrics_source/favicon.svg")
