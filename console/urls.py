from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from console import views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("products/<slug:product>/", views.product_home, name="product_home"),
    path("products/<slug:product>/devices/", include("devices.urls")),
    path("products/<slug:product>/groups/", include("groups.urls")),
    path("products/<slug:product>/firmware/", include("firmware.urls")),
    path("", include("console.api_urls")),
    path("admin/", admin.site.urls),
]
