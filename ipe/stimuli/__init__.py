"""Stimulus generators."""

from .towers import TowerOptions, build_tower, generate_towers, tower_scene

__all__ = ["TowerOptions", "build_tower", "generate_towers", "tower_scene"]
