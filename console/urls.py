from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from console import views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/tokens/", views.tokens, name="tokens"),
    path("account/tokens/<int:token_id>/revoke/", views.token_revoke, name="token_revoke"),
    path("products/<slug:product>/", views.product_home, name="product_home"),
    path("products/<slug:product>/team/", views.team, name="team"),
    path("products/<slug:product>/team/invite/", views.team_invite, name="team_invite"),
    path("products/<slug:product>/team/<int:member_id>/", views.team_member, name="team_member"),
    path("products/<slug:product>/activity/", views.activity, name="activity"),
    path("products/<slug:product>/activity/<int:event_id>/undo/", views.activity_undo, name="activity_undo"),
    path("products/<slug:product>/webhooks/", views.webhook_list, name="webhooks"),
    path("products/<slug:product>/webhooks/<int:webhook_id>/test/", views.webhook_test, name="webhook_test"),
    path("products/<slug:product>/webhooks/<int:webhook_id>/delete/", views.webhook_delete, name="webhook_delete"),
    path("products/<slug:product>/devices/", include("devices.urls")),
    path("products/<slug:product>/groups/", include("groups.urls")),
    path("products/<slug:product>/firmware/", include("firmware.urls")),
    path("", include("console.api_urls")),
    path("admin/", admin.site.urls),
]

handler400 = "console.errors.bad_request"
handler403 = "console.errors.permission_denied"
handler404 = "console.errors.page_not_found"
handler500 = "console.errors.server_error"
