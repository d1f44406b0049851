"""The product's models in the admin."""

from django.contrib import admin

from surveys.models import Delivery, Employee, Organization, Survey

admin.site.register([Organization, Employee, Survey, Delivery])
