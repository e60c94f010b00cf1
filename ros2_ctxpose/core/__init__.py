"""The ML core: detection, lifting and placement in plain torch/numpy/opencv (never rclpy)."""
