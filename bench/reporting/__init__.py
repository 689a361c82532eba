"""Reporting: renders from stored records and JSON alone; never builds, measures or trains."""
