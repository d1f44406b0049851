"""Surveys: organisations, employees, surveys, and their delivery."""
