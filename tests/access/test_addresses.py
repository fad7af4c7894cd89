"""Which address a request is recorded under: the peer's; from a Unix socket, the web front's
peer header only with this run's front token, so a socket that is not the front's (gunicorn
run by hand behind another proxy) cannot be told an address by its clients."""

from __future__ import annotations

from django.test import RequestFactory

from metrics_source.access.addresses import client_address


def request_with(**meta: str):
    request = RequestFactory().get("/")
    request.META.update(meta)
    return request


def test_the_peer_address_is_recorded(settings):
    settings.WEB_FRONT_TOKEN = "front-token-for-this-test"
    forged = request_with(REMOTE_ADDR="198.51.100.7", HTTP_X_METRICS_SOURCE_PEER="203.0.113.9")
    assert client_address(forged) == "198.51.100.7"


def test_the_fronts_peer_header_counts_only_with_its_token(settings):
    settings.WEB_FRONT_TOKEN = "front-token-for-this-test"
    through_front = request_with(
        REMOTE_ADDR="",
        HTTP_X_METRICS_SOURCE_PEER="203.0.113.9",
        HTTP_X_METRICS_SOURCE_FRONT="front-token-for-this-test",
    )
    assert client_address(through_front) == "203.0.113.9"
    wrong_token = request_with(
        REMOTE_ADDR="",
        HTTP_X_METRICS_SOURCE_PEER="203.0.113.9",
        HTTP_X_METRICS_SOURCE_FRONT="guessed",
    )
    assert client_address(wrong_token) is None
    no_token = request_with(REMOTE_ADDR="", HTTP_X_METRICS_SOURCE_PEER="203.0.113.9")
    assert client_address(no_token) is None


def test_without_a_front_no_unix_socket_request_has_an_address(settings):
    settings.WEB_FRONT_TOKEN = ""
    request = request_with(
        REMOTE_ADDR="", HTTP_X_METRICS_SOURCE_PEER="203.0.113.9", HTTP_X_METRICS_SOURCE_FRONT=""
    )
    assert client_address(request) is None
