"""Who an employee is, for analytics: relay's directory over this project's models."""

from relay.contrib.django.catalog import ModelEmployeeDirectory

#: Named by settings.RELAY["EMPLOYEE_DIRECTORY"]; the catalog helpers use it by default.
employee_directory = ModelEmployeeDirectory(employee_model="surveys.Employee")
