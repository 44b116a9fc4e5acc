"""Streamlit helpers for the pages: shared state, first start, cached data calls, uploads.

The only part of the library that imports Streamlit; everything here calls the plain
``fraudlens`` modules underneath and keeps pages to reading widgets and drawing.
"""
