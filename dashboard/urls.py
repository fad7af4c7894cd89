"""The dashboard's pages by URL (mounted at the site's root)."""

from django.urls import path

from dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("channels/", views.channels, name="channels"),
    path("channels/<str:channel>/", views.channel, name="channel"),
    path("campaigns/", views.campaigns, name="campaigns"),
    path("campaigns/<str:kind>/<int:parent_id>/", views.campaign, name="campaign"),
    path("deliveries/", views.deliveries, name="deliveries"),
    # Delivery ids are often base64 ("...==", sometimes with "/"): the path converter keeps them.
    path("deliveries/<path:delivery_id>/", views.delivery, name="delivery"),
    path("people/<path:person_id>/", views.person, name="person"),
]
