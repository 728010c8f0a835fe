"""Packaging glue: one distribution, two source roots.

`libs/osmose` is the `osmose` package (shared library code and hosts) and
`services/<stage>` is `osmose.services.<stage>` (one stage each). pyproject.toml
cannot map a sub-package to a second root with automatic discovery, so the
package list is computed here.
"""

from setuptools import find_packages, setup

libs = find_packages(where="libs", include=["osmose", "osmose.*"])
services = ["osmose.services"] + [f"osmose.services.{p}" for p in find_packages(where="services")]

setup(
    packages=libs + services,
    package_dir={"osmose": "libs/osmose", "osmose.services": "services"},
    package_data={"osmose": ["py.typed", "config/*.yaml", "models/*.yaml"]},
)
