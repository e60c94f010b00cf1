"""How many best-effort camera images survive Fast DDS between two processes, with and without
config/fastdds_profile.xml: the measurement behind that profile (README, "Install").

    source scripts/env.sh && python tools/check_image_transport.py [--frames 60] [--rate 30]

Each case starts a subscriber process and a publisher process that sends random bgr8
sensor_msgs/Image frames with sensor-data QoS (best effort, as camera drivers publish), and prints
how many arrived. Run it in a quiet ROS domain: it uses ROS_DOMAIN_ID from the environment.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

PROFILE = Path(__file__).resolve().parents[1] / "config" / "fastdds_profile.xml"
SIZES = ((640, 480), (1768, 994))
TOPIC = "/check_image_transport/image"


def publish(width: int, height: int, frames: int, rate: float) -> int:
    import numpy as np
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("check_image_transport_publisher")
    publisher = node.create_publisher(Image, TOPIC, qos_profile_sensor_data)
    deadline = time.monotonic() + 20.0
    while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # let the subscriber's side of the match settle too
    pixels = np.random.default_rng(0).integers(0, 256, width * height * 3, dtype=np.uint8)
    image = Image(height=height, width=width, encoding="bgr8", step=3 * width, data=pixels.tobytes())
    for index in range(frames):
        image.header.frame_id = str(index)
        publisher.publish(image)
        time.sleep(1.0 / rate)
    time.sleep(1.0)
    return 0


def subscribe(frames: int, rate: float) -> int:
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("check_image_transport_subscriber")
    received: set[str] = set()
    node.create_subscription(Image, TOPIC, lambda m: received.add(m.header.frame_id), qos_profile_sensor_data)
    deadline = time.monotonic() + 25.0 + frames / rate
    while time.monotonic() < deadline and len(received) < frames:
        rclpy.spin_once(node, timeout_sec=0.1)
    print(len(received))
    return 0


def run_case(width: int, height: int, frames: int, rate: float, profile: bool) -> int:
    env = dict(os.environ)
    env.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
    if profile:
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(PROFILE)
    me = [sys.executable, str(Path(__file__).resolve())]
    args = ["--frames", str(frames), "--rate", str(rate)]
    subscriber = subprocess.Popen([*me, "--role", "subscribe", *args], env=env, stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)
    subprocess.run([*me, "--role", "publish", "--size", f"{width}x{height}", *args], env=env, check=True)
    output, _ = subscriber.communicate(timeout=60)
    return int(output.split()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--rate", type=float, default=30.0, help="frames per second")
    parser.add_argument("--role", choices=("publish", "subscribe"), help=argparse.SUPPRESS)
    parser.add_argument("--size", default="640x480", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "publish":
        width, height = map(int, args.size.split("x"))
        return publish(width, height, args.frames, args.rate)
    if args.role == "subscribe":
        return subscribe(args.frames, args.rate)

    print(f"best-effort bgr8 images at {args.rate:g} Hz between two processes, {args.frames} sent")
    print(f"{'image':>10}  {'with profile':>12}  {'without':>8}")
    for width, height in SIZES:
        with_profile = run_case(width, height, args.frames, args.rate, profile=True)
        without = run_case(width, height, args.frames, args.rate, profile=False)
        print(f"{width}x{height:<5}  {with_profile:>8}/{args.frames}  {without:>5}/{args.frames}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
