"""The packages of the wheel: seglab's, from src/, and seglab.conf, the top-level conf/ folder with its config groups
and their YAML files (pyproject.toml maps seglab.conf to conf/)."""

from setuptools import find_namespace_packages, find_packages, setup

configs = ["seglab.conf", *(f"seglab.conf.{group}" for group in find_namespace_packages("conf"))]
setup(packages=[*find_packages("src"), *configs], package_data={package: ["*.yaml"] for package in configs})
