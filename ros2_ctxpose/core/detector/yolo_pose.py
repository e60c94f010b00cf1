"""YOLOv8/YOLO11 pose networks in plain PyTorch, built from the checkpoint's own layer list.

One file for the architecture family, timm style. Ultralytics describes a network as a yaml
list of ``[from, repeats, module, args]`` rows plus per-size ``scales`` (depth multiple, width
multiple, max channels); :func:`build_pose_model` reads that list with the same channel and
depth arithmetic as Ultralytics' ``parse_model``, so YOLO11 n/s/m/l/x (C3k2 + C2PSA) and
YOLOv8 (C2f) pose checkpoints come out of the same code. Module and attribute names follow
Ultralytics (``cv1``, ``m``, ``conv``, ``bn`` ...) so the checkpoint's state dict loads
strictly, key for key.

The network returns the head's decoded predictions (what Ultralytics calls the raw output:
``(B, 4 + nc + K*3, anchors)`` with xywh boxes in input pixels, sigmoid class scores and
decoded keypoints) and the backbone feature maps the lifter samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

# --------------------------------------------------------------------------- building blocks


class Conv(nn.Module):
    """Conv2d (no bias) + BatchNorm + SiLU; :meth:`fuse` folds the BN into the conv."""

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, g: int = 1, act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2, groups=g, bias=False)
        self.bn: nn.BatchNorm2d | nn.Identity = nn.BatchNorm2d(c2, eps=1e-3, momentum=0.03)  # Identity once fused
        self.act: nn.Module = nn.SiLU() if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))

    @torch.no_grad()
    def fuse(self) -> None:
        if isinstance(self.bn, nn.Identity):
            return
        bn, conv = self.bn, self.conv
        # A BatchNorm2d built with track_running_stats (the default, as here) always has them.
        assert bn.running_mean is not None and bn.running_var is not None
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        conv.weight = nn.Parameter(conv.weight * scale.view(-1, 1, 1, 1))
        conv.bias = nn.Parameter(bn.bias - bn.running_mean * scale)  # the conv had none
        self.bn = nn.Identity()


class DWConv(Conv):
    """Depth-wise convolution (groups = gcd of the channel counts)."""

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, act: bool = True):
        super().__init__(c1, c2, k, s, g=math.gcd(c1, c2), act=act)


class Bottleneck(nn.Module):
    def __init__(
        self, c1: int, c2: int, shortcut: bool = True, g: int = 1, k: tuple[int, int] = (3, 3), e: float = 0.5
    ):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, k[0], 1)
        self.cv2 = Conv(c_, c2, k[1], 1, g=g)
        self.add = shortcut and c1 == c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C2f(nn.Module):
    """CSP block of YOLOv8: split, a chain of bottlenecks, concatenate every stage."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = False, g: int = 1, e: float = 0.5):
        super().__init__()
        self.c = int(c2 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv((2 + n) * self.c, c2, 1)
        self.m = nn.ModuleList(Bottleneck(self.c, self.c, shortcut, g, k=(3, 3), e=1.0) for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = list(self.cv1(x).chunk(2, 1))
        for m in self.m:
            y.append(m(y[-1]))
        return self.cv2(torch.cat(y, 1))


class C3(nn.Module):
    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c1, c_, 1, 1)
        self.cv3 = Conv(2 * c_, c2, 1)
        self.m = nn.Sequential(*(Bottleneck(c_, c_, shortcut, g, k=(1, 3), e=1.0) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class C3k(C3):
    """C3 with k x k bottlenecks (YOLO11's inner block of C3k2)."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5, k: int = 3):
        super().__init__(c1, c2, n, shortcut, g, e)
        c_ = int(c2 * e)
        self.m = nn.Sequential(*(Bottleneck(c_, c_, shortcut, g, k=(k, k), e=1.0) for _ in range(n)))


class C3k2(C2f):
    """YOLO11's C2f variant whose inner blocks are C3k (``c3k=True``) or plain bottlenecks."""

    def __init__(
        self, c1: int, c2: int, n: int = 1, c3k: bool = False, e: float = 0.5, g: int = 1, shortcut: bool = True
    ):
        super().__init__(c1, c2, n, shortcut, g, e)
        self.m = nn.ModuleList(
            C3k(self.c, self.c, 2, shortcut, g) if c3k else Bottleneck(self.c, self.c, shortcut, g) for _ in range(n)
        )


class SPPF(nn.Module):
    def __init__(self, c1: int, c2: int, k: int = 5):
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c_ * 4, c2, 1, 1)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [self.cv1(x)]
        for _ in range(3):
            y.append(self.m(y[-1]))
        return self.cv2(torch.cat(y, 1))


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int = 8, attn_ratio: float = 0.5):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.key_dim = int(self.head_dim * attn_ratio)
        self.scale = self.key_dim**-0.5
        self.qkv = Conv(dim, dim + 2 * self.key_dim * num_heads, 1, act=False)
        self.proj = Conv(dim, dim, 1, act=False)
        self.pe = Conv(dim, dim, 3, 1, g=dim, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = (
            self.qkv(x)
            .view(b, self.num_heads, 2 * self.key_dim + self.head_dim, h * w)
            .split([self.key_dim, self.key_dim, self.head_dim], dim=2)
        )
        attn = ((q.transpose(-2, -1) @ k) * self.scale).softmax(dim=-1)
        y = (v @ attn.transpose(-2, -1)).view(b, c, h, w) + self.pe(v.reshape(b, c, h, w))
        return self.proj(y)


class PSABlock(nn.Module):
    def __init__(self, c: int, attn_ratio: float = 0.5, num_heads: int = 4):
        super().__init__()
        self.attn = Attention(c, attn_ratio=attn_ratio, num_heads=num_heads)
        self.ffn = nn.Sequential(Conv(c, c * 2, 1), Conv(c * 2, c, 1, act=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.ffn(x)


class C2PSA(nn.Module):
    """YOLO11's position-sensitive attention block on the stride-32 map."""

    def __init__(self, c1: int, c2: int, n: int = 1, e: float = 0.5):
        super().__init__()
        if c1 != c2:
            raise ValueError(f"C2PSA needs equal in/out channels, got {c1} and {c2}")
        self.c = int(c1 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv(2 * self.c, c1, 1)
        self.m = nn.Sequential(*(PSABlock(self.c, attn_ratio=0.5, num_heads=self.c // 64) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.cv1(x).split((self.c, self.c), dim=1)
        return self.cv2(torch.cat((a, self.m(b)), 1))


class Concat(nn.Module):
    def __init__(self, dimension: int = 1):
        super().__init__()
        self.d = dimension

    def forward(self, x: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(x, self.d)


class DFL(nn.Module):
    """Distribution focal loss integral: expected box side from 16 bin logits.

    The checkpoint carries the (fixed, 0..15) 1x1 conv weight, so it is kept as a conv.
    """

    def __init__(self, c1: int = 16):
        super().__init__()
        self.conv = nn.Conv2d(c1, 1, 1, bias=False).requires_grad_(False)
        self.c1 = c1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, a = x.shape
        return self.conv(x.view(b, 4, self.c1, a).transpose(2, 1).softmax(1)).view(b, 4, a)


class Pose(nn.Module):
    """Detect + keypoint head, decoded: boxes (xywh px), class scores, keypoints (x, y, conf).

    ``legacy=True`` is the YOLOv8 class branch (plain convs); YOLO11 uses depth-wise convs.
    Anchors are cached per input size, so the decode is a handful of tensor ops, no loops
    over anchors.
    """

    def __init__(
        self,
        nc: int,
        kpt_shape: tuple[int, int],
        ch: list[int],
        strides: tuple[int, ...],
        legacy: bool = False,
        reg_max: int = 16,
    ):
        super().__init__()
        self.nc, self.kpt_shape, self.reg_max = nc, tuple(kpt_shape), reg_max
        self.nk = kpt_shape[0] * kpt_shape[1]
        self.strides = strides  # of the input maps, e.g. (8, 16, 32)
        c2 = max(16, ch[0] // 4, reg_max * 4)
        c3 = max(ch[0], min(nc, 100))
        c4 = max(ch[0] // 4, self.nk)
        self.cv2 = nn.ModuleList(
            nn.Sequential(Conv(x, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 4 * reg_max, 1)) for x in ch
        )
        if legacy:
            self.cv3 = nn.ModuleList(nn.Sequential(Conv(x, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, nc, 1)) for x in ch)
        else:
            self.cv3 = nn.ModuleList(
                nn.Sequential(
                    nn.Sequential(DWConv(x, x, 3), Conv(x, c3, 1)),
                    nn.Sequential(DWConv(c3, c3, 3), Conv(c3, c3, 1)),
                    nn.Conv2d(c3, nc, 1),
                )
                for x in ch
            )
        self.dfl = DFL(reg_max)
        self.cv4 = nn.ModuleList(nn.Sequential(Conv(x, c4, 3), Conv(c4, c4, 3), nn.Conv2d(c4, self.nk, 1)) for x in ch)
        self._anchor_cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def _anchors(self, xs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Anchor centres (2, A) in grid units and their strides (1, A), cached per shape."""
        # Tensors made under inference_mode cannot enter autograd later, hence the last key.
        key = (tuple(x.shape[2:] for x in xs), xs[0].device, xs[0].dtype, torch.is_inference_mode_enabled())
        if key not in self._anchor_cache:
            points, strides = [], []
            for x, s in zip(xs, self.strides):
                h, w = x.shape[2:]
                sy, sx = torch.meshgrid(
                    torch.arange(h, device=x.device, dtype=x.dtype) + 0.5,
                    torch.arange(w, device=x.device, dtype=x.dtype) + 0.5,
                    indexing="ij",
                )
                points.append(torch.stack((sx, sy)).view(2, -1))
                strides.append(torch.full((1, h * w), s, device=x.device, dtype=x.dtype))
            self._anchor_cache = {key: (torch.cat(points, 1), torch.cat(strides, 1))}
        return self._anchor_cache[key]

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        b = xs[0].shape[0]
        anchors, strides = self._anchors(xs)
        box = torch.cat([self.cv2[i](x).view(b, 4 * self.reg_max, -1) for i, x in enumerate(xs)], 2)
        cls = torch.cat([self.cv3[i](x).view(b, self.nc, -1) for i, x in enumerate(xs)], 2)
        kpt = torch.cat([self.cv4[i](x).view(b, self.nk, -1) for i, x in enumerate(xs)], 2)

        lt, rb = self.dfl(box).chunk(2, 1)
        x1y1, x2y2 = anchors - lt, anchors + rb
        dbox = torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), 1) * strides

        ndim = self.kpt_shape[1]
        k = kpt.view(b, self.kpt_shape[0], ndim, -1)
        xy = (k[:, :, :2] * 2.0 + (anchors - 0.5).unsqueeze(0)) * strides
        parts = [xy] if ndim == 2 else [xy, k[:, :, 2:].sigmoid()]
        kpts = torch.cat(parts, 2).view(b, self.nk, -1)
        return torch.cat((dbox, cls.sigmoid(), kpts), 1)


# --------------------------------------------------------------------------- model from yaml

_BLOCKS: dict[str, type[nn.Module]] = {
    "Conv": Conv,
    "DWConv": DWConv,
    "Bottleneck": Bottleneck,
    "C2f": C2f,
    "C3": C3,
    "C3k": C3k,
    "C3k2": C3k2,
    "SPPF": SPPF,
    "C2PSA": C2PSA,
}
#: Blocks whose second yaml arg slot takes the (depth-scaled) repeat count.
_REPEATED = {"C2f", "C3", "C3k", "C3k2", "C2PSA"}


def _make_divisible(x: float, divisor: int = 8) -> int:
    return int(math.ceil(x / divisor) * divisor)


@dataclass(frozen=True)
class PoseConfig:
    """The handful of numbers that define one network size, read from the checkpoint yaml."""

    layers: list[list[Any]]
    num_backbone: int
    depth: float
    width: float
    max_channels: int
    scale: str
    nc: int
    kpt_shape: tuple[int, int]

    @classmethod
    def from_yaml(cls, yaml: dict[str, Any]) -> PoseConfig:
        scale = str(yaml.get("scale") or "")
        scales = yaml.get("scales") or {}
        if scales:
            if scale not in scales:
                raise ValueError(f"model yaml scale {scale!r} not in its scales {list(scales)}")
            depth, width, max_channels = scales[scale]
        else:
            depth, width = yaml.get("depth_multiple", 1.0), yaml.get("width_multiple", 1.0)
            max_channels = yaml.get("max_channels", 1024)
        k = yaml["kpt_shape"]
        return cls(
            layers=[list(row) for row in yaml["backbone"] + yaml["head"]],
            num_backbone=len(yaml["backbone"]),
            depth=float(depth),
            width=float(width),
            max_channels=int(max_channels),
            scale=scale,
            nc=int(yaml["nc"]),
            kpt_shape=(int(k[0]), int(k[1])),
        )


class YoloPose(nn.Module):
    """A YOLOv8/11 pose network: ``forward(x) -> (predictions, feature maps)``.

    ``x`` is ``(B, 3, H, W)`` RGB in [0, 1] with H, W multiples of 32. ``predictions`` is
    ``(B, 4 + nc + K*ndim, A)``; the feature maps are the outputs of the last backbone layer
    at each stride (4, 8, 16, 32: layers 2, 4, 6, 10 for YOLO11), see :attr:`feature_layers`.
    """

    def __init__(self, cfg: PoseConfig, legacy_head: bool = False):
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = []
        sources: list[int | list[int]] = []
        ch: list[int] = []  # output channels of every layer so far
        strides: list[int] = []  # output stride of every layer so far
        for i, (f, n, name, args) in enumerate(cfg.layers):
            args = [self._resolve(a) for a in args]
            n = max(round(n * cfg.depth), 1) if n > 1 else n
            first = f if isinstance(f, int) else f[0]
            c_in = ch[first] if ch else 3
            s_in = strides[first] if strides else 1
            if name in _BLOCKS:
                c2 = args[0]
                if c2 != cfg.nc:
                    c2 = _make_divisible(min(c2, cfg.max_channels) * cfg.width, 8)
                args = [c_in, c2, *args[1:]]
                if name in _REPEATED:
                    args.insert(2, n)
                    n = 1
                if name == "C3k2" and cfg.scale in ("m", "l", "x"):
                    args[3] = True  # Ultralytics forces C3k inner blocks for the larger sizes
                block = _BLOCKS[name]
                module = nn.Sequential(*(block(*args) for _ in range(n))) if n > 1 else block(*args)
                conv_stride = args[3] if name in ("Conv", "DWConv") and len(args) > 3 else 1
                stride = s_in * conv_stride
            elif name == "nn.Upsample":
                module = nn.Upsample(scale_factor=args[1], mode=args[2])
                c2, stride = c_in, s_in // args[1]
            elif name == "Concat":
                module, c2, stride = Concat(args[0]), sum(ch[j] for j in f), s_in
            elif name == "Pose":
                if i != len(cfg.layers) - 1:
                    raise ValueError("the Pose head must be the last layer")
                module = Pose(
                    cfg.nc, cfg.kpt_shape, [ch[j] for j in f], tuple(strides[j] for j in f), legacy=legacy_head
                )
                c2, stride = 0, 0
            else:
                raise ValueError(f"unsupported layer type {name!r} in checkpoint yaml (layer {i})")
            layers.append(module)
            sources.append(f)
            ch.append(c2)
            strides.append(stride)
        if not layers or not isinstance(layers[-1], Pose):
            raise ValueError("the checkpoint yaml has no Pose head: not a pose model")
        self.model = nn.ModuleList(layers)
        self._sources = sources
        self.head_strides: tuple[int, ...] = layers[-1].strides
        self.layer_channels = tuple(ch)
        self.layer_strides = tuple(strides)
        # Last backbone layer at each stride >= 4: where the lifter's context features come from.
        last_at: dict[int, int] = {}
        for i in range(cfg.num_backbone):
            if strides[i] >= 4:
                last_at[strides[i]] = i
        self.feature_layers = tuple(last_at[s] for s in sorted(last_at))
        self.feature_strides = tuple(sorted(last_at))
        self.feature_channels = tuple(ch[i] for i in self.feature_layers)
        needed = {j for f in sources for j in ([f] if isinstance(f, int) else f) if j >= 0}
        self._keep = needed | set(self.feature_layers)

    def _resolve(self, a: Any) -> Any:
        if a == "nc":
            return self.cfg.nc
        if a == "kpt_shape":
            return self.cfg.kpt_shape
        if a == "None":  # nn.Upsample's size argument
            return None
        return a

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        outputs: dict[int, torch.Tensor] = {}
        for i, (module, f) in enumerate(zip(self.model, self._sources)):
            inputs: torch.Tensor | list[torch.Tensor] = x  # a list for Concat
            if f != -1:
                inputs = outputs[f] if isinstance(f, int) else [x if j == -1 else outputs[j] for j in f]
            x = module(inputs)
            if i in self._keep:
                outputs[i] = x
        return x, tuple(outputs[i] for i in self.feature_layers)

    def fuse(self) -> YoloPose:
        """Fold every BatchNorm into its conv (inference only)."""
        for m in self.modules():
            if isinstance(m, Conv):
                m.fuse()
        return self


def build_pose_model(yaml: dict[str, Any], state_dict: dict[str, torch.Tensor]) -> YoloPose:
    """Build the network described by a checkpoint yaml and load its weights strictly."""
    legacy = any(k.endswith("cv3.0.0.conv.weight") for k in state_dict)  # YOLOv8 class branch
    model = YoloPose(PoseConfig.from_yaml(yaml), legacy_head=legacy)
    model.load_state_dict(state_dict, strict=True)
    return model.eval()
