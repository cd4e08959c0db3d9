#!/usr/bin/env python3
"""Make the COCO-evaluation fixtures of tests/eval/ with pycocotools.

Usage: python3 tools/reference/make_cocoeval_fixtures.py [OUT_DIR]
       (default OUT_DIR: tests/fixtures/eval; needs numpy and pycocotools)

For every case NAME it writes, into OUT_DIR:
  NAME.gt.json        a COCO instances file (images, annotations, categories),
                      one annotation per line
  NAME.res.json       a results list [{"image_id", "category_id", "bbox", "score"}],
                      one detection per line
  NAME.expected.json  what pycocotools' COCOeval(gt, gt.loadRes(res), 'bbox')
                      gives after evaluate/accumulate/summarize:
                        "stats":    the 12 numbers (floats written with repr, so
                                    they read back as the same doubles)
                        "summary":  the 12 lines summarize() printed
                        "cat_ids":  the GT category ids, sorted
                        "cat_ap":   per category mean of precision[:, :, k, 0, -1]
                                    over entries > -1 (-1 if none): AP@[.5:.95],
                                    area all, maxDets 100, as DETR/detectron2 report it
                        "cat_ap50": the same over precision[0, :, k, 0, -1]
                        "img_ids":  (only if set) params.imgIds used for this case
and index.json: {"cases": [NAME, ...]}.

Cases cover crowd GT (union = detection area, many detections absorbed), GT
areas and detection areas exactly on the small/medium/large borders (1024,
9216), more than 100 detections per image and category, tied scores (within
and across images), categories with GT but no detections and with detections
but no GT, detections of categories missing from the GT file, images with only
GT or only detections, IoU exactly at a threshold (0.5, 0.75, and 0.9 against
numpy's 0.8999999999999999, hit exactly through a crowd region), greedy matching by score, later-GT-wins IoU ties,
an "ignore" field that pycocotools overwrites, a params.imgIds subset, and
summary numbers of -1 (area ranges without GT).
All annotation ids are >= 1 (pycocotools mishandles a GT id of 0).
"""
import contextlib
import io
import json
import os
import random
import sys

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def dump_lines(obj_list):
    return "[\n" + ",\n".join(json.dumps(o) for o in obj_list) + "\n]\n"


def write_gt(path, images, anns, cats):
    with open(path, "w") as f:
        f.write('{"images": ' + dump_lines(images) + ',\n"categories": ' + dump_lines(cats) +
                ',\n"annotations": ' + dump_lines(anns) + "}\n")


def img(i, w=640, h=480):
    return {"id": i, "file_name": "%012d.jpg" % i, "width": w, "height": h}


def cat(i, name):
    return {"id": i, "name": name, "supercategory": "thing"}


def det(image_id, cat_id, bbox, score):
    return {"image_id": image_id, "category_id": cat_id, "bbox": bbox, "score": score}


class Case:
    """A case being made: its images and categories, GT annotations (ids from 1) and detections."""

    def __init__(self, images, cats):
        self.images, self.cats, self.anns, self.dets = images, cats, [], []

    def add(self, image_id, cat_id, bbox, area=None, iscrowd=0, **extra):
        a = {"id": len(self.anns) + 1, "image_id": image_id, "category_id": cat_id, "bbox": bbox,
             "area": bbox[2] * bbox[3] if area is None else area, "iscrowd": iscrowd}
        a.update(extra)
        self.anns.append(a)

    def det(self, image_id, cat_id, bbox, score):
        self.dets.append(det(image_id, cat_id, bbox, score))

    def found(self, image_id, cat_id, bbox, score, **gt):
        """A GT box (add's keywords in gt) and a detection of exactly that box."""
        self.add(image_id, cat_id, bbox, **gt)
        self.det(image_id, cat_id, bbox, score)

    def dict(self):
        return dict(images=self.images, anns=self.anns, cats=self.cats, dets=self.dets)


# ---------------------------------------------------------------- hand-made cases

def case_handmade():
    fx = Case([img(i) for i in (1, 2, 3, 4, 5, 6, 7)], [cat(1, "cat"), cat(2, "dog"), cat(3, "bird"), cat(4, "fish")])
    # image 1: IoU exactly 0.5, 0.75 and 0.9; greedy by score
    fx.add(1, 1, [10, 10, 100, 100])                     # large
    fx.det(1, 1, [10, 10, 100, 50], 0.9)          # IoU 0.5
    fx.det(1, 1, [10, 10, 100, 75], 0.8)          # IoU 0.75
    fx.add(1, 1, [200, 10, 100, 100])
    fx.det(1, 1, [200, 10, 100, 90], 0.7)         # IoU 0.9 >= numpy's 0.8999999999999999
    # two GT equally overlapped (IoU 0.5 each): the later GT wins the tie
    fx.add(1, 2, [0, 200, 50, 50], area=900.0)           # small by its area field
    fx.add(1, 2, [50, 200, 50, 50], area=5000.0)         # medium by its area field
    fx.det(1, 2, [0, 200, 100, 50], 0.6)
    fx.det(1, 2, [0, 200, 100, 50], 0.6)          # tied score, same box
    # greedy: the better-scoring detection takes the GT at low thresholds
    fx.add(1, 1, [500, 100, 100, 100])
    fx.det(1, 1, [500, 100, 100, 60], 0.95)       # IoU 0.6
    fx.det(1, 1, [500, 100, 100, 95], 0.85)       # IoU 0.95
    # image 2: GT only (a bird: a category with GT and no detections at all)
    fx.add(2, 1, [50, 50, 40, 40])
    fx.add(2, 3, [300, 300, 60, 40])
    # image 3: detections only, incl. a category without GT (fish) and one not in the GT file (7)
    fx.det(3, 1, [10, 10, 30, 30], 0.99)
    fx.det(3, 4, [10, 10, 30, 30], 0.5)
    fx.det(3, 7, [10, 10, 30, 30], 0.97)
    # image 4: a crowd region absorbing several detections, a GT inside it, "ignore" overwritten
    fx.add(4, 1, [0, 0, 300, 300], iscrowd=1, area=60000.0)
    fx.add(4, 1, [20, 20, 60, 60])
    fx.det(4, 1, [22, 22, 58, 58], 0.95)
    fx.det(4, 1, [100, 100, 50, 50], 0.6)
    fx.det(4, 1, [150, 150, 40, 40], 0.5)
    fx.det(4, 1, [200, 200, 50, 50], 0.5)
    fx.det(4, 1, [280, 280, 100, 100], 0.45)      # mostly outside the crowd: IoU 0.04
    fx.det(4, 1, [20, 20, 60, 60], 0.3)           # duplicate of the GT: absorbed by the crowd
    fx.add(4, 1, [400, 300, 50, 50], ignore=1)            # pycocotools sets ignore := iscrowd = 0
    fx.det(4, 1, [402, 300, 50, 50], 0.85)
    # image 5: areas exactly on the borders
    fx.found(5, 1, [0, 0, 32, 32], 0.66)              # 1024: small and medium
    fx.found(5, 1, [100, 0, 96, 96], 0.66)            # 9216: medium and large
    fx.found(5, 2, [300, 0, 40, 30], 0.5, area=1024.0000000000002)  # just above 32^2: medium only
    fx.found(5, 2, [400, 0, 90, 100], 0.5, area=9215.999999999998)  # just below 96^2: medium only
    fx.det(5, 1, [300, 300, 32, 32], 0.4)         # unmatched, area 1024: FP in small and medium
    fx.det(5, 1, [400, 300, 96, 96], 0.3)         # unmatched, area 9216: FP in medium and large
    fx.det(5, 1, [0, 400, 10, 10], 0.2)           # unmatched small: ignored in medium/large
    # image 6: nothing at all
    # image 7: IoU with a crowd region of exactly 0.8999999999999999 (in / det area, float64):
    # matched (so ignored) at numpy's 9th threshold, a false positive if that threshold were 0.9
    fx.add(7, 1, [7.4, 0, 50, 50], iscrowd=1)
    fx.det(7, 1, [6.4, 0, 10, 10], 0.9)
    fx.found(7, 1, [100, 100, 50, 50], 0.5)
    return fx.dict()


def case_borders():
    """Every GT and detection area sits on or next to 1024 / 9216; IoUs exactly at thresholds."""
    fx = Case([img(i) for i in range(1, 5)], [cat(1, "a"), cat(2, "b")])
    sides = [(32, 32), (16, 64), (96, 96), (48, 192), (31, 33), (97, 95), (64, 16)]
    x = 0
    for i, (w, h) in enumerate(sides):
        im = 1 + i % 4
        fx.found(im, 1 + i % 2, [x, 10, w, h], 0.5)   # IoU 1
        fx.det(im, 1 + i % 2, [x, 10, w, h / 2], 0.5)              # IoU 0.5 exactly, tied score
        fx.det(im, 1 + i % 2, [x, 10, w, h * 0.75], 0.45)          # IoU 0.75 exactly
        fx.det(im, 1 + i % 2, [x + 300, 300, w, h], 0.4)           # FP of the same area
        x += 100
    # GT whose area field disagrees with its box: ranges use the field, IoU the box
    fx.found(1, 1, [500, 10, 10, 10], 0.7, area=9216)
    fx.found(2, 2, [500, 10, 200, 200], 0.2, area=1024)
    return fx.dict()


def case_crowd():
    """Crowd regions overlapping normal GT: the match prefers non-ignored GT (the 'break')."""
    fx = Case([img(i) for i in range(1, 4)], [cat(3, "person"), cat(5, "car")])
    rng = random.Random(7)
    for im in fx.images:
        i = im["id"]
        fx.add(i, 3, [0, 0, 400, 300], iscrowd=1, area=80000.0)
        for k in range(4):
            bx = [rng.randint(0, 300), rng.randint(0, 200), rng.randint(20, 100), rng.randint(20, 100)]
            fx.add(i, 3, bx)
            fx.det(i, 3, [bx[0] + rng.randint(-3, 3), bx[1] + rng.randint(-3, 3), bx[2], bx[3]],
                   round(rng.random(), 2))
        for k in range(12):   # absorbed by the crowd (or matching a person)
            fx.det(i, 3, [rng.randint(0, 350), rng.randint(0, 250), rng.randint(5, 50), rng.randint(5, 50)],
                   round(rng.random(), 2))
        fx.add(i, 5, [450, 300, 150, 150], iscrowd=1, area=3000.0)   # small-area crowd
        fx.found(i, 5, [460, 310, 30, 30], 0.9, area=800.0)
        fx.det(i, 5, [470, 320, 20, 20], 0.8)
        fx.det(i, 5, [500, 400, 100, 50], 0.7)
    return fx.dict()


def case_sparse():
    """Only medium GT: AP/AR small and large are -1; one category entirely without GT."""
    fx = Case([img(1), img(2)], [cat(1, "x"), cat(2, "y")])
    fx.add(1, 1, [10, 10, 50, 50])
    fx.add(2, 1, [10, 10, 60, 40])
    fx.dets = [det(1, 1, [12, 10, 50, 50], 0.9), det(2, 1, [200, 10, 60, 40], 0.8), det(2, 2, [10, 10, 5, 5], 0.95),
               det(2, 1, [10, 10, 60, 41], 0.3)]
    return fx.dict()


# ---------------------------------------------------------------- random cases

def random_case(seed, n_images, cat_ids, gt_per_image, fp_per_image, many=None, crowd_p=0.05):
    rng = random.Random(seed)
    fx = Case([img(i) for i in rng.sample(range(1, 10 * n_images), n_images)],
              [cat(c, "class%d" % c) for c in cat_ids])
    for im in fx.images:
        i = im["id"]
        mode = rng.random()
        n_gt = 0 if mode < 0.1 else rng.randint(0, gt_per_image)
        for _ in range(n_gt):
            side = np.exp(rng.uniform(np.log(6), np.log(300)))
            ar = np.exp(rng.uniform(-0.7, 0.7))
            w, h = round(side * ar, 1), round(side / ar, 1)
            x, y = round(rng.uniform(0, 640 - w), 1), round(rng.uniform(0, 480 - min(h, 479)), 1)
            c = rng.choice(cat_ids[:-1])                # the last category never has GT
            crowd = int(rng.random() < crowd_p)
            area = round(w * h * rng.uniform(0.55, 1.0), 2)
            fx.add(i, c, [x, y, w, h], area=area, iscrowd=crowd)
            if mode < 0.2 or rng.random() < 0.15:       # some images and GT without detections
                continue
            for _ in range(rng.randint(1, 3)):
                jit = rng.uniform(0.02, 0.4)
                bx = [round(x + rng.gauss(0, jit * w / 2), 1), round(y + rng.gauss(0, jit * h / 2), 1),
                      round(max(w * (1 + rng.gauss(0, jit)), 1.0), 1), round(max(h * (1 + rng.gauss(0, jit)), 1.0), 1)]
                cc = c if rng.random() < 0.9 else rng.choice(cat_ids)
                fx.det(i, cc, bx, round(rng.random(), 2))
        for _ in range(rng.randint(0, fp_per_image)):
            w, h = round(rng.uniform(4, 250), 1), round(rng.uniform(4, 250), 1)
            fx.det(i, rng.choice(cat_ids + [999]), [round(rng.uniform(0, 600), 1), round(rng.uniform(0, 450), 1), w, h],
                   round(rng.random(), 2))
    if many:
        i, c, n = many
        gts = [a for a in fx.anns if a["image_id"] == i and a["category_id"] == c]
        for k in range(n):
            if gts and k % 3 == 0:
                x, y, w, h = rng.choice(gts)["bbox"]
                bx = [round(x + rng.uniform(-5, 5), 1), round(y + rng.uniform(-5, 5), 1), w, h]
            else:
                bx = [round(rng.uniform(0, 600), 1), round(rng.uniform(0, 450), 1),
                      round(rng.uniform(4, 200), 1), round(rng.uniform(4, 200), 1)]
            fx.det(i, c, bx, round(rng.random(), 1))     # 1 decimal: many ties
    rng.shuffle(fx.dets)
    return fx.dict()


def case_random():
    return random_case(1, 30, [1, 2, 3, 5, 8, 13], 12, 8)


def case_many_dets():
    c = random_case(2, 4, [1, 2, 4], 12, 3, crowd_p=0.0)
    i = c["images"][0]["id"]
    c2 = random_case(2, 4, [1, 2, 4], 12, 3, many=(i, 1, 140), crowd_p=0.0)
    # a second image with >100 detections spread over categories (<100 each)
    j = c2["images"][1]["id"]
    rng = random.Random(5)
    for k in range(120):
        c2["dets"].append(det(j, [1, 2][k % 2], [rng.randint(0, 600), rng.randint(0, 440), rng.randint(5, 90),
                                                  rng.randint(5, 90)], round(rng.random(), 1)))
    return c2


def case_subset():
    c = random_case(3, 12, [2, 4, 6, 7], 8, 5)
    ids = [im["id"] for im in c["images"]]
    sub = ids[::2]
    c["img_ids"] = list(reversed(sub)) + [sub[0]]   # unsorted, with a duplicate (np.unique applies)
    return c


CASES = [("handmade", case_handmade), ("borders", case_borders), ("crowd", case_crowd), ("sparse", case_sparse),
         ("random", case_random), ("many_dets", case_many_dets), ("subset", case_subset)]


def run_pycocotools(gt_path, res_path, img_ids):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        dt = gt.loadRes(res_path)
        E = COCOeval(gt, dt, "bbox")
        if img_ids is not None:
            E.params.imgIds = img_ids
        E.evaluate()
        E.accumulate()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        E.summarize()
    lines = [l for l in out.getvalue().splitlines() if l.startswith(" Average")]
    assert len(lines) == 12, lines
    p = E.eval["precision"]
    cat_ap, cat_ap50 = [], []
    for k in range(len(E.params.catIds)):
        a = p[:, :, k, 0, -1]
        cat_ap.append(float(np.mean(a[a > -1])) if (a > -1).any() else -1.0)
        a = p[0, :, k, 0, -1]
        cat_ap50.append(float(np.mean(a[a > -1])) if (a > -1).any() else -1.0)
    return dict(stats=[float(s) for s in E.stats], summary=lines, cat_ids=[int(c) for c in E.params.catIds],
                cat_ap=cat_ap, cat_ap50=cat_ap50)


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "tests",
                                                                 "fixtures", "eval")
    os.makedirs(out_dir, exist_ok=True)
    names = []
    for name, fn in CASES:
        c = fn()
        gt_path = os.path.join(out_dir, name + ".gt.json")
        res_path = os.path.join(out_dir, name + ".res.json")
        write_gt(gt_path, c["images"], c["anns"], c["cats"])
        with open(res_path, "w") as f:
            f.write(dump_lines(c["dets"]))
        exp = {"case": name}
        if "img_ids" in c:
            exp["img_ids"] = c["img_ids"]
        exp.update(run_pycocotools(gt_path, res_path, c.get("img_ids")))
        with open(os.path.join(out_dir, name + ".expected.json"), "w") as f:
            json.dump(exp, f, indent=1)
            f.write("\n")
        names.append(name)
        print("%-10s %3d GT %4d dets  AP %.4f  AP50 %.4f  stats %s" % (
            name, len(c["anns"]), len(c["dets"]), exp["stats"][0], exp["stats"][1],
            " ".join("%.3f" % s for s in exp["stats"])))
    with open(os.path.join(out_dir, "index.json"), "w") as f:
        json.dump({"cases": names}, f)
        f.write("\n")


if __name__ == "__main__":
    main()
