"""Prediction files: every semantic and instance format, and the callbacks that write them while a command evaluates."""
