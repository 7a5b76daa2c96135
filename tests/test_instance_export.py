"""Instance exports: the logged mask AP equals pycocotools' COCOeval on the exported COCO results (crowd regions
included), and the Cityscapes instance export is what the official evaluation reads."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as coco_mask
from pycocotools.cocoeval import COCOeval

from seglab.commands.evaluate import evaluate
from seglab.commands.train import train
from seglab.data.datasets import CityscapesDataset, COCOSegmentation
from seglab.data.datasets.cityscapes_labels import THING_TRAIN_IDS, train_id_to_id_lut
from seglab.data.datasets.coco import load_coco
from seglab.metrics.cityscapes_instance import CityscapesInstanceAP
from seglab.metrics.instance import MaskAveragePrecision
from seglab.runtime.errors import UserError
from seglab.tasks import InstanceSegmentationModule, PanopticDeepLabModule
from seglab.writers.instances import coco_results, write_cityscapes_instances

from tests.helpers import make_cfg
from tests.helpers.cityscapes_tree import write_cityscapes_tree
from tests.helpers.dataset_trees import write_coco_tree

CATEGORIES = {1: "person", 3: "car", 18: "dog"}
UNANNOTATED = {25: "kite"}  # listed in the json, no ground truth: COCOeval leaves it out of the mean


def _rle(mask: np.ndarray) -> dict:
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}


def write_crowded_coco(root: Path, seed: int = 0) -> None:
    """``val2017`` with six 48x64 images of rectangles and ellipses of three categories (some overlapping), crowd
    regions in two of them and none in the last, as COCO json with RLE segmentations."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:48, 0:64]
    images, annotations = [], []
    (root / "val2017").mkdir(parents=True)
    for image_id in range(1, 7):
        file_name = f"{image_id:012d}.jpg"
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(root / "val2017" / file_name)
        images.append({"id": image_id, "file_name": file_name, "height": 48, "width": 64})
        for k in range(int(rng.integers(2, 5)) if image_id < 6 else 0):
            cy, cx, ry, rx = rng.integers(8, 40), rng.integers(8, 56), rng.integers(4, 10), rng.integers(4, 12)
            ellipse = ((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2 <= 1
            box = (abs(ys - cy) <= ry) & (abs(xs - cx) <= rx)
            mask = ellipse if k % 2 else box
            crowd = int(image_id in (2, 4) and k == 0)
            annotations.append({
                "id": 100 * image_id + k, "image_id": image_id, "category_id": int(rng.choice(list(CATEGORIES))),
                "segmentation": _rle(mask), "area": int(mask.sum()), "iscrowd": crowd,
                "bbox": [int(xs[mask].min()), int(ys[mask].min()), int(np.ptp(xs[mask])) + 1, int(np.ptp(ys[mask])) + 1],
            })  # fmt: skip
    categories = [{"id": cid, "name": name, "supercategory": "thing"} for cid, name in {**CATEGORIES, **UNANNOTATED}.items()]
    (root / "annotations").mkdir()
    content = {"images": images, "annotations": annotations, "categories": categories}
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(content))


def imperfect_predictions(instances: dict, shape: tuple[int, int], rng: np.random.Generator) -> dict:
    """Every ground-truth instance (crowds too) shifted by 0-3 pixels, some with the wrong class, one missed,
    duplicates at lower scores, and false positives (also on an image without ground truth), one of a class
    without ground truth anywhere (4): COCOeval has matching, crowds and ranking to do."""
    masks, labels, scores = [], [], []
    for k, (mask, label) in enumerate(zip(instances["masks"].bool(), instances["labels"].tolist())):
        if k == 2:
            continue  # missed
        shifted = torch.roll(mask, shifts=(int(rng.integers(0, 4)), int(rng.integers(0, 4))), dims=(0, 1))
        wrong = rng.random() < 0.2
        masks.append(shifted)
        labels.append(int(rng.choice([1, 2, 3])) if wrong else label)
        scores.append(float(rng.uniform(0.3, 1.0)))
        if rng.random() < 0.5:
            masks.append(torch.roll(mask, shifts=(4, 5), dims=(0, 1)))
            labels.append(label)
            scores.append(float(rng.uniform(0.0, 0.6)))
    false_positive = torch.zeros(shape, dtype=torch.bool)
    false_positive[:6, :6] = True
    masks += [false_positive, false_positive.roll(20, dims=1)]
    labels += [1, 4]
    scores += [0.5, 0.8]
    return {"masks": torch.stack(masks), "labels": torch.tensor(labels), "scores": torch.tensor(scores)}


def cocoeval(annotation_file: Path, results_file: Path) -> COCOeval:
    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth = load_coco(annotation_file)
        evaluation = COCOeval(ground_truth, ground_truth.loadRes(str(results_file)), iouType="segm")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return evaluation


def test_mask_ap_equals_cocoeval_on_the_exported_results_with_crowd_regions(tmp_path):
    write_crowded_coco(tmp_path)
    dataset = COCOSegmentation(tmp_path, "val2017", return_instances=True)
    assert sum(bool(dataset[i]["instances"]["iscrowd"].any()) for i in range(len(dataset))) == 2
    assert len(dataset[5]["instances"]["labels"]) == 0
    metric = MaskAveragePrecision(dataset.class_names, [1, 2, 3, 4])
    rng = np.random.default_rng(1)
    results = []
    for index, image_id in enumerate(dataset.image_ids):
        sample = dataset[index]
        truth = sample["instances"]
        prediction = imperfect_predictions(truth, sample["mask"].shape, rng)
        metric.update_instances([prediction], [truth])
        results += coco_results(prediction, image_id, dataset.class_to_category)
    assert {r["category_id"] for r in results} == {1, 3, 18, 25}  # the json's own ids
    (tmp_path / "predictions.json").write_text(json.dumps(results))
    ours = metric.scores()
    theirs = cocoeval(dataset.annotation_file, tmp_path / "predictions.json")
    assert 0.1 < ours["mAP"] < 0.9
    assert ours["mAP"] == pytest.approx(theirs.stats[0], abs=1e-4)
    assert ours["mAP_50"] == pytest.approx(theirs.stats[1], abs=1e-4)
    assert ours["mAP_75"] == pytest.approx(theirs.stats[2], abs=1e-4)
    precision = theirs.eval["precision"][:, :, :, 0, 2]  # IoU x recall x category, area all, 100 detections
    for k, category_id in enumerate(theirs.params.catIds):
        values = precision[:, :, k]
        expected = values[values > -1].mean() if (values > -1).any() else float("nan")
        assert ours[f"AP/{({**CATEGORIES, **UNANNOTATED})[category_id]}"] == pytest.approx(expected, abs=1e-4, nan_ok=True)
    assert math.isnan(ours["AP/kite"])


# A custom dataset in COCO's format: three categories with gapped ids, the classes read from the json.
GAPPED = {3: "person", 7: "car", 12: "sign"}


@pytest.fixture(scope="module")
def coco_checkpoint(tmp_path_factory):
    """A Panoptic-DeepLab checkpoint trained two steps on a COCO-format tree with the categories 3, 7 and 12, with
    no class option; and its training metrics."""
    root = tmp_path_factory.mktemp("coco")
    written = write_coco_tree(root, GAPPED, (3, 7, 12))
    run_dir = tmp_path_factory.mktemp("coco_run")
    metrics = train(make_cfg(
        run_dir, "experiment=panoptic_deeplab", "data=coco", f"data.root={root}", "model/backbone=resnet18",
        "model.backbone.weights=null", "data.batch_size=2", "data.num_workers=0", "data.crop_size=[32,32]",
        "data.train_transforms.transforms.0.min_size=36", "data.train_transforms.transforms.0.max_size=40",
        "trainer.max_epochs=1", "trainer.num_sanity_val_steps=0", "trainer.accelerator=cpu", "logger=none",
    ))  # fmt: skip
    return root, written, run_dir / "checkpoints" / "best.ckpt", metrics


def test_a_coco_format_dataset_trains_on_its_own_categories(coco_checkpoint):
    *_, metrics = coco_checkpoint
    assert {f"val/{score}/{name}" for name in GAPPED.values() for score in ("IoU", "AP")} <= set(metrics)
    assert "val/IoU/background" in metrics and not any("toothbrush" in key for key in metrics)


def without_panoptic_maps(monkeypatch) -> None:
    """Score mask AP only: the stand-in predictions below have no panoptic or semantic maps."""
    monkeypatch.setattr(PanopticDeepLabModule, "update_metrics", InstanceSegmentationModule.update_metrics)
    monkeypatch.setattr(PanopticDeepLabModule, "compute_scores", InstanceSegmentationModule.compute_scores)


def test_eval_exports_coco_results_that_cocoeval_scores_as_logged(coco_checkpoint, tmp_path, monkeypatch):
    root, written, checkpoint, _ = coco_checkpoint
    # The two-step model finds nothing; predict each object shifted by a pixel plus a false positive instead,
    # so the whole path (batches, metric, export, ids) is checked on a score strictly between 0 and 1.
    truth = {item["file"].stem: item["objects"] for item in written["val2017"]}
    category_to_class = COCOSegmentation(root, "val2017").category_to_class
    sizes = {Image.open(item["file"]).size[::-1]: item["file"].stem for item in written["val2017"]}

    def predict(module, images):
        objects = [obj for obj in truth[sizes[tuple(images.shape[-2:])]] if not obj[2]]
        masks = [torch.roll(torch.from_numpy(mask).bool(), 1, dims=1) for mask, _, _ in objects]
        masks.append(torch.zeros(images.shape[-2:], dtype=torch.bool))
        masks[-1][:4, :4] = True
        labels = [category_to_class[category] for _, category, _ in objects] + [3]
        scores = torch.linspace(0.9, 0.2, len(masks))
        return [{"masks": torch.stack(masks), "labels": torch.tensor(labels), "scores": scores}]

    monkeypatch.setattr(PanopticDeepLabModule, "predict_instances", predict)
    without_panoptic_maps(monkeypatch)
    export_dir = tmp_path / "export"
    metrics = evaluate(make_cfg(tmp_path, f"ckpt_path={checkpoint}", "export.format=coco", f"export.dir={export_dir}", config_name="eval"))
    results = json.loads((export_dir / "predictions.json").read_text())
    assert {r["image_id"] for r in results} == {139, 140} and {r["category_id"] for r in results} == {3, 7, 12}
    theirs = cocoeval(root / "annotations" / "instances_val2017.json", export_dir / "predictions.json")
    written_metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert 0.0 < written_metrics["mAP"] < 1.0
    assert written_metrics["mAP"] == pytest.approx(theirs.stats[0], abs=1e-4) == metrics["mAP"]
    for k, category_id in enumerate(theirs.params.catIds):
        assert written_metrics["AP"][GAPPED[category_id]] == pytest.approx(theirs.eval["precision"][:, :, k, 0, 2].mean(), abs=1e-4)


def test_coco_export_of_padded_batches_is_one_clear_error(coco_checkpoint, tmp_path):
    """The two val images differ in size: a batch of both pads one, and its padding would count in the scores."""
    checkpoint = coco_checkpoint[2]
    with pytest.raises(UserError, match="evaluate with data.val_batch_size=1"):
        evaluate(make_cfg(tmp_path, f"ckpt_path={checkpoint}", "export.format=coco", "data.val_batch_size=2", config_name="eval"))


def official_instance_evaluation(
    ground_truth: list[Path], predictions: list[Path], work: Path, monkeypatch, min_region_size: int = 10
) -> dict:
    """cityscapesscripts' evalInstanceLevelSemanticLabeling on our files; for the trees of 8x8 instances its
    100-pixel minimum instance size is lowered to 10 by default."""
    from cityscapesscripts.evaluation import evalInstanceLevelSemanticLabeling as official

    # cityscapesscripts 2.3 predates numpy 2: it calls numpy.in1d (removed in 2.4) and writes numpy integers
    # with json's default encoder.
    monkeypatch.setattr(np, "in1d", np.isin, raising=False)
    dump = lambda data, path: Path(path).write_text(json.dumps(data, default=lambda o: o.item() if hasattr(o, "item") else o.__dict__))  # noqa: E731
    monkeypatch.setattr(official, "writeDict2JSON", dump)
    monkeypatch.chdir(work)  # it writes matches.json into the working directory
    args = official.args
    monkeypatch.setattr(args, "minRegionSizes", np.array([min_region_size] * 3))
    monkeypatch.setattr(args, "gtInstancesFile", str(work / "gtInstances.json"))
    monkeypatch.setattr(args, "exportFile", str(work / "result.json"))
    monkeypatch.setattr(args, "predictionPath", str(predictions[0].parent.resolve()))
    monkeypatch.setattr(args, "quiet", True)
    return official.evaluateImgLists([str(p) for p in predictions], [str(p) for p in ground_truth], args)["averages"]


def test_cityscapes_export_is_read_by_the_official_instance_evaluation(tmp_path, monkeypatch):
    root = write_cityscapes_tree(tmp_path / "cityscapes", size=(64, 128))
    dataset = CityscapesDataset(root, "val", return_instances=True)
    label_ids = train_id_to_id_lut()
    for drop_cars, folder in ((False, "perfect"), (True, "no_cars")):
        txts = []
        for index in range(len(dataset)):
            truth = dataset[index]["instances"]
            keep = ~truth["iscrowd"] & ((truth["labels"] != 13) if drop_cars else True)  # 13: car
            prediction = {"masks": truth["masks"][keep].bool(), "labels": truth["labels"][keep], "scores": torch.ones(int(keep.sum()))}
            txts.append(write_cityscapes_instances(prediction, dataset.sample_name(index), tmp_path / folder, label_ids))
        lines = txts[0].read_text().splitlines()
        mask_file, label_id, score = lines[0].split(" ")
        assert (txts[0].parent / mask_file).is_file() and int(label_id) in range(24, 34) and float(score) == 1.0
        ground_truth = [dataset._instance_path(label) for _, label in dataset.samples]
        averages = official_instance_evaluation(ground_truth, txts, tmp_path, monkeypatch)
        classes = averages["classes"]
        if drop_cars:
            assert classes["car"]["ap"] == 0.0 and classes["person"]["ap"] == pytest.approx(1.0)
        else:
            assert averages["allAp"] == pytest.approx(1.0)


def imperfect_cityscapes_predictions(sample: dict, rng: np.random.Generator) -> dict:
    """Predictions for a Cityscapes sample with every case the official instance evaluation tells apart: each
    instance shifted by 0-4 pixels (IoUs across the thresholds), some missed, some with the wrong class, some
    found twice; one on a group region of its class and one on void (both ignored), a false positive, an empty
    mask and a stuff class (both skipped). Scores are distinct at the export's six decimals."""
    truth = sample["instances"]
    masks, labels = [], []
    for mask, label, crowd in zip(truth["masks"].bool(), truth["labels"].tolist(), truth["iscrowd"].tolist()):
        if crowd:
            masks.append(mask)  # the group of its class: ignored
            labels.append(label)
        elif rng.random() < 0.85:
            masks.append(torch.roll(mask, shifts=(int(rng.integers(0, 5)), int(rng.integers(0, 3))), dims=(0, 1)))
            labels.append(int(rng.choice([11, 13, 18])) if rng.random() < 0.1 else label)
            if rng.random() < 0.3:  # a duplicate
                masks.append(torch.roll(mask, shifts=(1, 1), dims=(0, 1)))
                labels.append(label)
    ids = sample["instance_ids"]
    extra = torch.zeros(3 + len(THING_TRAIN_IDS), *ids.shape, dtype=torch.bool)
    extra[0] = ids == 0  # the unlabeled pixels (void): ignored
    extra[2, :8, :8] = True  # a road "instance": skipped; extra[1] is an empty mask: skipped
    # One false positive of each class on a block of an evaluated stuff class (road .. sky, label ids 7-23), so
    # every class keeps a ranked prediction (the official code fails on a class whose every prediction is ignored).
    stuff = torch.isin(ids, torch.tensor([7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23])).unfold(0, 16, 16).unfold(1, 16, 16)
    y, x = (16 * torch.nonzero(stuff.flatten(2).all(dim=2))[0]).tolist()
    for k in range(len(THING_TRAIN_IDS)):
        extra[3 + k, y + 4 * (k // 4) : y + 4 * (k // 4) + 4, x + 4 * (k % 4) : x + 4 * (k % 4) + 4] = True
    ranks = np.concatenate([rng.permutation(len(masks)) + len(extra), rng.permutation(len(extra))])  # extras last
    masks += list(extra)
    labels += [13, 11, 0, *THING_TRAIN_IDS]  # an empty person, a road "instance"
    scores = torch.from_numpy((ranks + 1) / (len(ranks) + 1)).float()
    return {"masks": torch.stack(masks), "labels": torch.tensor(labels), "scores": scores}


def test_cityscapes_ap_equals_the_official_instance_evaluation(tmp_path, monkeypatch):
    # 16x16 blocks, half the instance blocks cut in four: instances of 256 and 64 pixels around the 100-pixel minimum.
    root = write_cityscapes_tree(tmp_path / "cityscapes", per_city=4, block=16, quarters=0.5)
    dataset = CityscapesDataset(root, "val", return_instances=True, instance_ids=True)
    metric = CityscapesInstanceAP()
    rng = np.random.default_rng(0)
    txts, sizes = [], []
    for index in range(len(dataset)):
        sample = dataset[index]
        sizes += sample["instances"]["masks"][~sample["instances"]["iscrowd"]].flatten(1).sum(dim=1).tolist()
        prediction = imperfect_cityscapes_predictions(sample, rng)
        metric.update([prediction], sample["instance_ids"][None])
        txts.append(write_cityscapes_instances(prediction, dataset.sample_name(index), tmp_path / "results", train_id_to_id_lut()))
    assert {64, 256} <= set(sizes)
    ground_truth = [dataset._instance_path(label) for _, label in dataset.samples]
    theirs = official_instance_evaluation(ground_truth, txts, tmp_path, monkeypatch, min_region_size=100)
    ours = metric.scores()
    assert 0.1 < ours["AP_cityscapes"] < 0.9 and ours["AP50_cityscapes"] > ours["AP_cityscapes"]
    assert ours["AP_cityscapes"] == pytest.approx(theirs["allAp"], abs=1e-4)
    assert ours["AP50_cityscapes"] == pytest.approx(theirs["allAp50%"], abs=1e-4)
    per_class = metric.compute()
    for k, name in enumerate(metric.class_names):
        assert per_class[k].mean().item() == pytest.approx(theirs["classes"][name]["ap"], abs=1e-4, nan_ok=True), name
        assert per_class[k, 0].item() == pytest.approx(theirs["classes"][name]["ap50%"], abs=1e-4, nan_ok=True), name
    assert per_class.isnan().any() and not per_class.isnan().all()  # a class without ground truth: no AP


def test_cityscapes_ap_of_missed_ignored_and_absent_instances():
    ids = torch.zeros(1, 32, 32, dtype=torch.int32)
    ids[0, :16, :16] = 26001  # a 256-pixel car
    ids[0, 16:24, :8] = 26002  # a 64-pixel car: under the minimum size, never missed
    ids[0, 16:, 16:] = 24  # a group of persons
    ids[0, :16, 16:] = 7  # road
    no_ground_truth = CityscapesInstanceAP()
    road = {"masks": (ids[0] == 7)[None], "labels": torch.tensor([13]), "scores": torch.tensor([0.9])}
    no_ground_truth.update([road], torch.full_like(ids, 7))
    assert all(math.isnan(v) for v in no_ground_truth.scores().values())  # no class has ground truth
    metric = CityscapesInstanceAP()
    # The car is missed; the only car prediction lies on void, the only person one on the group: both ignored,
    # so nothing is ranked (the official code stops with an error here): car AP 0, person has no ground truth.
    ignored = {"masks": torch.stack([ids[0] == 0, ids[0] == 24]), "labels": torch.tensor([13, 11])}
    ignored["scores"] = torch.tensor([0.8, 0.7])
    metric.update([ignored], ids)
    assert metric.scores() == {"AP_cityscapes": 0.0, "AP50_cityscapes": 0.0}
    found = {"masks": (ids[0] == 26001)[None], "labels": torch.tensor([13]), "scores": torch.tensor([0.5])}
    metric.update([found], ids)
    assert metric.scores()["AP50_cityscapes"] == pytest.approx(0.5)  # one of two cars found, at precision 1


def test_eval_exports_the_cityscapes_instance_format_and_logs_the_official_ap(tmp_path, monkeypatch):
    root = write_cityscapes_tree(tmp_path / "cityscapes", per_city=1, block=16, quarters=0.5)
    train(make_cfg(
        tmp_path / "run", "experiment=panoptic_deeplab", "data=cityscapes", f"data.root={root}", "model/backbone=resnet18",
        "model.backbone.weights=null", "data.crop_size=[32,64]", "data.num_workers=0", "trainer.max_epochs=1",
        "trainer.num_sanity_val_steps=0", "trainer.accelerator=cpu", "logger=none",
    ))  # fmt: skip
    # The two-step model finds nothing: predict the one val image's instances imperfectly instead.
    sample = CityscapesDataset(root, "val", return_instances=True, instance_ids=True)[0]
    prediction = imperfect_cityscapes_predictions(sample, np.random.default_rng(0))
    monkeypatch.setattr(PanopticDeepLabModule, "predict_instances", lambda module, images: [prediction])
    without_panoptic_maps(monkeypatch)
    checkpoint = tmp_path / "run" / "checkpoints" / "best.ckpt"
    export = tmp_path / "export"
    options = [f"ckpt_path={checkpoint}", "export.format=cityscapes", f"export.dir={export}"]
    metrics = evaluate(make_cfg(tmp_path / "eval", *options, config_name="eval"))
    txts = sorted(export.glob("*.txt"))
    assert [t.stem for t in txts] == ["frankfurt_000000_000019"]
    lines = txts[0].read_text().splitlines()
    assert len(lines) == len(prediction["masks"])
    mask_file, label_id, score = lines[0].split()
    assert int(label_id) == train_id_to_id_lut()[int(prediction["labels"][0])]
    assert float(score) == pytest.approx(float(prediction["scores"][0]), abs=1e-6)
    assert np.array_equal(np.asarray(Image.open(txts[0].parent / mask_file)) > 0, prediction["masks"][0].numpy())
    ground_truth = [CityscapesDataset._instance_path(CityscapesDataset(root, "val").samples[0][1])]
    theirs = official_instance_evaluation(ground_truth, txts, tmp_path, monkeypatch, min_region_size=100)
    assert 0.0 < metrics["AP_cityscapes"] < 1.0
    assert metrics["AP_cityscapes"] == pytest.approx(theirs["allAp"], abs=1e-4)
    assert metrics["AP50_cityscapes"] == pytest.approx(theirs["allAp50%"], abs=1e-4)
