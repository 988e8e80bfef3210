from django.urls import path

from groups import views

app_name = "groups"
urlpatterns = [
    path("", views.group_list, name="list"),
    path("new/", views.group_create, name="create"),
    path("import/", views.memberships_import, name="import"),
    path("<int:group_id>/", views.group_detail, name="detail"),
    path("<int:group_id>/edit/", views.group_edit, name="edit"),
    path("<int:group_id>/delete/", views.group_delete, name="delete"),
]
