"""Mailchimp: the whole connector is :mod:`connectors.mailchimp.connector`."""
