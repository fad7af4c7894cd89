"""The shortest path through the system: one event in, one row out."""

import base64

import orjson

from metrics_source.models import Event


def test_track_stores_one_event(client, source):
    auth = "Basic " + base64.b64encode(f"{source.write_key}:".encode()).decode()
    body = {"event": "Email Opened", "userId": "42", "messageId": "smoke-1"}
    response = client.post(
        "/v1/track", orjson.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=auth
    )
    assert response.status_code == 200, response.content
    assert response.json()["stored"] == 1
    stored = Event.objects.get(message_id="smoke-1")
    assert (stored.channel, stored.metric, stored.user_id) == ("email", "opened", "42")
