"""Bundled static assets: the plate font subset (under ``fonts/``) and the script that rebuilds it."""
