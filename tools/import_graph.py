"""Print which parts of ros2_ctxpose import which (from the source, nothing is imported).

    python tools/import_graph.py [--root ros2_ctxpose] [--depth 2]

Parts are module paths cut to ``--depth`` components below the package (``core.detector``,
``ros``, ``training.synthetic`` ...). Each line is ``part -> imported part (number of imports)``,
then the rules the architecture keeps (docs/ARCHITECTURE.md), each with the imports breaking it.
Exit status 1 when a rule is broken. Third-party imports are listed for the parts that must not
have them (torch in ``ros``).
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import Counter
from pathlib import Path

#: (importer prefix, imported prefix, why it is forbidden)
RULES = (
    ("core", "ros", "the ML core knows nothing of ROS"),
    ("core", "cli", "the core is a library; the CLI sits on top of it"),
    ("core", "training", "inference never needs the training wing"),
    ("ros", "training", "the node never loads training code"),
    ("ros", "cli", "the ROS layer and the CLI are siblings"),
    ("training", "ros", "training is ROS-free"),
    ("core", "output", "the core is inference; the output layer builds on it"),
    ("output", "ros", "the output layer is ROS-free (the CLI records without ROS)"),
    ("output", "cli", "the output layer is a library under the CLI"),
    ("output", "training", "outputs never need the training wing"),
)
#: (importer prefix, third-party top-level module, why)
THIRD_PARTY_RULES = (
    ("ros", "torch", "the ROS layer converts messages and wires topics; the models live in core"),
    ("core", "rclpy", "the ML core never imports rclpy"),
    ("output", "rclpy", "message content is plain data; ros/ makes rclpy messages of it"),
    ("output", "torch", "message content needs no model"),
)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, name: str) -> list[str]:
    """Absolute names of everything ``path`` imports at any level (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found += [f"{prefix}.{alias.name}" if not node.module or node.level else prefix for alias in node.names]
    return found


def part(name: str, package: str, depth: int) -> str | None:
    if not (name == package or name.startswith(package + ".")):
        return None
    rest = name[len(package) + 1 :].split(".") if name != package else []
    return ".".join(rest[:depth]) or "(package)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1] / "ros2_ctxpose")
    parser.add_argument("--depth", type=int, default=2)
    args = parser.parse_args()
    package = args.root.name
    edges: Counter[tuple[str, str]] = Counter()
    broken: list[str] = []
    for path in sorted(args.root.rglob("*.py")):
        name = module_name(path, args.root)
        src = part(name, package, args.depth)
        for imported in imports(path, name):
            dst = part(imported, package, args.depth)
            if dst is not None and dst != src and not dst.startswith(src + "."):
                edges[(src, dst)] += 1
                for a, b, why in RULES:
                    if src.split(".")[0] == a and dst.split(".")[0] == b:
                        broken.append(f"{name} imports {imported}: {why}")
            top = imported.split(".")[0]
            for a, b, why in THIRD_PARTY_RULES:
                if src.split(".")[0] == a and top == b:
                    broken.append(f"{name} imports {imported}: {why}")
    for (src, dst), count in sorted(edges.items()):
        print(f"{src:24s} -> {dst:24s} ({count})")
    print(f"\n{len(RULES) + len(THIRD_PARTY_RULES)} rules; broken: {len(broken)}")
    for line in broken:
        print(f"  BROKEN {line}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
