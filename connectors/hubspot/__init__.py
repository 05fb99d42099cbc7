"""HubSpot CRM: the connector and its searches are in :mod:`connectors.hubspot.connector`."""
