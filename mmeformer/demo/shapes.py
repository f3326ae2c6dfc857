"""A synthetic "shapes" data set for demos and tests, in real formats.

Squares, circles and triangles of random size, near upright (rotated by up
to ``max_rotation`` degrees), on a noisy grey background, written once in
two standard layouts that share the images::

    <out_dir>/
        images/training/shapes_train_000000.jpg ...
        images/validation/shapes_val_000000.jpg ...
        annotations/training/shapes_train_000000.png ...    (label maps)
        annotations/validation/shapes_val_000000.png ...
        annotations/instances_train.json                    (COCO)
        annotations/instances_val.json
        meta.json

- Detection / instance segmentation: COCO instance json per split, with
  polygons, ``bbox`` (tight box of the mask), ``area`` (mask pixels) and
  ``iscrowd=0``. Load it with MMDetection's ``CocoDataset``,
  ``data_prefix=dict(img='images/training/')`` and
  ``metainfo=dict(classes=SHAPES_CLASSES)``.
- Semantic segmentation: ADE20K's folder layout, one PNG label map per
  image. Pixel values follow ADE20K: ``0`` is background and the classes
  are ``1..3`` in the order of :data:`SHAPES_CLASSES`. Two readings are
  valid:

  * ``reduce_zero_label=True`` with the 3 shape classes is ADE20K's own
    convention: 0 becomes the ignore index (255), so background pixels are
    neither learnt nor scored.
  * ``reduce_zero_label=False`` with :data:`SHAPES_SEG_CLASSES`
    (``'background'`` first) keeps background as a class. The demo uses
    this: here background is one well-defined category rather than
    ADE20K's unannotated "other", and ignoring it would let a model that
    paints every pixel with some shape score a perfect mIoU.

  Load it with MMSegmentation's ``BaseSegDataset`` (``ADE20KDataset``
  only accepts subsets of its own 150 classes).

Each class is drawn in its own colour family (:data:`SHAPES_PALETTE`, every
channel shifted at random by up to 40), so that a detector trained from
scratch for a few minutes on a CPU can tell the classes apart; boxes and
masks still have to be found from the outlines.

Shapes never overlap, so every instance mask is the complete shape and the
label maps agree with the COCO masks pixel for pixel. Each image is drawn
from its own random stream, seeded by ``(seed, split, index)``: the same
arguments give byte-identical files, and the validation split does not
change when the training split grows. The validation split is held out:
no training image is drawn from its streams.
"""
import json
import os
import os.path as osp
import shutil
from typing import Dict, List, Tuple

import cv2
import numpy as np
from pycocotools import mask as mask_utils

__all__ = [
    'SHAPES_CLASSES', 'SHAPES_SEG_CLASSES', 'SHAPES_PALETTE',
    'SHAPES_SEG_PALETTE', 'SHAPES_FORMAT_VERSION', 'generate_shapes',
    'shapes_meta', 'is_shapes_dataset', 'CLS_CLASSES', 'CLS_FORMAT_VERSION',
    'classification_meta', 'generate_shape_classes'
]

#: Object classes; COCO category ids are ``1..3`` in this order.
SHAPES_CLASSES = ('square', 'circle', 'triangle')
#: Semantic classes when background is kept as class 0.
SHAPES_SEG_CLASSES = ('background', ) + SHAPES_CLASSES
#: Colours (RGB) of :data:`SHAPES_CLASSES`: drawn (with jitter) and shown.
SHAPES_PALETTE = [(220, 20, 60), (0, 170, 0), (30, 110, 240)]
#: Drawing colours (RGB) of :data:`SHAPES_SEG_CLASSES`.
SHAPES_SEG_PALETTE = [(0, 0, 0)] + SHAPES_PALETTE
#: Bumped whenever the drawing changes, so that stale copies are redrawn.
SHAPES_FORMAT_VERSION = 3

# Sub-folder and file-name stem of each split: ADE20K names the folders,
# COCO names the json files.
_SPLITS = {'train': 'training', 'val': 'validation'}
_SPLIT_CODES = {'train': 0, 'val': 1}
# Circles are stored as polygons, like COCO stores every non-crowd object.
_CIRCLE_VERTICES = 48
_JPEG_QUALITY = 90
# Largest shift of a shape's colour channels away from its class colour
# (the module docstring quotes it).
_COLOUR_JITTER = 40


def shapes_meta(num_train: int, num_val: int, img_size: int, seed: int,
                min_size: int, max_size: int, max_shapes: int,
                max_rotation: float) -> dict:
    """The description written to ``meta.json``.

    Args:
        num_train (int): Number of training images.
        num_val (int): Number of held-out validation images.
        img_size (int): Side of the square images in pixels.
        seed (int): Seed of the generator.
        min_size (int): Smallest shape extent in pixels.
        max_size (int): Largest shape extent in pixels.
        max_shapes (int): Most shapes in one image.
        max_rotation (float): Largest rotation, in degrees, away from
            upright.

    Returns:
        dict: Everything that determines the files, comparable with ``==``.
    """
    return dict(
        format_version=SHAPES_FORMAT_VERSION,
        classes=list(SHAPES_CLASSES),
        num_train=num_train,
        num_val=num_val,
        img_size=img_size,
        seed=seed,
        min_size=min_size,
        max_size=max_size,
        max_shapes=max_shapes,
        max_rotation=max_rotation)


def is_shapes_dataset(out_dir: str, meta: dict = None) -> bool:
    """Whether ``out_dir`` holds a complete shapes set.

    ``meta.json`` is written last, so a generation that was interrupted
    never looks complete.

    Args:
        out_dir (str): The data set root.
        meta (dict, optional): If given, the set must also have been made
            with exactly these settings (see :func:`shapes_meta`).

    Returns:
        bool: True if the set is complete (and matches ``meta``).
    """
    meta_file = osp.join(out_dir, 'meta.json')
    if not osp.isfile(meta_file):
        return False
    with open(meta_file) as f:
        try:
            found = json.load(f)
        except ValueError:
            return False
    return meta is None or found == meta


def _shape_polygon(cls_name: str, center: Tuple[float, float], extent: float,
                   angle: float) -> np.ndarray:
    """Vertices (N, 2) of one shape, rounded as they are stored."""
    if cls_name == 'square':
        # ``extent`` is the side length.
        radius = extent / np.sqrt(2)
        angles = angle + np.pi / 4 + np.arange(4) * np.pi / 2
    elif cls_name == 'triangle':
        # Equilateral, ``extent`` is the side length; at angle 0 it stands
        # on its base (image y points down).
        radius = extent / np.sqrt(3)
        angles = angle - np.pi / 2 + np.arange(3) * 2 * np.pi / 3
    else:
        radius = extent / 2
        angles = np.arange(_CIRCLE_VERTICES) * 2 * np.pi / _CIRCLE_VERTICES
    xy = np.stack([
        center[0] + radius * np.cos(angles),
        center[1] + radius * np.sin(angles)
    ], 1)
    # The mask is rasterised from the rounded polygon, so the json
    # reproduces it exactly.
    return np.round(xy, 2)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth random grey field (float32, HxWx3)."""
    base = rng.uniform(70, 185)
    # Low-frequency blotches, so that no single grey is "background".
    coarse = rng.normal(0, 25, size=(6, 6, 1)).astype(np.float32)
    blotches = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    return np.repeat(base + blotches[..., None], 3, axis=2).astype(np.float32)


def _shape_colour(rng: np.random.Generator, label: int) -> np.ndarray:
    """A colour of the class's family: its palette colour, each channel
    shifted by up to ``_COLOUR_JITTER``."""
    colour = np.asarray(SHAPES_PALETTE[label], dtype=np.float32)
    return np.clip(colour + rng.uniform(-_COLOUR_JITTER, _COLOUR_JITTER, 3), 0,
                   255)


def _draw_image(rng: np.random.Generator, size: int, min_size: int,
                max_size: int, max_shapes: int,
                max_rotation: float) -> Tuple[np.ndarray, List[dict]]:
    """Draw one image and its instances.

    Returns:
        tuple: The BGR uint8 image and a list of instances, each a dict
        with ``label`` (0-based), ``polygon`` (N, 2) and ``mask`` (HxW,
        uint8).
    """
    canvas = _background(rng, size)
    instances: List[dict] = []
    placed: List[Tuple[float, float, float]] = []
    num_shapes = int(rng.integers(1, max_shapes + 1))
    for _ in range(num_shapes):
        label = int(rng.integers(len(SHAPES_CLASSES)))
        extent = float(rng.uniform(min_size, max_size))
        angle = float(np.deg2rad(rng.uniform(-max_rotation, max_rotation)))
        # Circumradius bound for every class (the square's is the largest).
        radius = extent / np.sqrt(2)
        for _ in range(50):
            cx, cy = rng.uniform(radius + 2, size - radius - 2, size=2)
            if all((cx - x)**2 + (cy - y)**2 > (radius + r + 4)**2
                   for x, y, r in placed):
                break
        else:
            # The image is full; fewer shapes is fine.
            continue
        placed.append((cx, cy, radius))
        polygon = _shape_polygon(SHAPES_CLASSES[label], (cx, cy), extent,
                                 angle)
        rle = mask_utils.frPyObjects([polygon.ravel().tolist()], size, size)
        mask = mask_utils.decode(mask_utils.merge(rle))
        canvas[mask.astype(bool)] = _shape_colour(rng, label)
        instances.append(dict(label=label, polygon=polygon, mask=mask))
    # Pixel noise over everything, shapes included.
    canvas += rng.normal(0, 18, size=canvas.shape).astype(np.float32)
    image = np.clip(np.round(canvas), 0, 255).astype(np.uint8)
    return image[..., ::-1].copy(), instances


def _write_bytes(path: str, data: bytes) -> None:
    with open(path, 'wb') as f:
        f.write(data)


def _generate_split(root: str, split: str, num_images: int, img_size: int,
                    seed: int, min_size: int, max_size: int, max_shapes: int,
                    max_rotation: float) -> Dict:
    """Write one split's images and label maps; return its COCO dict."""
    folder = _SPLITS[split]
    img_dir = osp.join(root, 'images', folder)
    ann_dir = osp.join(root, 'annotations', folder)
    os.makedirs(img_dir)
    os.makedirs(ann_dir)
    images, annotations = [], []
    for index in range(num_images):
        rng = np.random.default_rng(
            np.random.SeedSequence([seed, _SPLIT_CODES[split], index]))
        image, instances = _draw_image(rng, img_size, min_size, max_size,
                                       max_shapes, max_rotation)
        stem = f'shapes_{split}_{index:06d}'
        ok, jpg = cv2.imencode('.jpg', image,
                               [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
        assert ok, f'JPEG encoding failed for {stem}'
        _write_bytes(osp.join(img_dir, stem + '.jpg'), jpg.tobytes())

        label_map = np.zeros((img_size, img_size), np.uint8)
        image_id = index + 1
        images.append(
            dict(
                id=image_id,
                file_name=stem + '.jpg',
                width=img_size,
                height=img_size))
        for inst in instances:
            label_map[inst['mask'].astype(bool)] = inst['label'] + 1
            rle = mask_utils.encode(np.asfortranarray(inst['mask']))
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=image_id,
                    category_id=inst['label'] + 1,
                    segmentation=[inst['polygon'].ravel().tolist()],
                    area=float(mask_utils.area(rle)),
                    bbox=[float(v) for v in mask_utils.toBbox(rle)],
                    iscrowd=0))
        ok, png = cv2.imencode('.png', label_map)
        assert ok, f'PNG encoding failed for {stem}'
        _write_bytes(osp.join(ann_dir, stem + '.png'), png.tobytes())

    categories = [
        dict(id=i + 1, name=name, supercategory='shape')
        for i, name in enumerate(SHAPES_CLASSES)
    ]
    return dict(
        info=dict(description='mmeformer synthetic shapes', version='1.0'),
        licenses=[],
        images=images,
        annotations=annotations,
        categories=categories)


def generate_shapes(out_dir: str,
                    num_train: int = 300,
                    num_val: int = 60,
                    img_size: int = 256,
                    seed: int = 0,
                    min_size: int = 24,
                    max_size: int = 80,
                    max_shapes: int = 4,
                    max_rotation: float = 15.,
                    overwrite: bool = False) -> dict:
    """Draw the shapes set and write it under ``out_dir``.

    The set is written into a temporary sibling folder and moved into
    place at the end, so an interrupted run leaves no half-written set.

    Args:
        out_dir (str): Root of the set. Its parent must be writable.
        num_train (int): Number of training images. Defaults to 300.
        num_val (int): Number of held-out validation images.
            Defaults to 60.
        img_size (int): Side of the square images. Defaults to 256.
        seed (int): Seed; the same seed gives byte-identical files.
            Defaults to 0.
        min_size (int): Smallest shape extent (side, or diameter of a
            circle) in pixels. Defaults to 24.
        max_size (int): Largest shape extent in pixels. Defaults to 80.
        max_shapes (int): Most shapes in one image (at least one is drawn).
            Defaults to 4.
        max_rotation (float): Largest rotation, in degrees, of a square or
            triangle away from upright (axis-aligned, standing on its
            base). Defaults to 15.
        overwrite (bool): Replace an existing shapes set at ``out_dir``.
            A folder that is not a shapes set is never replaced.
            Defaults to False.

    Returns:
        dict: The content of ``meta.json``, plus ``num_instances`` per
        split.
    """
    if not 0 < min_size <= max_size:
        raise ValueError(f'Need 0 < min_size <= max_size, got {min_size} '
                         f'and {max_size}.')
    if max_size * np.sqrt(2) + 4 > img_size:
        raise ValueError(f'max_size={max_size} does not fit into '
                         f'{img_size}x{img_size} images.')
    out_dir = osp.abspath(out_dir)
    if osp.exists(out_dir):
        if not is_shapes_dataset(out_dir):
            raise FileExistsError(
                f'{out_dir} exists and is not a shapes set; refusing to '
                'replace it.')
        if not overwrite:
            raise FileExistsError(
                f'{out_dir} already holds a shapes set; pass overwrite=True '
                '(--overwrite) to redraw it.')

    meta = shapes_meta(num_train, num_val, img_size, seed, min_size, max_size,
                       max_shapes, max_rotation)
    tmp_dir = f'{out_dir}.tmp-{os.getpid()}'
    shutil.rmtree(tmp_dir, ignore_errors=True)
    os.makedirs(osp.join(tmp_dir, 'annotations'))
    counts = {}
    for split, num_images in (('train', num_train), ('val', num_val)):
        coco = _generate_split(tmp_dir, split, num_images, img_size, seed,
                               min_size, max_size, max_shapes, max_rotation)
        counts[split] = len(coco['annotations'])
        with open(
                osp.join(tmp_dir, 'annotations', f'instances_{split}.json'),
                'w') as f:
            json.dump(coco, f)
    with open(osp.join(tmp_dir, 'meta.json'), 'w') as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write('\n')

    if osp.exists(out_dir):
        shutil.rmtree(out_dir)
    os.replace(tmp_dir, out_dir)
    return dict(meta, num_instances=counts)


# -- a classification set ----------------------------------------------------
# One shape per image, the class its outline and colour family, in
# ImageNet's folder layout (``<split>/<class>/<image>.jpg``), for the
# architecture-search demo (docs/search.md). Nuisance makes it hard: any
# rotation and size, overlapping colour families, a grey distractor outline,
# clutter lines, blotchy background and pixel noise.

#: Outlines of the classification set, by number of vertices (0: circle).
CLS_SHAPES = (('triangle', 3), ('square', 4), ('pentagon', 5), ('hexagon', 6),
              ('circle', 0))
#: Colour families (RGB) of the classification set.
CLS_COLOURS = (('red', (200, 40, 50)), ('green', (40, 160, 60)),
               ('blue', (40, 90, 210)), ('yellow', (210, 190, 40)))
#: Class names: ``<colour>_<shape>``, sorted as folder names are.
CLS_CLASSES = tuple(
    sorted(f'{c}_{s}' for c, _ in CLS_COLOURS for s, _ in CLS_SHAPES))
#: Bumped whenever the drawing of the classification set changes.
CLS_FORMAT_VERSION = 1
_CLS_SPLITS = {'train': 10, 'val': 11, 'test': 12}
# Colour jitter of the classification set: wide enough that neighbouring
# families overlap now and then.
_CLS_COLOUR_JITTER = 70


def _regular_polygon(vertices: int, center: Tuple[float, float], radius: float,
                     angle: float) -> np.ndarray:
    count = vertices or _CIRCLE_VERTICES
    angles = angle + np.arange(count) * 2 * np.pi / count
    return np.stack([
        center[0] + radius * np.cos(angles),
        center[1] + radius * np.sin(angles)
    ], 1)


def _draw_classification_image(rng: np.random.Generator, size: int,
                               label: int) -> np.ndarray:
    """One BGR uint8 image of class ``CLS_CLASSES[label]``."""
    colour_name, shape_name = CLS_CLASSES[label].split('_')
    vertices = dict(CLS_SHAPES)[shape_name]
    colour = np.asarray(dict(CLS_COLOURS)[colour_name], np.float32)
    canvas = _background(rng, size)
    # Clutter: a few grey lines across the image.
    for _ in range(int(rng.integers(1, 4))):
        p1, p2 = rng.uniform(0, size, (2, 2)).astype(int)
        cv2.line(canvas, tuple(map(int, p1)), tuple(map(int, p2)),
                 tuple(float(v) for v in [rng.uniform(40, 220)] * 3),
                 int(rng.integers(1, 3)))
    # A grey distractor outline of a random kind, away from the centre.
    radius = rng.uniform(0.08, 0.14) * size
    corner = rng.choice([0.2, 0.8], 2) * size
    poly = _regular_polygon(CLS_SHAPES[int(rng.integers(len(CLS_SHAPES)))][1],
                            tuple(corner), radius, rng.uniform(0, 2 * np.pi))
    grey = float(rng.uniform(60, 200))
    cv2.polylines(canvas, [np.round(poly).astype(np.int32)], True,
                  (grey, grey, grey), 1)
    # The shape itself: any rotation, a fifth to two fifths of the image.
    radius = rng.uniform(0.2, 0.4) * size / 2 * 1.4
    center = rng.uniform(0.35, 0.65, 2) * size
    poly = _regular_polygon(vertices, tuple(center), radius,
                            rng.uniform(0, 2 * np.pi))
    fill = np.clip(
        colour + rng.uniform(-_CLS_COLOUR_JITTER, _CLS_COLOUR_JITTER, 3), 0,
        255)
    cv2.fillPoly(canvas, [np.round(poly).astype(np.int32)],
                 tuple(float(v) for v in fill))
    canvas += rng.normal(0, 22, size=canvas.shape).astype(np.float32)
    image = np.clip(np.round(canvas), 0, 255).astype(np.uint8)
    return image[..., ::-1].copy()


def classification_meta(num_train: int, num_val: int, num_test: int,
                        img_size: int, seed: int) -> dict:
    """The description written to the classification set's ``meta.json``.

    Args:
        num_train (int): Training images per class.
        num_val (int): Held-out images per class (e.g. for a search).
        num_test (int): Test images per class.
        img_size (int): Side of the square images.
        seed (int): Seed of the generator.

    Returns:
        dict: Everything that determines the files.
    """
    return dict(
        format_version=CLS_FORMAT_VERSION,
        classes=list(CLS_CLASSES),
        num_train=num_train,
        num_val=num_val,
        num_test=num_test,
        img_size=img_size,
        seed=seed)


def generate_shape_classes(out_dir: str,
                           num_train: int = 100,
                           num_val: int = 20,
                           num_test: int = 40,
                           img_size: int = 112,
                           seed: int = 0,
                           overwrite: bool = False) -> dict:
    """Draw the shapes classification set under ``out_dir``.

    ``out_dir/{train,val,test}/<class>/<split>_<index>.jpg`` with the 20
    classes of :data:`CLS_CLASSES` (5 outlines x 4 colour families), the
    layout of MMPretrain's ``CustomDataset`` (ImageNet's), plus
    ``meta.json``. Every image comes from its own random stream seeded by
    ``(seed, split, class, index)``, so the splits are disjoint and the
    same arguments give byte-identical files. Written into a temporary
    sibling folder and moved into place at the end.

    Args:
        out_dir (str): Root of the set. Its parent must be writable.
        num_train (int): Training images per class. Defaults to 100.
        num_val (int): Held-out images per class. Defaults to 20.
        num_test (int): Test images per class. Defaults to 40.
        img_size (int): Side of the square images. Defaults to 112.
        seed (int): Seed. Defaults to 0.
        overwrite (bool): Replace an existing classification set at
            ``out_dir``; another folder is never replaced. Defaults to
            False.

    Returns:
        dict: The content of ``meta.json``.
    """
    if img_size < 32:
        raise ValueError(f'img_size must be at least 32, got {img_size}')
    out_dir = osp.abspath(out_dir)
    if osp.exists(out_dir):
        if not is_shapes_dataset(out_dir):
            raise FileExistsError(
                f'{out_dir} exists and is not a shapes set; refusing to '
                'replace it.')
        if not overwrite:
            raise FileExistsError(
                f'{out_dir} already holds a shapes set; pass overwrite=True '
                '(--overwrite) to redraw it.')
    meta = classification_meta(num_train, num_val, num_test, img_size, seed)
    tmp_dir = f'{out_dir}.tmp-{os.getpid()}'
    shutil.rmtree(tmp_dir, ignore_errors=True)
    for split, count in (('train', num_train), ('val', num_val), ('test',
                                                                  num_test)):
        for label, name in enumerate(CLS_CLASSES):
            folder = osp.join(tmp_dir, split, name)
            os.makedirs(folder)
            for index in range(count):
                rng = np.random.default_rng(
                    np.random.SeedSequence(
                        [seed, _CLS_SPLITS[split], label, index]))
                image = _draw_classification_image(rng, img_size, label)
                ok, jpg = cv2.imencode(
                    '.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
                assert ok, f'JPEG encoding failed for {name} {index}'
                _write_bytes(
                    osp.join(folder, f'{split}_{index:05d}.jpg'),
                    jpg.tobytes())
    with open(osp.join(tmp_dir, 'meta.json'), 'w') as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write('\n')
    if osp.exists(out_dir):
        shutil.rmtree(out_dir)
    os.replace(tmp_dir, out_dir)
    return meta
