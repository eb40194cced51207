"""The Huey app and its tasks."""
