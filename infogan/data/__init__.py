"""Datasets: each source, its verification and preparation, and the prepared tensors."""
