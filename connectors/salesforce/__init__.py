"""Salesforce: the connector, its SOQL and errors are in :mod:`connectors.salesforce.connector`."""
