"""The ``sql`` connector: its hooks and database work are in :mod:`.connector`."""
