"""Org directory: corps, departments, users, roles."""
