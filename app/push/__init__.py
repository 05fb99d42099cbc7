"""Figures pushed to a ``push`` source by other systems, signed with the source's secret."""
