"""The published ResNeXt50 + LSTM detector, written from
shared/reference-model.md (architecture, parameter names and forward pass),
so tests and the benchmark baseline compare against the PyTorch module itself.
"""
import torch
from torch import nn
import torchvision

MEAN_BGR = (0.485, 0.456, 0.406)  # applied in BGR order, as the reference does
STD_BGR = (0.229, 0.224, 0.225)


class ReferenceModel(nn.Module):
    def __init__(self):
        super().__init__()
        backbone = torchvision.models.resnext50_32x4d(weights=None)
        self.model = nn.Sequential(*list(backbone.children())[:-2])
        # The fourth positional argument of nn.LSTM is `bias`: the published
        # code passes bidirectional=False there, so the LSTM has no bias.
        self.lstm = nn.LSTM(2048, 2048, 1, False)
        self.relu = nn.LeakyReLU()  # defined, never used
        self.dp = nn.Dropout(0.4)
        self.linear1 = nn.Linear(2048, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        batch_size, seq_length, c, h, w = x.shape
        x = x.view(batch_size * seq_length, c, h, w)
        fmap = self.model(x)
        x = self.avgpool(fmap)
        x = x.view(batch_size, seq_length, 2048)
        x_lstm, _ = self.lstm(x, None)  # batch_first=False: frames are the LSTM batch
        return fmap, self.dp(self.linear1(x_lstm[:, -1, :]))


def normalise(crops_bgr_u8):
    """[N, 112, 112, 3] uint8 BGR -> [N, 3, 112, 112] float, as the reference."""
    x = crops_bgr_u8.permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(MEAN_BGR).view(1, 3, 1, 1)
    std = torch.tensor(STD_BGR).view(1, 3, 1, 1)
    return (x - mean) / std


def seeded_model(seed):
    """Seeded weights with non-trivial batch-norm statistics (so folding is
    exercised) and a head scaled so probabilities spread over (0, 1)."""
    torch.manual_seed(seed)
    m = ReferenceModel()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
                mod.num_batches_tracked.fill_(1000)
        m.lstm.weight_ih_l0.mul_(8.0)
        m.lstm.weight_hh_l0.mul_(4.0)
        m.linear1.weight.mul_(40.0)
    return m.eval()
