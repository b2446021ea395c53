"""Datasets: formats (D4RL HDF5, Minari, CSV/Parquet), generators, windowing, normalizers."""
