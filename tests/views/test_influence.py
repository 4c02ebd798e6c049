"""Influential training examples, drawn from hand-made tables: per explained input, bars of the proponents (up,
green) and opponents (down, red) strongest first; a table row per example with its metadata, a flag where the
model disagrees with the label and a player or thumbnail; thumbnails scaled from the run's value range."""

import base64
import io
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from proactiv.schema import RunSchema, input_spec
from proactiv.views.influence import (
    OPPOSE,
    SUPPORT,
    describe,
    example_media,
    examples_html,
    influence_figure,
    png_data_uri,
)


def _png(uri: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))


def _examples() -> pd.DataFrame:
    return pd.DataFrame({
        "on": ["x_t"] * 4 + ["x_proj"] * 2, "target_name": ["no"] * 4 + ["yes"] * 2,
        "role": ["proponent", "proponent", "opponent", "opponent", "proponent", "opponent"],
        "rank": [1, 2, 1, 2, 1, 1], "train_index": [7, 3, 9, 1, 7, 2], "score": [0.9, 0.4, -0.8, -0.1, 0.5, -0.3],
        "label_name": ["no", "no", "yes", "yes", "yes", "no"], "pred_name": ["no", "yes", "yes", "yes", "yes", "no"],
        "meta.voice": ["v1", "v2", "v3", None, "v1", "v0"],
    })  # fmt: skip


def test_bars_per_explained_input_support_up_and_oppose_down():
    fig = influence_figure(_examples())
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["xT → no (its prediction)", "x̂T → yes (the desired class)"]
    support, oppose = fig.data[:2]
    assert (support.marker.color, oppose.marker.color) == (SUPPORT, OPPOSE)
    assert list(support.x) == ["p1: #7 no", "p2: #3 no"] and list(support.y) == [0.9, 0.4]
    assert list(oppose.y) == [-0.8, -0.1] and list(oppose.hovertext) == ["voice: v3", ""]
    assert [t.showlegend for t in fig.data] == [True, True, False, False]  # one legend entry per role
    assert (
        influence_figure(_examples().iloc[:0]).layout.annotations[0].text
        == "no influential training examples"
    )


def test_a_table_row_per_example_flags_where_the_model_disagrees():
    page = examples_html(
        _examples().iloc[:2], media=[("image", "data:image/png;base64,AA"), None], why="a <note>"
    )
    assert page.startswith("<p class='note'>a &lt;note&gt;</p><table class='influence'>")
    assert "<th>model says</th>" in page and page.count("<tr><td>") == 2
    first, second = page.split("<tr><td>")[1:]
    assert (
        "<td>#7</td><td>no</td><td>no</td><td>voice: v1</td>" in first and "<img src='data:image/png" in first
    )
    assert (
        "<td class='disagree'>yes</td>" in second and "<img" not in second
    )  # labelled no, the model says yes
    plain = examples_html(_examples().drop(columns=["pred_name"]).iloc[:1])
    assert "model says" not in plain and "class='note'" not in plain
    assert describe({"meta.voice": "v1", "meta.word": "", "meta.rate": np.nan, "score": 1}) == "voice: v1"


def test_thumbnails_scale_from_the_value_range():
    image = np.array([[0.0, 0.5], [1.0, 2.0]])
    assert _png(png_data_uri(image, (0.0, 1.0))).tolist() == [[0, 128], [255, 255]]  # clipped above the range
    assert _png(png_data_uri(image[None])).tolist() == [[0, 64], [128, 255]]  # its own range; (1, H, W) too
    with pytest.raises(ValueError, match=r"a 2-D image, got shape \(2, 2, 2\)"):
        png_data_uri(np.zeros((2, 2, 2)))


def test_media_follow_the_runs_schema():
    training = SimpleNamespace(raw=lambda indices: [torch.full((1, 2, 2), float(i) / 10) for i in indices])
    image = RunSchema(target="label", input=input_spec("image", (1, 2, 2), value_range=(0, 1)))
    media = example_media(image, training, [1, 5])
    assert [kind for kind, _ in media] == ["image", "image"] and _png(media[1][1]).tolist() == [
        [128, 128]
    ] * 2
    sound = RunSchema(target="label", input=input_spec("waveform", (2,), sample_rate=8000))
    assert [kind for kind, _ in example_media(sound, training, [1])] == ["audio"]
    assert example_media(RunSchema(target="label", input=input_spec("vector", (4,))), training, [1]) is None
