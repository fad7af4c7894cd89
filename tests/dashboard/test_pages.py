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


def test_the_chart_library_loads_only_where_a_chart_is_drawn(admin_client):
    from tests.dashboard.test_channel import ingest_sample

    ingest_sample()
    assert "plotly/plotly.min.js" in admin_client.get("/channels/email/?period=7d").content.decode()
    # plotly.js is megabytes: a list of deliveries draws no chart and does not load it.
    assert "plotly/plotly.min.js" not in admin_client.get("/deliveries/").content.decode()
