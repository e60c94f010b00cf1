"""pose3d_node with config/pose3d.yaml; optionally RViz and the demo camera.

    ros2 launch ros2_ctxpose pose3d.launch.py image_topic:=/camera/color/image_raw \
        camera_info_topic:=/camera/color/camera_info device:=cuda
    ros2 launch ros2_ctxpose pose3d.launch.py demo:=true rviz:=true

Arguments: image_topic, camera_info_topic, namespace, device, params_file, rviz, demo. With
demo:=true, demo_publisher plays Sports2D's two-person clip on the same topics (65 deg HFOV).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("ros2_ctxpose")
    arguments = [
        DeclareLaunchArgument("image_topic", default_value="camera/image_raw",
                              description="sensor_msgs/Image input (relative names follow the namespace)"),
        DeclareLaunchArgument("camera_info_topic", default_value="camera/camera_info",
                              description="sensor_msgs/CameraInfo of the image"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the nodes"),
        DeclareLaunchArgument("device", default_value="auto", description="auto, cpu, cuda or cuda:N"),
        DeclareLaunchArgument("params_file", default_value=PathJoinSubstitution([share, "config", "pose3d.yaml"]),
                              description="pose3d_node parameters"),
        DeclareLaunchArgument("rviz", default_value="false", description="open RViz with config/pose3d.rviz"),
        DeclareLaunchArgument("demo", default_value="false",
                              description="also play the packaged two-person video as the camera"),
    ]
    topics = {
        "image_topic": LaunchConfiguration("image_topic"),
        "camera_info_topic": LaunchConfiguration("camera_info_topic"),
    }
    pose3d = Node(
        package="ros2_ctxpose", executable="pose3d_node", name="pose3d_node",
        namespace=LaunchConfiguration("namespace"), output="screen", emulate_tty=True,
        parameters=[LaunchConfiguration("params_file"), {**topics, "device": LaunchConfiguration("device")}],
    )
    demo = Node(
        package="ros2_ctxpose", executable="demo_publisher", name="demo_publisher",
        namespace=LaunchConfiguration("namespace"), output="screen", emulate_tty=True,
        parameters=[topics], condition=IfCondition(LaunchConfiguration("demo")),
    )
    rviz = Node(
        package="rviz2", executable="rviz2", name="rviz2", namespace=LaunchConfiguration("namespace"),
        arguments=["-d", PathJoinSubstitution([share, "config", "pose3d.rviz"])],
        condition=IfCondition(LaunchConfiguration("rviz")),
    )
    return LaunchDescription([*arguments, pose3d, demo, rviz])
