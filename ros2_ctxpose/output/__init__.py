"""The output layer, ROS-free: results as message content (``content``), and that content
recorded to MCAP (``recording``, with the message schemas of ``schemas`` / ``msg_definitions``).

It sits above ``core`` (which never imports it) and below ``ros`` and ``cli``: the node's
converters and the recorder encode the same content, so live and recorded outputs agree.
"""
