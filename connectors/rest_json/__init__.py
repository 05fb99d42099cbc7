"""A JSON API: the connector is :mod:`connectors.rest_json.connector`."""
