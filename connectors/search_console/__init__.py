"""Google Search Console: the whole connector is :mod:`connectors.search_console.connector`."""
