"""Google Analytics 4: the connector, its reports and quotas are in :mod:`.connector`."""
