"""ros2_ctxpose: multi-person 3D human pose from one camera, as a ROS 2 package and a plain library.

The package can live in two places at once: a pip install (the ROS-free core and CLI) and a colcon
overlay (all of it plus the generated `ros2_ctxpose.msg`); in a source checkout, the working tree
comes first on sys.path as well. `extend_path` makes `ros2_ctxpose` span every such copy on
sys.path, so the generated messages resolve from the overlay even when the core is imported from
the working tree. See README, "Two install routes".
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)

__version__ = "0.1.0"
