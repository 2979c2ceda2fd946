"""Datasets: source specs, image decoding, the raw CCPD format and synthetic plates."""
