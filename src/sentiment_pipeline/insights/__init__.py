"""Audience insights: comment sources (YouTube, files), analysis, charts, report, dashboard."""
