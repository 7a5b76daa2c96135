"""Panoptic-DeepLab (Cheng et al., 2020): the network, its training targets and its panoptic post-processing."""
