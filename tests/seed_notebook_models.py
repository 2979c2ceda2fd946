"""The seed notebooks' own models, preprocessing and decoders, as the notebooks wrote them.

The import tests (``tests/test_seed_archs.py``) build these, save their ``state_dict`` the notebook's
way, import it with ``ocr_core.seed_import`` and compare. The code mirrors each notebook cell; what a
notebook left to the reader (seed 002's ``# YOUR CODE HERE``) is filled in the obvious way, and what
cannot run here is replaced by an equivalent:

- seed 002's ``torchvision.models.resnet18`` (torchvision does not import beside this torch): a
  torchvision-style ``ResNet`` below, of which the notebook takes ``children()[:-2]`` as it did;
- seed 003's ``pl.LightningModule`` (Lightning is not installed): ``nn.Module``, which gives the same
  ``state_dict``; the training hooks are left out;
- seed 001's ``torchvision.transforms.Resize((32, 128))`` + ``ToTensor()``: Pillow's bilinear resize and
  a division by 255, which is what they do on a PIL image.
"""

from __future__ import annotations

import string

import albumentations as A
import cv2
import numpy as np
import torch
import torch.nn.functional as f
from albumentations.pytorch import ToTensorV2
from PIL import Image
from torch import nn

# ---------------------------------------------------------------- seed 001 (ResNet blocks + 3 BiLSTM)

OOV_TOKEN = "<OOV>"
CTC_BLANK = "<BLANK>"
PAD_TOKEN = "<PAD>"


def get_char_map(alphabet):
    char_map = {value: idx + 3 for (idx, value) in enumerate(alphabet)}
    char_map[CTC_BLANK] = 0
    char_map[OOV_TOKEN] = 1
    char_map[PAD_TOKEN] = 2
    return char_map


class Tokenizer:
    def __init__(self, alphabet):
        self.char_map = get_char_map(alphabet)
        self.rev_char_map = {val: key for key, val in self.char_map.items()}

    def encode(self, word_list):
        enc_words = []
        for word in word_list:
            enc_words.append([self.char_map[char] if char in self.char_map else self.char_map[OOV_TOKEN]
                              for char in word])
        return enc_words

    def get_num_chars(self):
        return len(self.char_map)

    def decode(self, enc_word_list):
        dec_words = []
        for word in enc_word_list:
            word_chars = ""
            for idx, char_enc in enumerate(word):
                if (char_enc != self.char_map[OOV_TOKEN] and char_enc != self.char_map[CTC_BLANK]
                        and not (idx > 0 and char_enc == word[idx - 1])):
                    word_chars += self.rev_char_map[char_enc]
            dec_words.append(word_chars)
        return dec_words


class ResNetBlock(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=0, dropout=0.15):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.LeakyReLU()
        self.dropout = nn.Dropout(dropout)
        self.downsample = None
        if in_channels != out_channels:
            self.downsample = nn.Conv2d(in_channels, out_channels, 1, stride=2)

    def forward(self, x, identity=True):
        out = self.dropout(self.bn(self.conv(x)))
        if identity:
            if self.downsample is not None:
                x = self.downsample(x)
            return self.relu(out + x)
        else:
            return self.relu(out)


class CNN(nn.Module):
    def __init__(self, in_channels=1, num_layers=2, dropout=0.1):
        super().__init__()
        self.start = ResNetBlock(3, 64, 7, 1, 0, 0.0)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.blocks1 = nn.ModuleList([ResNetBlock(64, 64, padding=1) for _ in range(num_layers)])
        self.blocks2 = nn.ModuleList([ResNetBlock(64, 128, padding=1, stride=2)]
                                     + [ResNetBlock(128, 128, padding=1) for _ in range(num_layers)])
        self.blocks3 = nn.ModuleList([ResNetBlock(128, 256, padding=1, stride=2)]
                                     + [ResNetBlock(256, 256, padding=1) for _ in range(num_layers)])
        self.blocks4 = nn.ModuleList([ResNetBlock(256, 512, padding=1, stride=2)]
                                     + [ResNetBlock(512, 512, padding=1) for _ in range(num_layers)])
        self.blocks5 = nn.ModuleList([ResNetBlock(512, 1024, padding=1, stride=2)]
                                     + [ResNetBlock(1024, 1024, padding=1) for _ in range(num_layers)])
        self.blocks = [self.blocks1, self.blocks2, self.blocks3, self.blocks4, self.blocks5]

    def forward(self, x):
        out = self.maxpool(self.start(x, identity=False))
        for blocks in self.blocks:
            for block in blocks:
                out = block(out)
        return out


class BiLSTM(nn.Module):
    def __init__(self, input_size, hidden_size, num_layers, dropout=0.1):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, dropout=dropout, batch_first=True,
                            bidirectional=True)

    def forward(self, x):
        out, _ = self.lstm(x)
        return out


class CRNN001(nn.Module):
    """Seed 001's ``CRNN``."""

    def __init__(self, number_class_symbols, time_feature_count=256, lstm_hidden=256, lstm_len=3):
        super().__init__()
        self.feature_extractor = CNN(dropout=0.15)
        self.avg_pool = nn.AdaptiveAvgPool2d((time_feature_count, time_feature_count))
        self.bilstm = BiLSTM(time_feature_count, lstm_hidden, lstm_len, dropout=0.15)
        self.classifier = nn.Sequential(
            nn.Linear(lstm_hidden * 2, time_feature_count),
            nn.GELU(),
            nn.Dropout(0.15),
            nn.Linear(time_feature_count, number_class_symbols),
        )

    def forward(self, x):
        x = self.feature_extractor(x)
        b, c, h, w = x.size()
        x = x.view(b, c * h, w)
        x = self.avg_pool(x)
        x = x.transpose(1, 2)
        x = self.bilstm(x)
        x = self.classifier(x)
        x = nn.functional.log_softmax(x, dim=2).permute(1, 0, 2)
        return x


def predict001(images, model, tokenizer):
    model.eval()
    with torch.no_grad():
        output = model(images)
    pred = torch.argmax(output.detach().cpu(), -1).permute(1, 0).numpy()
    return tokenizer.decode(pred)


def transform_test001(image: Image.Image) -> torch.Tensor:
    """``Resize((32, 128))`` then ``ToTensor()`` on a PIL image."""
    image = image.resize((128, 32), Image.BILINEAR)
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).float().div(255)


# ---------------------------------------------------------------- seed 002 (ResNet-18 + GRU)

ABC002 = "0123456789ABEKMHOPCTYX"


def _conv3x3(inp, out, stride=1):
    return nn.Conv2d(inp, out, kernel_size=3, stride=stride, padding=1, bias=False)


class TorchvisionBasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class TorchvisionResNet18(nn.Module):
    """torchvision's ``resnet18()``: the same children in the same order."""

    def __init__(self, num_classes=1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, 2)
        self.layer2 = self._make_layer(128, 2, stride=2)
        self.layer3 = self._make_layer(256, 2, stride=2)
        self.layer4 = self._make_layer(512, 2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)

    def _make_layer(self, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(planes))
        layers = [TorchvisionBasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [TorchvisionBasicBlock(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)


class FeatureExtractor(nn.Module):
    def __init__(self, input_size=(64, 320), output_len=20):
        super().__init__()
        h, w = input_size
        resnet = TorchvisionResNet18()  # the notebook: getattr(models, 'resnet18')(pretrained=True)
        self.cnn = nn.Sequential(*list(resnet.children())[:-2])
        self.pool = nn.AvgPool2d(kernel_size=(h // 32, 1))
        self.proj = nn.Conv2d(w // 32, output_len, kernel_size=1)
        self.num_output_features = self.cnn[-1][-1].bn2.num_features

    def apply_projection(self, x):
        x = x.transpose(1, 3)  # B, W, H, C: the columns become channels
        x = self.proj(x)  # B, output_len, H, C
        return x.transpose(1, 3).transpose(1, 2)  # B, H, C, output_len

    def forward(self, x):
        features = self.cnn(x)
        features = self.pool(features)
        features = self.apply_projection(features)
        return features


class SequencePredictor(nn.Module):
    def __init__(self, input_size, hidden_size, num_layers, num_classes, dropout=0.3, bidirectional=False):
        super().__init__()
        self.num_classes = num_classes
        self.rnn = nn.GRU(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers,
                          dropout=dropout, bidirectional=bidirectional)
        fc_in = hidden_size if not bidirectional else 2 * hidden_size
        self.fc = nn.Linear(in_features=fc_in, out_features=num_classes)

    def _init_hidden_(self, batch_size):
        num_directions = 2 if self.rnn.bidirectional else 1
        return torch.zeros(self.rnn.num_layers * num_directions, batch_size, self.rnn.hidden_size)

    def _prepare_features_(self, x):
        x = x.squeeze(1)  # B, H, W
        return x.permute(2, 0, 1)  # W, B, H

    def forward(self, x):
        x = self._prepare_features_(x)
        batch_size = x.size(1)
        h_0 = self._init_hidden_(batch_size)
        h_0 = h_0.to(x.device)
        x, h = self.rnn(x, h_0)  # noqa: RUF059 - the notebook's line
        x = self.fc(x)
        return x


class CRNN002(nn.Module):
    """Seed 002's ``CRNN``."""

    def __init__(self, alphabet=ABC002, cnn_input_size=(64, 320), cnn_output_len=20, rnn_hidden_size=128,
                 rnn_num_layers=2, rnn_dropout=0.3, rnn_bidirectional=False):
        super().__init__()
        self.alphabet = alphabet
        self.features_extractor = FeatureExtractor(input_size=cnn_input_size, output_len=cnn_output_len)
        self.sequence_predictor = SequencePredictor(input_size=self.features_extractor.num_output_features,
                                                    hidden_size=rnn_hidden_size, num_layers=rnn_num_layers,
                                                    num_classes=len(alphabet) + 1, dropout=rnn_dropout,
                                                    bidirectional=rnn_bidirectional)

    def forward(self, x):
        features = self.features_extractor(x)
        sequence = self.sequence_predictor(features)
        return sequence


def pred_to_string(pred, abc):
    seq = []
    for i in range(len(pred)):
        label = np.argmax(pred[i])
        seq.append(label - 1)
    out = []
    for i in range(len(seq)):
        if len(out) == 0:
            if seq[i] != -1:
                out.append(seq[i])
        else:
            if seq[i] != -1 and seq[i] != seq[i - 1]:
                out.append(seq[i])
    out = "".join([abc[c] for c in out])
    return out


def decode002(pred, abc):
    pred = pred.permute(1, 0, 2).cpu().data.numpy()
    return [pred_to_string(pred[i], abc) for i in range(len(pred))]


def load002(bgr: np.ndarray) -> np.ndarray:
    """``RecognitionDataset.__getitem__`` + ``Resize``: the ``cv2.imread`` BGR crop as float in [0, 1]."""
    image = bgr.astype(np.float32) / 255.0
    return cv2.resize(image, (320, 64), interpolation=cv2.INTER_AREA)


def collate002(images: list[np.ndarray]) -> torch.Tensor:
    return torch.stack([torch.from_numpy(image).permute(2, 0, 1).float() for image in images])


# ---------------------------------------------------------------- seed 003 (fixed length, two heads)

HIEROGLYPHS = np.array(list("云京冀吉宁川新晋桂沪津浙渝湘琼甘皖粤苏蒙藏豫贵赣辽鄂闽陕青鲁黑"))
OTHER = np.array(list("0123456789ABCDEFGHJKLMNOPQRSTUVWXYZ"))


def get_transforms003():
    return A.Compose([A.Resize(64, 32 * 7), A.Normalize(), ToTensorV2()])


class SimpleNumbersOCR(nn.Module):  # the notebook's pl.LightningModule
    def __init__(self, dropout_p=0.2):
        super().__init__()
        self.cnn_layers = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.Dropout2d(dropout_p),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(32, 64, 3, padding=1, stride=(2, 1)), nn.BatchNorm2d(64), nn.ReLU(), nn.Dropout2d(dropout_p),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(64, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(), nn.Dropout2d(dropout_p),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(128, 256, 3, padding=1, stride=2), nn.ReLU(),
            nn.MaxPool2d(2, 2),
        )
        self.hieroglyphs_cls = nn.Linear(256, len(HIEROGLYPHS))
        self.other_cls = nn.Linear(256, len(OTHER))
        self.loss = nn.CrossEntropyLoss()

    def forward(self, x):
        out = self.cnn_layers(x).squeeze(2).permute(0, 2, 1)
        first = self.hieroglyphs_cls(out[:, :1])
        tail = self.other_cls(out[:, 1:])
        return first, tail


class LSTMNumbersOCR(SimpleNumbersOCR):
    def __init__(self, dropout_p=0.2):
        super().__init__()
        self.cnn_layers = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.Dropout2d(dropout_p),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(32, 64, 3, padding=1, stride=(2, 1)), nn.BatchNorm2d(64), nn.ReLU(), nn.Dropout2d(dropout_p),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(64, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(), nn.Dropout2d(dropout_p),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(128, 256, 3, padding=1, stride=2), nn.ReLU(),
            nn.MaxPool2d(2, 2),
        )
        self.lstm = nn.LSTM(256, 128, num_layers=2, batch_first=True, dropout=dropout_p, bidirectional=True)
        self.hieroglyphs_cls = nn.Linear(128 * 2, len(HIEROGLYPHS))
        self.other_cls = nn.Linear(128 * 2, len(OTHER))
        self.loss = nn.CrossEntropyLoss()

    def forward(self, x):
        out = self.cnn_layers(x).squeeze(2).permute(0, 2, 1)
        out, _ = self.lstm(out)
        first = self.hieroglyphs_cls(out[:, :1])
        tail = self.other_cls(out[:, 1:])
        return first, tail


def evaluate003(model, x):
    """The prediction half of the notebook's ``evaluate``."""
    model.eval()
    with torch.no_grad():
        first_logits, tail_logits = model(x)
    return list(np.apply_along_axis(lambda x: "".join(x), axis=1,
                                    arr=np.concatenate([HIEROGLYPHS[first_logits.argmax(-1)],
                                                        OTHER[tail_logits.argmax(-1)]], axis=1)))


# ---------------------------------------------------------------- seed 004 (captcha CRNNs)

CHARS004 = string.digits + string.ascii_lowercase
CHAR_TO_LABEL = {char: label for label, char in enumerate(CHARS004, start=1)}
LABEL_TO_CHAR = {label: char for char, label in CHAR_TO_LABEL.items()}


def load004(image: Image.Image, width: int, height: int = 32) -> torch.Tensor:
    """``OCRDataset.__getitem__``'s image half."""
    image = image.resize((width, height)).convert("L")
    return torch.from_numpy(np.array(image).astype(np.float32)).unsqueeze(0)


class CRNN004(nn.Module):
    def __init__(self, in_channels: int = 1, num_classes: int = 37):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = 512
        self.height = 32
        self.rnn_hidden_size = 256
        self.num_classes = num_classes
        self.conv_layers = nn.Sequential(
            nn.Conv2d(in_channels=self.in_channels, out_channels=64, kernel_size=3, stride=1, padding=1),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.ReLU(),
            nn.Conv2d(in_channels=64, out_channels=128, kernel_size=3, stride=1, padding=1),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.ReLU(),
            nn.Conv2d(in_channels=128, out_channels=256, kernel_size=3, stride=1, padding=1),
            nn.ReLU(),
            nn.Conv2d(in_channels=256, out_channels=256, kernel_size=3, stride=1, padding=1),
            nn.MaxPool2d(kernel_size=(2, 1)),
            nn.ReLU(),
            nn.Conv2d(in_channels=256, out_channels=512, kernel_size=3, stride=1, padding=1),
            nn.ReLU(),
            nn.BatchNorm2d(512),
            nn.Conv2d(in_channels=512, out_channels=512, kernel_size=3, stride=1, padding=1),
            nn.ReLU(),
            nn.BatchNorm2d(512),
            nn.MaxPool2d(kernel_size=(2, 1)),
            nn.Conv2d(in_channels=512, out_channels=self.out_channels, kernel_size=2, stride=1, padding=0),
        )
        self.rec_layers = nn.LSTM(self.out_channels, self.rnn_hidden_size, bidirectional=True, num_layers=2)
        self.clf_layer = nn.Linear(2 * self.rnn_hidden_size, self.num_classes)

    def forward(self, x: torch.Tensor):
        x = self.conv_layers(x)
        batch_size, ch_num, height, width = x.size()
        x = x.view(batch_size, ch_num * height, width)
        x = x.permute(2, 0, 1)
        x, _ = self.rec_layers(x)
        x = self.clf_layer(x)
        return x


class ModifiedCRNN004(nn.Module):
    def __init__(self, in_channels: int = 1, num_classes: int = 37):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = 256
        self.height = 32
        self.rnn_hidden_size = 256
        self.num_classes = num_classes
        self.conv_layers = nn.Sequential(
            nn.Conv2d(in_channels=self.in_channels, out_channels=64, kernel_size=3, stride=1, padding=1),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.ReLU(),
            nn.Conv2d(in_channels=64, out_channels=128, kernel_size=3, stride=2, padding=1),
            nn.ReLU(),
            nn.BatchNorm2d(128),
            nn.Conv2d(in_channels=128, out_channels=256, kernel_size=3, stride=2, padding=1),
            nn.ReLU(),
            nn.BatchNorm2d(256),
            nn.Conv2d(in_channels=256, out_channels=256, kernel_size=3, stride=2, padding=1),
            nn.ReLU(),
            nn.BatchNorm2d(256),
            nn.Conv2d(in_channels=256, out_channels=self.out_channels, kernel_size=2, stride=1, padding=0),
        )
        self.rec_layers = nn.LSTM(self.out_channels, self.rnn_hidden_size, bidirectional=True, num_layers=2)
        self.clf_layer = nn.Linear(2 * self.rnn_hidden_size, self.num_classes)

    def forward(self, x: torch.Tensor):
        x = self.conv_layers(x)
        batch_size, ch_num, height, width = x.size()
        x = x.view(batch_size, ch_num * height, width)
        x = x.permute(2, 0, 1)
        x, _ = self.rec_layers(x)
        x = self.clf_layer(x)
        return x


class CECRNN004(nn.Module):
    def __init__(self, in_channels: int = 1, num_classes: int = 37):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = 512
        self.height = 32
        self.hidden_seq_size = 128
        self.rnn_hidden_size = 256
        self.num_classes = num_classes
        self.conv_layers = nn.Sequential(
            nn.Conv2d(in_channels=self.in_channels, out_channels=64, kernel_size=3, stride=1, padding=1),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.ReLU(),
            nn.Conv2d(in_channels=64, out_channels=128, kernel_size=3, stride=1, padding=1),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.ReLU(),
            nn.Conv2d(in_channels=128, out_channels=256, kernel_size=3, stride=1, padding=1),
            nn.MaxPool2d(kernel_size=2),
            nn.ReLU(),
            nn.Conv2d(in_channels=256, out_channels=512, kernel_size=(3, 5), stride=1, padding=1),
            nn.ReLU(),
            nn.BatchNorm2d(512),
            nn.Conv2d(in_channels=512, out_channels=512, kernel_size=(3, 5), stride=1, padding=1),
            nn.ReLU(),
            nn.BatchNorm2d(512),
            nn.MaxPool2d(kernel_size=2),
            nn.Conv2d(in_channels=512, out_channels=self.out_channels, kernel_size=2, stride=1, padding=0),
        )
        self.rec_layers = nn.LSTM(self.out_channels, self.rnn_hidden_size, bidirectional=True, num_layers=2,
                                  dropout=0.2)
        self.clf_layer = nn.Linear(2 * self.rnn_hidden_size, self.num_classes)

    def forward(self, x):
        x = self.conv_layers(x)
        batch_size, ch_num, height, width = x.size()
        assert ch_num == self.out_channels
        x = x.view(batch_size, ch_num * height, width)
        x = x.permute(2, 0, 1)
        x, _ = self.rec_layers(x)
        x = self.clf_layer(x)
        return x


def decode004_ctc(logits):
    """The CTC evaluation cell: log-softmax, argmax, ``unique_consecutive``, labels to characters."""
    log_probas = f.log_softmax(logits, dim=2)
    out = []
    for pred_probas in log_probas.permute((1, 0, 2)):
        pred = torch.argmax(pred_probas, axis=1)
        pred = torch.unique_consecutive(pred)
        out.append("".join(LABEL_TO_CHAR.get(elem.item(), "") for elem in pred))
    return out


def decode004_ce(logits):
    """The cross-entropy evaluation cell: argmax per position, no collapse."""
    log_probas = f.log_softmax(logits, dim=2)
    out = []
    for pred_probas in log_probas.permute((1, 0, 2)):
        pred = torch.argmax(pred_probas, axis=1)
        out.append("".join(LABEL_TO_CHAR.get(elem.item(), "") for elem in pred))
    return out
