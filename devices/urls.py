from django.urls import path, re_path

from devices import views

app_name = "devices"
urlpatterns = [
    path("", views.device_list, name="list"),
    path("edit-groups/", views.devices_edit_groups, name="edit_groups"),
    path("quarantine/", views.quarantine, name="quarantine"),
    path("export.csv", views.device_export, name="export"),
    re_path(r"^(?P<device_id>[0-9a-fA-F]{24})/$", views.device_detail, name="detail"),
    re_path(r"^(?P<device_id>[0-9a-fA-F]{24})/groups/$", views.device_groups, name="groups"),
    re_path(r"^(?P<device_id>[0-9a-fA-F]{24})/key/$", views.device_key, name="key"),
]
