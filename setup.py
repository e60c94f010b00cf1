"""pip route: `pip install .` installs the ROS-free core and the `ctxpose` CLI (see setup.cfg).

Everything is declared in setup.cfg; this file exists for tools that still call setup.py. colcon
never runs it: package.xml declares build_type ament_cmake, so the ROS route goes through
CMakeLists.txt.
"""

from setuptools import setup

setup()
