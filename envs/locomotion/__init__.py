"""Legged locomotion tasks."""
