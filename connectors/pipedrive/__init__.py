"""Pipedrive: the connector is :mod:`connectors.pipedrive.connector`."""
