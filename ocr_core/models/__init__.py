"""Model registry: every architecture is a config dataclass plus a factory, looked up by name."""

from ocr_core.models.fusion import fuse_conv_batchnorm
from ocr_core.models.registry import ARCHITECTURES, DEFAULT_ARCH, ArchSpec, arch_config, arch_spec, build_model

__all__ = ["ARCHITECTURES", "DEFAULT_ARCH", "ArchSpec", "arch_config", "arch_spec", "build_model", "fuse_conv_batchnorm"]
