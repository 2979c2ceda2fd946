"""Unit tests of the dashboard's app-side helpers: the augmentation spec builder and the diff HTML."""

from __future__ import annotations

import sys
from pathlib import Path

import albumentations as A
import numpy as np
import pytest

APP_DIR = Path(__file__).resolve().parents[1] / "app"
if str(APP_DIR) not in sys.path:  # streamlit puts app/ on sys.path; pytest does not
    sys.path.insert(0, str(APP_DIR))

import augment_spec  # noqa: E402
import widgets  # noqa: E402
from ocr_core.augment import as_replay, default_pipeline, describe_replay, pipeline_to_dict  # noqa: E402


def all_on() -> dict:
    settings = augment_spec.default_settings()
    for entry in settings["transforms"].values():
        entry["enabled"], entry["p"] = True, 1.0
    return settings


def test_spec_covers_the_required_transforms():
    names = {t.name for t in augment_spec.SPEC}
    assert {"Perspective", "Affine", "MotionBlur", "GaussNoise", "ColorJitter", "RandomBrightnessContrast",
            "Emboss", "PixelDropout", "CoarseDropout", "Downscale", "ImageCompression",
            "BottomEdgeOcclusion"} <= names
    for spec in augment_spec.SPEC:
        for param in spec.params:
            if param.kind in ("float", "int", "float_range", "int_range", "gray"):
                values = param.default if isinstance(param.default, tuple) else (param.default,)
                assert all(param.low <= v <= param.high for v in values), (spec.name, param.name)


def test_default_settings_build_the_training_default_pipeline():
    built = augment_spec.build_pipeline(augment_spec.default_settings())
    assert pipeline_to_dict(built) == pipeline_to_dict(default_pipeline())


def test_every_transform_builds_and_runs_on_a_plate_crop():
    pipeline = augment_spec.build_pipeline(all_on())
    assert len(pipeline.transforms) == len(augment_spec.SPEC)
    image = np.random.default_rng(0).integers(0, 255, (32, 128, 3), dtype=np.uint8)
    result = as_replay(pipeline, seed=1)(image=image)
    assert result["image"].shape == (32, 128, 3) and result["image"].dtype == np.uint8
    lines = augment_spec.format_draw(describe_replay(result["replay"]))
    assert len(lines) == len(augment_spec.SPEC)
    assert any(line.startswith("ColorJitter: brightness=") for line in lines)
    assert all("array_shape" not in line for line in lines)


def test_changing_a_widget_value_changes_the_built_transform():
    state = augment_spec.settings_to_widget_state(all_on())
    state[augment_spec.widget_key("Perspective", "scale")] = (0.2, 0.3)
    state[augment_spec.widget_key("PixelDropout", "drop_value")] = 0
    state[augment_spec.widget_key("Emboss", "enabled")] = False
    settings = augment_spec.settings_from_widget_state(state)
    built = {t.__class__.__name__: t for t in augment_spec.build_pipeline(settings).transforms}
    assert "Emboss" not in built
    assert tuple(built["Perspective"].scale) == (0.2, 0.3)
    assert tuple(built["PixelDropout"].drop_value) == (0.0, 0.0, 0.0)


@pytest.mark.filterwarnings("ignore:Argument\\(s\\) .* are not valid for transform RGBShift")
def test_settings_round_trip_through_a_saved_pipeline(tmp_path):
    from ocr_core.augment import load_pipeline, save_pipeline

    settings = all_on()
    settings["transforms"]["Blur"]["enabled"] = False
    settings["transforms"]["ImageCompression"]["params"]["compression_type"] = "webp"
    path = tmp_path / "lab.json"
    save_pipeline(augment_spec.build_pipeline(settings), path)
    loaded, extras = augment_spec.settings_from_pipeline(load_pipeline(path))
    assert extras == []
    for name, entry in settings["transforms"].items():
        if entry["enabled"]:
            assert loaded["transforms"][name] == entry, name
        else:
            assert not loaded["transforms"][name]["enabled"], name


def test_unknown_or_differently_configured_transforms_are_kept_verbatim():
    pipeline = A.Compose([A.Emboss(p=0.2), A.Perspective(scale=(0.1, 0.2), border_mode=1, p=1.0),
                          A.OneOf([A.Blur(), A.MedianBlur()]), A.Emboss()])
    settings, extras = augment_spec.settings_from_pipeline(pipeline)
    assert extras == ["Perspective", "OneOf", "Emboss"]
    assert settings["transforms"]["Emboss"]["enabled"] and settings["transforms"]["Emboss"]["p"] == 0.2
    assert not settings["transforms"]["Perspective"]["enabled"]
    rebuilt = augment_spec.build_pipeline(settings)
    assert [t.__class__.__name__ for t in rebuilt.transforms] == ["Emboss", "Perspective", "OneOf", "Emboss"]
    assert rebuilt.transforms[1].border_mode == 1


def test_to_widget_value_clamps_and_reads_affine_axes():
    rotate = next(p for p in augment_spec.SPEC_BY_NAME["Affine"].params if p.name == "scale")
    assert augment_spec.to_widget_value(rotate, {"x": (0.1, 3.0), "y": (1, 1)}) == (0.5, 1.5)
    gray = next(p for p in augment_spec.SPEC_BY_NAME["CoarseDropout"].params if p.kind == "gray")
    assert augment_spec.to_widget_value(gray, [10, 20, 30]) == 20


def test_unknown_widget_kind_is_refused():
    with pytest.raises(ValueError):
        augment_spec.Param("x", "colour-wheel", 0)


def test_diff_html_colours_each_edit_kind_and_escapes():
    html = widgets.diff_html("皖A<12", "皖B<123")
    sub_bg, ins_bg = widgets.DIFF_COLOURS["substitution"][0], widgets.DIFF_COLOURS["insertion"][0]
    assert html.count(sub_bg) == 2  # A -> B on both rows
    assert ins_bg in html  # the extra 3
    assert "&lt;" in html and "<12" not in html
    assert "皖" in html
    deleted = widgets.diff_html("AB", "A")
    assert widgets.DIFF_COLOURS["deletion"][0] in deleted and "line-through" in deleted
    assert "ε" in deleted


def test_diff_html_of_a_correct_reading_has_no_colours():
    html = widgets.diff_html("沪C8GK31", "沪C8GK31")
    assert all(bg not in html for bg, _ in widgets.DIFF_COLOURS.values())


def test_reading_html_marks_matches_and_misreads():
    assert "✓" in widgets.reading_html("AB1", "AB1")
    wrong = widgets.reading_html("AB1", "A81")
    assert "✓" not in wrong and widgets.DIFF_COLOURS["substitution"][0] in wrong


def test_card_html_shows_cer_and_confidence():
    html = widgets.card_html({"label": "AB", "pred": "A", "cer": 0.5, "confidence": 0.912, "sample": 7})
    assert "0.500" in html and "0.912" in html and "#7" in html


def test_card_html_leaves_out_a_confidence_the_predictions_do_not_have():
    html = widgets.card_html({"label": "AB", "pred": "A", "cer": 0.5, "confidence": float("nan"), "sample": 7})
    assert "0.500" in html and "conf" not in html and "nan" not in html


def test_the_served_glyph_font_is_the_renderers_font() -> None:
    # app/static must hold a copy (Streamlit refuses links that leave the folder); keep it the same file.
    from ocr_core.data.synth import FONT_PATH

    served = Path(__file__).resolve().parents[1] / "app" / "static" / FONT_PATH.name
    assert served.read_bytes() == FONT_PATH.read_bytes()


def test_the_shipped_glyph_font_has_one_family_name_everywhere():
    # The family is named in the theme (which registers the font file), the plots and the report; a rename
    # in one place would silently drop the Chinese glyphs where no CJK font is installed.
    import tomllib

    from ocr_core import report

    theme = tomllib.loads((APP_DIR.parent / ".streamlit" / "config.toml").read_text(encoding="utf-8"))["theme"]
    family = theme["fontFaces"][0]["family"]
    assert family == report._GLYPH_FONT
    assert family in [name.strip() for name in theme["font"].split(",")]
    assert family in [name.strip() for name in widgets.PLOT_FONT.split(",")]
