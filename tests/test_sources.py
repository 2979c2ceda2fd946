"""Source specs: every folder naming and manifest format, image kinds, raw CCPD, and the hash split."""

from __future__ import annotations

import csv
import io
import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ocr_core.data.dataset import decode_listing, load_dataset
from ocr_core.data.image_io import jpeg_frame_size, read_rgb, to_rgb_uint8
from ocr_core.data.sources import Sample, list_source, sample_from_filename, split_by_hash
from ocr_core.errors import InputError

# The CCPD index lists as given in /work/shared/data/README.md (independent of ocr_core.data.ccpd).
README_PROVINCES = "皖 沪 津 渝 冀 晋 蒙 辽 吉 黑 苏 浙 京 闽 赣 鲁 豫 鄂 湘 粤 桂 琼 川 贵 云 藏 陕 甘 青 宁 新 警 学 O".split()
README_LETTERS = "A B C D E F G H J K L M N P Q R S T U V W X Y Z O".split()
README_ALNUM = "A B C D E F G H J K L M N P Q R S T U V W X Y Z 0 1 2 3 4 5 6 7 8 9 O".split()


def _labels_of(listing):
    return sorted(s.label for s in listing.samples)


# ---- folders ---------------------------------------------------------------------------------------

def test_folder_label_naming_non_ascii(tmp_path, make_images):
    labels = ["皖AY339S", "沪C8GK31", "浙D911SY"]
    make_images(tmp_path, labels, naming="label", ext=".jpg")
    listing = list_source(tmp_path)
    assert listing.kind == "folder"
    assert _labels_of(listing) == sorted(labels)
    assert {s.source for s in listing.samples} == {"folder"}
    assert all(Path(s.path).is_file() for s in listing.samples)


def test_folder_id_label_naming(tmp_path, make_images):
    labels = ["皖AY339S", "沪C8GK31", "ABC123"]
    paths = make_images(tmp_path, labels, naming="id")
    assert paths[0].name == "000000-皖AY339S.png"
    listing = list_source(tmp_path)
    assert listing.kind == "folder-id"
    assert _labels_of(listing) == sorted(labels)


def test_sample_from_filename_each_naming():
    assert sample_from_filename(Path("/x/000123-皖AY339S.png")).label == "皖AY339S"
    assert sample_from_filename(Path("/x/000123-皖AY339S.png")).source == "folder-id"
    assert sample_from_filename(Path("/x/皖AY339S.jpg")).label == "皖AY339S"
    assert sample_from_filename(Path("/x/皖AY339S.jpg")).source == "folder"
    raw = sample_from_filename(Path("/x/01-90_90-1&2_3&4-10&20_0&20_0&0_10&0-0_0_22_10_27_31_29-121-11.jpg"))
    assert raw.source == "ccpd-raw" and raw.label == "皖AYL375"
    assert raw.quad == ((10.0, 20.0), (0.0, 20.0), (0.0, 0.0), (10.0, 0.0))
    assert raw.attrs["brightness"] == 121 and raw.attrs["blur"] == 11


def test_folder_skips_non_images_and_lists_them(tmp_path, make_images):
    make_images(tmp_path, ["AB123"], naming="label")
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    (tmp_path / ".hidden.png").write_bytes(b"")
    listing = list_source(tmp_path)
    assert _labels_of(listing) == ["AB123"]
    assert [Path(p).name for p, _ in listing.skipped] == ["notes.txt"]


def test_nested_folders_in_path_order_without_hidden_or_linked_folders(tmp_path, make_images, monkeypatch):
    root = tmp_path / "set"
    make_images(root / "b", ["B2", "B1"], naming="label")
    make_images(root / "a-z", ["AZ1"], naming="label")
    make_images(root / "a" / "deep", ["D1"], naming="label")
    make_images(root, ["TOP1"], naming="label")
    make_images(root / ".cache", ["HIDDEN1"], naming="label")
    make_images(tmp_path / "elsewhere", ["LINKED1"], naming="label")
    (root / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (root / "file-link.png").symlink_to(root / "b" / "B1.png")
    (root / "dangling.png").symlink_to(tmp_path / "gone.png")
    listing = list_source(root)
    # The order Path objects sort in (part by part: "a/deep" before "a-z"), as rglob listings were sorted.
    expected = sorted(p for p in root.rglob("*") if p.is_file() and ".cache" not in p.parts)
    assert [s.path for s in listing.samples] == [str(p) for p in expected]
    assert [s.label for s in listing.samples] == ["TOP1", "D1", "AZ1", "B1", "B2", "file-link"]
    assert listing.skipped == []

    real_scandir = os.scandir

    def scandir(path):
        if Path(path).name == "b":
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr("ocr_core.data.sources.os.scandir", scandir)
    listing = list_source(root)
    assert "B1" not in [s.label for s in listing.samples]
    assert listing.skipped == [(str(root / "b"), "folder cannot be read (Permission denied)")]
    with pytest.raises(InputError, match=r"dataset folder .*/b cannot be read \(Permission denied\); check"):
        list_source(root / "b")


def test_missing_path_and_empty_folder_raise_input_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        list_source(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no labelled images"):
        list_source(empty)
    other = tmp_path / "data.yaml"
    other.write_text("a: 1", encoding="utf-8")
    with pytest.raises(InputError, match="data.yaml"):
        list_source(other)


# ---- manifests -------------------------------------------------------------------------------------

def test_json_manifest_resolves_relative_paths_against_its_folder(tmp_path, make_images, monkeypatch):
    images = tmp_path / "set" / "img"
    paths = make_images(images, ["a", "b", "c", "d"], naming="label")
    manifest = tmp_path / "set" / "labels.json"
    entries = [{"file": f"img/{p.name}", "text": t} for p, t in zip(paths, ["皖AY339S", "沪C8GK31", "ABC123"])]
    entries.append({"file": str(paths[3].resolve()), "text": "ABS999"})  # absolute paths are kept
    manifest.write_text(json.dumps(entries, ensure_ascii=False), encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # the working directory must not matter
    listing = list_source(manifest)
    assert listing.kind == "json"
    assert _labels_of(listing) == sorted(["皖AY339S", "沪C8GK31", "ABC123", "ABS999"])
    by_label = {s.label: Path(s.path) for s in listing.samples}
    assert by_label["沪C8GK31"].resolve() == paths[1].resolve()
    assert by_label["ABS999"].resolve() == paths[3].resolve()


@pytest.mark.parametrize("suffix,sep", [(".csv", ","), (".tsv", "\t")])
def test_table_manifests(tmp_path, make_images, suffix, sep):
    paths = make_images(tmp_path / "img", ["x1", "x2"], naming="label")
    manifest = tmp_path / f"labels{suffix}"
    with open(manifest, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter=sep)
        writer.writerow(["file", "text"])
        writer.writerow([f"img/{paths[0].name}", "皖AY339S"])
        writer.writerow([f"img/{paths[1].name}", "007"])  # a numeric-looking label stays text
    listing = list_source(manifest)
    assert _labels_of(listing) == sorted(["皖AY339S", "007"])
    dataset = load_dataset(manifest)
    assert dataset.images.shape == (2, 32, 128, 3)


def test_manifest_with_missing_entries_names_them(tmp_path, make_images):
    paths = make_images(tmp_path, ["ok"], naming="label")
    manifest = tmp_path / "m.json"
    entries = [{"file": paths[0].name, "text": "A1"}, {"file": "gone.png", "text": "A2"}]
    manifest.write_text(json.dumps(entries), encoding="utf-8")
    with pytest.raises(InputError, match="gone.png"):
        list_source(manifest)


def test_malformed_manifests_raise_input_error(tmp_path, make_images):
    paths = make_images(tmp_path, ["ok"], naming="label")
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('[{"file": "ok.png", "text": ', encoding="utf-8")
    with pytest.raises(InputError, match="bad.json"):
        list_source(bad_json)
    not_list = tmp_path / "dict.json"
    not_list.write_text('{"file": "ok.png", "text": "A"}', encoding="utf-8")
    with pytest.raises(InputError, match="dict.json"):
        list_source(not_list)
    wrong_cols = tmp_path / "cols.csv"
    wrong_cols.write_text(f"image,label\n{paths[0].name},A1\n", encoding="utf-8")
    with pytest.raises(InputError, match="file,text"):
        list_source(wrong_cols)


# ---- image kinds -------------------------------------------------------------------------------------

def test_image_kinds_are_normalized_to_rgb_uint8_at_input_size(tmp_path, write_png):
    rng = np.random.default_rng(0)
    folder = tmp_path / "kinds"
    folder.mkdir()
    gray = rng.integers(0, 256, (20, 60), dtype=np.uint8)
    bgra = rng.integers(0, 256, (24, 94, 4), dtype=np.uint8)
    deep = rng.integers(0, 65536, (30, 100), dtype=np.uint16)
    deep_color = rng.integers(0, 65536, (30, 100, 3), dtype=np.uint16)
    odd = rng.integers(0, 256, (7, 333, 3), dtype=np.uint8)
    big = rng.integers(0, 256, (97, 301, 3), dtype=np.uint8)
    write_png(folder / "GRAY1.png", gray)
    write_png(folder / "RGBA2.png", bgra)
    write_png(folder / "DEEP3.png", deep)
    write_png(folder / "DEEPC4.png", deep_color)
    write_png(folder / "ODD5.png", odd)
    write_png(folder / "BIG6.jpg", big)
    write_png(folder / "BMP7.bmp", odd[:5, :9])
    dataset = load_dataset(folder)
    assert len(dataset) == 7 and not dataset.skipped
    assert dataset.images.shape == (7, 32, 128, 3) and dataset.images.dtype == np.uint8
    sizes = {s.label: tuple(int(v) for v in hw) for s, hw in zip(dataset.samples, dataset.original_sizes)}
    assert sizes == {"GRAY1": (20, 60), "RGBA2": (24, 94), "DEEP3": (30, 100), "DEEPC4": (30, 100),
                     "ODD5": (7, 333), "BIG6": (97, 301), "BMP7": (5, 9)}
    # Pixel values at native size: gray replicated, BGRA -> RGB, 16 bit -> top byte.
    g = read_rgb(folder / "GRAY1.png")
    assert g.shape == (20, 60, 3) and np.array_equal(g[..., 0], gray) and np.array_equal(g[..., 2], gray)
    c = read_rgb(folder / "RGBA2.png")
    assert np.array_equal(c, bgra[..., [2, 1, 0]])
    d = read_rgb(folder / "DEEP3.png")
    assert d.dtype == np.uint8 and np.array_equal(d[..., 1], (deep // 256).astype(np.uint8))
    dc = read_rgb(folder / "DEEPC4.png")
    assert np.array_equal(dc, (deep_color[..., ::-1] // 256).astype(np.uint8))


def test_to_rgb_uint8_gray_alpha_and_float():
    ga = np.zeros((4, 5, 2), np.uint8)
    ga[..., 0] = 77
    ga[..., 1] = 255
    out = to_rgb_uint8(ga)
    assert out.shape == (4, 5, 3) and out.dtype == np.uint8 and (out == 77).all()
    flt = np.full((3, 3, 3), 0.5, np.float32)
    assert (to_rgb_uint8(flt) == 127).all()


def test_undecodable_files_are_skipped_or_fatal_with_strict(tmp_path, make_images, caplog):
    make_images(tmp_path, ["GOOD1", "GOOD2"], naming="label")
    (tmp_path / "EMPTY1.png").write_bytes(b"")
    (tmp_path / "TEXT2.jpg").write_text("this is not a jpeg", encoding="utf-8")
    with caplog.at_level("WARNING"):
        dataset = load_dataset(tmp_path)
    assert sorted(dataset.labels) == ["GOOD1", "GOOD2"]
    assert sorted(Path(p).name for p, _ in dataset.skipped) == ["EMPTY1.png", "TEXT2.jpg"]
    assert "skipped 2 file(s)" in caplog.text and "EMPTY1.png" in caplog.text and "TEXT2.jpg" in caplog.text
    with pytest.raises(InputError, match="EMPTY1.png|TEXT2.jpg"):
        load_dataset(tmp_path, strict=True)


@pytest.mark.parametrize("chunk_size", [1, 3, 64])
def test_chunked_decoding_keeps_order_progress_and_skips(tmp_path, make_images, chunk_size):
    labels = [f"P{i:02d}" for i in range(10)]
    make_images(tmp_path, labels, naming="id")
    broken = tmp_path / "000004-P04.png"
    broken.write_bytes(b"not a png at all")
    listing = list_source(tmp_path)
    calls: list[tuple[int, int]] = []
    dataset = decode_listing(listing, threads=2, chunk_size=chunk_size, progress=lambda d, n: calls.append((d, n)))
    assert dataset.labels == [label for label in labels if label != "P04"]
    assert [Path(p).name for p, _ in dataset.skipped] == [broken.name]
    # Every crop sits in its own row: each test image differs, so a row decoded into the wrong slot shows.
    expected = np.stack([read_rgb(s.path) for s in listing.samples if s.path != str(broken)])
    assert np.array_equal(dataset.images, expected)
    assert calls == [(min(done, 10), 10) for done in range(chunk_size, 10 + chunk_size, chunk_size)]


def test_read_rgb_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="missing.png"):
        read_rgb(tmp_path / "missing.png")
    (tmp_path / "z.png").write_bytes(b"")
    with pytest.raises(InputError, match="zero-byte"):
        read_rgb(tmp_path / "z.png")


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_huge_images_are_refused_from_the_header_before_decoding(tmp_path, monkeypatch, suffix):
    import cv2

    from ocr_core.data import image_io

    ok, buf = cv2.imencode(suffix, np.zeros((8000, 8100), np.uint8))
    assert ok
    path = tmp_path / f"HUGE1{suffix}"
    path.write_bytes(buf.tobytes())

    def no_decoding(*args, **kwargs):
        raise AssertionError("the image was decoded before its size was checked")

    monkeypatch.setattr(image_io.cv2, "imdecode", no_decoding)
    with pytest.raises(InputError, match=rf"HUGE1\{suffix} is 8100x8000 pixels, over the"):
        read_rgb(path)


def _jpeg(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **options)
    return buffer.getvalue()


def test_jpeg_frame_size_matches_pillow_past_other_segments():
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 255, (37, 141, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x010F] = "PlateLens test camera"
    thumbnail = _jpeg(rgb.resize((16, 8)))
    baseline = _jpeg(rgb, quality=80)
    # An APP1 segment that holds a whole JPEG of another size (as EXIF thumbnails do) must be skipped.
    app1 = b"\xff\xe1" + (len(thumbnail) + 2).to_bytes(2, "big") + thumbnail
    images = {
        "baseline": baseline,
        "progressive": _jpeg(rgb, progressive=True),
        "gray": _jpeg(rgb.convert("L")),
        "exif": _jpeg(rgb, exif=exif.tobytes()),
        "thumbnail segment": baseline[:2] + app1 + baseline[2:],
        "fill bytes": baseline[:2] + b"\xff\xff" + baseline[2:],
    }
    for name, data in images.items():
        with Image.open(io.BytesIO(data)) as header:
            assert header.size == (141, 37), name
        assert jpeg_frame_size(data) == (141, 37), name


def test_jpeg_frame_size_never_raises_on_cut_or_garbled_headers():
    data = _jpeg(Image.new("RGB", (94, 24), (30, 60, 200)))
    assert jpeg_frame_size(data) == (94, 24)
    rng = np.random.default_rng(1)
    cut = [data[:n] for n in range(len(data))]
    garbled = [data[:2] + rng.integers(0, 256, 64, dtype=np.uint8).tobytes() for _ in range(300)]
    sizes = [jpeg_frame_size(d) for d in cut + garbled]
    assert all(size is None or len(size) == 2 for size in sizes)
    assert jpeg_frame_size(cut[20]) is None  # cut before the frame header


def test_real_jpeg_sizes_read_from_the_frame_header(shared_data):
    for path in sorted((shared_data / "real-plates").glob("*.jpg")) + sorted(
            (shared_data / "ccpd-raw-sample").glob("*.jpg")):
        with Image.open(path) as header:
            assert jpeg_frame_size(path.read_bytes()) == header.size, path.name


# ---- raw CCPD and real plates ---------------------------------------------------------------------------

def _readme_decode(indices: list[int]) -> str:
    tail = "".join(README_ALNUM[i] for i in indices[2:])
    return README_PROVINCES[indices[0]] + README_LETTERS[indices[1]] + tail


def test_raw_ccpd_sample_labels_and_attributes(shared_data):
    folder = shared_data / "ccpd-raw-sample"
    files = sorted(folder.glob("*.jpg"))
    assert len(files) == 16
    listing = list_source(folder)
    assert listing.kind == "ccpd-raw"
    assert len(listing.samples) == 16
    by_name = {Path(s.path).name: s for s in listing.samples}
    for path in files:
        fields = path.stem.split("-")
        sample = by_name[path.name]
        assert sample.label == _readme_decode([int(i) for i in fields[4].split("_")])
        assert len(sample.label) == 7 and sample.label[0] in README_PROVINCES[:-1]
        assert sample.attrs["brightness"] == int(fields[5])
        assert sample.attrs["blur"] == int(fields[6])
        assert sample.quad is not None and len(sample.quad) == 4
    known = next(s for name, s in by_name.items() if "-0_0_22_10_27_31_29-" in name)
    assert known.label == "皖AYL375"

    dataset = load_dataset(folder)
    assert dataset.images.shape == (16, 32, 128, 3) and dataset.images.dtype == np.uint8
    # Crops are warped plates, not the 720x1160 photos.
    assert all(h < 200 and w < 400 for h, w in dataset.original_sizes)
    attrs = dataset.attributes()
    assert {"brightness", "blur", "source"} <= set(attrs.columns)
    assert set(attrs["source"]) == {"ccpd-raw"}


def test_real_plates_folder_labels_are_stems(shared_data):
    folder = shared_data / "real-plates"
    listing = list_source(folder)
    stems = sorted(p.stem for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    assert _labels_of(listing) == stems
    assert all(s.label[0] in README_PROVINCES for s in listing.samples)


# ---- split ------------------------------------------------------------------------------------------

def _samples(names):
    return [Sample(f"/data/{n}", n.split(".")[0], "folder") for n in names]


def test_split_by_hash_is_deterministic_fractional_and_order_free():
    names = [f"{i:06d}-A{i:05d}.png" for i in range(1000)]
    samples = _samples(names)
    train, val = split_by_hash(samples, 0.2)
    assert (train, val) == split_by_hash(samples, 0.2)
    assert sorted(train + val) == list(range(1000)) and not set(train) & set(val)
    assert 150 <= len(val) <= 250
    val_names = {names[i] for i in val}
    shuffled = names[:]
    random.Random(3).shuffle(shuffled)
    _, val2 = split_by_hash(_samples(shuffled), 0.2)
    assert {shuffled[i] for i in val2} == val_names
    # The folder does not matter, only the file name.
    moved = [Sample(f"/elsewhere/x/{n}", "L", "folder") for n in names]
    assert split_by_hash(moved, 0.2)[1] == val
    # A larger fraction only adds to the validation side.
    _, val_big = split_by_hash(samples, 0.5)
    assert set(val) < set(val_big)
    assert split_by_hash(samples, 0.0)[1] == []
