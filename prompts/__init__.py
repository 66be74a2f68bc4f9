"""Prompt templates as package data (YAML + Jinja2), loaded by assistant.prompting."""
