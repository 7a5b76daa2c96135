"""Writing predictions in the formats of public benchmarks and their official evaluation tools."""
