"""The Hydra configs: composing them, the override helpers and resolvers, the value rules checked before a run, and building a run's parts."""
