"""The training wing: everything that makes data for the lifter and trains or evaluates it.

ROS-free and never imported by the node or by inference (``core``): Human3.6M mocap and cameras,
detector-like 2D from mocap, virtual cameras, rendered people, training and the S11 evaluation.
It may import ``core``; ``core`` never imports it.
"""
