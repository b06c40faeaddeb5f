"""The reference model the benchmark scripts share: TerraTorch's Prithvi-EO-2.0-300M-TL + UperNet with the
Sen1Floods11 head (2 classes, 6 bands), random weights from seed 0, or a smaller model of the same family."""
import torch
from terratorch.models import EncoderDecoderFactory


def build_model(embed_dim: int = 1024, depth: int = 24, heads: int = 16, decoder_channels: int = 256) -> torch.nn.Module:
    """The model in eval mode; the four UperNet inputs are the last blocks of each quarter of the encoder."""
    torch.manual_seed(0)
    indices = [i * depth // 4 + depth // 4 - 1 for i in range(4)]
    return EncoderDecoderFactory().build_model(
        task="segmentation", backbone="prithvi_eo_v2_300_tl", backbone_pretrained=False,
        backbone_embed_dim=embed_dim, backbone_depth=depth, backbone_num_heads=heads,
        backbone_bands=["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"],
        necks=[{"name": "SelectIndices", "indices": indices}, {"name": "ReshapeTokensToImage"}],
        decoder="UperNetDecoder", decoder_channels=decoder_channels, decoder_scale_modules=True,
        head_dropout=0.1, num_classes=2, rescale=True,
    ).eval()
