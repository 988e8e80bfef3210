from django.urls import path

from firmware import views

app_name = "firmware"
urlpatterns = [
    path("", views.firmware_list, name="list"),
]
