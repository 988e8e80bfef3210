from django.urls import path

from firmware import rollout_views, views

app_name = "firmware"
urlpatterns = [
    path("", views.firmware_list, name="list"),
    path("upload/", views.firmware_upload, name="upload"),
    path("progress/", views.firmware_progress, name="progress"),
    path("lint/", views.firmware_lint, name="lint"),
    path("rollouts/", rollout_views.rollout_list, name="rollouts"),
    path("rollouts/<int:rollout_id>/", rollout_views.rollout_detail, name="rollout"),
    path("rollouts/<int:rollout_id>/<str:action>/", rollout_views.rollout_action, name="rollout_action"),
    path("<int:version>/release/", views.firmware_release, name="release"),
    path("<int:version>/release/confirm/", views.firmware_release_confirm, name="release_confirm"),
    path("<int:version>/delete/", views.firmware_delete, name="delete"),
    path("devices/<str:device_id>/", views.device_firmware, name="device_section"),
    path("devices/<str:device_id>/lock/", views.device_lock, name="device_lock"),
    path("devices/<str:device_id>/unlock/", views.device_unlock, name="device_unlock"),
    path("devices/<str:device_id>/development/", views.device_development, name="device_development"),
]
