"""A CSV file or URL: the connector is :mod:`connectors.csv_source.connector`."""
