"""LinkedIn: the whole connector is :mod:`connectors.linkedin.connector`."""
