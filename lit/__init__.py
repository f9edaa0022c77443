"""LiT: locked-image text tuning (Zhai et al. 2022) towers, training and scoring."""
