"""The admin (with relay's outbox, dead letters and audit trail) is the only page."""

from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
