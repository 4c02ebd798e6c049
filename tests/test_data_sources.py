"""A folder, a table and a Hugging Face dataset swept a unit at a time give the records (and the data fingerprint)
of the same data given as tensors, with their metadata as ``meta.*`` columns and their class names."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from scipy.io import wavfile

import proactiv as pv
from proactiv.sources import FolderSource, HFSource, TableSource

QUIET = pv.ExecutionSpec(progress=False)
#: 4 instances a unit, 2 grid points each: sources are read block by block
UNITS = pv.UnitsSpec(instances=4, projections=8)
PROJECTION = pv.ProjectionSpec(max_steps=20)
CLASSES = ["cat", "dog", "owl"]
RATE = 8000


@pytest.fixture(autouse=True)
def _one_thread():
    """Tensors this small compute fastest on one thread (a second one waits for a core on a busy machine)."""
    torch.set_num_threads(1)


def _sweep(model, data, grid, out):
    return pv.sweep(model, data, grid, out, projection=PROJECTION, execution=QUIET, units=UNITS)


def _same(a: pv.Run, b: pv.Run, same_data: bool = True):
    order = ["instance", "point"]
    pd.testing.assert_frame_equal(
        a.records.sort_values(order).reset_index(drop=True),
        b.records.sort_values(order).reset_index(drop=True),
    )
    if same_data:
        assert a.header["fingerprints"]["data"] == b.header["fingerprints"]["data"]


def _linear(*shape: int, outputs: int = 3) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(int(np.prod(shape)), outputs)).eval()


# --- images in class folders ------------------------------------------------------------------------------------
def _image_folder(root, size=(8, 8), per_class=4):
    """3 classes × 4 random PNGs, a skipped ``_extra`` folder and a hidden file; the pixels as inputs."""
    rng = np.random.default_rng(0)
    pixels, labels, paths = [], [], []
    for label, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for n in range(per_class):
            array = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            Image.fromarray(array).save(root / name / f"{n}.png")
            pixels.append(torch.from_numpy(array.astype(np.float32) / 255.0).permute(2, 0, 1))
            labels.append(label)
            paths.append(f"{name}/{n}.png")
    (root / "_extra").mkdir()
    Image.fromarray(np.zeros((3, 3, 3), np.uint8)).save(root / "_extra" / "skipped.png")
    (root / "cat" / ".DS_Store").write_bytes(b"\0")
    return torch.stack(pixels), torch.tensor(labels), paths


IMAGE_GRID = pv.Grid([pv.transforms.get("brightness", delta=[0.0, 0.2])])


def test_an_image_folder_gives_the_records_of_its_pixels(tmp_path):
    x, y, paths = _image_folder(tmp_path / "images")
    source = pv.sources.from_folder(tmp_path / "images")
    assert source.class_names == CLASSES and len(source) == 12 and source.input_kind == "image"
    memory = pv.TaskData(inputs=x, labels=y, class_names=CLASSES, metadata=pd.DataFrame({"path": paths}),
                         pixel_range=1.0, input_kind="image")  # fmt: skip
    a = _sweep(_linear(3, 8, 8), memory, IMAGE_GRID, tmp_path / "memory")
    b = _sweep(_linear(3, 8, 8), source, IMAGE_GRID, tmp_path / "folder")
    _same(a, b)
    assert (b.records["meta.path"] == np.asarray(paths)[b.records["instance"]]).all()
    assert set(b.records["label_name"]) == set(CLASSES) and "psnr_t" in b.records  # a pixel range: PSNR
    assert b.config["data_source"]["kind"] == "folder" and b.config["data_source"]["media"] == "image"
    # the run keeps the folder's paths, not its pixels; an analysis reads them again
    assert len(pickle.dumps(source)) < 4000 and torch.equal(b.task().inputs[[7, 2]], x[[7, 2]])


def test_images_of_other_sizes_need_a_size_and_gray_is_one_channel(tmp_path):
    _image_folder(tmp_path / "images")
    Image.fromarray(np.zeros((6, 5, 3), np.uint8)).save(tmp_path / "images" / "owl" / "big.png")
    with pytest.raises(ValueError, match=r"owl/big.png: 6×5 pixels .*, but .*cat/0.png has 8×8 .*pass size="):
        pv.sources.from_folder(tmp_path / "images").scan()
    gray = pv.sources.from_folder(tmp_path / "images", size=4, mode="L")
    assert gray.shape == (13, 1, 4, 4) and 0 <= float(gray[:].min()) and float(gray[:].max()) <= 1


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: None, "no such folder"),
        (lambda root: (root / "_noise").mkdir(parents=True), "no class folders"),
        (lambda root: [(root / c).mkdir(parents=True) for c in "ab"] + [(root / "a" / "x.mp3").write_bytes(b"0")],
         r"no image .* or WAV file in the class folders \(found \.mp3"),
        (lambda root: _image_folder(root) and (root / "empty").mkdir(), r"empty: no \.png.* file .*it is empty"),
        (lambda root: _image_folder(root) and (root / "dog" / "1.png").write_bytes(b"not a png"),
         r"dog/1.png: not a readable image"),
    ],
)  # fmt: skip
def test_a_folder_that_cannot_be_read_is_named(tmp_path, make, message):
    root = tmp_path / "data"
    make(root)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        pv.sources.from_folder(root).scan()


# --- WAV clips in the Speech Commands layout ------------------------------------------------------------------
def _tone(word: int, n: int, samples: int) -> np.ndarray:
    t = np.arange(samples) / RATE
    return (0.5 * np.sin(2 * np.pi * (300 + 200 * word + 30 * n) * t) * 32767).astype(np.int16)


def _speech_commands(root):
    """3 words × 4 clips of 0.1 s at 8 kHz (two of them shorter), by two speakers, with the two split lists and a
    background-noise folder; the padded clips as inputs."""
    waves, labels, paths = [], [], []
    for label, word in enumerate(CLASSES):
        (root / word).mkdir(parents=True)
        for n in range(4):
            pcm = _tone(label, n, 800 if n else 560)
            path = f"{word}/speaker{n % 2}_nohash_{n}.wav"
            wavfile.write(root / path, RATE, pcm)
            waves.append(torch.from_numpy(np.pad(pcm.astype(np.float32) / 32768, (0, 800 - len(pcm)))))
            labels.append(label)
            paths.append(path)
    (root / "_background_noise_").mkdir()
    wavfile.write(root / "_background_noise_" / "noise.wav", RATE, _tone(0, 0, 4000))
    (root / "testing_list.txt").write_text("cat/speaker0_nohash_0.wav\ndog/speaker1_nohash_1.wav\n")
    (root / "validation_list.txt").write_text("owl/speaker0_nohash_2.wav\n")
    order = np.argsort(paths)  # a folder's instances are its files sorted by path
    return torch.stack(waves)[order], torch.tensor(labels)[order], [paths[i] for i in order]


AUDIO_GRID = pv.Grid([pv.transforms.get("gain", gain_db=[0.0, -6.0])])


def test_speech_commands_clips_give_the_records_of_their_waveforms(tmp_path):
    x, y, paths = _speech_commands(tmp_path / "sc")
    source = pv.sources.from_folder(tmp_path / "sc", seconds=0.1)
    assert (source.sample_rate, source.input_kind, source.class_names) == (RATE, "waveform", CLASSES)
    speakers = [p.split("/")[1].split("_nohash_")[0] for p in paths]
    memory = pv.TaskData(inputs=x, labels=y, class_names=CLASSES, sample_rate=RATE, input_kind="waveform",
                         metadata=pd.DataFrame({"path": paths, "speaker": speakers}))  # fmt: skip
    a = _sweep(_linear(800), memory, AUDIO_GRID, tmp_path / "memory")
    b = _sweep(_linear(800), source, AUDIO_GRID, tmp_path / "folder")
    _same(a, b)
    assert set(b.records["meta.speaker"]) == {"speaker0", "speaker1"}
    assert b.schema.input.kind == "waveform" and b.schema.input.sample_rate == RATE


def test_a_speech_commands_split_is_chosen_by_its_lists(tmp_path):
    _speech_commands(tmp_path / "sc")
    split = {
        s: pv.sources.from_folder(tmp_path / "sc", split=s, seconds=0.1)
        for s in ("train", "validation", "test")
    }
    assert split["test"].files == ["cat/speaker0_nohash_0.wav", "dog/speaker1_nohash_1.wav"]
    assert split["validation"].files == ["owl/speaker0_nohash_2.wav"] and len(split["train"]) == 9
    assert (
        split["test"].labels.tolist() == [0, 1] and split["test"].class_names == CLASSES
    )  # every class named
    assert split["test"].metadata.to_dict("list") == {
        "path": split["test"].files,
        "speaker": ["speaker0", "speaker1"],
    }
    with pytest.raises(ValueError, match=r"split='testing': expected one of train, validation, test"):
        pv.sources.from_folder(tmp_path / "sc", split="testing")
    (tmp_path / "sc" / "testing_list.txt").unlink()
    with pytest.raises(ValueError, match="testing_list.txt: missing, so the test split is unknown"):
        pv.sources.from_folder(tmp_path / "sc", split="train")


def test_wav_clips_of_any_depth_are_mono_in_minus_one_to_one_and_one_rate(tmp_path):
    root = tmp_path / "clips"
    (root / "a").mkdir(parents=True)
    stereo = np.stack([np.full(100, 0.5), np.full(100, -0.25)], axis=1).astype(np.float32)
    wavfile.write(root / "a" / "float.wav", RATE, stereo)
    wavfile.write(root / "a" / "pcm32.wav", RATE, np.full(100, -(2**31), np.int32))
    wavfile.write(root / "a" / "pcm8.wav", RATE, np.full(100, 192, np.uint8))
    clips = pv.sources.from_folder(root)
    assert clips.files == ["a/float.wav", "a/pcm32.wav", "a/pcm8.wav"]
    assert clips[:].tolist() == [[0.125] * 100, [-1.0] * 100, [0.5] * 100]
    wavfile.write(root / "a" / "slow.wav", RATE // 2, np.zeros(100, np.int16))
    with pytest.raises(ValueError, match=r"a/slow.wav: sampled at 4000 Hz, expected 8000 Hz"):
        pv.sources.from_folder(root).scan()
    wavfile.write(root / "a" / "slow.wav", RATE, np.zeros(90, np.int16))
    with pytest.raises(
        ValueError, match=r"slow.wav: 90 samples, but .*float.wav has 100 samples: pass seconds="
    ):
        pv.sources.from_folder(root).scan()


# --- tables -----------------------------------------------------------------------------------------------------
def _table(n=24) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(n, 4)).astype(np.float32), columns=["a", "b", "c", "d"])
    frame["state"] = rng.choice(["ok", "hot", "worn"], n)
    frame["site"] = [f"site{i % 3}" for i in range(n)]
    frame["load"] = rng.uniform(0, 1, n)  # a float target of the regression below
    return frame


TABLE_GRID = pv.Grid([pv.transforms.get("gain", gain_db=[0.0, 6.0])])


def test_a_table_gives_the_records_of_its_feature_vectors(tmp_path):
    frame = _table()
    frame.to_csv(tmp_path / "rows.csv", index=False)
    frame.to_parquet(tmp_path / "rows.parquet")
    source = pv.sources.from_table(tmp_path / "rows.csv", label="state", features=["a", "b", "c", "d"],
                                   metadata=["site"])  # fmt: skip
    names = sorted(set(frame.state))
    assert source.class_names == names and source.input_kind == "vector"
    x = torch.tensor(frame[["a", "b", "c", "d"]].to_numpy(np.float32))
    y = torch.tensor([names.index(s) for s in frame.state])
    memory = pv.TaskData(inputs=x, labels=y, class_names=names, metadata=frame[["site"]], input_kind="vector")
    a = _sweep(_linear(4), memory, TABLE_GRID, tmp_path / "memory")
    b = _sweep(_linear(4), source, TABLE_GRID, tmp_path / "csv")
    _same(a, b)
    assert (b.records["meta.site"] == frame.site.to_numpy()[b.records["instance"]]).all()
    # the same rows from Parquet or a DataFrame: the same data; features default to the numeric columns
    parquet = pv.sources.from_table(tmp_path / "rows.parquet", label="state", metadata=["site"])
    assert parquet.features == ["a", "b", "c", "d", "load"]
    _same(b, _sweep(_linear(4), pv.sources.from_table(frame, "state", features=["a", "b", "c", "d"],
                                                      metadata=["site"]), TABLE_GRID, tmp_path / "frame"))  # fmt: skip
    # a file is read again where the source is unpickled, not copied into the run
    kept = pickle.loads(pickle.dumps(source))
    assert kept._rows is None and torch.equal(kept[[3, 1]], x[[3, 1]])


def test_a_float_label_is_a_regression_target(tmp_path):
    frame = _table()
    source = pv.sources.from_table(frame, label="load", features=["a", "b"])
    assert source.class_names is None and source.labels.shape == (24, 1)
    x, y = (
        torch.tensor(frame[["a", "b"]].to_numpy(np.float32)),
        torch.tensor(frame[["load"]].to_numpy(np.float32)),
    )
    _same(_sweep(_linear(2, outputs=1), (x, y), TABLE_GRID, tmp_path / "memory"),
          _sweep(_linear(2, outputs=1), source, TABLE_GRID, tmp_path / "table"))  # fmt: skip


def test_a_bad_table_is_named_by_its_column_and_row(tmp_path):
    frame = _table()
    with pytest.raises(KeyError, match="no column 'weight'"):
        pv.sources.from_table(frame, label="weight")
    frame.loc[5, "b"] = np.nan
    with pytest.raises(ValueError, match="column 'b', row 5 .*a missing value"):
        pv.sources.from_table(frame, label="state")
    with pytest.raises(ValueError, match="column 'site', row 0 .*'site0', not a number"):
        pv.sources.from_table(frame, label="state", features=["a", "site"])
    with pytest.raises(TypeError, match="from_table"):
        pv.sweep(_linear(4), frame, TABLE_GRID, tmp_path / "run")


# --- Hugging Face datasets ---------------------------------------------------------------------------------------
@pytest.fixture
def datasets():
    return pytest.importorskip("datasets")


def test_a_hugging_face_image_dataset_gives_the_records_of_the_same_folder(tmp_path, datasets):
    x, y, paths = _image_folder(tmp_path / "images")
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=CLASSES),
                                  "path": datasets.Value("string")})  # fmt: skip
    ds = datasets.Dataset.from_dict(
        {"image": [str(tmp_path / "images" / p) for p in paths], "label": y.tolist(), "path": paths}, features
    )
    ds.save_to_disk(tmp_path / "saved")
    source = pv.sources.from_hf(tmp_path / "saved", input="image", label="label", metadata=["path"])
    assert source.class_names == CLASSES and (source.input_kind, source.pixel_range) == ("image", 1.0)
    folder = _sweep(_linear(3, 8, 8), pv.sources.from_folder(tmp_path / "images"), IMAGE_GRID, tmp_path / "f")
    _same(folder, _sweep(_linear(3, 8, 8), source, IMAGE_GRID, tmp_path / "hf"))
    assert len(pickle.dumps(source)) < 8000  # a memory-mapped dataset is kept by its path


def test_a_hugging_face_audio_split_is_read_without_ffmpeg(tmp_path, datasets):
    x, y, paths = _speech_commands(tmp_path / "sc")
    clips = [{"bytes": (tmp_path / "sc" / p).read_bytes(), "path": None} for p in paths]
    # made without torchcodec: the encoded bytes, then the column declared audio
    ds = datasets.Dataset.from_dict(
        {
            "audio": clips,
            "word": [CLASSES[i] for i in y],
            "speaker": [p.split("/")[1].split("_nohash_")[0] for p in paths],
        }
    ).cast_column("audio", datasets.Audio(decode=False))
    splits = datasets.DatasetDict({"train": ds.select(range(6)), "test": ds.select(range(6, 12))})
    with pytest.raises(ValueError, match="split='validation'; the dataset's splits are train, test"):
        pv.sources.from_hf(splits, input="audio", label="word", split="validation")
    with pytest.raises(KeyError, match="no column 'label'"):
        pv.sources.from_hf(splits, input="audio", label="label", split="test")
    source = pv.sources.from_hf(
        splits, input="audio", label="word", metadata=["speaker"], split="test", seconds=0.1
    )
    assert (source.class_names, source.sample_rate, source.input_kind) == (["dog", "owl"], RATE, "waveform")
    assert torch.equal(source.labels, torch.tensor([0, 0, 1, 1, 1, 1]))
    memory = pv.TaskData(inputs=x[6:], labels=source.labels, class_names=["dog", "owl"], sample_rate=RATE,
                         metadata=pd.DataFrame({"speaker": ds["speaker"][6:]}))  # fmt: skip
    _same(_sweep(_linear(800), memory, AUDIO_GRID, tmp_path / "memory"),
          _sweep(_linear(800), source, AUDIO_GRID, tmp_path / "hf"))  # fmt: skip


def test_hugging_face_numeric_columns_are_a_vector(tmp_path, datasets):
    frame = _table()
    ds = datasets.Dataset.from_pandas(frame)
    source = pv.sources.from_hf(ds, input=["a", "b", "c", "d"], label="state", metadata=["site"])
    table = pv.sources.from_table(frame, label="state", features=["a", "b", "c", "d"], metadata=["site"])
    _same(_sweep(_linear(4), table, TABLE_GRID, tmp_path / "table"),
          _sweep(_linear(4), source, TABLE_GRID, tmp_path / "hf"))  # fmt: skip
    assert isinstance(source, HFSource) and isinstance(table, TableSource)
    with pytest.raises(TypeError, match="from_hf"):
        pv.sweep(_linear(4), ds, TABLE_GRID, tmp_path / "run")


def test_the_sources_are_found_under_pv_sources():
    assert pv.sources.FolderSource is FolderSource and "from_hf" in pv.sources.__all__
