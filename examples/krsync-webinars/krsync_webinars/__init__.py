"""krsync_webinars: a krsync connector plugin for a webinar platform (see connector.py)."""
