"""Connectors pull figures from marketing platforms; they import nothing of ``app``.

The public contract lives in :mod:`connectors.base` (what a connector is), the toolkit beside it
(:mod:`connectors.errors`, :mod:`connectors.paginate`, :mod:`connectors.series`,
:mod:`connectors.models`), the contract suite in :mod:`connectors.testing`, discovery in
:mod:`connectors.registry`. Import from those modules: this package re-exports nothing.
"""
