"""Tiny datasets in the three hosts' on-disk formats, for the tool tests.

A few small noisy images, each with one or two filled rectangles, so every
loader, annotation parser and metric of the host runs on real files. The
contents are not meant to be learnable.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Sequence

import cv2
import numpy as np


def _noise(rng: np.random.RandomState, height: int, width: int) -> np.ndarray:
    return rng.randint(0, 256, (height, width, 3), dtype=np.uint8)


def _boxes(rng: np.random.RandomState, height: int, width: int,
           count: int) -> List[List[int]]:
    """``count`` rectangles ``[x1, y1, x2, y2]`` of at least 12 pixels."""
    boxes = []
    for _ in range(count):
        w, h = rng.randint(12, width // 2), rng.randint(12, height // 2)
        x1, y1 = rng.randint(0, width - w), rng.randint(0, height - h)
        boxes.append([x1, y1, x1 + w, y1 + h])
    return boxes


def make_imagenet(root: str,
                  num_classes: int = 3,
                  per_class: Dict[str, int] = None,
                  size: int = 48) -> str:
    """``root/{train,val}/<class>/*.JPEG`` and ``root/meta/<split>.txt``.

    The meta lists (``<class>/<file> <label>``) are what mmpretrain's
    ImageNet reads when present, as for the real dataset.
    """
    per_class = per_class or dict(train=2, val=1)
    rng = np.random.RandomState(0)
    os.makedirs(osp.join(root, 'meta'), exist_ok=True)
    for split, count in per_class.items():
        lines = []
        for label in range(num_classes):
            folder = f'n{label:08d}'
            os.makedirs(osp.join(root, split, folder), exist_ok=True)
            for i in range(count):
                name = f'{folder}/{split}_{label}_{i}.JPEG'
                img = _noise(rng, size, size)
                x1, y1, x2, y2 = _boxes(rng, size, size, 1)[0]
                img[y1:y2, x1:x2] = (80 * label) % 256
                cv2.imwrite(osp.join(root, split, name), img)
                lines.append(f'{name} {label}')
        with open(osp.join(root, 'meta', f'{split}.txt'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
    return root


def make_coco(root: str,
              class_names: Sequence[str],
              counts: Dict[str, int] = None,
              height: int = 96,
              width: int = 128) -> str:
    """``root/{train,val}/*.jpg`` and ``root/annotations/<split>.json``.

    Each image holds two rectangles, of the first three classes, with box
    and polygon annotations. ``class_names`` become the categories: the
    detector's classes, which CocoDataset and CocoMetric map by name.
    """
    categories = [
        dict(id=i, name=name) for i, name in enumerate(class_names, 1)
    ]
    counts = counts or dict(train=4, val=2)
    rng = np.random.RandomState(1)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    ann_id = 1
    for split, count in counts.items():
        os.makedirs(osp.join(root, split), exist_ok=True)
        images, annotations = [], []
        for img_id in range(1, count + 1):
            name = f'{split}_{img_id}.jpg'
            img = _noise(rng, height, width)
            for x1, y1, x2, y2 in _boxes(rng, height, width, 2):
                category = categories[ann_id % 3]
                img[y1:y2, x1:x2] = 60 * category['id']
                w, h = x2 - x1, y2 - y1
                annotations.append(
                    dict(
                        id=ann_id,
                        image_id=img_id,
                        category_id=category['id'],
                        bbox=[x1, y1, w, h],
                        area=w * h,
                        iscrowd=0,
                        segmentation=[[x1, y1, x2, y1, x2, y2, x1, y2]]))
                ann_id += 1
            cv2.imwrite(osp.join(root, split, name), img)
            images.append(
                dict(id=img_id, file_name=name, height=height, width=width))
        with open(osp.join(root, 'annotations', f'{split}.json'), 'w') as f:
            json.dump(
                dict(
                    images=images,
                    annotations=annotations,
                    categories=categories), f)
    return root


def make_ade20k(root: str,
                counts: Dict[str, int] = None,
                height: int = 70,
                width: int = 90) -> str:
    """``root/{images,annotations}/{training,validation}``, ADE20K style.

    Label maps are PNGs where 0 is "other" (ignored after
    ``reduce_zero_label``) and 1..150 are classes. The odd default size
    makes the test pipeline's resize to a multiple of 32 do some work.
    """
    counts = counts or dict(training=4, validation=2)
    rng = np.random.RandomState(2)
    for split, count in counts.items():
        os.makedirs(osp.join(root, 'images', split), exist_ok=True)
        os.makedirs(osp.join(root, 'annotations', split), exist_ok=True)
        for i in range(count):
            img = _noise(rng, height, width)
            label = np.full((height, width), 1 + i % 3, dtype=np.uint8)
            for j, (x1, y1, x2,
                    y2) in enumerate(_boxes(rng, height, width, 2)):
                img[y1:y2, x1:x2] = 90 * (j + 1)
                label[y1:y2, x1:x2] = 10 * (j + 1)
            label[:4] = 0
            cv2.imwrite(osp.join(root, 'images', split, f'{i}.jpg'), img)
            cv2.imwrite(
                osp.join(root, 'annotations', split, f'{i}.png'), label)
    return root
