"""The real-browser fixtures (`web.live`) for every test of the workspace's pages."""

from web.live import chromium_path, live_server  # noqa: F401
